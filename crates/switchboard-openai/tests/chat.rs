//! Chat Completions against the replay server: request bodies and headers, stream parsing.

mod common;

use common::*;
use serde_json::json;
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, ResponseFormat, ToolCallDelta, ToolChoice,
    Usage, collect,
};
use switchboard_openai::{OpenAiConfig, OpenAiLlm};
use switchboard_replay::ReplayServer;

fn llm(server: &ReplayServer) -> OpenAiLlm {
    OpenAiLlm::new(
        OpenAiConfig::openai()
            .with_base_url(format!("{}/v1", server.url()))
            .api_key(KEY),
        "gpt-4o-mini",
    )
}

#[tokio::test]
async fn text_stream_with_usage_and_finish() {
    let server = ReplayServer::start([sse("chat_text.sse")]).await;
    let items = drain(llm(&server).chat(user("When does the café open?"))).await;
    let chunks: Vec<ChatChunk> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        chunks,
        vec![
            ChatChunk::Text("The café".into()),
            ChatChunk::Text(" opens at".into()),
            ChatChunk::Text(" 8 am.".into()),
            ChatChunk::Finish(FinishReason::Stop),
            ChatChunk::Usage(Usage {
                prompt_tokens: 1250,
                cached_tokens: 1024,
                completion_tokens: 9
            }),
        ]
    );
}

#[tokio::test]
async fn fragmented_delivery_gives_the_same_answer() {
    // 5-byte writes split lines, JSON and the two-byte `é`.
    let server = ReplayServer::start([sse("chat_text.sse").fragmented(5)]).await;
    let answer = collect(llm(&server).chat(user("hi"))).await.unwrap();
    assert_eq!(answer.text, "The café opens at 8 am.");
    assert_eq!(answer.finish_reason, Some(FinishReason::Stop));
}

#[tokio::test]
async fn interleaved_parallel_tool_calls() {
    let server = ReplayServer::start([sse("chat_parallel_tools.sse")]).await;
    let items = drain(llm(&server).chat(user("weather and a table"))).await;
    let deltas: Vec<ToolCallDelta> = items
        .iter()
        .filter_map(|i| match i {
            Ok(ChatChunk::ToolCall(d)) => Some(d.clone()),
            _ => None,
        })
        .collect();
    // Fragments keep their call's index, in arrival order.
    let order: Vec<usize> = deltas.iter().map(|d| d.index).collect();
    assert_eq!(order, vec![0, 0, 1, 1, 0, 1, 0]);
    assert_eq!(deltas[0].id.as_deref(), Some("call_w7Tq1"));
    assert_eq!(deltas[0].name.as_deref(), Some("get_weather"));
    assert_eq!(deltas[1].id, None);

    let server = ReplayServer::start([sse("chat_parallel_tools.sse")]).await;
    let answer = collect(llm(&server).chat(user("again"))).await.unwrap();
    assert_eq!(answer.text, "Let me check both.");
    assert_eq!(answer.finish_reason, Some(FinishReason::ToolCalls));
    let calls: Vec<(String, String, serde_json::Value)> = answer
        .tool_calls
        .iter()
        .map(|c| {
            (
                c.call_id.clone(),
                c.name.clone(),
                serde_json::from_str(&c.arguments).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            (
                "call_w7Tq1".into(),
                "get_weather".into(),
                json!({"city": "Paris"})
            ),
            (
                "call_b9Xr2".into(),
                "book_table".into(),
                json!({"party_size": 4, "time": "19:30"})
            ),
        ]
    );
    assert_eq!(answer.usage.unwrap().total_tokens(), 368);
}

#[tokio::test]
async fn unmodelled_fields_and_comments_are_ignored() {
    let server = ReplayServer::start([sse("chat_unmodelled_fields.sse")]).await;
    let answer = collect(llm(&server).chat(user("hi"))).await.unwrap();
    // DeepSeek's reasoning_content is not part of the spoken answer.
    assert_eq!(answer.text, "Hello!");
    assert_eq!(
        answer.usage,
        Some(Usage {
            prompt_tokens: 12,
            cached_tokens: 8,
            completion_tokens: 2
        })
    );
}

#[tokio::test]
async fn request_body_and_headers() {
    let server = ReplayServer::start([sse("chat_text.sse")]).await;
    let llm = OpenAiLlm::new(
        OpenAiConfig::openai()
            .with_base_url(format!("{}/v1/", server.url()))
            .api_key(KEY)
            .organization("org-42")
            .project("proj_7")
            .header("X-Title", "switchboard-tests")
            .strict_tools(true)
            .extra_body("seed", json!(7)),
        "gpt-4o-mini",
    );
    let mut request = ChatRequest::new(full_context())
        .with_tools(vec![weather_tool()])
        .with_tool_choice(ToolChoice::Named("get_weather".into()))
        .with_temperature(0.25);
    request.parallel_tool_calls = Some(false);
    request.response_format = Some(ResponseFormat::JsonSchema {
        name: "answer".into(),
        schema: json!({"type": "object"}),
        strict: true,
    });
    collect(llm.chat(request)).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(sent.header("openai-organization"), Some("org-42"));
    assert_eq!(sent.header("openai-project"), Some("proj_7"));
    assert_eq!(sent.header("x-title"), Some("switchboard-tests"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.json().unwrap(),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a concierge."},
                {"role": "developer", "content": "Answer briefly."},
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_a", "content": "18C sunny"},
                {"role": "tool", "tool_call_id": "call_b", "content": "service down"},
                {"role": "user", "content": "Thanks!"},
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": weather_tool().strict_parameters.unwrap(),
                "strict": true,
            }}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": false,
            "temperature": 0.25,
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}},
            "stream": true,
            "stream_options": {"include_usage": true},
            "seed": 7,
        })
    );
}

