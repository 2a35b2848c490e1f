//! HTTP plumbing shared by the provider's models: the TLS client, sending a request with a
//! timeout, and mapping HTTP failures and provider error bodies to [`LlmError`].
//!
//! This file is identical in `switchboard-openai` and `switchboard-anthropic` (the provider
//! crates share no runtime crate).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;
use switchboard::llm::LlmError;

/// Longest error body read, and longest provider message kept in an error.
const MAX_ERROR_BODY: usize = 64 * 1024;
const MAX_MESSAGE_CHARS: usize = 600;

/// An HTTP client using rustls with the `ring` provider and the platform's certificate store.
pub fn build_client(connect_timeout: Duration) -> Result<reqwest::Client, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_platform_verifier()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|e| format!("HTTP client setup failed: {}", error_chain(&e)))
}

/// An error and its sources, joined with `: ` (reqwest's top-level messages are vague).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

/// Removes a secret from a message and bounds its length.
pub fn scrub(message: &str, secret: Option<&str>) -> String {
    let mut message = match secret {
        Some(secret) if secret.len() >= 4 => message.replace(secret, "[redacted]"),
        _ => message.to_owned(),
    };
    if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// Sends `request`, waiting at most `timeout` for the response head. Non-success statuses and
/// non-stream bodies become typed errors; a success with an event stream is returned.
pub async fn send(
    request: reqwest::RequestBuilder,
    provider: &str,
    timeout: Duration,
    secret: Option<&str>,
) -> Result<reqwest::Response, LlmError> {
    let response = match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => {
            return Err(LlmError::Timeout {
                provider: provider.to_owned(),
                timeout,
            });
        }
        Ok(Err(error)) => return Err(transport_error(provider, error, timeout, secret)),
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let retry_after = retry_after(response.headers(), SystemTime::now());
    if (200..300).contains(&status)
        && (content_type.is_empty() || content_type.starts_with("text/event-stream"))
    {
        return Ok(response);
    }
    if let Some(id) = request_id(response.headers()) {
        tracing::warn!(provider, status, request_id = %id, "model request failed");
    } else {
        tracing::warn!(provider, status, "model request failed");
    }
    let body = read_bounded(response, timeout).await;
    let api = ApiError::parse(&body);
    if (200..300).contains(&status) {
        // A success status without an event stream: some gateways report errors this way.
        return Err(match api {
            Some(api) => api.into_error(provider, None, retry_after, secret),
            None => LlmError::Protocol {
                provider: provider.to_owned(),
                message: format!(
                    "expected an event stream, got {}",
                    if content_type.is_empty() {
                        "no content type"
                    } else {
                        &content_type
                    }
                ),
            },
        });
    }
    let api = api.unwrap_or_else(|| ApiError {
        message: String::from_utf8_lossy(&body).trim().to_owned(),
        kind: None,
        code: None,
    });
    Err(api.into_error(provider, Some(status), retry_after, secret))
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn read_bounded(mut response: reqwest::Response, timeout: Duration) -> Vec<u8> {
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_ERROR_BODY {
                body.truncate(MAX_ERROR_BODY);
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    body
}

/// The response body as a byte stream whose errors are plain messages: the whole error
/// chain (reqwest's top-level text is vague), without the URL, without the secret.
pub fn body_stream(
    response: reqwest::Response,
    secret: Option<String>,
) -> impl futures::Stream<Item = Result<impl AsRef<[u8]> + use<>, String>> + Send + 'static {
    use futures::TryStreamExt;
    response
        .bytes_stream()
        .map_err(move |e| scrub(&error_chain(&e.without_url()), secret.as_deref()))
}

/// Maps a failure to send the request or read the response.
pub fn transport_error(
    provider: &str,
    error: reqwest::Error,
    timeout: Duration,
    secret: Option<&str>,
) -> LlmError {
    if error.is_timeout() {
        return LlmError::Timeout {
            provider: provider.to_owned(),
            timeout,
        };
    }
    if error.is_builder() {
        return LlmError::InvalidRequest {
            provider: provider.to_owned(),
            message: scrub(&error_chain(&error.without_url()), secret),
        };
    }
    LlmError::Connection {
        provider: provider.to_owned(),
        message: scrub(&error_chain(&error.without_url()), secret),
    }
}

/// How long the provider asked to wait: `retry-after-ms`, else `retry-after` in seconds or as
/// an HTTP date (relative to `now`).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms.min(1e12) / 1000.0));
    }
    let value = header("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(1e9)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A provider's error object: OpenAI `{"error":{"message","type","code"}}`, Anthropic
/// `{"type":"error","error":{"type","message"}}`, or a bare `{"message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub message: String,
    /// `type`, e.g. `invalid_request_error`, `overloaded_error`.
    pub kind: Option<String>,
    /// `code` (a string or a number), e.g. `context_length_exceeded`, `502`.
    pub code: Option<String>,
}

fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl ApiError {
    /// Reads an error body; `None` when it is not JSON or has no error in it.
    pub fn parse(body: &[u8]) -> Option<ApiError> {
        let value: Value = serde_json::from_slice(body).ok()?;
        Self::from_value(&value)
    }

    /// Reads an error object, or an object with an `error` member.
    pub fn from_value(value: &Value) -> Option<ApiError> {
        let object = value.as_object()?;
        match object.get("error") {
            Some(Value::Object(inner)) => Some(ApiError {
                message: text_of(inner.get("message")).unwrap_or_default(),
                kind: text_of(inner.get("type")),
                code: text_of(inner.get("code")),
            }),
            Some(Value::String(message)) => Some(ApiError {
                message: message.clone(),
                kind: None,
                code: text_of(object.get("code")),
            }),
            _ => {
                let message = text_of(object.get("message"))?;
                Some(ApiError {
                    message,
                    kind: text_of(object.get("type")).filter(|t| t != "error"),
                    code: text_of(object.get("code")),
                })
            }
        }
    }

    fn mentions(&self, needle: &str) -> bool {
        self.kind.as_deref().is_some_and(|k| k.contains(needle))
            || self.code.as_deref().is_some_and(|c| c.contains(needle))
    }

    fn is_context_too_long(&self, status: Option<u16>) -> bool {
        if self.mentions("context_length")
            || self.mentions("request_too_large")
            || status == Some(413)
        {
            return true;
        }
        let message = self.message.to_ascii_lowercase();
        [
            "context length",
            "context_length",
            "context window",
            "maximum context",
            "prompt is too long",
            "too many tokens",
        ]
        .iter()
        .any(|p| message.contains(p))
    }

    /// The typed error. `status` is the HTTP status when the error came with one (not for an
    /// error event inside a stream).
    pub fn into_error(
        self,
        provider: &str,
        status: Option<u16>,
        retry_after: Option<Duration>,
        secret: Option<&str>,
    ) -> LlmError {
        let provider = provider.to_owned();
        // A numeric code in a 200 body (OpenRouter) is the upstream HTTP status.
        let status = status.or_else(|| self.code.as_deref().and_then(|c| c.parse::<u16>().ok()));
        let detail = match (&self.kind, &self.code) {
            (_, Some(code)) if code.parse::<u16>().is_err() => format!(" ({code})"),
            (Some(kind), _) => format!(" ({kind})"),
            _ => String::new(),
        };
        let text = if self.message.is_empty() {
            status.map_or_else(|| "no details".to_owned(), |s| format!("HTTP {s}"))
        } else {
            self.message.clone()
        };
        let message = scrub(&format!("{text}{detail}"), secret);
        if self.is_context_too_long(status) {
            return LlmError::ContextTooLong { provider, message };
        }
        if self.mentions("insufficient_quota") || self.mentions("billing") {
            // A 429 or 402 that retrying does not fix: the quota or the credit is exhausted.
            return LlmError::Other {
                provider,
                message,
                retryable: false,
            };
        }
        if matches!(status, Some(401 | 403))
            || self.mentions("authentication")
            || self.mentions("permission")
            || self.mentions("invalid_api_key")
        {
            return LlmError::Auth { provider, message };
        }
        if status == Some(429) || self.mentions("rate_limit") {
            return LlmError::RateLimited {
                provider,
                retry_after,
                message,
            };
        }
        if self.mentions("overloaded") {
            return LlmError::Status {
                provider,
                status: status.unwrap_or(529),
                message,
            };
        }
        match status {
            Some(400 | 422) => LlmError::InvalidRequest { provider, message },
            Some(status) => LlmError::Status {
                provider,
                status,
                message,
            },
            None if self.mentions("invalid_request") => {
                LlmError::InvalidRequest { provider, message }
            }
            None => LlmError::Other {
                provider,
                message,
                // Server-side failures usually pass; unknown ones are not retried blindly.
                retryable: self.mentions("server_error")
                    || self.mentions("api_error")
                    || self.mentions("timeout"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")]), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "250"), ("retry-after", "9")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn error_bodies_parse() {
        let openai = ApiError::parse(
            br#"{"error":{"message":"too long","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        )
        .unwrap();
        assert_eq!(openai.code.as_deref(), Some("context_length_exceeded"));
        let anthropic = ApiError::parse(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
        )
        .unwrap();
        assert_eq!(anthropic.kind.as_deref(), Some("overloaded_error"));
        let router =
            ApiError::parse(br#"{"error":{"message":"Upstream error","code":502}}"#).unwrap();
        assert_eq!(router.code.as_deref(), Some("502"));
        assert!(ApiError::parse(b"<html>").is_none());
        assert!(ApiError::parse(br#"{"choices":[]}"#).is_none());
    }

    #[test]
    fn mapping() {
        let err = |kind: Option<&str>, code: Option<&str>, msg: &str| ApiError {
            message: msg.to_owned(),
            kind: kind.map(str::to_owned),
            code: code.map(str::to_owned),
        };
        assert!(matches!(
            err(None, Some("context_length_exceeded"), "x").into_error("p", Some(400), None, None),
            LlmError::ContextTooLong { .. }
        ));
        assert!(matches!(
            err(
                Some("invalid_request_error"),
                None,
                "prompt is too long: 210000 tokens > 200000 maximum"
            )
            .into_error("p", Some(400), None, None),
            LlmError::ContextTooLong { .. }
        ));
        assert!(matches!(
            err(None, None, "bad").into_error("p", Some(400), None, None),
            LlmError::InvalidRequest { .. }
        ));
        assert!(matches!(
            err(None, None, "no").into_error("p", Some(403), None, None),
            LlmError::Auth { .. }
        ));
        let quota = err(
            Some("insufficient_quota"),
            Some("insufficient_quota"),
            "pay",
        )
        .into_error("p", Some(429), None, None);
        assert!(!quota.is_retryable());
        let overloaded =
            err(Some("overloaded_error"), None, "Overloaded").into_error("p", None, None, None);
        assert_eq!(
            overloaded,
            LlmError::Status {
                provider: "p".into(),
                status: 529,
                message: "Overloaded (overloaded_error)".into()
            }
        );
        assert!(overloaded.is_retryable());
        assert!(matches!(
            err(None, Some("502"), "Upstream").into_error("p", None, None, None),
            LlmError::Status { status: 502, .. }
        ));
        assert!(
            err(Some("server_error"), None, "oops")
                .into_error("p", None, None, None)
                .is_retryable()
        );
        assert!(
            !err(Some("weird"), None, "oops")
                .into_error("p", None, None, None)
                .is_retryable()
        );
    }

    #[test]
    fn scrub_removes_secret_and_bounds_length() {
        assert_eq!(
            scrub(
                "Incorrect API key provided: sk-secret-123.",
                Some("sk-secret-123")
            ),
            "Incorrect API key provided: [redacted]."
        );
        let long = "é".repeat(5000);
        assert_eq!(scrub(&long, None).chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
