//! The OpenAI-compatible server (feature `server`), driven by our own client: what the served
//! model receives, what the client gets back, and how failures cross the wire.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::chat::{ChatContext, ChatItem, FunctionCall, FunctionCallOutput, Role};
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, ToolChoice, ToolDefinition, Usage, collect,
};
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard_openai::{OpenAiConfig, OpenAiLlm};

/// Serves `model` on a free port; returns the base URL (`http://127.0.0.1:PORT/v1`).
async fn serve(model: Arc<dyn Llm>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(switchboard_openai::server::serve(listener, model));
    url
}

fn client(url: &str) -> OpenAiLlm {
    OpenAiLlm::new(OpenAiConfig::new(url).include_usage(true), "served-model")
}

fn weather_tool() -> ToolDefinition {
    ToolDefinition {
        name: "get_weather".into(),
        description: "The weather in a city.".into(),
        parameters: json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        }),
        strict_parameters: None,
    }
}

#[tokio::test]
async fn a_conversation_with_tool_calls_reaches_the_model_as_it_was_sent() {
    let model = Arc::new(ScriptedLlm::new().reply_text("It is sunny in Paris."));
    let url = serve(model.clone()).await;

    let mut ctx = ChatContext::new();
    ctx.add_message(Role::System, "You are a weather assistant.");
    ctx.add_message(Role::User, "Weather in Paris?");
    ctx.insert(FunctionCall::new(
        "call_7",
        "get_weather",
        r#"{"city":"Paris"}"#,
    ));
    ctx.insert(FunctionCallOutput::new(
        "call_7",
        "get_weather",
        "sunny, 21 C",
        false,
    ));
    let request = ChatRequest::new(ctx)
        .with_tools([weather_tool()])
        .with_tool_choice(ToolChoice::Auto)
        .with_temperature(0.25);
    let answer = collect(client(&url).chat(request)).await.unwrap();
    assert_eq!(answer.text, "It is sunny in Paris.");
    assert_eq!(answer.finish_reason, Some(FinishReason::Stop));

    let received = &model.requests()[0];
    let items: Vec<String> = received
        .context
        .items()
        .iter()
        .map(|item| match item {
            ChatItem::Message(m) => format!("{:?}: {}", m.role, m.text()),
            ChatItem::FunctionCall(c) => format!("call {} {}({})", c.call_id, c.name, c.arguments),
            ChatItem::FunctionCallOutput(o) => {
                format!("output {} {}: {}", o.call_id, o.name, o.output)
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        items,
        [
            "System: You are a weather assistant.",
            "User: Weather in Paris?",
            r#"call call_7 get_weather({"city":"Paris"})"#,
            "output call_7 get_weather: sunny, 21 C",
        ]
    );
    assert_eq!(received.tools.len(), 1);
    assert_eq!(received.tools[0].name, "get_weather");
    assert_eq!(received.tools[0].parameters, weather_tool().parameters);
    assert_eq!(received.tool_choice, ToolChoice::Auto);
    assert_eq!(received.temperature, Some(0.25));
}

#[tokio::test]
async fn tool_calls_and_usage_stream_back_to_the_client() {
    let model = Arc::new(FixedChunks(vec![
        ChatChunk::Text("Let me check. ".into()),
        ChatChunk::ToolCall(switchboard::llm::ToolCallDelta {
            index: 0,
            id: Some("call_a".into()),
            name: Some("get_weather".into()),
            arguments: r#"{"city":"#.into(),
        }),
        ChatChunk::ToolCall(switchboard::llm::ToolCallDelta {
            index: 0,
            id: None,
            name: None,
            arguments: r#""Oslo"}"#.into(),
        }),
        ChatChunk::Usage(Usage {
            prompt_tokens: 42,
            cached_tokens: 40,
            completion_tokens: 7,
        }),
        ChatChunk::Finish(FinishReason::ToolCalls),
    ]));
    let url = serve(model).await;
    let mut ctx = ChatContext::new();
    ctx.add_message(Role::User, "And in Oslo?");
    let request = ChatRequest::new(ctx)
        .with_tools([weather_tool()])
        .with_tool_choice(ToolChoice::Named("get_weather".into()));
    let answer = collect(client(&url).chat(request)).await.unwrap();
    assert_eq!(answer.text, "Let me check. ");
    assert_eq!(answer.tool_calls.len(), 1);
    assert_eq!(answer.tool_calls[0].call_id, "call_a");
    assert_eq!(answer.tool_calls[0].name, "get_weather");
    assert_eq!(answer.tool_calls[0].arguments, r#"{"city":"Oslo"}"#);
    assert_eq!(answer.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        answer.usage,
        Some(Usage {
            prompt_tokens: 42,
            cached_tokens: 40,
            completion_tokens: 7
        })
    );
}

/// A model that answers every request with the same chunks.
struct FixedChunks(Vec<ChatChunk>);

impl Llm for FixedChunks {
    fn provider(&self) -> &str {
        "fixed"
    }

    fn model(&self) -> &str {
        "fixed"
    }

    fn chat(&self, _request: ChatRequest) -> switchboard::llm::LlmStream {
        Box::pin(futures::stream::iter(self.0.clone().into_iter().map(Ok)))
    }
}

/// Posts a raw JSON body; returns the status, the `retry-after` header and the body.
async fn post(url: &str, body: Value) -> (u16, Option<String>, Value) {
    let response = http_client()
        .post(format!("{url}/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    (status, retry_after, body)
}

/// A plain HTTP client (no TLS is used against the local server).
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn get(url: String) -> (u16, Vec<u8>) {
    let response = http_client().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_request_without_streaming_gets_one_completion_object() {
    let model = Arc::new(
        ScriptedLlm::new().reply(ScriptedReply::tool("get_weather", json!({"city": "Rome"}))),
    );
    let url = serve(model).await;
    let (status, _, body) = post(
        &url,
        json!({
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Rome?"}]}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "m");
    let message = &body["choices"][0]["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"], Value::Null);
    assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(
        message["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(arguments, json!({"city": "Rome"}));
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn requests_the_model_cannot_take_get_400_with_the_reason() {
    let model = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::text("never")));
    let url = serve(model.clone()).await;
    let cases = [
        (
            json!({"messages": [
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "call_x", "content": "42"},
            ]}),
            "`call_x`, which no earlier assistant message called",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            "content parts of type `image_url` are not supported",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "function", "function": {"name": "nope"}}}),
            "tool_choice names `nope`",
        ),
        (json!({"messages": "hello"}), "messages"),
        (
            json!({"messages": [{"role": "narrator", "content": "x"}]}),
            "narrator",
        ),
    ];
    for (body, expected) in cases {
        let (status, _, answer) = post(&url, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
    }
    assert_eq!(model.request_count(), 0);
}

#[tokio::test]
async fn model_errors_keep_their_kind_across_the_wire() {
    let model = Arc::new(
        ScriptedLlm::new()
            .reply(ScriptedReply::Error(LlmError::RateLimited {
                provider: "inner".into(),
                retry_after: Some(Duration::from_secs(3)),
                message: "busy".into(),
            }))
            .reply(ScriptedReply::Error(LlmError::ContextTooLong {
                provider: "inner".into(),
                message: "4096 tokens at most".into(),
            }))
            .reply(ScriptedReply::ChunksThenError(
                vec![ChatChunk::Text("Half an ans".into())],
                LlmError::Other {
                    provider: "inner".into(),
                    message: "the model crashed".into(),
                    retryable: true,
                },
            )),
    );
    let url = serve(model).await;
    let llm = client(&url);
    let ask = || {
        let mut ctx = ChatContext::new();
        ctx.add_message(Role::User, "hi");
        llm.chat(ChatRequest::new(ctx))
    };

    match collect(ask()).await.unwrap_err() {
        LlmError::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)))
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    let error = collect(ask()).await.unwrap_err();
    assert!(
        matches!(error, LlmError::ContextTooLong { .. }),
        "{error:?}"
    );

    // Midway: the chunks before the failure arrive, then the error, still retryable.
    let items: Vec<_> = futures::StreamExt::collect::<Vec<_>>(ask()).await;
    assert!(
        matches!(&items[0], Ok(ChatChunk::Text(t)) if t == "Half an ans"),
        "{items:?}"
    );
    let error = items.last().unwrap().as_ref().unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(error.to_string().contains("the model crashed"), "{error}");
}

#[tokio::test]
async fn models_and_health_answer() {
    let model = Arc::new(ScriptedLlm::new().with_model("tiny"));
    let url = serve(model).await;
    let (status, models) = get(format!("{url}/models")).await;
    assert_eq!(status, 200);
    let models: Value = serde_json::from_slice(&models).unwrap();
    assert_eq!(models["data"][0]["id"], "tiny");
    let root = url.trim_end_matches("/v1");
    assert_eq!(get(format!("{root}/health")).await, (200, b"ok".to_vec()));
}
