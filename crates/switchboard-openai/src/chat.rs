//! The Chat Completions API (`POST /chat/completions`, streamed).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures::Stream;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard::chat::{ChatContent, ChatMessage, ProviderMessage, provider_messages};
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, LlmStream, ResponseFormat, ToolCallDelta,
    ToolChoice, ToolDefinition, Usage,
};

use crate::config::OpenAiConfig;
use crate::endpoint::Endpoint;
use crate::http::ApiError;
use crate::sse::{self, EventParser, Flow, SseEvent};

/// A model behind the Chat Completions API of OpenAI or an OpenAI-compatible server.
///
/// Construction never fails: a bad configuration (invalid URL or header) is reported as the
/// first item of every stream, as [`LlmError::InvalidRequest`].
///
/// ```no_run
/// use std::sync::Arc;
/// use switchboard::chat::{ChatContext, Role};
/// use switchboard::llm::{ChatRequest, Llm, collect};
/// use switchboard_openai::{OpenAiConfig, OpenAiLlm};
///
/// # async fn run() -> Result<(), switchboard::llm::LlmError> {
/// let llm = OpenAiLlm::new(OpenAiConfig::openai().api_key("sk-..."), "gpt-4o-mini");
/// let mut ctx = ChatContext::new();
/// ctx.add_message(Role::User, "Say hi");
/// let answer = collect(llm.chat(ChatRequest::new(ctx))).await?;
/// println!("{}", answer.text);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OpenAiLlm {
    config: Arc<OpenAiConfig>,
    model: String,
    endpoint: Result<Endpoint, String>,
}

impl OpenAiLlm {
    /// A model on the configured server.
    pub fn new(config: OpenAiConfig, model: impl Into<String>) -> Self {
        let endpoint = Endpoint::new(&config, "chat/completions");
        OpenAiLlm {
            config: Arc::new(config),
            model: model.into(),
            endpoint,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// The JSON body this model would send for `request` (useful to inspect or log a request;
    /// it holds no credentials).
    pub fn request_body(&self, request: &ChatRequest) -> Result<Value, LlmError> {
        chat_body(&self.config, &self.model, request)
    }
}

impl fmt::Debug for OpenAiLlm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiLlm")
            .field("model", &self.model)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Llm for OpenAiLlm {
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
        let body = match chat_body(&self.config, &self.model, &request) {
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
            ChatCompletionsParser::new(provider),
        )
    }
}

/// Parses a Chat Completions event stream (as recorded, or from any byte source) into chunks,
/// without a timeout. `provider` names the source in errors.
///
/// ```
/// use futures::{StreamExt, stream};
/// use switchboard::llm::{ChatChunk, FinishReason, collect};
///
/// let body = concat!(
///     "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",",
///     "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
///     "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",",
///     "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
///     "data: [DONE]\n\n",
/// );
/// let chunks = stream::iter([Ok::<_, std::io::Error>(body.as_bytes().to_vec())]);
/// let stream = switchboard_openai::parse_chat_completions_stream("openai", chunks);
/// let answer = futures::executor::block_on(collect(stream)).unwrap();
/// assert_eq!(answer.text, "Hi");
/// assert_eq!(answer.finish_reason, Some(FinishReason::Stop));
/// ```
pub fn parse_chat_completions_stream<S, B, E>(provider: &str, body: S) -> LlmStream
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]>,
    E: fmt::Display + Send + 'static,
{
    sse::drive(
        provider.to_owned(),
        body,
        ChatCompletionsParser::new(provider.to_owned()),
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// Request

fn user_content(message: &ChatMessage) -> Value {
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
            ChatContent::Text(text) => Some(json!({"type": "text", "text": text})),
            ChatContent::Audio(audio) => audio
                .transcript
                .as_ref()
                .map(|t| json!({"type": "text", "text": t})),
            ChatContent::Image(image) => {
                Some(json!({"type": "image_url", "image_url": {"url": image.url}}))
            }
        })
        .collect();
    Value::Array(parts)
}

