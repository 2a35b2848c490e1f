//! The [`Llm`] interface: a streaming chat call behind an object-safe trait.
//!
//! A provider turns a [`ChatRequest`] into an [`LlmStream`] of [`ChatChunk`]s: text deltas,
//! tool-call deltas (possibly interleaved across several calls), usage and a finish reason.
//! Failures are typed [`LlmError`]s that say whether a retry can help. [`chat_with_retry`]
//! applies a [`ConnOptions`] retry policy and timeouts; [`FallbackLlm`] moves to the next
//! provider when one fails before streaming anything.
//!
//! ```
//! use std::sync::Arc;
//! use switchboard::chat::{ChatContext, Role};
//! use switchboard::llm::{ChatRequest, Llm, collect};
//! use switchboard::testing::ScriptedLlm;
//!
//! # tokio_test_block_on(async {
//! let llm = Arc::new(ScriptedLlm::new().reply_text("Hello! How can I help?"));
//! let mut ctx = ChatContext::new();
//! ctx.add_message(Role::User, "hi");
//! let response = collect(llm.chat(ChatRequest::new(ctx))).await.unwrap();
//! assert_eq!(response.text, "Hello! How can I help?");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
//! # }
//! ```

mod error;
mod fallback;
mod retry;

pub use error::LlmError;
pub use fallback::FallbackLlm;
pub use retry::{ConnOptions, chat_with_retry};

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::ChatContext;

/// The stream a provider returns.
pub type LlmStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, LlmError>> + Send + 'static>>;

/// A chat model behind a streaming interface. Object-safe: sessions hold `Arc<dyn Llm>`.
pub trait Llm: Send + Sync + 'static {
    /// The provider's name, e.g. `openai`.
    fn provider(&self) -> &str;

    /// The model's name, e.g. `gpt-4o-mini`.
    fn model(&self) -> &str;

    /// Starts a chat completion. Connection errors are reported as the stream's first item, so
    /// this call itself never blocks or fails.
    fn chat(&self, request: ChatRequest) -> LlmStream;
}

/// A tool as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// The tool's name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON schema of its arguments object.
    pub parameters: Value,
    /// The OpenAI strict-mode form of the schema (every property required, nullable optional
    /// ones), when the tool has one. Providers that support strict mode use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_parameters: Option<Value>,
}

/// Which tools the model may or must call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This tool must be called.
    Named(String),
}

/// The shape of the model's text answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// A name for the schema.
        name: String,
        /// The schema.
        schema: Value,
        /// Ask the provider to enforce it strictly.
        strict: bool,
    },
}

/// One chat completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The conversation so far, instructions included.
    pub context: ChatContext,
    /// The tools offered (shared: a definition is built once per tool, not per request).
    pub tools: Vec<Arc<ToolDefinition>>,
    /// Which tools the model may or must call.
    pub tool_choice: ToolChoice,
    /// Whether several tool calls may come in one answer (`None`: provider default).
    pub parallel_tool_calls: Option<bool>,
    /// Sampling temperature (`None`: provider default).
    pub temperature: Option<f32>,
    /// The answer's shape (`None`: free text).
    pub response_format: Option<ResponseFormat>,
    /// Retries and timeouts.
    pub conn_options: ConnOptions,
}

impl ChatRequest {
    /// A request with no tools and default options.
    pub fn new(context: ChatContext) -> Self {
        ChatRequest {
            context,
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            parallel_tool_calls: None,
            temperature: None,
            response_format: None,
            conn_options: ConnOptions::default(),
        }
    }

    /// Offers these tools (`ToolDefinition`s or shared `Arc<ToolDefinition>`s).
    pub fn with_tools(
        mut self,
        tools: impl IntoIterator<Item = impl Into<Arc<ToolDefinition>>>,
    ) -> Self {
        self.tools = tools.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the tool choice.
    pub fn with_tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = choice;
        self
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }
}

/// A piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChatChunk {
    /// More answer text.
    Text(String),
    /// A fragment of a tool call.
    ToolCall(ToolCallDelta),
    /// Token usage (usually once, near the end).
    Usage(Usage),
    /// Why the model stopped.
    Finish(FinishReason),
    /// Which provider and model answered (sent first by adapters such as [`FallbackLlm`]).
    ServedBy {
        /// Provider name.
        provider: String,
        /// Model name.
        model: String,
    },
}

/// A fragment of a tool call. Fragments with the same `index` belong to the same call; the
/// first usually carries `id` and `name`, later ones more `arguments` text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCallDelta {
    /// Position of the call in the answer.
    pub index: usize,
    /// The call id, when this fragment carries it.
    pub id: Option<String>,
    /// The tool name, when this fragment carries it.
    pub name: Option<String>,
    /// More of the JSON arguments text.
    pub arguments: String,
}

/// Token counts of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
}

impl Usage {
    /// Prompt plus completion tokens.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// Adds another request's usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.cached_tokens += other.cached_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A natural end.
    Stop,
    /// It hit the token limit.
    Length,
    /// It made tool calls.
    ToolCalls,
    /// The provider filtered the content.
    ContentFilter,
    /// Anything else, as the provider said it.
    Other(String),
}

/// A tool call assembled from its deltas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledToolCall {
    /// The call id (generated as `call_<index>` when the provider sent none).
    pub call_id: String,
    /// The tool's name (empty when the provider never sent one).
    pub name: String,
    /// The raw JSON arguments text.
    pub arguments: String,
}

/// Joins [`ToolCallDelta`]s into whole calls, whatever order the fragments of several calls
/// arrive in.
#[derive(Debug, Clone, Default)]
pub struct ToolCallAssembler {
    calls: BTreeMap<usize, AssembledToolCall>,
}

impl ToolCallAssembler {
    /// Adds one fragment.
    pub fn push(&mut self, delta: ToolCallDelta) {
        let call = self
            .calls
            .entry(delta.index)
            .or_insert_with(|| AssembledToolCall {
                call_id: String::new(),
                name: String::new(),
                arguments: String::new(),
            });
        if let Some(id) = delta.id
            && call.call_id.is_empty()
        {
            call.call_id = id;
        }
        if let Some(name) = delta.name {
            call.name.push_str(&name);
        }
        call.arguments.push_str(&delta.arguments);
    }

    /// True when no fragment was pushed.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The calls in index order.
    pub fn finish(self) -> Vec<AssembledToolCall> {
        self.calls
            .into_iter()
            .map(|(index, mut call)| {
                if call.call_id.is_empty() {
                    call.call_id = format!("call_{index}");
                }
                call
            })
            .collect()
    }
}

/// A whole answer, collected from a stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatResponse {
    /// All text.
    pub text: String,
    /// All tool calls, in index order.
    pub tool_calls: Vec<AssembledToolCall>,
    /// Usage, when reported.
    pub usage: Option<Usage>,
    /// Finish reason, when reported.
    pub finish_reason: Option<FinishReason>,
}

/// Reads a whole stream into a [`ChatResponse`].
pub async fn collect(mut stream: LlmStream) -> Result<ChatResponse, LlmError> {
    let mut response = ChatResponse::default();
    let mut calls = ToolCallAssembler::default();
    while let Some(chunk) = stream.next().await {
        match chunk? {
            ChatChunk::Text(t) => response.text.push_str(&t),
            ChatChunk::ToolCall(d) => calls.push(d),
            ChatChunk::Usage(u) => response.usage = Some(u),
            ChatChunk::Finish(f) => response.finish_reason = Some(f),
            ChatChunk::ServedBy { .. } => {}
        }
    }
    response.tool_calls = calls.finish();
    Ok(response)
}

#[cfg(test)]
mod tests;
