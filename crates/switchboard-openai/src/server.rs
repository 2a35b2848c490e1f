//! Any [`Llm`] behind an OpenAI-compatible Chat Completions endpoint (feature `server`).
//!
//! The server speaks the same wire protocol the [`OpenAiLlm`](crate::OpenAiLlm) client does:
//! `POST /v1/chat/completions` (streamed as server-sent events or answered whole), plus
//! `GET /v1/models` and `GET /health`. It lets a model run in another process (the local
//! llama.cpp model, whose native library cannot share a program with whisper.cpp), and lets
//! tools that speak OpenAI's API use any Switchboard model.
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard::testing::{ScriptedLlm, ScriptedReply};
//!
//! # async fn run() -> std::io::Result<()> {
//! let llm = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::text("Hello!")));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("serving on http://{}/v1", listener.local_addr()?);
//! switchboard_openai::server::serve(listener, llm).await
//! # }
//! ```
//!
//! Requests are read leniently (unknown fields such as `max_tokens` are ignored) but a
//! request the model cannot be given, such as a tool message answering a call that is not in
//! the conversation, gets HTTP 400 with an OpenAI-style error body. A model error before the
//! first chunk becomes the matching HTTP status (401, 429 with `retry-after`, 400 with code
//! `context_length_exceeded`, 500/503); after the first chunk it is sent as an `error` event,
//! which the client reports as an error of the stream. A client that disconnects drops the
//! model's stream, which cancels the generation.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::chat::tool_call_json;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{StreamExt, stream};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard::chat::{
    ChatContext, ChatItem, ChatMessage, FunctionCall, FunctionCallOutput, Role,
};
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, ResponseFormat, ToolChoice,
    ToolDefinition, Usage, collect,
};

/// The largest request body accepted: long conversations with many tools fit easily.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Serves `llm` on `listener` until the listener fails. See the [module docs](self).
pub async fn serve(listener: tokio::net::TcpListener, llm: Arc<dyn Llm>) -> std::io::Result<()> {
    axum::serve(listener, router(llm)).await
}

/// The routes, for embedding the endpoint in a larger axum application.
pub fn router(llm: Arc<dyn Llm>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(llm)
}

async fn models(State(llm): State<Arc<dyn Llm>>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": llm.model(), "object": "model", "owned_by": llm.provider()}],
    }))
}