pub(crate) fn tool_parameters(config: &OpenAiConfig, tool: &ToolDefinition) -> (Value, bool) {
    match (&tool.strict_parameters, config.strict_tools) {
        (Some(strict), true) => (strict.clone(), true),
        _ => (tool.parameters.clone(), false),
    }
}

fn instructions_role(config: &OpenAiConfig, role: switchboard::chat::Role) -> &'static str {
    if config.developer_role {
        role.as_str()
    } else {
        "system"
    }
}

/// One tool call of an assistant message, as Chat Completions writes it.
pub(crate) fn tool_call_json(call_id: &str, name: &str, arguments: &str) -> Value {
    json!({
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    })
}

/// The Chat Completions request body.
pub(crate) fn chat_body(
    config: &OpenAiConfig,
    model: &str,
    request: &ChatRequest,
) -> Result<Value, LlmError> {
    let mut messages = Vec::new();
    for message in provider_messages(&request.context) {
        match message {
            ProviderMessage::Instructions { role, text } => messages.push(json!({
                "role": instructions_role(config, role),
                "content": text,
            })),
            ProviderMessage::User(m) => {
                messages.push(json!({"role": "user", "content": user_content(m)}));
            }
            ProviderMessage::Assistant { text, tool_calls } => {
                let mut m = Map::new();
                m.insert("role".into(), "assistant".into());
                if tool_calls.is_empty() {
                    m.insert("content".into(), Value::String(text));
                } else {
                    m.insert(
                        "content".into(),
                        if text.is_empty() {
                            Value::Null
                        } else {
                            Value::String(text)
                        },
                    );
                    let calls: Vec<Value> = tool_calls
                        .iter()
                        .map(|c| tool_call_json(&c.call_id, &c.name, &c.arguments))
                        .collect();
                    m.insert("tool_calls".into(), Value::Array(calls));
                }
                messages.push(Value::Object(m));
            }
            ProviderMessage::ToolOutput(o) => messages.push(json!({
                "role": "tool",
                "tool_call_id": o.call_id,
                "content": o.output,
            })),
        }
    }

    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let (parameters, strict) = tool_parameters(config, tool);
                let mut function = Map::new();
                function.insert("name".into(), tool.name.clone().into());
                if !tool.description.is_empty() {
                    function.insert("description".into(), tool.description.clone().into());
                }
                function.insert("parameters".into(), parameters);
                if strict {
                    function.insert("strict".into(), true.into());
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        let choice = match &request.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Named(name) => json!({"type": "function", "function": {"name": name}}),
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
            } => json!({
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": strict},
            }),
        };
        body.insert("response_format".into(), format);
    }
    body.insert("stream".into(), true.into());
    if config.include_usage {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    for (name, value) in &config.extra_body {
        body.insert(name.clone(), value.clone());
    }
    Ok(Value::Object(body))
}

// ---------------------------------------------------------------------------------------------
// Stream

