//! The Messages API against the replay server: request bodies and headers, stream parsing.

mod common;

use common::*;
use serde_json::json;
use switchboard::chat::{ChatContent, ChatContext, ChatMessage, ImageContent, Role};
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, ResponseFormat, ToolCallDelta, ToolChoice,
    Usage, collect,
};
use switchboard_anthropic::{AnthropicConfig, AnthropicLlm};
use switchboard_replay::{ReplayServer, Reply};

fn llm(server: &ReplayServer) -> AnthropicLlm {
    AnthropicLlm::new(
        AnthropicConfig::new()
            .with_base_url(server.url())
            .api_key(KEY),
        "claude-sonnet-4-20250514",
    )
}

#[tokio::test]
async fn text_with_cache_usage_and_pings_ignored() {
    let server = ReplayServer::start([sse("text.sse")]).await;
    let items = drain(llm(&server).chat(user("Salut"))).await;
    let chunks: Vec<ChatChunk> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        chunks,
        vec![
            ChatChunk::Text("Bonjour".into()),
            ChatChunk::Text(" ! Ça va".into()),
            ChatChunk::Text(" ?".into()),
            ChatChunk::Finish(FinishReason::Stop),
            // input 412 + cache read 2048; output is the latest cumulative value, not a sum.
            ChatChunk::Usage(Usage {
                prompt_tokens: 2460,
                cached_tokens: 2048,
                completion_tokens: 15
            }),
        ]
    );
}

#[tokio::test]
async fn tool_use_with_partial_json_fragments() {
    let server = ReplayServer::start([sse("tool_use.sse").fragmented(9)]).await;
    let items = drain(llm(&server).chat(user("weather?"))).await;
    let deltas: Vec<ToolCallDelta> = items
        .iter()
        .filter_map(|i| match i {
            Ok(ChatChunk::ToolCall(d)) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        deltas[0],
        ToolCallDelta {
            index: 0,
            id: Some("toolu_01T1x1fJ34qAmk2tNTrN7Up6".into()),
            name: Some("get_weather".into()),
            arguments: String::new()
        }
    );
    // The empty first fragment is not forwarded.
    assert_eq!(deltas[1].arguments, "{\"city\": \"Pa");

    let server = ReplayServer::start([sse("tool_use.sse")]).await;
    let answer = collect(llm(&server).chat(user("weather?"))).await.unwrap();
    assert_eq!(answer.text, "Let me look that up.");
    assert_eq!(answer.finish_reason, Some(FinishReason::ToolCalls));
    let calls: Vec<(&str, &str, &str)> = answer
        .tool_calls
        .iter()
        .map(|c| (c.call_id.as_str(), c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(
        calls,
        vec![
            (
                "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "get_weather",
                r#"{"city": "Paris", "unit": "celsius"}"#
            ),
            // A tool without input streams no fragment: its arguments are `{}`.
            ("toolu_01VgKJ3xk8Hq1mRhq5cBgx9W", "get_time", "{}"),
        ]
    );
    assert_eq!(
        answer.usage,
        Some(Usage {
            prompt_tokens: 2050,
            cached_tokens: 0,
            completion_tokens: 89
        })
    );
}

#[tokio::test]
async fn thinking_is_not_spoken() {
    let server = ReplayServer::start([sse("thinking.sse")]).await;
    let answer = collect(llm(&server).chat(user("number?"))).await.unwrap();
    assert_eq!(answer.text, "42.");
    assert_eq!(answer.finish_reason, Some(FinishReason::Length));
}

#[tokio::test]
async fn request_body_and_headers() {
    let server = ReplayServer::start([sse("text.sse")]).await;
    let llm = AnthropicLlm::new(
        AnthropicConfig::new()
            .with_base_url(format!("{}/", server.url()))
            .api_key(KEY)
            .max_tokens(512)
            .header("anthropic-beta", "fine-grained-tool-streaming-2025-05-14"),
        "claude-sonnet-4-20250514",
    );
    let mut request = ChatRequest::new(full_context())
        .with_tools(vec![weather_tool()])
        .with_tool_choice(ToolChoice::Required)
        .with_temperature(0.5);
    request.parallel_tool_calls = Some(false);
    collect(llm.chat(request)).await.unwrap();

    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        sent.header("anthropic-beta"),
        Some("fine-grained-tool-streaming-2025-05-14")
    );
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.json().unwrap(),
        json!({
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 512,
            "system": "You are a concierge.\n\nAnswer briefly.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_b", "name": "get_weather", "input": {"city": "Rome"}},
                ]},
                // Both outputs and the next user text share one user message, results first.
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_a", "content": "18C sunny"},
                    {"type": "tool_result", "tool_use_id": "call_b", "content": "service down", "is_error": true},
                    {"type": "text", "text": "Thanks!"},
                ]},
            ],
            "tools": [{
                "name": "get_weather",
                "description": "Current weather in a city.",
                "input_schema": weather_tool().parameters,
            }],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "temperature": 0.5,
            "stream": true,
        })
    );
}