async fn chat_completions(State(llm): State<Arc<dyn Llm>>, body: Bytes) -> Response {
    // Any content type: `curl -d` sends JSON as a form.
    let mut json = serde_json::Deserializer::from_slice(&body);
    let body: RequestIn = match serde_path_to_error::deserialize(&mut json) {
        Ok(body) => body,
        Err(error) => {
            let message = format!(
                "the body is not a chat completion request: at `{}`: {}",
                error.path(),
                error.inner()
            );
            return error_response(StatusCode::BAD_REQUEST, &message);
        }
    };
    let stream_answer = body.stream;
    let include_usage = body
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let model = body.model.clone().unwrap_or_else(|| llm.model().to_owned());
    let request = match chat_request(body) {
        Ok(request) => request,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    let answer = Answer::new(model);
    if !stream_answer {
        return match collect(llm.chat(request)).await {
            Ok(response) => Json(answer.whole(response)).into_response(),
            Err(error) => llm_error_response(&error),
        };
    }
    // Wait for the first chunk, so that a failure before it is an HTTP status.
    let mut chunks = llm.chat(request);
    let first = match chunks.next().await {
        Some(Err(error)) => return llm_error_response(&error),
        first => first,
    };
    let events = stream::iter(first).chain(chunks);
    Sse::new(sse_events(events, answer, include_usage)).into_response()
}

// ---------------------------------------------------------------------------------------------
// Request

#[derive(Deserialize)]
struct RequestIn {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<MessageIn>,
    #[serde(default)]
    tools: Vec<ToolIn>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    response_format: Option<Value>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptionsIn>,
}

#[derive(Deserialize)]
struct StreamOptionsIn {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum MessageIn {
    System {
        content: ContentIn,
    },
    Developer {
        content: ContentIn,
    },
    User {
        content: ContentIn,
    },
    Assistant {
        #[serde(default)]
        content: Option<ContentIn>,
        #[serde(default)]
        tool_calls: Vec<ToolCallIn>,
    },
    Tool {
        tool_call_id: String,
        content: ContentIn,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ContentIn {
    Text(String),
    Parts(Vec<PartIn>),
}

#[derive(Deserialize)]
struct PartIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

impl ContentIn {
    /// The text; parts other than text cannot be given to the model.
    fn text(self) -> Result<String, String> {
        match self {
            ContentIn::Text(text) => Ok(text),
            ContentIn::Parts(parts) => {
                let mut text = String::new();
                for part in parts {
                    match (part.kind.as_str(), part.text) {
                        ("text", Some(t)) => text.push_str(&t),
                        (kind, _) => {
                            return Err(format!(
                                "content parts of type `{kind}` are not supported (only text)"
                            ));
                        }
                    }
                }
                Ok(text)
            }
        }
    }
}

#[derive(Deserialize)]
struct ToolCallIn {
    id: String,
    function: FunctionIn,
}

#[derive(Deserialize)]
struct FunctionIn {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
struct ToolIn {
    function: ToolFunctionIn,
}

#[derive(Deserialize)]
struct ToolFunctionIn {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "empty_object_schema")]
    parameters: Value,
}

fn empty_object_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

/// The request as the model takes it.
fn chat_request(body: RequestIn) -> Result<ChatRequest, String> {
    let mut items: Vec<ChatItem> = Vec::with_capacity(body.messages.len());
    // Tool messages name only the call id; the tool's name comes from the call.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (position, message) in body.messages.into_iter().enumerate() {
        let at = |e: String| format!("messages[{position}]: {e}");
        match message {
            MessageIn::System { content } => {
                items.push(message_item(Role::System, content.text().map_err(at)?));
            }
            MessageIn::Developer { content } => {
                items.push(message_item(Role::Developer, content.text().map_err(at)?));
            }
            MessageIn::User { content } => {
                items.push(message_item(Role::User, content.text().map_err(at)?));
            }
            MessageIn::Assistant {
                content,
                tool_calls,
            } => {
                let text = content.map(ContentIn::text).transpose().map_err(at)?;
                if let Some(text) = text.filter(|t| !t.is_empty()) {
                    items.push(message_item(Role::Assistant, text));
                }
                for call in tool_calls {
                    call_names.insert(call.id.clone(), call.function.name.clone());
                    let call =
                        FunctionCall::new(call.id, call.function.name, call.function.arguments);
                    items.push(ChatItem::FunctionCall(Arc::new(call)));
                }
            }
            MessageIn::Tool {
                tool_call_id,
                content,
            } => {
                let output = content.text().map_err(at)?;
                let Some(name) = call_names.get(&tool_call_id).cloned() else {
                    return Err(at(format!(
                        "the tool message answers `{tool_call_id}`, which no earlier assistant \
                         message called"
                    )));
                };
                let output = FunctionCallOutput::new(tool_call_id, name, output, false);
                items.push(ChatItem::FunctionCallOutput(Arc::new(output)));
            }
        }
    }
    let tools: Vec<ToolDefinition> = body
        .tools
        .into_iter()
        .map(|tool| ToolDefinition {
            name: tool.function.name,
            description: tool.function.description,
            parameters: tool.function.parameters,
            strict_parameters: None,
        })
        .collect();
    let tool_choice = match body.tool_choice {
        None => ToolChoice::Auto,
        Some(choice) => tool_choice(&choice)?,
    };
    if let ToolChoice::Named(name) = &tool_choice
        && !tools.iter().any(|t| &t.name == name)
    {
        return Err(format!(
            "tool_choice names `{name}`, which is not among the tools"
        ));
    }
    let mut request = ChatRequest::new(ChatContext::from_items(items))
        .with_tools(tools)
        .with_tool_choice(tool_choice);
    request.parallel_tool_calls = body.parallel_tool_calls;
    request.temperature = body.temperature;
    request.response_format = body
        .response_format
        .map(|f| response_format(&f))
        .transpose()?;
    Ok(request)
}

fn message_item(role: Role, text: String) -> ChatItem {
    ChatItem::Message(Arc::new(ChatMessage::new(role, text)))
}

fn tool_choice(choice: &Value) -> Result<ToolChoice, String> {
    match choice {
        Value::String(s) if s == "auto" => Ok(ToolChoice::Auto),
        Value::String(s) if s == "none" => Ok(ToolChoice::None),
        Value::String(s) if s == "required" => Ok(ToolChoice::Required),
        Value::Object(_) => match choice.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Ok(ToolChoice::Named(name.to_owned())),
            None => Err("tool_choice object without function.name".to_owned()),
        },
        other => Err(format!("unknown tool_choice {other}")),
    }
}

fn response_format(format: &Value) -> Result<ResponseFormat, String> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let spec = format.get("json_schema").cloned().unwrap_or_default();
            Ok(ResponseFormat::JsonSchema {
                name: spec
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("response")
                    .to_owned(),
                schema: spec
                    .get("schema")
                    .cloned()
                    .unwrap_or_else(empty_object_schema),
                strict: spec.get("strict").and_then(Value::as_bool).unwrap_or(false),
            })
        }
        _ => Err(format!("unknown response_format {format}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Answer

/// What every chunk of one answer shares.
struct Answer {
    id: String,
    created: u64,
    model: String,
}

impl Answer {
    fn new(model: String) -> Self {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Answer {
            id: switchboard::chat::new_id("chatcmpl"),
            created,
            model,
        }
    }

    fn chunk(&self, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        })
    }

    /// The chunk carrying `chunk`, or `None` for chunks the protocol has no field for.
    fn delta(&self, chunk: ChatChunk, first: bool, include_usage: bool) -> Option<Value> {
        let choice = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "finish_reason": finish}]);
        let mut delta = Map::new();
        if first {
            delta.insert("role".into(), "assistant".into());
        }
        match chunk {
            ChatChunk::Text(text) => {
                delta.insert("content".into(), text.into());
                Some(self.chunk(choice(Value::Object(delta), Value::Null)))
            }
            ChatChunk::ToolCall(call) => {
                let mut function = Map::new();
                if let Some(name) = call.name {
                    function.insert("name".into(), name.into());
                }
                function.insert("arguments".into(), call.arguments.into());
                let mut out = Map::new();
                out.insert("index".into(), call.index.into());
                if let Some(id) = call.id {
                    out.insert("id".into(), id.into());
                    out.insert("type".into(), "function".into());
                }
                out.insert("function".into(), Value::Object(function));
                delta.insert("tool_calls".into(), json!([out]));
                Some(self.chunk(choice(Value::Object(delta), Value::Null)))
            }
            ChatChunk::Finish(reason) => {
                Some(self.chunk(choice(Value::Object(delta), finish_reason(&reason).into())))
            }
            ChatChunk::Usage(usage) if include_usage => {
                let mut chunk = self.chunk(json!([]));
                chunk["usage"] = usage_json(&usage);
                Some(chunk)
            }
            // Usage not asked for, `ServedBy` (no wire field), and future kinds.
            _ => None,
        }
    }

    /// A non-streamed answer.
    fn whole(&self, response: switchboard::llm::ChatResponse) -> Value {
        let mut message = Map::new();
        message.insert("role".into(), "assistant".into());
        message.insert(
            "content".into(),
            if response.text.is_empty() && !response.tool_calls.is_empty() {
                Value::Null
            } else {
                response.text.into()
            },
        );
        if !response.tool_calls.is_empty() {
            let calls: Vec<Value> = response
                .tool_calls
                .iter()
                .map(|c| tool_call_json(&c.call_id, &c.name, &c.arguments))
                .collect();
            message.insert("tool_calls".into(), calls.into());
        }
        let finish = response
            .finish_reason
            .as_ref()
            .map(finish_reason)
            .unwrap_or(if message.contains_key("tool_calls") {
                "tool_calls"
            } else {
                "stop"
            });
        let mut body = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        });
        if let Some(usage) = response.usage {
            body["usage"] = usage_json(&usage);
        }
        body
    }
}

