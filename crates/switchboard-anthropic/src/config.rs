//! Client configuration: endpoint, credentials, headers and request defaults.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

/// Anthropic's API (requests go to `<base>/v1/messages`).
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// The `anthropic-version` header sent by default.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Where and how to reach the Messages API.
///
/// The API key (and every extra header value) is redacted from `Debug` output and from error
/// messages.
///
/// ```
/// use switchboard_anthropic::AnthropicConfig;
///
/// let config = AnthropicConfig::new()
///     .api_key("sk-ant-not-real")
///     .max_tokens(1024)
///     .cache_system_prompt(true);
/// assert!(!format!("{config:?}").contains("sk-ant-not-real"));
/// ```
#[derive(Clone)]
pub struct AnthropicConfig {
    pub(crate) provider: String,
    pub(crate) base_url: String,
    pub(crate) api_key: Option<String>,
    pub(crate) version: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) max_tokens: u32,
    pub(crate) cache_system_prompt: bool,
    pub(crate) extra_body: Map<String, Value>,
    pub(crate) connect_timeout: Duration,
}

impl Default for AnthropicConfig {
    fn default() -> Self {
        AnthropicConfig::new()
    }
}

impl AnthropicConfig {
    /// Anthropic's API with no key yet, `max_tokens` 4096, provider name `anthropic`.
    pub fn new() -> Self {
        AnthropicConfig {
            provider: "anthropic".to_owned(),
            base_url: ANTHROPIC_BASE_URL.to_owned(),
            api_key: None,
            version: ANTHROPIC_VERSION.to_owned(),
            headers: Vec::new(),
            max_tokens: 4096,
            cache_system_prompt: false,
            extra_body: Map::new(),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Sets the API key (sent as `x-api-key`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Replaces the base URL (the part before `/v1/messages`), e.g. for a proxy or a test
    /// server.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The name reported by [`Llm::provider`](switchboard::llm::Llm::provider) and in errors.
    pub fn provider_name(mut self, name: impl Into<String>) -> Self {
        self.provider = name.into();
        self
    }

    /// The provider name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Replaces the `anthropic-version` header value.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Adds a header to every request (e.g. `anthropic-beta`). Values are treated as secrets in
    /// `Debug` output.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The answer's token limit (`max_tokens`, required by the API; default 4096).
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Marks the system prompt (and the tool list) as a prompt-cache breakpoint
    /// (`cache_control: {"type": "ephemeral"}`), so repeated turns read them from the cache.
    pub fn cache_system_prompt(mut self, cache: bool) -> Self {
        self.cache_system_prompt = cache;
        self
    }

    /// Adds a top-level field to every request body (e.g. `top_k`, `metadata`). It overrides a
    /// field the client would have set.
    pub fn extra_body(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra_body.insert(name.into(), value);
        self
    }

    /// How long establishing a connection may take (default 10 s). The wait for the answer and
    /// between chunks is the request's [`ConnOptions::timeout`](switchboard::llm::ConnOptions).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

impl fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, _)| (n.as_str(), "[redacted]"))
            .collect();
        f.debug_struct("AnthropicConfig")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("version", &self.version)
            .field("headers", &headers)
            .field("max_tokens", &self.max_tokens)
            .field("cache_system_prompt", &self.cache_system_prompt)
            .field("extra_body", &self.extra_body.keys().collect::<Vec<_>>())
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}
