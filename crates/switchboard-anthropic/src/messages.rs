//! The Messages API (`POST /v1/messages`, streamed).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures::Stream;
use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard::chat::{ChatContent, ChatMessage, ProviderMessage, provider_messages};
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, LlmStream, ResponseFormat, ToolCallDelta,
    ToolChoice, Usage,
};

use crate::config::AnthropicConfig;
use crate::http::{self, ApiError};
use crate::sse::{self, EventParser, Flow, SseEvent};

#[derive(Clone)]
struct Endpoint {
    client: reqwest::Client,
    url: Url,
    headers: HeaderMap,
}

impl Endpoint {
    fn new(config: &AnthropicConfig) -> Result<Endpoint, String> {
        let base = config.base_url.trim_end_matches('/');
        let url = Url::parse(&format!("{base}/v1/messages"))
            .map_err(|e| format!("invalid base URL {base:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("invalid base URL {base:?}: not http or https"));
        }
        let value = |name: &str, value: &str| {
            HeaderValue::from_str(value)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| format!("the {name} value is not a valid header value"))
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            value("anthropic-version", &config.version)?,
        );
        if let Some(key) = &config.api_key {
            headers.insert(HeaderName::from_static("x-api-key"), value("API key", key)?);
        }
        for (name, v) in &config.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid header name"))?;
            headers.append(header, value(name, v)?);
        }
        Ok(Endpoint {
            client: http::build_client(config.connect_timeout)?,
            url,
            headers,
        })
    }
}

/// A Claude model behind Anthropic's Messages API.
///
/// Instructions (system and developer messages) become the top-level `system` prompt, tool
/// calls become `tool_use` blocks and their outputs `tool_result` blocks (consecutive outputs
/// share one user message). Construction never fails: a bad configuration is reported as the
/// first item of every stream, as [`LlmError::InvalidRequest`]. JSON response formats are not
/// supported by this API and are refused the same way.
///
/// ```no_run
/// use switchboard::chat::{ChatContext, Role};
/// use switchboard::llm::{ChatRequest, Llm, collect};
/// use switchboard_anthropic::{AnthropicConfig, AnthropicLlm};
///
/// # async fn run() -> Result<(), switchboard::llm::LlmError> {
/// let llm = AnthropicLlm::new(AnthropicConfig::new().api_key("sk-ant-..."), "claude-3-5-haiku-latest");
/// let mut ctx = ChatContext::new();
/// ctx.add_message(Role::System, "You are terse.");
/// ctx.add_message(Role::User, "Say hi");
/// let answer = collect(llm.chat(ChatRequest::new(ctx))).await?;
/// println!("{}", answer.text);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AnthropicLlm {
    config: Arc<AnthropicConfig>,
    model: String,
    endpoint: Result<Endpoint, String>,
}

impl AnthropicLlm {
    /// A model on the configured server.
    pub fn new(config: AnthropicConfig, model: impl Into<String>) -> Self {
        let endpoint = Endpoint::new(&config);
        AnthropicLlm {
            config: Arc::new(config),
            model: model.into(),
            endpoint,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AnthropicConfig {
        &self.config
    }

    /// The JSON body this model would send for `request` (it holds no credentials).
    pub fn request_body(&self, request: &ChatRequest) -> Result<Value, LlmError> {
        messages_body(&self.config, &self.model, request)
    }
}

impl fmt::Debug for AnthropicLlm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicLlm")
            .field("model", &self.model)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Llm for AnthropicLlm {
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
        let body = match messages_body(&self.config, &self.model, &request) {
            Ok(body) => body.to_string().into_bytes(),
            Err(error) => return sse::error_stream(error),
        };
        let timeout = request.conn_options.timeout;
        let secret = self.config.api_key.clone();
        switchboard_http::stream_events(
            endpoint
                .client
                .post(endpoint.url.clone())
                .headers(endpoint.headers.clone())
                .body(body),
            provider.clone(),
            timeout,
            secret,
            MessagesParser::new(provider),
        )
    }
}

/// Parses a Messages API event stream (as recorded, or from any byte source) into chunks,
/// without a timeout. `provider` names the source in errors.
///
/// ```
/// use futures::stream;
/// use switchboard::llm::{FinishReason, collect};
///
/// let body = concat!(
///     "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",",
///     "\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"stop_sequence\":null,",
///     "\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
///     "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
///     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
///     "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
///     "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\n",
///     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
/// );
/// let chunks = stream::iter([Ok::<_, std::io::Error>(body.as_bytes().to_vec())]);
/// let stream = switchboard_anthropic::parse_messages_stream("anthropic", chunks);
/// let answer = futures::executor::block_on(collect(stream)).unwrap();
/// assert_eq!(answer.text, "Hi");
/// assert_eq!(answer.finish_reason, Some(FinishReason::Stop));
/// assert_eq!(answer.usage.unwrap().prompt_tokens, 10);
/// ```
pub fn parse_messages_stream<S, B, E>(provider: &str, body: S) -> LlmStream
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]>,
    E: fmt::Display + Send + 'static,
{
    sse::drive(
        provider.to_owned(),
        body,
        MessagesParser::new(provider.to_owned()),
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// Request

fn image_block(url: &str, mime_type: Option<&str>) -> Value {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((meta, data)) = rest.split_once(',')
        && let Some(media_type) = meta.strip_suffix(";base64")
    {
        let media_type = if media_type.is_empty() {
            mime_type.unwrap_or("image/png")
        } else {
            media_type
        };
        return json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        });
    }
    json!({"type": "image", "source": {"type": "url", "url": url}})
}

