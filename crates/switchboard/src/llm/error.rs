use std::time::Duration;

/// Why a chat request failed.
///
/// Messages never contain credentials: providers must not copy request headers or keys into
/// them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The provider could not be reached, or the connection broke.
    #[error("could not reach {provider}: {message}")]
    Connection {
        /// Provider name.
        provider: String,
        /// What went wrong.
        message: String,
    },
    /// No answer (or no next chunk) within the timeout.
    #[error("{provider} did not answer within {timeout:?}")]
    Timeout {
        /// Provider name.
        provider: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The credentials were missing or rejected.
    #[error("{provider} rejected the credentials: {message}")]
    Auth {
        /// Provider name.
        provider: String,
        /// The provider's explanation.
        message: String,
    },
    /// Too many requests.
    #[error("{provider} is rate limiting requests{}: {message}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited {
        /// Provider name.
        provider: String,
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
        /// The provider's explanation.
        message: String,
    },
    /// The conversation does not fit the model's context window.
    #[error("the conversation is too long for {provider}: {message}")]
    ContextTooLong {
        /// Provider name.
        provider: String,
        /// The provider's explanation.
        message: String,
    },
    /// Any other HTTP error status.
    #[error("{provider} answered HTTP {status}: {message}")]
    Status {
        /// Provider name.
        provider: String,
        /// The HTTP status.
        status: u16,
        /// The provider's explanation.
        message: String,
    },
    /// The provider sent something that does not follow its protocol.
    #[error("{provider} sent a malformed response: {message}")]
    Protocol {
        /// Provider name.
        provider: String,
        /// What was wrong.
        message: String,
    },
    /// The request itself is invalid (bad options, unsupported feature).
    #[error("invalid request to {provider}: {message}")]
    InvalidRequest {
        /// Provider name.
        provider: String,
        /// What was wrong.
        message: String,
    },
    /// A scripted model ran out of answers, or another model-specific failure.
    #[error("{provider}: {message}")]
    Other {
        /// Provider name.
        provider: String,
        /// What went wrong.
        message: String,
        /// Whether retrying may help.
        retryable: bool,
    },
}

impl LlmError {
    /// True when the same request may succeed if retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Connection { .. } | LlmError::Timeout { .. } => true,
            LlmError::RateLimited { .. } => true,
            // 429 is retryable like `RateLimited`, whichever variant a provider maps it to.
            LlmError::Status { status, .. } => *status >= 500 || matches!(*status, 408 | 409 | 429),
            LlmError::Protocol { .. } => true,
            LlmError::Other { retryable, .. } => *retryable,
            LlmError::Auth { .. }
            | LlmError::ContextTooLong { .. }
            | LlmError::InvalidRequest { .. } => false,
        }
    }

    /// The provider that failed.
    pub fn provider(&self) -> &str {
        match self {
            LlmError::Connection { provider, .. }
            | LlmError::Timeout { provider, .. }
            | LlmError::Auth { provider, .. }
            | LlmError::RateLimited { provider, .. }
            | LlmError::ContextTooLong { provider, .. }
            | LlmError::Status { provider, .. }
            | LlmError::Protocol { provider, .. }
            | LlmError::InvalidRequest { provider, .. }
            | LlmError::Other { provider, .. } => provider,
        }
    }

    /// How long the provider asked to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
