//! The Responses API (`POST /responses`, streamed).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures::Stream;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard::chat::{ChatContent, ChatMessage, ProviderMessage, provider_messages};
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, LlmStream, ResponseFormat, ToolCallDelta,
    ToolChoice, Usage,
};

use crate::chat::tool_parameters;
use crate::config::OpenAiConfig;
use crate::endpoint::Endpoint;
use crate::http::ApiError;
use crate::sse::{self, EventParser, Flow, SseEvent};

/// A model behind OpenAI's Responses API. Reasoning items are not surfaced as text; function
/// calls stream as [`ChatChunk::ToolCall`]s numbered in the order they appear.
///
/// ```no_run
/// use switchboard::chat::{ChatContext, Role};
/// use switchboard::llm::{ChatRequest, Llm, collect};
/// use switchboard_openai::{OpenAiConfig, OpenAiResponsesLlm};
///
/// # async fn run() -> Result<(), switchboard::llm::LlmError> {
/// let llm = OpenAiResponsesLlm::new(OpenAiConfig::openai().api_key("sk-...").store(false), "gpt-4.1-mini");
/// let mut ctx = ChatContext::new();
/// ctx.add_message(Role::User, "Say hi");
/// let answer = collect(llm.chat(ChatRequest::new(ctx))).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OpenAiResponsesLlm {
    config: Arc<OpenAiConfig>,
    model: String,
    endpoint: Result<Endpoint, String>,
}