fn user_blocks(message: &ChatMessage) -> Vec<Value> {
    message
        .content
        .iter()
        .filter_map(|part| match part {
            ChatContent::Text(text) if !text.is_empty() => {
                Some(json!({"type": "text", "text": text}))
            }
            ChatContent::Text(_) => None,
            ChatContent::Audio(audio) => audio
                .transcript
                .as_ref()
                .filter(|t| !t.is_empty())
                .map(|t| json!({"type": "text", "text": t})),
            ChatContent::Image(image) => Some(image_block(&image.url, image.mime_type.as_deref())),
        })
        .collect()
}

/// Messages with alternating roles: consecutive blocks of one role share a message, and in a
/// user message `tool_result` blocks come first, as the API requires.
#[derive(Default)]
struct Turns {
    messages: Vec<(&'static str, Vec<Value>)>,
}

impl Turns {
    fn push(&mut self, role: &'static str, blocks: Vec<Value>) {
        if blocks.is_empty() {
            return;
        }
        match self.messages.last_mut() {
            Some((last, content)) if *last == role => {
                for block in blocks {
                    if block["type"] == "tool_result" {
                        let at = content
                            .iter()
                            .take_while(|b| b["type"] == "tool_result")
                            .count();
                        content.insert(at, block);
                    } else {
                        content.push(block);
                    }
                }
            }
            _ => self.messages.push((role, blocks)),
        }
    }

    fn into_json(self) -> Vec<Value> {
        self.messages
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect()
    }
}

fn tool_input(provider: &str, name: &str, arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ if arguments.trim().is_empty() => json!({}),
        _ => {
            tracing::warn!(
                provider,
                tool = name,
                "tool call arguments are not a JSON object; sending {{}}"
            );
            json!({})
        }
    }
}