#[test]
fn tool_choice_strictness_and_compat_options() {
    let config = OpenAiConfig::new("http://127.0.0.1:9/v1").include_usage(false);
    let llm = OpenAiLlm::new(config, "llama3");
    let body = |choice: ToolChoice| {
        llm.request_body(
            &ChatRequest::new(full_context())
                .with_tools(vec![weather_tool()])
                .with_tool_choice(choice),
        )
        .unwrap()
    };
    assert_eq!(body(ToolChoice::Auto)["tool_choice"], "auto");
    assert_eq!(body(ToolChoice::None)["tool_choice"], "none");
    assert_eq!(body(ToolChoice::Required)["tool_choice"], "required");
    let auto = body(ToolChoice::Auto);
    // Not strict: the plain schema and no `strict` flag.
    assert_eq!(
        auto["tools"][0]["function"]["parameters"],
        weather_tool().parameters
    );
    assert!(auto["tools"][0]["function"].get("strict").is_none());
    // Compatible servers get `system` for developer instructions, and no stream_options.
    assert_eq!(auto["messages"][1]["role"], "system");
    assert!(auto.get("stream_options").is_none());
    assert!(auto.get("parallel_tool_calls").is_none());

    // Without tools there is no tool_choice; naming a tool that is not offered is refused.
    let plain = llm.request_body(&ChatRequest::new(full_context())).unwrap();
    assert!(plain.get("tools").is_none() && plain.get("tool_choice").is_none());
    let err = llm
        .request_body(
            &ChatRequest::new(full_context()).with_tool_choice(ToolChoice::Named("x".into())),
        )
        .unwrap_err();
    assert!(matches!(err, LlmError::InvalidRequest { .. }));
}