impl OpenAiResponsesLlm {
    /// A model on the configured server (requests go to `<base_url>/responses`).
    pub fn new(config: OpenAiConfig, model: impl Into<String>) -> Self {
        let endpoint = Endpoint::new(&config, "responses");
        OpenAiResponsesLlm {
            config: Arc::new(config),
            model: model.into(),
            endpoint,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// The JSON body this model would send for `request` (it holds no credentials).
    pub fn request_body(&self, request: &ChatRequest) -> Result<Value, LlmError> {
        responses_body(&self.config, &self.model, request)
    }
}

impl fmt::Debug for OpenAiResponsesLlm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiResponsesLlm")
            .field("model", &self.model)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Llm for OpenAiResponsesLlm {
    fn provider(&self) -> &str {
        &self.config.provider
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn chat(&self, request: ChatRequest) -> LlmStream {
        let provider = self.config.provider.clone();
        let endpoint = match &self.endpoint {
            Ok(endpoint) => endpoint,
            Err(message) => {
                return sse::error_stream(LlmError::InvalidRequest {
                    provider,
                    message: message.clone(),
                });
            }
        };
        let body = match responses_body(&self.config, &self.model, &request) {
            Ok(body) => body.to_string().into_bytes(),
            Err(error) => return sse::error_stream(error),
        };
        let timeout = request.conn_options.timeout;
        let secret = self.config.api_key.clone();
        switchboard_http::stream_events(
            endpoint.post(body),
            provider.clone(),
            timeout,
            secret,
            ResponsesParser::new(provider),
        )
    }
}

/// Parses a Responses API event stream (as recorded, or from any byte source) into chunks,
/// without a timeout. `provider` names the source in errors.
pub fn parse_responses_stream<S, B, E>(provider: &str, body: S) -> LlmStream
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]>,
    E: fmt::Display + Send + 'static,
{
    sse::drive(
        provider.to_owned(),
        body,
        ResponsesParser::new(provider.to_owned()),
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// Request

fn input_content(message: &ChatMessage) -> Value {
    let has_image = message
        .content
        .iter()
        .any(|c| matches!(c, ChatContent::Image(_)));
    if !has_image {
        return Value::String(message.text());
    }
    let parts: Vec<Value> = message
        .content
        .iter()
        .filter_map(|part| match part {
            ChatContent::Text(text) => Some(json!({"type": "input_text", "text": text})),
            ChatContent::Audio(audio) => audio
                .transcript
                .as_ref()
                .map(|t| json!({"type": "input_text", "text": t})),
            ChatContent::Image(image) => {
                Some(json!({"type": "input_image", "image_url": image.url, "detail": "auto"}))
            }
        })
        .collect();
    Value::Array(parts)
}

/// The Responses request body.
pub(crate) fn responses_body(
    config: &OpenAiConfig,
    model: &str,
    request: &ChatRequest,
) -> Result<Value, LlmError> {
    let mut input = Vec::new();
    for message in provider_messages(&request.context) {
        match message {
            ProviderMessage::Instructions { role, text } => input.push(json!({
                "type": "message",
                "role": if config.developer_role { role.as_str() } else { "system" },
                "content": text,
            })),
            ProviderMessage::User(m) => input.push(json!({
                "type": "message",
                "role": "user",
                "content": input_content(m),
            })),
            ProviderMessage::Assistant { text, tool_calls } => {
                if !text.is_empty() {
                    input.push(json!({"type": "message", "role": "assistant", "content": text}));
                }
                for call in tool_calls {
                    input.push(json!({
                        "type": "function_call",
                        "call_id": call.call_id,
                        "name": call.name,
                        "arguments": call.arguments,
                    }));
                }
            }
            ProviderMessage::ToolOutput(o) => input.push(json!({
                "type": "function_call_output",
                "call_id": o.call_id,
                "output": o.output,
            })),
        }
    }

    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("input".into(), Value::Array(input));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let (parameters, strict) = tool_parameters(config, tool);
                // `strict` defaults to true in this API: say it explicitly.
                json!({
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": parameters,
                    "strict": strict,
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        let choice = match &request.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Named(name) => json!({"type": "function", "name": name}),
        };
        body.insert("tool_choice".into(), choice);
        if let Some(parallel) = request.parallel_tool_calls {
            body.insert("parallel_tool_calls".into(), parallel.into());
        }
    } else if let ToolChoice::Named(name) = &request.tool_choice {
        return Err(LlmError::InvalidRequest {
            provider: config.provider.clone(),
            message: format!("tool choice names {name:?}, but no tools are offered"),
        });
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    if let Some(format) = &request.response_format {
        let format = match format {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => json!({"type": "json_schema", "name": name, "schema": schema, "strict": strict}),
        };
        body.insert("text".into(), json!({"format": format}));
    }
    if let Some(store) = config.store {
        body.insert("store".into(), store.into());
    }
    body.insert("stream".into(), true.into());
    for (name, value) in &config.extra_body {
        body.insert(name.clone(), value.clone());
    }
    Ok(Value::Object(body))
}

// ---------------------------------------------------------------------------------------------
// Stream

#[derive(Deserialize)]
struct EventHead {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct TextDelta {
    delta: String,
}

#[derive(Deserialize)]
struct ItemEvent {
    output_index: usize,
    item: ItemIn,
}

#[derive(Deserialize)]
struct ItemIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct ArgumentsDelta {
    output_index: usize,
    delta: String,
}

#[derive(Deserialize)]
struct ArgumentsDone {
    output_index: usize,
    arguments: String,
}

#[derive(Deserialize)]
struct ResponseEvent {
    response: ResponseIn,
}

#[derive(Deserialize)]
struct ResponseIn {
    #[serde(default)]
    usage: Option<UsageIn>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    incomplete_details: Option<IncompleteIn>,
}

#[derive(Deserialize)]
struct IncompleteIn {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct UsageIn {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<InputDetailsIn>,
}

#[derive(Deserialize)]
struct InputDetailsIn {
    #[serde(default)]
    cached_tokens: u64,
}

struct Call {
    index: usize,
    streamed: bool,
}

/// Responses events → [`ChatChunk`]s.
pub(crate) struct ResponsesParser {
    provider: String,
    /// Function calls by output index.
    calls: HashMap<usize, Call>,
}

/// Events that carry nothing a chat stream needs.
const IGNORED: &[&str] = &[
    "response.created",
    "response.in_progress",
    "response.queued",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.done",
    "response.output_text.annotation.added",
    "response.refusal.done",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_text.delta",
    "response.reasoning_text.done",
];

impl ResponsesParser {
    pub(crate) fn new(provider: String) -> Self {
        ResponsesParser {
            provider,
            calls: HashMap::new(),
        }
    }

    fn protocol(&self, message: String) -> LlmError {
        LlmError::Protocol {
            provider: self.provider.clone(),
            message,
        }
    }

    fn parse<'a, T: Deserialize<'a>>(&self, kind: &str, data: &'a str) -> Result<T, LlmError> {
        serde_json::from_str(data)
            .map_err(|e| self.protocol(format!("malformed {kind} event: {e}")))
    }

    fn usage(usage: UsageIn) -> ChatChunk {
        ChatChunk::Usage(Usage {
            prompt_tokens: usage.input_tokens,
            cached_tokens: usage.input_tokens_details.map_or(0, |d| d.cached_tokens),
            completion_tokens: usage.output_tokens,
        })
    }

    /// A function-call item seen in `added` or `done`.
    fn item(&mut self, event: ItemEvent, out: &mut Vec<ChatChunk>) {
        if event.item.kind != "function_call" {
            return;
        }
        let arguments = event.item.arguments.unwrap_or_default();
        let next = self.calls.len();
        match self.calls.get_mut(&event.output_index) {
            None => {
                let streamed = !arguments.is_empty();
                self.calls.insert(
                    event.output_index,
                    Call {
                        index: next,
                        streamed,
                    },
                );
                out.push(ChatChunk::ToolCall(ToolCallDelta {
                    index: next,
                    id: event.item.call_id,
                    name: event.item.name,
                    arguments,
                }));
            }
            Some(call) => {
                // `done` for a call whose arguments never streamed: send them whole.
                if !call.streamed && !arguments.is_empty() {
                    call.streamed = true;
                    out.push(ChatChunk::ToolCall(ToolCallDelta {
                        index: call.index,
                        arguments,
                        ..Default::default()
                    }));
                }
            }
        }
    }
}

impl EventParser for ResponsesParser {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<ChatChunk>) -> Result<Flow, LlmError> {
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return Ok(Flow::Continue);
        }
        let head: EventHead = serde_json::from_str(data)
            .map_err(|e| self.protocol(format!("malformed event: {e}")))?;
        match head.kind.as_str() {
            "response.output_text.delta" | "response.refusal.delta" => {
                let delta: TextDelta = self.parse(&head.kind, data)?;
                if !delta.delta.is_empty() {
                    out.push(ChatChunk::Text(delta.delta));
                }
            }
            "response.output_item.added" | "response.output_item.done" => {
                let item: ItemEvent = self.parse(&head.kind, data)?;
                self.item(item, out);
            }
            "response.function_call_arguments.delta" => {
                let delta: ArgumentsDelta = self.parse(&head.kind, data)?;
                let Some(call) = self.calls.get_mut(&delta.output_index) else {
                    return Err(self.protocol(format!(
                        "arguments for output {} before its item",
                        delta.output_index
                    )));
                };
                if !delta.delta.is_empty() {
                    call.streamed = true;
                    out.push(ChatChunk::ToolCall(ToolCallDelta {
                        index: call.index,
                        arguments: delta.delta,
                        ..Default::default()
                    }));
                }
            }
            "response.function_call_arguments.done" => {
                let done: ArgumentsDone = self.parse(&head.kind, data)?;
                if let Some(call) = self.calls.get_mut(&done.output_index)
                    && !call.streamed
                    && !done.arguments.is_empty()
                {
                    call.streamed = true;
                    out.push(ChatChunk::ToolCall(ToolCallDelta {
                        index: call.index,
                        arguments: done.arguments,
                        ..Default::default()
                    }));
                }
            }
            "response.completed" => {
                let completed: ResponseEvent = self.parse(&head.kind, data)?;
                if let Some(usage) = completed.response.usage {
                    out.push(Self::usage(usage));
                }
                out.push(ChatChunk::Finish(if self.calls.is_empty() {
                    FinishReason::Stop
                } else {
                    FinishReason::ToolCalls
                }));
                return Ok(Flow::Done);
            }
            "response.incomplete" => {
                let incomplete: ResponseEvent = self.parse(&head.kind, data)?;
                if let Some(usage) = incomplete.response.usage {
                    out.push(Self::usage(usage));
                }
                let reason = incomplete
                    .response
                    .incomplete_details
                    .and_then(|d| d.reason)
                    .unwrap_or_default();
                out.push(ChatChunk::Finish(match reason.as_str() {
                    "max_output_tokens" => FinishReason::Length,
                    "content_filter" => FinishReason::ContentFilter,
                    _ => FinishReason::Other(reason),
                }));
                return Ok(Flow::Done);
            }
            "response.failed" => {
                let failed: ResponseEvent = self.parse(&head.kind, data)?;
                let api = failed
                    .response
                    .error
                    .as_ref()
                    .and_then(|e| ApiError::from_value(&json!({"error": e})))
                    .unwrap_or(ApiError {
                        message: "the response failed".to_owned(),
                        kind: None,
                        code: None,
                    });
                return Err(api.into_error(&self.provider, None, None, None));
            }
            "error" => {
                let value: Value = self.parse(&head.kind, data)?;
                let api = ApiError::from_value(&value).unwrap_or(ApiError {
                    message: "the stream reported an error".to_owned(),
                    kind: None,
                    code: None,
                });
                return Err(api.into_error(&self.provider, None, None, None));
            }
            kind if IGNORED.contains(&kind) => {}
            kind => {
                tracing::debug!(provider = %self.provider, event = kind, "ignoring unknown event");
            }
        }
        Ok(Flow::Continue)
    }

    fn on_end(&mut self, _out: &mut Vec<ChatChunk>) -> Result<(), LlmError> {
        Err(self.protocol("the stream ended before the response completed".to_owned()))
    }
}
