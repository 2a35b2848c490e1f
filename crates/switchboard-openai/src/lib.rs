//! OpenAI and OpenAI-compatible models for Switchboard.
//!
//! - [`OpenAiLlm`]: the Chat Completions API, which OpenAI, Azure OpenAI, Groq, Together,
//!   OpenRouter, DeepSeek, vLLM, the llama.cpp server and Ollama all speak.
//! - [`OpenAiResponsesLlm`]: OpenAI's Responses API.
//! - [`from_spec`]: a model from a provider string such as `openai/gpt-4o-mini`.
//!
//! Both models stream text, tool-call fragments (several calls may interleave), usage (with
//! cached prompt tokens) and a finish reason. Failures are typed [`LlmError`]s: bad
//! credentials, rate limits (with the server's `retry-after`), context overflow, server errors,
//! timeouts and malformed streams each have their variant, and say whether a retry can help;
//! retries, timeouts and fallbacks come from [`switchboard::llm::chat_with_retry`] and
//! [`switchboard::llm::FallbackLlm`]. A stream that breaks after some chunks keeps those
//! chunks and ends with the error. API keys never appear in `Debug` output or error messages.
//!
//! ```no_run
//! use switchboard::chat::{ChatContext, Role};
//! use switchboard::llm::{ChatRequest, collect};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let llm = switchboard_openai::from_spec("openai/gpt-4o-mini")?; // reads OPENAI_API_KEY
//! let mut ctx = ChatContext::new();
//! ctx.add_message(Role::User, "What is the capital of France?");
//! let answer = collect(llm.chat(ChatRequest::new(ctx))).await?;
//! println!("{}", answer.text);
//! # Ok(()) }
//! ```
//!
//! TLS uses rustls with the `ring` provider and the platform's certificate store.
//!
//! [`LlmError`]: switchboard::llm::LlmError

#![warn(missing_docs)]

mod chat;
mod config;
mod endpoint;
use switchboard_http::http;
mod responses;
#[cfg(feature = "server")]
pub mod server;
mod spec;
use switchboard_http::sse;

pub use chat::{OpenAiLlm, parse_chat_completions_stream};
pub use config::{
    AuthStyle, DEEPSEEK_BASE_URL, GROQ_BASE_URL, OLLAMA_BASE_URL, OPENAI_BASE_URL,
    OPENROUTER_BASE_URL, OpenAiConfig, TOGETHER_BASE_URL,
};
pub use responses::{OpenAiResponsesLlm, parse_responses_stream};
pub use spec::{PREFIXES, ProviderError, from_spec, from_spec_with_env};