#[test]
fn image_content_becomes_parts() {
    use switchboard::chat::{ChatContent, ChatContext, ChatMessage, ImageContent, Role};
    let mut message = ChatMessage::new(Role::User, "What is this?");
    message.content.push(ChatContent::Image(ImageContent {
        url: "https://example.com/cat.png".into(),
        mime_type: None,
    }));
    let ctx = ChatContext::from_items([message.into()]);
    let llm = OpenAiLlm::new(OpenAiConfig::openai(), "gpt-4o");
    let body = llm.request_body(&ChatRequest::new(ctx)).unwrap();
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ])
    );
}

#[tokio::test]
async fn azure_style_url_and_key_header() {
    let server = ReplayServer::start([sse("chat_text.sse")]).await;
    let config = OpenAiConfig::azure(server.url(), "gpt4o-prod", "2024-10-21").api_key(KEY);
    let llm = OpenAiLlm::new(config, "gpt-4o");
    assert_eq!(llm.provider(), "azure");
    collect(llm.chat(user("hi"))).await.unwrap();
    let sent = &server.requests()[0];
    assert_eq!(
        sent.path,
        "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(sent.header("api-key"), Some(KEY));
    assert_eq!(sent.header("authorization"), None);
}

#[tokio::test]
async fn no_key_sends_no_authorization() {
    let server = ReplayServer::start([sse("chat_text.sse")]).await;
    let llm = OpenAiLlm::new(
        OpenAiConfig::new(format!("{}/v1", server.url())),
        "llama3.2",
    );
    assert_eq!(llm.provider(), "openai-compatible");
    collect(llm.chat(user("hi"))).await.unwrap();
    assert_eq!(server.requests()[0].header("authorization"), None);
}

#[test]
fn debug_output_redacts_secrets() {
    let llm = OpenAiLlm::new(
        OpenAiConfig::openai()
            .api_key(KEY)
            .header("X-Gateway-Token", "gateway-SECRET"),
        "gpt-4o-mini",
    );
    let debug = format!("{llm:?}");
    assert!(!debug.contains(KEY) && !debug.contains("SECRET"), "{debug}");
    assert!(debug.contains("[redacted]") && debug.contains("gpt-4o-mini"));
}

#[tokio::test]
async fn invalid_configuration_is_reported_not_panicked() {
    let bad_header = OpenAiLlm::new(
        OpenAiConfig::openai().header("X-Bad", "line\nbreak"),
        "gpt-4o-mini",
    );
    let items = drain(bad_header.chat(user("hi"))).await;
    assert!(matches!(&items[..], [Err(LlmError::InvalidRequest { .. })]));

    let bad_url = OpenAiLlm::new(OpenAiConfig::new("not a url"), "m");
    let items = drain(bad_url.chat(user("hi"))).await;
    assert!(matches!(&items[..], [Err(LlmError::InvalidRequest { .. })]));
}

#[tokio::test]
async fn compatible_servers_repeating_ids_or_omitting_indexes() {
    // Some OpenAI-compatible servers repeat id and name on every fragment, or send whole calls
    // without an `index`: each call still comes out once, whole.
    let chunk = |calls: serde_json::Value, finish: Option<&str>| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": finish}]})
        )
    };
    let body = [
        chunk(json!([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":"}}]), None),
        chunk(json!([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "\"Oslo\"}"}}]), None),
        chunk(json!([{"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]), None),
        chunk(json!([{"id": "call_3", "type": "function", "function": {"name": "get_date", "arguments": "{}"}}]), Some("tool_calls")),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let pieces = futures::stream::iter([Ok::<_, std::io::Error>(body.into_bytes())]);
    let answer = collect(switchboard_openai::parse_chat_completions_stream(
        "ollama", pieces,
    ))
    .await
    .unwrap();
    let calls: Vec<(&str, &str, &str)> = answer
        .tool_calls
        .iter()
        .map(|c| (c.call_id.as_str(), c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(
        calls,
        vec![
            ("call_1", "get_weather", "{\"city\":\"Oslo\"}"),
            ("call_2", "get_time", "{}"),
            ("call_3", "get_date", "{}"),
        ]
    );
}
