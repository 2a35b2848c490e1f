//! Tests of tool-call assembly, stream collection, retries, timeouts and fallback, all in
//! virtual time.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};
use tokio::time::Instant;

use super::*;
use crate::chat::Role;
use crate::testing::{ScriptedLlm, ScriptedReply};

fn request() -> ChatRequest {
    let mut ctx = ChatContext::new();
    ctx.add_message(Role::User, "hello");
    ChatRequest::new(ctx)
}

fn request_with(options: ConnOptions) -> ChatRequest {
    ChatRequest {
        conn_options: options,
        ..request()
    }
}

fn delta(index: usize, id: Option<&str>, name: Option<&str>, arguments: &str) -> ToolCallDelta {
    ToolCallDelta {
        index,
        id: id.map(str::to_owned),
        name: name.map(str::to_owned),
        arguments: arguments.to_owned(),
    }
}

fn connection(message: &str) -> LlmError {
    LlmError::Connection {
        provider: "scripted".into(),
        message: message.into(),
    }
}

fn auth() -> LlmError {
    LlmError::Auth {
        provider: "scripted".into(),
        message: "invalid API key".into(),
    }
}

fn text(t: &str) -> ChatChunk {
    ChatChunk::Text(t.to_owned())
}

/// Reads every item of a stream.
async fn drain(stream: LlmStream) -> Vec<Result<ChatChunk, LlmError>> {
    stream.collect().await
}

