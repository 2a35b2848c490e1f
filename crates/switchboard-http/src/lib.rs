//! HTTP and server-sent-events plumbing shared by Switchboard's provider crates
//! (`switchboard-openai`, `switchboard-anthropic`): a rustls/ring client, bounded error bodies
//! mapped to typed [`LlmError`](switchboard::llm::LlmError)s with secrets scrubbed,
//! `retry-after` parsing, and a byte-level SSE decoder that survives invalid UTF-8 and drives a
//! provider's event parser into an [`LlmStream`](switchboard::llm::LlmStream).
//!
//! It is an implementation detail of the provider crates; its API may change with them.

pub mod http;
pub mod sse;

use std::time::Duration;

use switchboard::llm::LlmStream;

/// Sends a streaming request and parses its server-sent events with `parser`: HTTP failures
/// become typed errors (with `secret` scrubbed), and no chunk may take longer than `timeout`.
/// Nothing is sent until the stream is first polled.
pub fn stream_events<P: sse::EventParser>(
    request: reqwest::RequestBuilder,
    provider: String,
    timeout: Duration,
    secret: Option<String>,
    parser: P,
) -> LlmStream {
    sse::deferred(async move {
        match http::send(request, &provider, timeout, secret.as_deref()).await {
            Ok(response) => sse::drive(
                provider,
                http::body_stream(response, secret),
                parser,
                Some(timeout),
            ),
            Err(error) => sse::error_stream(error),
        }
    })
}