#[derive(Deserialize)]
struct ChunkIn {
    #[serde(default)]
    choices: Option<Vec<ChoiceIn>>,
    #[serde(default)]
    usage: Option<UsageIn>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChoiceIn {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    delta: Option<DeltaIn>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct DeltaIn {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallIn>>,
}

#[derive(Deserialize)]
struct ToolCallIn {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionIn>,
}

#[derive(Deserialize)]
struct FunctionIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct UsageIn {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetailsIn>,
    /// DeepSeek's name for cached prompt tokens.
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct PromptDetailsIn {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Default)]
struct CallState {
    id: Option<String>,
    name: Option<String>,
}

/// Chat Completions chunks → [`ChatChunk`]s.
pub(crate) struct ChatCompletionsParser {
    provider: String,
    finished: bool,
    calls: HashMap<usize, CallState>,
    /// Calls without an `index` (some compatible servers): id → index.
    ids: HashMap<String, usize>,
    last_index: Option<usize>,
}

pub(crate) fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" | "end_turn" | "eos" => FinishReason::Stop,
        "length" | "max_tokens" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

impl ChatCompletionsParser {
    pub(crate) fn new(provider: String) -> Self {
        ChatCompletionsParser {
            provider,
            finished: false,
            calls: HashMap::new(),
            ids: HashMap::new(),
            last_index: None,
        }
    }

    fn protocol(&self, message: String) -> LlmError {
        LlmError::Protocol {
            provider: self.provider.clone(),
            message,
        }
    }

    fn tool_call(&mut self, position: usize, call: ToolCallIn, out: &mut Vec<ChatChunk>) {
        let index = match (call.index, &call.id) {
            (Some(index), _) => index,
            (None, Some(id)) => match self.ids.get(id) {
                Some(&index) => index,
                None => {
                    let index = self.calls.keys().max().map_or(position, |m| m + 1);
                    self.ids.insert(id.clone(), index);
                    index
                }
            },
            (None, None) => self.last_index.unwrap_or(position),
        };
        self.last_index = Some(index);
        let state = self.calls.entry(index).or_default();
        let function = call.function.unwrap_or(FunctionIn {
            name: None,
            arguments: None,
        });
        // Some servers repeat the id and name on every fragment: pass them on once.
        let id = call
            .id
            .filter(|id| !id.is_empty() && state.id.as_ref() != Some(id));
        if let Some(id) = &id {
            state.id = Some(id.clone());
        }
        let name = function
            .name
            .filter(|n| !n.is_empty() && state.name.as_ref() != Some(n));
        if let Some(name) = &name {
            state.name = Some(name.clone());
        }
        let arguments = function.arguments.unwrap_or_default();
        if id.is_some() || name.is_some() || !arguments.is_empty() {
            out.push(ChatChunk::ToolCall(ToolCallDelta {
                index,
                id,
                name,
                arguments,
            }));
        }
    }
}

impl EventParser for ChatCompletionsParser {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<ChatChunk>) -> Result<Flow, LlmError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return if self.finished {
                Ok(Flow::Done)
            } else {
                Err(self.protocol("the stream ended without a finish reason".to_owned()))
            };
        }
        if data.is_empty() {
            return Ok(Flow::Continue);
        }
        let chunk: ChunkIn = serde_json::from_str(data)
            .map_err(|e| self.protocol(format!("malformed chunk: {e}")))?;
        if event.event == "error" || chunk.error.is_some() {
            let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            let api = ApiError::from_value(&value).unwrap_or(ApiError {
                message: "the stream reported an error".to_owned(),
                kind: None,
                code: None,
            });
            return Err(api.into_error(&self.provider, None, None, None));
        }
        if event.event != "message" {
            tracing::debug!(provider = %self.provider, event = %event.event, "ignoring unknown event");
            return Ok(Flow::Continue);
        }
        for choice in chunk.choices.unwrap_or_default() {
            if choice.index.unwrap_or(0) != 0 {
                continue; // only the first choice is used
            }
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    out.push(ChatChunk::Text(text));
                }
                if let Some(refusal) = delta.refusal.filter(|t| !t.is_empty()) {
                    out.push(ChatChunk::Text(refusal));
                }
                for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate()
                {
                    self.tool_call(position, call, out);
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finished = true;
                out.push(ChatChunk::Finish(finish_reason(&reason)));
            }
        }
        if let Some(usage) = chunk.usage {
            let cached = usage
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .or(usage.prompt_cache_hit_tokens)
                .unwrap_or(0);
            out.push(ChatChunk::Usage(Usage {
                prompt_tokens: usage.prompt_tokens.unwrap_or(0),
                cached_tokens: cached,
                completion_tokens: usage.completion_tokens.unwrap_or(0),
            }));
        }
        Ok(Flow::Continue)
    }

    fn on_end(&mut self, _out: &mut Vec<ChatChunk>) -> Result<(), LlmError> {
        if self.finished {
            tracing::debug!(provider = %self.provider, "stream ended without [DONE]");
            Ok(())
        } else {
            Err(self.protocol("the stream ended without a finish reason".to_owned()))
        }
    }
}
