//! The Responses API against the replay server.

mod common;

use common::*;
use serde_json::json;
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, ResponseFormat, ToolChoice, Usage, collect,
};
use switchboard_openai::{OpenAiConfig, OpenAiResponsesLlm};
use switchboard_replay::{ReplayServer, Reply};

fn llm(server: &ReplayServer) -> OpenAiResponsesLlm {
    OpenAiResponsesLlm::new(
        OpenAiConfig::openai()
            .with_base_url(format!("{}/v1", server.url()))
            .api_key(KEY)
            .store(false),
        "gpt-4.1-mini",
    )
}

#[tokio::test]
async fn text_without_reasoning_and_with_usage() {
    let server = ReplayServer::start([sse("responses_text.sse")]).await;
    let items = drain(llm(&server).chat(user("Tell me about Paris"))).await;
    let chunks: Vec<ChatChunk> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        chunks,
        vec![
            ChatChunk::Text("Paris is".into()),
            ChatChunk::Text(" lovely".into()),
            ChatChunk::Text(" in spring.".into()),
            ChatChunk::Usage(Usage {
                prompt_tokens: 2048,
                cached_tokens: 1536,
                completion_tokens: 148
            }),
            ChatChunk::Finish(FinishReason::Stop),
        ]
    );
    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(
        sent.header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
}

#[tokio::test]
async fn function_calls_streamed_or_sent_whole() {
    let server = ReplayServer::start([sse("responses_tools.sse").fragmented(64)]).await;
    let answer = collect(llm(&server).chat(user("weather and time")))
        .await
        .unwrap();
    assert_eq!(answer.finish_reason, Some(FinishReason::ToolCalls));
    let calls: Vec<(&str, &str, &str)> = answer
        .tool_calls
        .iter()
        .map(|c| (c.call_id.as_str(), c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(
        calls,
        vec![
            // Streamed in two deltas; the `done` events do not repeat it.
            (
                "call_unLAR8MvFNptuiZK6K6HCy5k",
                "get_weather",
                r#"{"location":"Paris, France"}"#
            ),
            // No delta: the arguments come whole from `function_call_arguments.done`.
            (
                "call_Kq0wNn7ZtL1x",
                "get_time",
                r#"{"timezone":"Europe/Paris"}"#
            ),
        ]
    );
}

#[tokio::test]
async fn failed_response_after_text_is_a_typed_error() {
    let server = ReplayServer::start([sse("responses_failed.sse")]).await;
    let (text, error) = split(&drain(llm(&server).chat(user("hi"))).await);
    assert_eq!(text, "Par");
    let error = error.unwrap();
    assert!(
        matches!(
            error,
            LlmError::Other {
                retryable: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("The model failed to generate a response.")
    );
}

#[tokio::test]
async fn error_event_and_incomplete_and_truncated_streams() {
    let body = "event: error\ndata: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":\"Rate limit reached\",\"param\":null,\"sequence_number\":1}\n\n";
    let server = ReplayServer::start([Reply::sse(body)]).await;
    let (_, error) = split(&drain(llm(&server).chat(user("hi"))).await);
    assert!(
        matches!(error, Some(LlmError::RateLimited { .. })),
        "{error:?}"
    );

    let server = ReplayServer::start([sse("responses_incomplete.sse")]).await;
    let answer = collect(llm(&server).chat(user("a long story")))
        .await
        .unwrap();
    assert_eq!(answer.text, "Once upon");
    assert_eq!(answer.finish_reason, Some(FinishReason::Length));
    assert_eq!(answer.usage.unwrap().completion_tokens, 16);

    // Cut before response.completed.
    let server = ReplayServer::start([sse("responses_text.sse").cut_after_events(10)]).await;
    let (text, error) = split(&drain(llm(&server).chat(user("hi"))).await);
    assert_eq!(text, "Paris is lovely");
    assert!(error.is_some());

    // Ends cleanly but without response.completed.
    let body = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\",\"sequence_number\":0}\n\n";
    let server = ReplayServer::start([Reply::sse(body)]).await;
    let (text, error) = split(&drain(llm(&server).chat(user("hi"))).await);
    assert_eq!(text, "Hi");
    assert!(
        matches!(error, Some(LlmError::Protocol { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn request_body() {
    let server = ReplayServer::start([sse("responses_text.sse")]).await;
    let mut request = ChatRequest::new(full_context())
        .with_tools(vec![weather_tool()])
        .with_tool_choice(ToolChoice::Named("get_weather".into()));
    request.parallel_tool_calls = Some(true);
    request.response_format = Some(ResponseFormat::JsonObject);
    collect(llm(&server).chat(request)).await.unwrap();
    assert_eq!(
        server.requests()[0].json().unwrap(),
        json!({
            "model": "gpt-4.1-mini",
            "input": [
                {"type": "message", "role": "system", "content": "You are a concierge."},
                {"type": "message", "role": "developer", "content": "Answer briefly."},
                {"type": "message", "role": "user", "content": "Weather in Paris and Rome?"},
                {"type": "message", "role": "assistant", "content": "Checking."},
                {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "call_id": "call_b", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
                {"type": "function_call_output", "call_id": "call_a", "output": "18C sunny"},
                {"type": "function_call_output", "call_id": "call_b", "output": "service down"},
                {"type": "message", "role": "user", "content": "Thanks!"},
            ],
            "tools": [{
                "type": "function",
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": weather_tool().parameters,
                "strict": false,
            }],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": true,
            "text": {"format": {"type": "json_object"}},
            "store": false,
            "stream": true,
        })
    );
}

#[test]
fn strict_tools_use_the_strict_schema() {
    let llm = OpenAiResponsesLlm::new(OpenAiConfig::openai().strict_tools(true), "gpt-4.1");
    let body = llm
        .request_body(&ChatRequest::new(full_context()).with_tools(vec![weather_tool()]))
        .unwrap();
    assert_eq!(body["tools"][0]["strict"], true);
    assert_eq!(
        body["tools"][0]["parameters"],
        weather_tool().strict_parameters.unwrap()
    );
    assert_eq!(llm.provider(), "openai");
}
