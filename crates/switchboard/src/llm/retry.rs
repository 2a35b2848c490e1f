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
///
/// The timer is only armed when the model has nothing ready: a model that streams chunks as
/// fast as they are read (a local or scripted one) never touches the timer wheel, and a slow
/// one re-arms one timer instead of creating one per chunk.
fn idle_timeout(inner: LlmStream, timeout: Duration, provider: String) -> IdleTimeout {
    IdleTimeout {
        inner,
        sleep: Box::pin(tokio::time::sleep(timeout)),
        armed: false,
        timeout,
        provider,
        done: false,
    }
}

struct IdleTimeout {
    inner: LlmStream,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// Whether `sleep` counts from the last chunk (false: a chunk came since it was set).
    armed: bool,
    timeout: Duration,
    provider: String,
    done: bool,
}

impl futures::Stream for IdleTimeout {
    type Item = Result<ChatChunk, LlmError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(item)) => {
                this.armed = false;
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => {
                this.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if !this.armed {
            let deadline = tokio::time::Instant::now() + this.timeout;
            this.sleep.as_mut().reset(deadline);
            this.armed = true;
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.done = true;
                Poll::Ready(Some(Err(LlmError::Timeout {
                    provider: std::mem::take(&mut this.provider),
                    timeout: this.timeout,
                })))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
