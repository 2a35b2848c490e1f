//! Anthropic's Messages API for Switchboard.
//!
//! [`AnthropicLlm`] streams text, tool calls (`tool_use` blocks whose JSON input arrives in
//! fragments), usage (with prompt-cache reads and writes) and the stop reason. Failures are
//! typed [`LlmError`]s: `authentication_error` → `Auth`, `rate_limit_error` (429) →
//! `RateLimited` with the server's `retry-after`, `overloaded_error` (529) → a retryable
//! `Status`, a too-long prompt → `ContextTooLong`, an `error` event mid-stream → the same
//! mapping after the chunks already streamed. Retries, timeouts and fallbacks come from
//! [`switchboard::llm::chat_with_retry`] and [`switchboard::llm::FallbackLlm`]. The API key
//! never appears in `Debug` output or error messages.
//!
//! ```no_run
//! use switchboard::chat::{ChatContext, Role};
//! use switchboard::llm::{ChatRequest, collect};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let llm = switchboard_anthropic::from_spec("anthropic/claude-3-5-haiku-latest")?; // ANTHROPIC_API_KEY
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

mod config;
use switchboard_http::http;
mod messages;
mod spec;
use switchboard_http::sse;

pub use config::{ANTHROPIC_BASE_URL, ANTHROPIC_VERSION, AnthropicConfig};
pub use messages::{AnthropicLlm, parse_messages_stream};
pub use spec::{PREFIXES, ProviderError, from_spec, from_spec_with_env};
