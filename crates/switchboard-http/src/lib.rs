//! HTTP and server-sent-events plumbing shared by Switchboard's provider crates
//! (`switchboard-openai`, `switchboard-anthropic`): a rustls/ring client, bounded error bodies
//! mapped to typed [`LlmError`](switchboard::llm::LlmError)s with secrets scrubbed,
//! `retry-after` parsing, and a byte-level SSE decoder that survives invalid UTF-8 and drives a
//! provider's event parser into an [`LlmStream`](switchboard::llm::LlmStream).
//!
//! It is an implementation detail of the provider crates; its API may change with them.

pub mod http;
pub mod sse;