/// The text chunks of a list of items, in order.
fn texts(items: &[Result<ChatChunk, LlmError>]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match i {
            Ok(ChatChunk::Text(t)) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

// ----- ToolCallAssembler -----

#[test]
fn assembler_joins_interleaved_fragments_of_three_calls() {
    let mut calls = ToolCallAssembler::default();
    assert!(calls.is_empty());
    calls.push(delta(2, Some("call_w"), Some("get_"), "{\"city\""));
    calls.push(delta(0, None, Some("book"), "{"));
    calls.push(delta(1, Some("call_l"), Some("lookup"), ""));
    calls.push(delta(2, None, Some("weather"), ":\"Oslo\"}"));
    calls.push(delta(0, None, None, "\"day\":1"));
    // A later id for the same index does not replace the first one.
    calls.push(delta(1, Some("call_other"), None, "{\"q\":\"x\"}"));
    calls.push(delta(0, None, None, "}"));
    assert!(!calls.is_empty());
    assert_eq!(
        calls.finish(),
        vec![
            AssembledToolCall {
                call_id: "call_0".into(),
                name: "book".into(),
                arguments: "{\"day\":1}".into(),
            },
            AssembledToolCall {
                call_id: "call_l".into(),
                name: "lookup".into(),
                arguments: "{\"q\":\"x\"}".into(),
            },
            AssembledToolCall {
                call_id: "call_w".into(),
                name: "get_weather".into(),
                arguments: "{\"city\":\"Oslo\"}".into(),
            },
        ]
    );
}

#[test]
fn assembler_generates_ids_from_sparse_indexes() {
    let mut calls = ToolCallAssembler::default();
    calls.push(delta(7, None, Some("a"), "{}"));
    calls.push(delta(3, None, None, ""));
    assert_eq!(
        calls.finish(),
        vec![
            AssembledToolCall {
                call_id: "call_3".into(),
                name: String::new(),
                arguments: String::new(),
            },
            AssembledToolCall {
                call_id: "call_7".into(),
                name: "a".into(),
                arguments: "{}".into(),
            },
        ]
    );
    assert_eq!(ToolCallAssembler::default().finish(), vec![]);
}

// ----- collect -----

#[tokio::test(start_paused = true)]
async fn collect_reads_a_mixed_stream() {
    let usage = Usage {
        prompt_tokens: 12,
        cached_tokens: 4,
        completion_tokens: 7,
    };
    let items: Vec<Result<ChatChunk, LlmError>> = vec![
        Ok(ChatChunk::ServedBy {
            provider: "p".into(),
            model: "m".into(),
        }),
        Ok(text("Let me ")),
        Ok(ChatChunk::ToolCall(delta(
            1,
            Some("b"),
            Some("second"),
            "{\"x\":",
        ))),
        Ok(ChatChunk::ToolCall(delta(
            0,
            Some("a"),
            Some("first"),
            "{}",
        ))),
        Ok(text("check.")),
        Ok(ChatChunk::ToolCall(delta(1, None, None, "2}"))),
        Ok(ChatChunk::Usage(Usage::default())),
        Ok(ChatChunk::Usage(usage)),
        Ok(ChatChunk::Finish(FinishReason::ToolCalls)),
    ];
    let response = collect(stream::iter(items).boxed()).await;
    assert_eq!(
        response,
        Ok(ChatResponse {
            text: "Let me check.".into(),
            tool_calls: vec![
                AssembledToolCall {
                    call_id: "a".into(),
                    name: "first".into(),
                    arguments: "{}".into(),
                },
                AssembledToolCall {
                    call_id: "b".into(),
                    name: "second".into(),
                    arguments: "{\"x\":2}".into(),
                },
            ],
            // The last usage report wins.
            usage: Some(usage),
            finish_reason: Some(FinishReason::ToolCalls),
        })
    );
    assert_eq!(usage.total_tokens(), 19);
}

#[tokio::test(start_paused = true)]
async fn collect_of_an_empty_stream_is_an_empty_response() {
    assert_eq!(
        collect(stream::empty().boxed()).await,
        Ok(ChatResponse::default())
    );
}

#[tokio::test(start_paused = true)]
async fn collect_propagates_an_error_mid_stream() {
    let error = LlmError::Protocol {
        provider: "p".into(),
        message: "bad frame".into(),
    };
    let items = vec![Ok(text("par")), Err(error.clone()), Ok(text("tial"))];
    assert_eq!(collect(stream::iter(items).boxed()).await, Err(error));
}

#[tokio::test(start_paused = true)]
async fn collect_a_scripted_text_reply() {
    let llm = ScriptedLlm::new().reply_text("Hello there, friend");
    let response = collect(llm.chat(request())).await.expect("a reply");
    assert_eq!(response.text, "Hello there, friend");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    // Three words and the finish chunk; the prompt is the one-message context.
    assert_eq!(
        response.usage,
        Some(Usage {
            prompt_tokens: 1,
            cached_tokens: 0,
            completion_tokens: 4,
        })
    );
}

#[test]
fn usage_adds_up() {
    let mut total = Usage::default();
    total.add(&Usage {
        prompt_tokens: 10,
        cached_tokens: 2,
        completion_tokens: 5,
    });
    total.add(&Usage {
        prompt_tokens: 1,
        cached_tokens: 1,
        completion_tokens: 1,
    });
    assert_eq!(
        total,
        Usage {
            prompt_tokens: 11,
            cached_tokens: 3,
            completion_tokens: 6,
        }
    );
    assert_eq!(total.total_tokens(), 17);
}

// ----- chat_with_retry -----

#[test]
fn conn_options_defaults_and_backoff() {
    let options = ConnOptions::default();
    assert_eq!(options.max_retries, 3);
    assert_eq!(options.retry_interval, Duration::from_secs(2));
    assert_eq!(options.timeout, Duration::from_secs(10));
    assert_eq!(options.no_retries().max_retries, 0);
    assert_eq!(options.no_retries().timeout, options.timeout);

    let e = connection("down");
    assert_eq!(options.backoff(0, &e), Duration::from_millis(100));
    assert_eq!(options.backoff(1, &e), Duration::from_secs(2));
    assert_eq!(options.backoff(5, &e), Duration::from_secs(2));
    let short = ConnOptions {
        retry_interval: Duration::from_millis(30),
        ..options
    };
    assert_eq!(short.backoff(0, &e), Duration::from_millis(30));

    let limited = |after: Option<Duration>| LlmError::RateLimited {
        provider: "p".into(),
        retry_after: after,
        message: "slow down".into(),
    };
    assert_eq!(
        options.backoff(0, &limited(Some(Duration::from_secs(5)))),
        Duration::from_secs(5)
    );
    // Shorter than the policy: the policy wins; absurdly long: capped at a minute.
    assert_eq!(
        options.backoff(1, &limited(Some(Duration::from_millis(10)))),
        Duration::from_secs(2)
    );
    assert_eq!(
        options.backoff(0, &limited(Some(Duration::from_secs(3600)))),
        Duration::from_secs(60)
    );
    assert_eq!(
        options.backoff(0, &limited(None)),
        Duration::from_millis(100)
    );
}

#[tokio::test(start_paused = true)]
async fn retryable_error_then_success_waits_100ms() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .reply(ScriptedReply::Error(connection("reset")))
            .reply_text("ok"),
    );
    let start = Instant::now();
    let response = collect(chat_with_retry(llm.clone(), request())).await;
    assert_eq!(response.map(|r| r.text), Ok("ok".to_owned()));
    assert_eq!(llm.request_count(), 2);
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn second_retry_waits_the_retry_interval() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .reply(ScriptedReply::Error(connection("1")))
            .reply(ScriptedReply::Error(LlmError::Status {
                provider: "scripted".into(),
                status: 503,
                message: "overloaded".into(),
            }))
            .reply_text("third time"),
    );
    let options = ConnOptions {
        retry_interval: Duration::from_millis(750),
        ..ConnOptions::default()
    };
    let start = Instant::now();
    let response = collect(chat_with_retry(llm.clone(), request_with(options))).await;
    assert_eq!(response.map(|r| r.text), Ok("third time".to_owned()));
    assert_eq!(llm.request_count(), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(100 + 750));
    // Every attempt sent the same request.
    let requests = llm.requests();
    assert!(requests.iter().all(|r| *r == requests[0]));
}