/// The Messages request body.
pub(crate) fn messages_body(
    config: &AnthropicConfig,
    model: &str,
    request: &ChatRequest,
) -> Result<Value, LlmError> {
    let provider = config.provider.as_str();
    if let Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. }) =
        &request.response_format
    {
        return Err(LlmError::InvalidRequest {
            provider: provider.to_owned(),
            message: "JSON response formats are not supported by the Messages API; use a tool"
                .to_owned(),
        });
    }
    let mut system = Vec::new();
    let mut turns = Turns::default();
    for message in provider_messages(&request.context) {
        match message {
            ProviderMessage::Instructions { text, .. } => {
                if !text.trim().is_empty() {
                    system.push(text);
                }
            }
            ProviderMessage::User(m) => turns.push("user", user_blocks(m)),
            ProviderMessage::Assistant { text, tool_calls } => {
                let mut blocks = Vec::new();
                if !text.trim().is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                for call in tool_calls {
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": call.call_id,
                        "name": call.name,
                        "input": tool_input(provider, &call.name, &call.arguments),
                    }));
                }
                turns.push("assistant", blocks);
            }
            ProviderMessage::ToolOutput(o) => {
                let mut block = json!({
                    "type": "tool_result",
                    "tool_use_id": o.call_id,
                    "content": o.output,
                });
                if o.is_error {
                    block["is_error"] = true.into();
                }
                turns.push("user", vec![block]);
            }
        }
    }

    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("max_tokens".into(), config.max_tokens.into());
    if !system.is_empty() {
        let text = system.join("\n\n");
        let value = if config.cache_system_prompt {
            json!([{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}])
        } else {
            Value::String(text)
        };
        body.insert("system".into(), value);
    }
    body.insert("messages".into(), Value::Array(turns.into_json()));
    if !request.tools.is_empty() {
        let count = request.tools.len();
        let tools: Vec<Value> = request
            .tools
            .iter()
            .enumerate()
            .map(|(i, tool)| {
                let mut t = json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                });
                if config.cache_system_prompt && i + 1 == count {
                    t["cache_control"] = json!({"type": "ephemeral"});
                }
                t
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        let mut choice = match &request.tool_choice {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Required => json!({"type": "any"}),
            ToolChoice::Named(name) => json!({"type": "tool", "name": name}),
        };
        if request.parallel_tool_calls == Some(false) && request.tool_choice != ToolChoice::None {
            choice["disable_parallel_tool_use"] = true.into();
        }
        body.insert("tool_choice".into(), choice);
    } else if let ToolChoice::Named(name) = &request.tool_choice {
        return Err(LlmError::InvalidRequest {
            provider: provider.to_owned(),
            message: format!("tool choice names {name:?}, but no tools are offered"),
        });
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), json!(temperature));
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
struct MessageStart {
    message: MessageIn,
}

#[derive(Deserialize)]
struct MessageIn {
    #[serde(default)]
    usage: Option<UsageIn>,
}

#[derive(Deserialize, Default)]
struct UsageIn {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct BlockStart {
    index: usize,
    content_block: BlockIn,
}

#[derive(Deserialize)]
struct BlockIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize)]
struct BlockDelta {
    index: usize,
    delta: DeltaIn,
}

#[derive(Deserialize)]
struct DeltaIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
}

#[derive(Deserialize)]
struct BlockStop {
    index: usize,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    delta: Option<MessageDeltaIn>,
    #[serde(default)]
    usage: Option<UsageIn>,
}

#[derive(Deserialize)]
struct MessageDeltaIn {
    #[serde(default)]
    stop_reason: Option<String>,
}

struct ToolBlock {
    index: usize,
    streamed: bool,
    /// A non-empty `input` given at block start (sent whole if no fragment follows).
    initial: Option<String>,
}

#[derive(Default, Clone, Copy)]
struct Tokens {
    input: u64,
    output: u64,
    cache_creation: u64,
    cache_read: u64,
}

impl Tokens {
    /// Usage values are cumulative: the latest one wins.
    fn update(&mut self, usage: &UsageIn) {
        if let Some(v) = usage.input_tokens {
            self.input = v;
        }
        if let Some(v) = usage.output_tokens {
            self.output = v;
        }
        if let Some(v) = usage.cache_creation_input_tokens {
            self.cache_creation = v;
        }
        if let Some(v) = usage.cache_read_input_tokens {
            self.cache_read = v;
        }
    }

    fn usage(self) -> Usage {
        // `input_tokens` counts only the uncached part of the prompt.
        Usage {
            prompt_tokens: self.input + self.cache_creation + self.cache_read,
            cached_tokens: self.cache_read,
            completion_tokens: self.output,
        }
    }
}

/// Messages events → [`ChatChunk`]s.
pub(crate) struct MessagesParser {
    provider: String,
    tools: HashMap<usize, ToolBlock>,
    tokens: Tokens,
    started: bool,
    finished: bool,
}

fn stop_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

