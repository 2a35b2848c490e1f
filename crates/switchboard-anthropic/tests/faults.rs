//! Failure handling against the replay server. Real sockets: waits are tens of milliseconds.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use switchboard::llm::{FallbackLlm, FinishReason, Llm, LlmError, chat_with_retry, collect};
use switchboard_anthropic::{AnthropicConfig, AnthropicLlm};
use switchboard_replay::{ReplayServer, Reply, closed_port_url};

fn llm_at(url: &str) -> AnthropicLlm {
    AnthropicLlm::new(
        AnthropicConfig::new().with_base_url(url).api_key(KEY),
        "claude-sonnet-4-20250514",
    )
}

fn error_body(kind: &str, message: &str) -> serde_json::Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
}

async fn first_error(reply: Reply) -> LlmError {
    let server = ReplayServer::start([reply]).await;
    let items = drain(llm_at(server.url()).chat(user("hi"))).await;
    match items.last() {
        Some(Err(error)) => error.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn http_errors_map_to_typed_errors() {
    let error = first_error(Reply::json(
        401,
        error_body("authentication_error", &format!("invalid x-api-key {KEY}")),
    ))
    .await;
    assert!(matches!(error, LlmError::Auth { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains(KEY));

    let error = first_error(Reply::json(
        403,
        error_body("permission_error", "no access"),
    ))
    .await;
    assert!(matches!(error, LlmError::Auth { .. }), "{error:?}");

    let error = first_error(
        Reply::json(
            429,
            error_body(
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
        )
        .header("retry-after", "3"),
    )
    .await;
    assert!(matches!(error, LlmError::RateLimited { .. }), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));

    let error = first_error(Reply::json(
        529,
        error_body("overloaded_error", "Overloaded"),
    ))
    .await;
    assert!(
        matches!(error, LlmError::Status { status: 529, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());

    let error = first_error(Reply::json(
        400,
        error_body(
            "invalid_request_error",
            "prompt is too long: 208310 tokens > 200000 maximum",
        ),
    ))
    .await;
    assert!(
        matches!(error, LlmError::ContextTooLong { .. }),
        "{error:?}"
    );

    let error = first_error(Reply::json(
        413,
        error_body(
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
    ))
    .await;
    assert!(
        matches!(error, LlmError::ContextTooLong { .. }),
        "{error:?}"
    );

    let error = first_error(Reply::json(
        400,
        error_body("invalid_request_error", "temperature: range: 0..1"),
    ))
    .await;
    assert!(
        matches!(error, LlmError::InvalidRequest { .. }),
        "{error:?}"
    );

    let error = first_error(Reply::json(
        500,
        error_body("api_error", "Internal server error"),
    ))
    .await;
    assert!(
        matches!(error, LlmError::Status { status: 500, .. }),
        "{error:?}"
    );

    // HTTP 200 with an error body instead of a stream.
    let error = first_error(Reply::json(
        200,
        error_body("overloaded_error", "Overloaded"),
    ))
    .await;
    assert!(
        matches!(error, LlmError::Status { status: 529, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn error_event_mid_stream() {
    let server = ReplayServer::start([sse("overloaded_mid_stream.sse")]).await;
    let (text, error) = split(&drain(llm_at(server.url()).chat(user("hi"))).await);
    assert_eq!(text, "Sure");
    assert_eq!(
        error,
        Some(LlmError::Status {
            provider: "anthropic".into(),
            status: 529,
            message: "Overloaded (overloaded_error)".into()
        })
    );
}

#[tokio::test]
async fn malformed_event_and_cut_stream() {
    let body = std::fs::read_to_string(fixture("text.sse")).unwrap().replace(
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" ?\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_de",
    );
    let server = ReplayServer::start([Reply::sse(body)]).await;
    let (text, error) = split(&drain(llm_at(server.url()).chat(user("hi"))).await);
    assert_eq!(text, "Bonjour ! Ça va");
    assert!(
        matches!(error, Some(LlmError::Protocol { .. })),
        "{error:?}"
    );

    // Cut inside the tool call's fragments.
    let server = ReplayServer::start([sse("tool_use.sse").cut_after_events(7)]).await;
    let (text, error) = split(&drain(llm_at(server.url()).chat(user("hi"))).await);
    assert_eq!(text, "Let me look that up.");
    assert!(
        matches!(error, Some(LlmError::Connection { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn invalid_utf8_does_not_panic() {
    let mut body = std::fs::read(fixture("text.sse")).unwrap();
    let at = body.windows(7).position(|w| w == b"Bonjour").unwrap();
    body[at + 1] = 0xff;
    let server = ReplayServer::start([Reply::sse(body).fragmented(2)]).await;
    let answer = collect(llm_at(server.url()).chat(user("hi")))
        .await
        .unwrap();
    assert_eq!(answer.text, "B\u{fffd}njour ! Ça va ?");
}

#[tokio::test]
async fn stall_times_out() {
    let server = ReplayServer::start([sse("text.sse").stall_after_events(4)]).await;
    let mut request = user("hi");
    request.conn_options.timeout = Duration::from_millis(60);
    let (text, error) = split(&drain(llm_at(server.url()).chat(request)).await);
    assert_eq!(text, "Bonjour");
    assert!(matches!(error, Some(LlmError::Timeout { .. })), "{error:?}");
}

#[tokio::test]
async fn retries_overloaded_and_rate_limited_then_succeeds() {
    let server = ReplayServer::start([
        Reply::json(529, error_body("overloaded_error", "Overloaded")),
        Reply::json(429, error_body("rate_limit_error", "slow down"))
            .header("retry-after-ms", "20"),
        sse("text.sse"),
    ])
    .await;
    let llm: Arc<dyn Llm> = Arc::new(llm_at(server.url()));
    let answer = collect(chat_with_retry(llm, user("hi"))).await.unwrap();
    assert_eq!(answer.finish_reason, Some(FinishReason::Stop));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn fallback_after_connection_refused() {
    let server = ReplayServer::start([sse("text.sse")]).await;
    let fallback = FallbackLlm::new(vec![
        Arc::new(llm_at(&closed_port_url())) as Arc<dyn Llm>,
        Arc::new(llm_at(server.url())),
    ]);
    let answer = collect(fallback.chat(user("hi"))).await.unwrap();
    assert_eq!(answer.text, "Bonjour ! Ça va ?");
}