#[tokio::test(start_paused = true)]
async fn non_retryable_error_is_not_retried() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .reply(ScriptedReply::Error(auth()))
            .reply_text("never"),
    );
    let start = Instant::now();
    let items = drain(chat_with_retry(llm.clone(), request())).await;
    assert_eq!(items, vec![Err(auth())]);
    assert_eq!(llm.request_count(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_return_the_last_error() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .reply(ScriptedReply::Error(connection("first")))
            .reply(ScriptedReply::Error(connection("second")))
            .reply(ScriptedReply::Error(connection("third")))
            .reply_text("too late"),
    );
    let options = ConnOptions {
        max_retries: 2,
        ..ConnOptions::default()
    };
    let start = Instant::now();
    let items = drain(chat_with_retry(llm.clone(), request_with(options))).await;
    assert_eq!(items, vec![Err(connection("third"))]);
    assert_eq!(llm.request_count(), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(100 + 2000));
}

#[tokio::test(start_paused = true)]
async fn no_retries_option_fails_at_once() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .reply(ScriptedReply::Error(connection("down")))
            .reply_text("never"),
    );
    let options = ConnOptions::default().no_retries();
    let items = drain(chat_with_retry(llm.clone(), request_with(options))).await;
    assert_eq!(items, vec![Err(connection("down"))]);
    assert_eq!(llm.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_retry_after_is_honoured() {
    let limited = LlmError::RateLimited {
        provider: "scripted".into(),
        retry_after: Some(Duration::from_secs(5)),
        message: "slow down".into(),
    };
    let llm = Arc::new(
        ScriptedLlm::new()
            .reply(ScriptedReply::Error(limited))
            .reply_text("ok"),
    );
    let start = Instant::now();
    let response = collect(chat_with_retry(llm.clone(), request())).await;
    assert_eq!(response.map(|r| r.text), Ok("ok".to_owned()));
    assert_eq!(llm.request_count(), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn first_chunk_timeout_is_a_retried_timeout_error() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .reply_text("too slow")
            .reply_text("still too slow")
            .with_time_to_first_token(Duration::from_secs(15)),
    );
    let options = ConnOptions {
        max_retries: 1,
        timeout: Duration::from_secs(10),
        ..ConnOptions::default()
    };
    let start = Instant::now();
    let items = drain(chat_with_retry(llm.clone(), request_with(options))).await;
    assert_eq!(
        items,
        vec![Err(LlmError::Timeout {
            provider: "scripted".into(),
            timeout: Duration::from_secs(10),
        })]
    );
    assert_eq!(llm.request_count(), 2);
    // Two timeouts and the first backoff.
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(10_000 + 100 + 10_000)
    );
}

