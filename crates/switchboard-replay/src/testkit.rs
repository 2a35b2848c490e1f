//! Request builders and stream helpers for provider tests against the replay server.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use switchboard::chat::{ChatContext, FunctionCall, FunctionCallOutput, Role};
use switchboard::llm::{ChatChunk, ChatRequest, ConnOptions, LlmError, LlmStream, ToolDefinition};

/// Short timeouts and waits: these tests use real sockets.
pub fn fast() -> ConnOptions {
    ConnOptions {
        max_retries: 2,
        retry_interval: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
    }
}

/// A request with one user message and [`fast`] connection options.
pub fn user(text: &str) -> ChatRequest {
    let mut ctx = ChatContext::new();
    ctx.add_message(Role::User, text);
    let mut request = ChatRequest::new(ctx);
    request.conn_options = fast();
    request
}

/// A `get_weather(city)` tool definition with a strict form.
pub fn weather_tool() -> ToolDefinition {
    ToolDefinition {
        name: "get_weather".into(),
        description: "Current weather in a city.".into(),
        parameters: json!({
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        }),
        strict_parameters: Some(json!({
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"]}},
            "required": ["city", "unit"],
            "additionalProperties": false,
        })),
    }
}

/// A conversation with every kind of message: instructions, a user turn, an assistant turn
/// with text and two tool calls, their outputs (one an error) and a new user turn.
pub fn full_context() -> ChatContext {
    let mut ctx = ChatContext::new();
    ctx.add_message(Role::System, "You are a concierge.");
    ctx.add_message(Role::Developer, "Answer briefly.");
    ctx.add_message(Role::User, "Weather in Paris and Rome?");
    let assistant_id = ctx.add_message(Role::Assistant, "Checking.").id.clone();
    let mut a = FunctionCall::new("call_a", "get_weather", r#"{"city":"Paris"}"#);
    a.group_id = Some(assistant_id.clone());
    let mut b = FunctionCall::new("call_b", "get_weather", r#"{"city":"Rome"}"#);
    b.group_id = Some(assistant_id);
    ctx.insert(a);
    ctx.insert(b);
    ctx.insert(FunctionCallOutput::new(
        "call_a",
        "get_weather",
        "18C sunny",
        false,
    ));
    ctx.insert(FunctionCallOutput::new(
        "call_b",
        "get_weather",
        "service down",
        true,
    ));
    ctx.add_message(Role::User, "Thanks!");
    ctx
}

/// Every item of a stream, errors included.
pub async fn drain(mut stream: LlmStream) -> Vec<Result<ChatChunk, LlmError>> {
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item);
    }
    items
}

/// The text streamed before the stream's end, and the error that ended it (if any).
pub fn split(items: &[Result<ChatChunk, LlmError>]) -> (String, Option<LlmError>) {
    let mut text = String::new();
    let mut error = None;
    for item in items {
        match item {
            Ok(ChatChunk::Text(t)) => text.push_str(t),
            Ok(_) => {}
            Err(e) => error = Some(e.clone()),
        }
    }
    (text, error)
}