fn finish_reason(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Other(other) => other,
    }
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens(),
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    })
}

/// The model's chunks as server-sent events, ending with `[DONE]`, or with an `error` event
/// when the model fails midway.
fn sse_events(
    chunks: impl futures::Stream<Item = Result<ChatChunk, LlmError>> + Send + 'static,
    answer: Answer,
    include_usage: bool,
) -> impl futures::Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let mut first = true;
    chunks
        .map(Some)
        .chain(stream::once(async { None }))
        .scan(false, move |ended, item| {
            if *ended {
                return futures::future::ready(None);
            }
            let event = match item {
                Some(Ok(chunk)) => answer.delta(chunk, first, include_usage).map(|data| {
                    first = false;
                    Event::default().data(data.to_string())
                }),
                Some(Err(error)) => {
                    *ended = true;
                    let (status, code) = status_of(&error);
                    let code = code.map_or_else(|| status.as_u16().into(), Value::from);
                    Some(Event::default().data(error_body(&error.to_string(), code).to_string()))
                }
                None => {
                    *ended = true;
                    Some(Event::default().data("[DONE]"))
                }
            };
            futures::future::ready(Some(event))
        })
        .filter_map(|event| futures::future::ready(event.map(Ok)))
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The HTTP status of a model error, and the OpenAI error code when there is a specific one.
fn status_of(error: &LlmError) -> (StatusCode, Option<&'static str>) {
    match error {
        LlmError::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, None),
        LlmError::ContextTooLong { .. } => {
            (StatusCode::BAD_REQUEST, Some("context_length_exceeded"))
        }
        LlmError::Auth { .. } => (StatusCode::UNAUTHORIZED, None),
        LlmError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, None),
        LlmError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, None),
        LlmError::Status { status, .. } => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
            None,
        ),
        LlmError::Connection { .. } | LlmError::Protocol { .. } => (StatusCode::BAD_GATEWAY, None),
        LlmError::Other { retryable, .. } if *retryable => (StatusCode::SERVICE_UNAVAILABLE, None),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
    }
}

fn error_body(message: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": "server_error", "param": null, "code": code}})
}

fn error_response(status: StatusCode, message: &str) -> Response {
    let kind = if status.is_client_error() {
        "invalid_request_error"
    } else {
        "server_error"
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    (status, Json(body)).into_response()
}

fn llm_error_response(error: &LlmError) -> Response {
    let (status, code) = status_of(error);
    let mut body = error_body(&error.to_string(), code.map_or(Value::Null, Value::from));
    if status.is_client_error() {
        body["error"]["type"] = "invalid_request_error".into();
    }
    let mut response = (status, Json(body)).into_response();
    if let Some(after) = error.retry_after()
        && let Ok(value) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