#[tokio::test(start_paused = true)]
async fn slow_first_chunk_within_the_timeout_is_fine() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .reply_text("late but ok")
            .with_time_to_first_token(Duration::from_secs(9)),
    );
    let start = Instant::now();
    let response = collect(chat_with_retry(llm.clone(), request())).await;
    assert_eq!(response.map(|r| r.text), Ok("late but ok".to_owned()));
    assert_eq!(llm.request_count(), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(9));
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_between_chunks_ends_the_stream() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .reply_text("one two three")
            .reply_text("never asked")
            .with_chunk_interval(Duration::from_secs(3)),
    );
    let options = ConnOptions {
        timeout: Duration::from_secs(2),
        ..ConnOptions::default()
    };
    let start = Instant::now();
    let items = drain(chat_with_retry(llm.clone(), request_with(options))).await;
    assert_eq!(
        items,
        vec![
            Ok(text("one ")),
            Err(LlmError::Timeout {
                provider: "scripted".into(),
                timeout: Duration::from_secs(2),
            }),
        ]
    );
    assert_eq!(llm.request_count(), 1, "no retry once output started");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn chunks_within_the_idle_timeout_all_arrive() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .reply_text("one two three")
            .with_chunk_interval(Duration::from_secs(1)),
    );
    let options = ConnOptions {
        timeout: Duration::from_secs(2),
        ..ConnOptions::default()
    };
    let start = Instant::now();
    let items = drain(chat_with_retry(llm.clone(), request_with(options))).await;
    assert_eq!(texts(&items), vec!["one ", "two ", "three"]);
    // Three words, the finish and the usage chunk: four intervals after the first.
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(Result::is_ok));
    assert_eq!(start.elapsed(), Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn error_after_output_started_is_not_retried() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .reply(ScriptedReply::ChunksThenError(
                vec![text("I was say")],
                connection("reset"),
            ))
            .reply_text("a second answer"),
    );
    let start = Instant::now();
    let items = drain(chat_with_retry(llm.clone(), request())).await;
    assert_eq!(items, vec![Ok(text("I was say")), Err(connection("reset"))]);
    assert_eq!(llm.request_count(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

// ----- FallbackLlm -----

fn scripted(model: &str) -> ScriptedLlm {
    ScriptedLlm::new().with_model(model)
}

#[tokio::test(start_paused = true)]
async fn fallback_moves_on_after_a_retryable_failure() {
    let a = Arc::new(scripted("a-model").reply(ScriptedReply::Error(connection("a down"))));
    let b = Arc::new(scripted("b-model").reply_text("from b"));
    let fallback = FallbackLlm::new(vec![a.clone(), b.clone()]);
    assert_eq!(fallback.provider(), "fallback");
    assert_eq!(fallback.model(), "scripted/a-model,scripted/b-model");

    let sent = request();
    let items = drain(fallback.chat(sent.clone())).await;
    assert_eq!(
        items.first(),
        Some(&Ok(ChatChunk::ServedBy {
            provider: "scripted".into(),
            model: "b-model".into(),
        }))
    );
    assert_eq!(texts(&items), vec!["from ", "b"]);
    assert_eq!((a.request_count(), b.request_count()), (1, 1));
    assert_eq!(a.requests(), vec![sent.clone()]);
    assert_eq!(b.requests(), vec![sent]);
}

#[tokio::test(start_paused = true)]
async fn fallback_uses_the_first_model_when_it_answers() {
    let a = Arc::new(scripted("a-model").reply_text("from a"));
    let b = Arc::new(scripted("b-model").reply_text("from b"));
    let fallback = FallbackLlm::new(vec![a.clone(), b.clone()]);
    let items = drain(fallback.chat(request())).await;
    assert_eq!(
        items.first(),
        Some(&Ok(ChatChunk::ServedBy {
            provider: "scripted".into(),
            model: "a-model".into(),
        }))
    );
    assert_eq!(
        collect(stream::iter(items).boxed()).await.map(|r| r.text),
        Ok("from a".into())
    );
    assert_eq!((a.request_count(), b.request_count()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn fallback_returns_a_non_retryable_error_at_once() {
    let a = Arc::new(scripted("a-model").reply(ScriptedReply::Error(auth())));
    let b = Arc::new(scripted("b-model").reply_text("from b"));
    let fallback = FallbackLlm::new(vec![a.clone(), b.clone()]);
    assert_eq!(drain(fallback.chat(request())).await, vec![Err(auth())]);
    assert_eq!((a.request_count(), b.request_count()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn fallback_with_every_model_failing_returns_the_last_error() {
    let last = LlmError::Status {
        provider: "scripted".into(),
        status: 503,
        message: "b down".into(),
    };
    let a = Arc::new(scripted("a-model").reply(ScriptedReply::Error(connection("a down"))));
    let b = Arc::new(scripted("b-model").reply(ScriptedReply::Error(last.clone())));
    let fallback = FallbackLlm::new(vec![a.clone(), b.clone()]);
    assert_eq!(drain(fallback.chat(request())).await, vec![Err(last)]);
    assert_eq!((a.request_count(), b.request_count()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn fallback_does_not_switch_after_output_started() {
    let a = Arc::new(scripted("a-model").reply(ScriptedReply::ChunksThenError(
        vec![text("partial")],
        connection("reset"),
    )));
    let b = Arc::new(scripted("b-model").reply_text("from b"));
    let fallback = FallbackLlm::new(vec![a.clone(), b.clone()]);
    let items = drain(fallback.chat(request())).await;
    assert_eq!(
        items,
        vec![
            Ok(ChatChunk::ServedBy {
                provider: "scripted".into(),
                model: "a-model".into(),
            }),
            Ok(text("partial")),
            Err(connection("reset")),
        ]
    );
    assert_eq!(b.request_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn empty_fallback_chain_is_an_error() {
    let fallback = FallbackLlm::new(Vec::new());
    assert_eq!(fallback.model(), "");
    assert_eq!(
        drain(fallback.chat(request())).await,
        vec![Err(LlmError::InvalidRequest {
            provider: "fallback".into(),
            message: "no model configured".into(),
        })]
    );
}

#[tokio::test(start_paused = true)]
async fn fallback_under_retry_retries_the_whole_chain() {
    let a = Arc::new(
        scripted("a-model")
            .reply(ScriptedReply::Error(connection("a1")))
            .reply(ScriptedReply::Error(connection("a2"))),
    );
    let b = Arc::new(
        scripted("b-model")
            .reply(ScriptedReply::Error(connection("b1")))
            .reply_text("b answers"),
    );
    let fallback: Arc<dyn Llm> = Arc::new(FallbackLlm::new(vec![a.clone(), b.clone()]));
    let start = Instant::now();
    let response = collect(chat_with_retry(fallback, request())).await;
    assert_eq!(response.map(|r| r.text), Ok("b answers".into()));
    assert_eq!((a.request_count(), b.request_count()), (2, 2));
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

// ----- LlmError -----

#[test]
fn is_retryable_table() {
    let p = || "p".to_owned();
    let m = || "m".to_owned();
    let status = |status| LlmError::Status {
        provider: p(),
        status,
        message: m(),
    };
    let cases = [
        (
            LlmError::Connection {
                provider: p(),
                message: m(),
            },
            true,
        ),
        (
            LlmError::Timeout {
                provider: p(),
                timeout: Duration::from_secs(1),
            },
            true,
        ),
        (
            LlmError::RateLimited {
                provider: p(),
                retry_after: None,
                message: m(),
            },
            true,
        ),
        (
            LlmError::Protocol {
                provider: p(),
                message: m(),
            },
            true,
        ),
        (
            LlmError::Auth {
                provider: p(),
                message: m(),
            },
            false,
        ),
        (
            LlmError::ContextTooLong {
                provider: p(),
                message: m(),
            },
            false,
        ),
        (
            LlmError::InvalidRequest {
                provider: p(),
                message: m(),
            },
            false,
        ),
        (
            LlmError::Other {
                provider: p(),
                message: m(),
                retryable: true,
            },
            true,
        ),
        (
            LlmError::Other {
                provider: p(),
                message: m(),
                retryable: false,
            },
            false,
        ),
        (status(500), true),
        (status(502), true),
        (status(503), true),
        (status(599), true),
        (status(408), true),
        (status(409), true),
        (status(429), true),
        (status(400), false),
        (status(401), false),
        (status(403), false),
        (status(404), false),
        (status(422), false),
        (status(499), false),
    ];
    for (error, retryable) in cases {
        assert_eq!(error.is_retryable(), retryable, "{error:?}");
        assert_eq!(error.provider(), "p");
    }
}

#[test]
fn retry_after_only_for_rate_limits() {
    let limited = LlmError::RateLimited {
        provider: "p".into(),
        retry_after: Some(Duration::from_secs(3)),
        message: "m".into(),
    };
    assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(connection("x").retry_after(), None);
}

#[test]
fn display_messages() {
    let p = || "openai".to_owned();
    let cases = [
        (
            LlmError::Connection {
                provider: p(),
                message: "connection reset".into(),
            },
            "could not reach openai: connection reset",
        ),
        (
            LlmError::Timeout {
                provider: p(),
                timeout: Duration::from_secs(10),
            },
            "openai did not answer within 10s",
        ),
        (
            LlmError::Auth {
                provider: p(),
                message: "invalid API key".into(),
            },
            "openai rejected the credentials: invalid API key",
        ),
        (
            LlmError::RateLimited {
                provider: p(),
                retry_after: Some(Duration::from_millis(1500)),
                message: "slow down".into(),
            },
            "openai is rate limiting requests (retry after 1.5s): slow down",
        ),
        (
            LlmError::RateLimited {
                provider: p(),
                retry_after: None,
                message: "slow down".into(),
            },
            "openai is rate limiting requests: slow down",
        ),
        (
            LlmError::ContextTooLong {
                provider: p(),
                message: "200k > 128k".into(),
            },
            "the conversation is too long for openai: 200k > 128k",
        ),
        (
            LlmError::Status {
                provider: p(),
                status: 503,
                message: "overloaded".into(),
            },
            "openai answered HTTP 503: overloaded",
        ),
        (
            LlmError::Protocol {
                provider: p(),
                message: "bad SSE frame".into(),
            },
            "openai sent a malformed response: bad SSE frame",
        ),
        (
            LlmError::InvalidRequest {
                provider: p(),
                message: "no tools".into(),
            },
            "invalid request to openai: no tools",
        ),
        (
            LlmError::Other {
                provider: p(),
                message: "out of script".into(),
                retryable: false,
            },
            "openai: out of script",
        ),
    ];
    for (error, expected) in cases {
        let shown = error.to_string();
        assert_eq!(shown, expected);
        // The formatting adds nothing beyond the provider and its message: no headers, no key.
        for secret in ["sk-", "Bearer", "Authorization", "api_key="] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(!format!("{error:?}").contains(secret));
        }
    }
}

#[test]
fn chat_request_builders() {
    let tool = ToolDefinition {
        name: "t".into(),
        description: "d".into(),
        parameters: serde_json::json!({"type": "object", "properties": {}}),
        strict_parameters: None,
    };
    let r = request()
        .with_tools(vec![tool.clone()])
        .with_tool_choice(ToolChoice::Named("t".into()))
        .with_temperature(0.25);
    assert_eq!(r.tools, vec![std::sync::Arc::new(tool)]);
    assert_eq!(r.tool_choice, ToolChoice::Named("t".into()));
    assert_eq!(r.temperature, Some(0.25));
    assert_eq!(r.parallel_tool_calls, None);
    assert_eq!(r.response_format, None);
    assert_eq!(r.conn_options, ConnOptions::default());
    assert_eq!(
        ChatRequest::new(ChatContext::new()).tool_choice,
        ToolChoice::Auto
    );
}
