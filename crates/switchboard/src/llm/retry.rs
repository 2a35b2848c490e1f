use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};

use super::{ChatChunk, ChatRequest, Llm, LlmError, LlmStream};

/// Retry policy and timeouts for model requests.
///
/// Retries happen only before the first chunk arrived: once the user may have heard part of an
/// answer, a failure is reported instead of silently starting over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnOptions {
    /// Retries after the first attempt (default 3).
    pub max_retries: u32,
    /// Wait before the second and later retries (default 2 s); the first retry waits 100 ms.
    /// A provider's `retry-after` wins when it is longer.
    pub retry_interval: Duration,
    /// Longest wait for the first chunk, and between two chunks (default 10 s).
    pub timeout: Duration,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            max_retries: 3,
            retry_interval: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        }
    }
}

impl ConnOptions {
    /// No retries, same timeout.
    pub fn no_retries(self) -> Self {
        ConnOptions {
            max_retries: 0,
            ..self
        }
    }

    /// The wait before retry number `retry` (0-based).
    pub fn backoff(&self, retry: u32, error: &LlmError) -> Duration {
        let base = if retry == 0 {
            Duration::from_millis(100).min(self.retry_interval)
        } else {
            self.retry_interval
        };
        // A server's retry-after is honoured, within reason.
        error
            .retry_after()
            .map(|after| after.min(Duration::from_secs(60)).max(base))
            .unwrap_or(base)
    }
}

/// Calls `llm` with the request's [`ConnOptions`]: a timeout on the first chunk and between
/// chunks, and retries with backoff on retryable errors that happen before any chunk arrived.
pub fn chat_with_retry(llm: Arc<dyn Llm>, request: ChatRequest) -> LlmStream {
    let options = request.conn_options;
    let start = async move {
        let mut retry = 0;
        loop {
            let mut inner = llm.chat(request.clone());
            let first = match tokio::time::timeout(options.timeout, inner.next()).await {
                Ok(first) => first,
                Err(_) => Some(Err(LlmError::Timeout {
                    provider: llm.provider().to_owned(),
                    timeout: options.timeout,
                })),
            };
            match first {
                Some(Ok(chunk)) => {
                    let provider = llm.provider().to_owned();
                    return stream::iter([Ok(chunk)])
                        .chain(idle_timeout(inner, options.timeout, provider))
                        .boxed();
                }
                Some(Err(error)) if error.is_retryable() && retry < options.max_retries => {
                    tracing::warn!(provider = llm.provider(), retry, %error, "retrying model request");
                    tokio::time::sleep(options.backoff(retry, &error)).await;
                    retry += 1;
                }
                Some(Err(error)) => return stream::iter([Err(error)]).boxed(),
                None => return stream::empty().boxed(),
            }
        }
    };
    stream::once(start).flatten().boxed()
}

/// Ends the stream with a timeout error when no chunk arrives for `timeout`.
fn idle_timeout(
    inner: LlmStream,
    timeout: Duration,
    provider: String,
) -> impl futures::Stream<Item = Result<ChatChunk, LlmError>> + Send {
    stream::unfold(Some(inner), move |state| {
        let provider = provider.clone();
        async move {
            let mut inner = state?;
            match tokio::time::timeout(timeout, inner.next()).await {
                Ok(Some(item)) => Some((item, Some(inner))),
                Ok(None) => None,
                Err(_) => Some((Err(LlmError::Timeout { provider, timeout }), None)),
            }
        }
    })
}