#[test]
fn tool_choice_caching_images_and_unsupported_formats() {
    let llm = AnthropicLlm::new(AnthropicConfig::new().cache_system_prompt(true), "claude");
    let body = |choice: ToolChoice| {
        llm.request_body(
            &ChatRequest::new(full_context())
                .with_tools(vec![weather_tool()])
                .with_tool_choice(choice),
        )
        .unwrap()
    };
    assert_eq!(
        body(ToolChoice::Auto)["tool_choice"],
        json!({"type": "auto"})
    );
    assert_eq!(
        body(ToolChoice::None)["tool_choice"],
        json!({"type": "none"})
    );
    assert_eq!(
        body(ToolChoice::Named("get_weather".into()))["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    let cached = body(ToolChoice::Auto);
    assert_eq!(
        cached["system"],
        json!([{"type": "text", "text": "You are a concierge.\n\nAnswer briefly.", "cache_control": {"type": "ephemeral"}}])
    );
    assert_eq!(
        cached["tools"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );

    let mut message = ChatMessage::new(Role::User, "What are these?");
    for url in ["https://example.com/a.png", "data:image/jpeg;base64,AAAA"] {
        message.content.push(ChatContent::Image(ImageContent {
            url: url.into(),
            mime_type: None,
        }));
    }
    let body = llm
        .request_body(&ChatRequest::new(ChatContext::from_items([message.into()])))
        .unwrap();
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What are these?"},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
        ])
    );

    let mut json_request = ChatRequest::new(full_context());
    json_request.response_format = Some(ResponseFormat::JsonObject);
    assert!(matches!(
        llm.request_body(&json_request),
        Err(LlmError::InvalidRequest { .. })
    ));
}

#[test]
fn debug_output_redacts_secrets() {
    let llm = AnthropicLlm::new(AnthropicConfig::new().api_key(KEY), "claude");
    let debug = format!("{llm:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(debug.contains("[redacted]"));
    assert_eq!(llm.provider(), "anthropic");
}

#[tokio::test]
async fn truncated_streams_are_protocol_errors() {
    // Ends after the text, before message_delta.
    let server = ReplayServer::start([sse("text.sse").cut_after_events(6)]).await;
    let (text, error) = split(&drain(llm(&server).chat(user("hi"))).await);
    assert_eq!(text, "Bonjour ! Ça va ?");
    assert!(error.is_some());

    // A clean end with no message_stop after message_delta keeps usage and succeeds.
    let body = std::fs::read_to_string(fixture("text.sse")).unwrap();
    let without_stop = body.replace(
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        "",
    );
    let server = ReplayServer::start([Reply::sse(without_stop)]).await;
    let answer = collect(llm(&server).chat(user("hi"))).await.unwrap();
    assert_eq!(answer.usage.unwrap().completion_tokens, 15);

    // A clean end before any stop reason.
    let without_end = body
        .split("event: message_delta")
        .next()
        .unwrap()
        .to_owned();
    let server = ReplayServer::start([Reply::sse(without_end)]).await;
    let (_, error) = split(&drain(llm(&server).chat(user("hi"))).await);
    assert!(
        matches!(error, Some(LlmError::Protocol { .. })),
        "{error:?}"
    );
}
