//! Failure handling against the replay server: HTTP errors, broken and malformed streams,
//! stalls, retries with backoff and fallback.
//!
//! Real sockets do not mix with tokio's paused clock (the runtime would skip time while the
//! kernel delivers bytes), so these tests use real time with waits of tens of milliseconds.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use switchboard::llm::{
    ChatChunk, ConnOptions, FallbackLlm, FinishReason, Llm, LlmError, chat_with_retry, collect,
};
use switchboard_openai::{OpenAiConfig, OpenAiLlm};
use switchboard_replay::{ReplayServer, Reply, closed_port_url};

fn llm_at(url: &str) -> OpenAiLlm {
    OpenAiLlm::new(
        OpenAiConfig::openai()
            .with_base_url(format!("{url}/v1"))
            .api_key(KEY),
        "gpt-4o-mini",
    )
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
async fn auth_errors_never_echo_the_key() {
    // The server quotes the key back, as some gateways do.
    let error = first_error(Reply::json(
        401,
        json!({"error": {"message": format!("Incorrect API key provided: {KEY}."), "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
    ))
    .await;
    assert!(matches!(error, LlmError::Auth { .. }), "{error:?}");
    assert!(!error.is_retryable());
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("[redacted]"));

    let error = first_error(Reply::json(403, json!({"error": {"message": "Project does not have access", "type": "invalid_request_error"}}))).await;
    assert!(matches!(error, LlmError::Auth { .. }), "{error:?}");
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let error = first_error(
        Reply::json(429, json!({"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests", "code": "rate_limit_exceeded"}}))
            .header("retry-after", "2"),
    )
    .await;
    assert!(matches!(error, LlmError::RateLimited { .. }), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
    assert!(error.is_retryable());

    let error = first_error(
        Reply::json(429, json!({"error": {"message": "slow down"}}))
            .header("retry-after-ms", "1500")
            .header("retry-after", "9"),
    )
    .await;
    assert_eq!(error.retry_after(), Some(Duration::from_millis(1500)));

    // An exhausted quota is a 429 too, but waiting does not help.
    let error = first_error(Reply::json(429, json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}))).await;
    assert!(!error.is_retryable(), "{error:?}");
}

#[tokio::test]
async fn context_length_and_bad_requests() {
    let error = first_error(Reply::json(400, json!({"error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130011 tokens.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})))
    .await;
    assert!(
        matches!(error, LlmError::ContextTooLong { .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());

    let error = first_error(Reply::json(400, json!({"error": {"message": "Invalid value for 'temperature'", "type": "invalid_request_error", "param": "temperature", "code": "invalid_value"}}))).await;
    assert!(
        matches!(error, LlmError::InvalidRequest { .. }),
        "{error:?}"
    );

    let error = first_error(Reply::json(404, json!({"error": {"message": "The model `gpt-9` does not exist", "type": "invalid_request_error", "code": "model_not_found"}}))).await;
    assert!(
        matches!(error, LlmError::Status { status: 404, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn server_errors_are_retryable_statuses() {
    let error = first_error(Reply::text(502, "<html>Bad Gateway</html>")).await;
    assert_eq!(
        error,
        LlmError::Status {
            provider: "openai".into(),
            status: 502,
            message: "<html>Bad Gateway</html>".into()
        }
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn ok_status_with_error_body() {
    // OpenRouter-style: HTTP 200, a JSON error whose code is the upstream status.
    let error = first_error(Reply::json(
        200,
        json!({"error": {"message": "Provider returned error", "code": 502}}),
    ))
    .await;
    assert!(
        matches!(error, LlmError::Status { status: 502, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());

    let error = first_error(Reply::json(200, json!({"error": {"message": "This model's maximum context length is 8192 tokens", "code": "context_length_exceeded"}}))).await;
    assert!(
        matches!(error, LlmError::ContextTooLong { .. }),
        "{error:?}"
    );

    // HTTP 200 with something that is neither a stream nor an error.
    let error = first_error(Reply::text(200, "hello")).await;
    assert!(matches!(error, LlmError::Protocol { .. }), "{error:?}");
}

#[tokio::test]
async fn connection_refused() {
    let items = drain(llm_at(&closed_port_url()).chat(user("hi"))).await;
    match &items[..] {
        [Err(error @ LlmError::Connection { .. })] => {
            assert!(error.is_retryable());
            assert!(!format!("{error:?}").contains(KEY));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn stream_cut_mid_tool_call_keeps_streamed_chunks() {
    // 5 events: role, text, first call's start, its first fragment, second call's start.
    let server = ReplayServer::start([sse("chat_parallel_tools.sse").cut_after_events(5)]).await;
    let items = drain(llm_at(server.url()).chat(user("hi"))).await;
    let (text, error) = split(&items);
    assert_eq!(text, "Let me check both.");
    let calls = items
        .iter()
        .filter(|i| matches!(i, Ok(ChatChunk::ToolCall(_))))
        .count();
    assert_eq!(calls, 3);
    assert!(
        matches!(error, Some(LlmError::Connection { .. })),
        "{error:?}"
    );
    assert!(items.last().unwrap().is_err(), "the error ends the stream");
}

#[tokio::test]
async fn malformed_chunk_is_a_protocol_error_after_earlier_chunks() {
    let server = ReplayServer::start([sse("chat_malformed.sse")]).await;
    let items = drain(llm_at(server.url()).chat(user("hi"))).await;
    let (text, error) = split(&items);
    assert_eq!(text, "Hi");
    let Some(LlmError::Protocol { message, .. }) = error else {
        panic!("{error:?}")
    };
    assert!(message.contains("malformed chunk"), "{message}");
    // Nothing after the error: the later finish chunk is not delivered.
    assert!(!items.iter().any(|i| matches!(i, Ok(ChatChunk::Finish(_)))));
}

#[tokio::test]
async fn stream_without_finish_reason_is_a_protocol_error() {
    let server = ReplayServer::start([sse("chat_no_finish.sse")]).await;
    let items = drain(llm_at(server.url()).chat(user("hi"))).await;
    let (text, error) = split(&items);
    assert_eq!(text, "Half an ans");
    assert!(
        matches!(error, Some(LlmError::Protocol { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn done_without_finish_reason_is_a_protocol_error() {
    let body = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n";
    let server = ReplayServer::start([Reply::sse(body)]).await;
    let (text, error) = split(&drain(llm_at(server.url()).chat(user("hi"))).await);
    assert_eq!(text, "Hi");
    assert!(
        matches!(error, Some(LlmError::Protocol { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn error_event_mid_stream_is_typed() {
    let server = ReplayServer::start([sse("chat_stream_error.sse")]).await;
    let (text, error) = split(&drain(llm_at(server.url()).chat(user("hi"))).await);
    assert_eq!(text, "Sure, ");
    let error = error.unwrap();
    assert!(
        matches!(
            error,
            LlmError::Other {
                retryable: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("server_error"));

    // The same object in an `event: error` event.
    let body = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\nevent: error\ndata: {\"error\":{\"message\":\"Rate limit exceeded\",\"type\":\"rate_limit_error\",\"code\":\"rate_limit_exceeded\"}}\n\n";
    let server = ReplayServer::start([Reply::sse(body)]).await;
    let (_, error) = split(&drain(llm_at(server.url()).chat(user("hi"))).await);
    assert!(
        matches!(error, Some(LlmError::RateLimited { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn invalid_utf8_does_not_panic() {
    let server = ReplayServer::start([sse("chat_invalid_utf8.sse").fragmented(3)]).await;
    let answer = collect(llm_at(server.url()).chat(user("hi")))
        .await
        .unwrap();
    assert_eq!(answer.text, "ok \u{fffd}\u{fffd} done");
    assert_eq!(answer.finish_reason, Some(FinishReason::Stop));
}

#[tokio::test]
async fn stall_longer_than_the_timeout() {
    let server = ReplayServer::start([sse("chat_text.sse").stall_after_events(2)]).await;
    let mut request = user("hi");
    request.conn_options.timeout = Duration::from_millis(60);
    let started = std::time::Instant::now();
    let items = drain(llm_at(server.url()).chat(request)).await;
    let (text, error) = split(&items);
    assert_eq!(text, "The café");
    assert_eq!(
        error,
        Some(LlmError::Timeout {
            provider: "openai".into(),
            timeout: Duration::from_millis(60)
        })
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn stall_before_the_answer_times_out_then_retry_succeeds() {
    let server = ReplayServer::start([
        sse("chat_text.sse").stall_after_events(0),
        sse("chat_text.sse"),
    ])
    .await;
    let mut request = user("hi");
    request.conn_options.timeout = Duration::from_millis(60);
    let llm: Arc<dyn Llm> = Arc::new(llm_at(server.url()));
    let answer = collect(chat_with_retry(llm, request)).await.unwrap();
    assert_eq!(answer.text, "The café opens at 8 am.");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn retry_after_429_then_success() {
    let server = ReplayServer::start([
        Reply::json(
            429,
            json!({"error": {"message": "slow down", "code": "rate_limit_exceeded"}}),
        )
        .header("retry-after-ms", "30"),
        sse("chat_text.sse"),
    ])
    .await;
    let llm: Arc<dyn Llm> = Arc::new(llm_at(server.url()));
    let started = std::time::Instant::now();
    let answer = collect(chat_with_retry(llm, user("hi"))).await.unwrap();
    assert_eq!(answer.text, "The café opens at 8 am.");
    assert_eq!(server.requests().len(), 2);
    // The server's 30 ms beat the 10 ms base backoff.
    assert!(started.elapsed() >= Duration::from_millis(30));
    // Both attempts sent the same body.
    assert_eq!(server.requests()[0].body, server.requests()[1].body);
}

#[tokio::test]
async fn retry_after_500_then_success() {
    let server = ReplayServer::start([
        Reply::json(
            500,
            json!({"error": {"message": "The server had an error", "type": "server_error"}}),
        ),
        sse("chat_text.sse"),
    ])
    .await;
    let llm: Arc<dyn Llm> = Arc::new(llm_at(server.url()));
    let answer = collect(chat_with_retry(llm, user("hi"))).await.unwrap();
    assert_eq!(answer.finish_reason, Some(FinishReason::Stop));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn retries_give_up_after_max_retries() {
    let server = ReplayServer::start([
        Reply::text(503, "busy"),
        Reply::text(503, "busy"),
        Reply::text(503, "busy"),
        sse("chat_text.sse"),
    ])
    .await;
    let llm: Arc<dyn Llm> = Arc::new(llm_at(server.url()));
    let mut request = user("hi");
    request.conn_options = ConnOptions {
        max_retries: 2,
        ..fast()
    };
    let error = collect(chat_with_retry(llm, request)).await.unwrap_err();
    assert!(matches!(error, LlmError::Status { status: 503, .. }));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn no_retry_for_auth_errors_or_after_streaming_began() {
    let server = ReplayServer::start([
        Reply::json(
            401,
            json!({"error": {"message": "bad key", "code": "invalid_api_key"}}),
        ),
        sse("chat_text.sse"),
    ])
    .await;
    let llm: Arc<dyn Llm> = Arc::new(llm_at(server.url()));
    let error = collect(chat_with_retry(llm, user("hi"))).await.unwrap_err();
    assert!(matches!(error, LlmError::Auth { .. }));
    assert_eq!(server.requests().len(), 1);

    // A cut after the first chunks is reported, not retried (the user heard part of it).
    let server = ReplayServer::start([
        sse("chat_parallel_tools.sse").cut_after_events(4),
        sse("chat_parallel_tools.sse"),
    ])
    .await;
    let llm: Arc<dyn Llm> = Arc::new(llm_at(server.url()));
    let (text, error) = split(&drain(chat_with_retry(llm, user("hi"))).await);
    assert_eq!(text, "Let me check both.");
    assert!(matches!(error, Some(LlmError::Connection { .. })));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn fallback_moves_on_from_an_unreachable_provider() {
    let server = ReplayServer::start([sse("chat_text.sse")]).await;
    let primary: Arc<dyn Llm> = Arc::new(llm_at(&closed_port_url()));
    let secondary: Arc<dyn Llm> = Arc::new(OpenAiLlm::new(
        OpenAiConfig::new(format!("{}/v1", server.url())).provider_name("vllm"),
        "qwen2.5",
    ));
    let fallback = FallbackLlm::new(vec![primary, secondary]);
    let items = drain(fallback.chat(user("hi"))).await;
    assert_eq!(
        items[0],
        Ok(ChatChunk::ServedBy {
            provider: "vllm".into(),
            model: "qwen2.5".into()
        })
    );
    assert_eq!(split(&items), ("The café opens at 8 am.".into(), None));
}

#[tokio::test]
async fn fallback_stops_at_a_non_retryable_error() {
    let failing =
        ReplayServer::start([Reply::json(401, json!({"error": {"message": "bad key"}}))]).await;
    let healthy = ReplayServer::start([sse("chat_text.sse")]).await;
    let fallback = FallbackLlm::new(vec![
        Arc::new(llm_at(failing.url())) as Arc<dyn Llm>,
        Arc::new(llm_at(healthy.url())),
    ]);
    let items = drain(fallback.chat(user("hi"))).await;
    assert!(
        matches!(&items[..], [Err(LlmError::Auth { .. })]),
        "{items:?}"
    );
    assert!(healthy.requests().is_empty());
}

#[tokio::test]
async fn fallback_moves_on_from_a_rate_limited_provider_with_retries() {
    let limited = ReplayServer::start([
        Reply::json(429, json!({"error": {"message": "slow down"}})).header("retry-after-ms", "5"),
        Reply::json(429, json!({"error": {"message": "slow down"}})).header("retry-after-ms", "5"),
    ])
    .await;
    let healthy = ReplayServer::start([sse("chat_text.sse")]).await;
    let fallback: Arc<dyn Llm> = Arc::new(FallbackLlm::new(vec![
        Arc::new(llm_at(limited.url())) as Arc<dyn Llm>,
        Arc::new(llm_at(healthy.url())),
    ]));
    let mut request = user("hi");
    request.conn_options.max_retries = 0;
    let answer = collect(chat_with_retry(fallback, request)).await.unwrap();
    assert_eq!(answer.text, "The café opens at 8 am.");
    assert_eq!(limited.requests().len(), 1);
    assert_eq!(healthy.requests().len(), 1);
}