impl MessagesParser {
    pub(crate) fn new(provider: String) -> Self {
        MessagesParser {
            provider,
            tools: HashMap::new(),
            tokens: Tokens::default(),
            started: false,
            finished: false,
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
}

impl EventParser for MessagesParser {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<ChatChunk>) -> Result<Flow, LlmError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(Flow::Continue);
        }
        let head: EventHead = serde_json::from_str(data)
            .map_err(|e| self.protocol(format!("malformed event: {e}")))?;
        match head.kind.as_str() {
            "message_start" => {
                let start: MessageStart = self.parse(&head.kind, data)?;
                self.started = true;
                if let Some(usage) = &start.message.usage {
                    self.tokens.update(usage);
                }
            }
            "content_block_start" => {
                let start: BlockStart = self.parse(&head.kind, data)?;
                let block = start.content_block;
                match block.kind.as_str() {
                    "text" => {
                        if let Some(text) = block.text.filter(|t| !t.is_empty()) {
                            out.push(ChatChunk::Text(text));
                        }
                    }
                    "tool_use" => {
                        let index = self.tools.len();
                        let initial = block
                            .input
                            .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                            .map(|v| v.to_string());
                        self.tools.insert(
                            start.index,
                            ToolBlock {
                                index,
                                streamed: false,
                                initial,
                            },
                        );
                        out.push(ChatChunk::ToolCall(ToolCallDelta {
                            index,
                            id: block.id,
                            name: block.name,
                            arguments: String::new(),
                        }));
                    }
                    // Thinking, redacted thinking and server tools are not part of the answer.
                    other => {
                        tracing::debug!(provider = %self.provider, block = other, "ignoring content block");
                    }
                }
            }
            "content_block_delta" => {
                let delta: BlockDelta = self.parse(&head.kind, data)?;
                match delta.delta.kind.as_str() {
                    "text_delta" => {
                        if let Some(text) = delta.delta.text.filter(|t| !t.is_empty()) {
                            out.push(ChatChunk::Text(text));
                        }
                    }
                    "input_json_delta" => {
                        let fragment = delta.delta.partial_json.unwrap_or_default();
                        if let Some(tool) = self.tools.get_mut(&delta.index)
                            && !fragment.is_empty()
                        {
                            tool.streamed = true;
                            out.push(ChatChunk::ToolCall(ToolCallDelta {
                                index: tool.index,
                                arguments: fragment,
                                ..Default::default()
                            }));
                        }
                    }
                    // thinking_delta, signature_delta, citations_delta, ...
                    _ => {}
                }
            }
            "content_block_stop" => {
                let stop: BlockStop = self.parse(&head.kind, data)?;
                if let Some(tool) = self.tools.get_mut(&stop.index)
                    && !tool.streamed
                {
                    // No fragment came: the call's input is what the start said, or empty.
                    tool.streamed = true;
                    out.push(ChatChunk::ToolCall(ToolCallDelta {
                        index: tool.index,
                        arguments: tool.initial.take().unwrap_or_else(|| "{}".to_owned()),
                        ..Default::default()
                    }));
                }
            }
            "message_delta" => {
                let delta: MessageDelta = self.parse(&head.kind, data)?;
                if let Some(usage) = &delta.usage {
                    self.tokens.update(usage);
                }
                if let Some(reason) = delta.delta.and_then(|d| d.stop_reason) {
                    self.finished = true;
                    out.push(ChatChunk::Finish(stop_reason(&reason)));
                }
            }
            "message_stop" => {
                if !self.finished {
                    return Err(
                        self.protocol("the message stopped without a stop reason".to_owned())
                    );
                }
                out.push(ChatChunk::Usage(self.tokens.usage()));
                return Ok(Flow::Done);
            }
            "ping" => {}
            "error" => {
                let value: Value = self.parse(&head.kind, data)?;
                let api = ApiError::from_value(&value).unwrap_or(ApiError {
                    message: "the stream reported an error".to_owned(),
                    kind: None,
                    code: None,
                });
                return Err(api.into_error(&self.provider, None, None, None));
            }
            other => {
                tracing::debug!(provider = %self.provider, event = other, "ignoring unknown event");
            }
        }
        Ok(Flow::Continue)
    }

    fn on_end(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), LlmError> {
        if self.finished {
            tracing::debug!(provider = %self.provider, "stream ended without message_stop");
            out.push(ChatChunk::Usage(self.tokens.usage()));
            Ok(())
        } else if self.started {
            Err(self.protocol("the stream ended before the message stopped".to_owned()))
        } else {
            Err(self.protocol("the stream ended before the message started".to_owned()))
        }
    }
}
