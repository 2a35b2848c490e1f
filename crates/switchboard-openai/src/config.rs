//! Client configuration: endpoint, credentials, headers and protocol options.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

/// OpenAI's API.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Ollama's OpenAI-compatible endpoint on the local machine.
pub const OLLAMA_BASE_URL: &str = "http://localhost:11434/v1";
/// Groq's OpenAI-compatible API.
pub const GROQ_BASE_URL: &str = "https://api.groq.com/openai/v1";
/// OpenRouter's OpenAI-compatible API.
pub const OPENROUTER_BASE_URL: &str = "https://openrouter.ai/api/v1";
/// DeepSeek's OpenAI-compatible API.
pub const DEEPSEEK_BASE_URL: &str = "https://api.deepseek.com";
/// Together AI's OpenAI-compatible API.
pub const TOGETHER_BASE_URL: &str = "https://api.together.xyz/v1";

/// How the API key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>` (OpenAI and most compatible servers).
    Bearer,
    /// `api-key: <key>` (Azure OpenAI).
    ApiKeyHeader,
}

/// Where and how to reach an OpenAI-compatible server. One configuration serves OpenAI, Azure
/// OpenAI, Groq, Together, OpenRouter, DeepSeek, vLLM, the llama.cpp server and Ollama.
///
/// Built with chained setters. The API key (and every extra header value) is redacted from
/// `Debug` output and from error messages.
///
/// ```
/// use switchboard_openai::OpenAiConfig;
///
/// let config = OpenAiConfig::openai()
///     .api_key("sk-not-a-real-key")
///     .organization("org-123")
///     .strict_tools(true);
/// assert!(!format!("{config:?}").contains("sk-not-a-real-key"));
///
/// // A local vLLM server, reported as provider `vllm` in metrics and errors:
/// let local = OpenAiConfig::new("http://127.0.0.1:8000/v1").provider_name("vllm");
/// assert_eq!(local.base_url(), "http://127.0.0.1:8000/v1");
/// ```
#[derive(Clone)]
pub struct OpenAiConfig {
    pub(crate) provider: String,
    pub(crate) base_url: String,
    pub(crate) api_key: Option<String>,
    pub(crate) auth_style: AuthStyle,
    pub(crate) organization: Option<String>,
    pub(crate) project: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) strict_tools: bool,
    pub(crate) include_usage: bool,
    pub(crate) developer_role: bool,
    pub(crate) store: Option<bool>,
    pub(crate) extra_body: Map<String, Value>,
    pub(crate) connect_timeout: Duration,
}

impl OpenAiConfig {
    /// A server at `base_url` (the part before `/chat/completions`, e.g.
    /// `http://localhost:8000/v1`), with no key, reported as provider `openai-compatible`.
    /// Instructions are sent with the `system` role, which every compatible server accepts.
    pub fn new(base_url: impl Into<String>) -> Self {
        OpenAiConfig {
            provider: "openai-compatible".to_owned(),
            base_url: base_url.into(),
            api_key: None,
            auth_style: AuthStyle::Bearer,
            organization: None,
            project: None,
            headers: Vec::new(),
            query: Vec::new(),
            strict_tools: false,
            include_usage: true,
            developer_role: false,
            store: None,
            extra_body: Map::new(),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// OpenAI's API (provider `openai`), with `developer` instructions sent as they are. Set the
    /// key with [`api_key`](Self::api_key).
    pub fn openai() -> Self {
        OpenAiConfig {
            provider: "openai".to_owned(),
            developer_role: true,
            ..OpenAiConfig::new(OPENAI_BASE_URL)
        }
    }

    /// Ollama on this machine (provider `ollama`, no key).
    pub fn ollama() -> Self {
        OpenAiConfig::new(OLLAMA_BASE_URL).provider_name("ollama")
    }

    /// Groq (provider `groq`).
    pub fn groq() -> Self {
        OpenAiConfig::new(GROQ_BASE_URL).provider_name("groq")
    }

    /// OpenRouter (provider `openrouter`).
    pub fn openrouter() -> Self {
        OpenAiConfig::new(OPENROUTER_BASE_URL).provider_name("openrouter")
    }

    /// DeepSeek (provider `deepseek`).
    pub fn deepseek() -> Self {
        OpenAiConfig::new(DEEPSEEK_BASE_URL).provider_name("deepseek")
    }

    /// Together AI (provider `together`).
    pub fn together() -> Self {
        OpenAiConfig::new(TOGETHER_BASE_URL).provider_name("together")
    }

    /// An Azure OpenAI deployment (provider `azure`): requests go to
    /// `<endpoint>/openai/deployments/<deployment>/chat/completions?api-version=<api_version>`
    /// with the key in an `api-key` header. The model name given to
    /// [`OpenAiLlm::new`](crate::OpenAiLlm::new) is still sent in the body; Azure ignores it.
    ///
    /// ```
    /// use switchboard_openai::OpenAiConfig;
    ///
    /// let config = OpenAiConfig::azure("https://my-res.openai.azure.com", "gpt4o-prod", "2024-10-21")
    ///     .api_key("azure-key");
    /// assert_eq!(config.base_url(), "https://my-res.openai.azure.com/openai/deployments/gpt4o-prod");
    /// ```
    pub fn azure(endpoint: &str, deployment: &str, api_version: &str) -> Self {
        let base = format!(
            "{}/openai/deployments/{deployment}",
            endpoint.trim_end_matches('/')
        );
        OpenAiConfig {
            developer_role: true,
            ..OpenAiConfig::new(base)
        }
        .provider_name("azure")
        .azure_api_version(api_version)
    }

    /// The name reported by [`Llm::provider`](switchboard::llm::Llm::provider) and in errors.
    pub fn provider_name(mut self, name: impl Into<String>) -> Self {
        self.provider = name.into();
        self
    }

    /// Replaces the base URL.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The provider name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Sets the API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sends the key as `api-key: <key>` instead of a bearer token.
    pub fn auth_style(mut self, style: AuthStyle) -> Self {
        self.auth_style = style;
        self
    }

    /// Sets the `OpenAI-Organization` header.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    /// Sets the `OpenAI-Project` header.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// Adds a header to every request (e.g. OpenRouter's `HTTP-Referer`). Values are treated as
    /// secrets in `Debug` output.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a query parameter to every request URL.
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Azure style: adds `api-version=<version>` to every URL and sends the key in an `api-key`
    /// header.
    pub fn azure_api_version(self, version: impl Into<String>) -> Self {
        self.query("api-version", version)
            .auth_style(AuthStyle::ApiKeyHeader)
    }

    /// Strict tool schemas: tools that have
    /// [`strict_parameters`](switchboard::llm::ToolDefinition::strict_parameters) are sent with
    /// those and `"strict": true`. Off by default (not every compatible server supports it).
    pub fn strict_tools(mut self, strict: bool) -> Self {
        self.strict_tools = strict;
        self
    }

    /// Asks for a usage chunk at the end of Chat Completions streams
    /// (`stream_options.include_usage`, on by default). Turn it off for servers that reject
    /// `stream_options`.
    pub fn include_usage(mut self, include: bool) -> Self {
        self.include_usage = include;
        self
    }

    /// Sends developer instructions with the `developer` role (on for OpenAI and Azure); when
    /// off they are sent as `system`, which compatible servers understand.
    pub fn developer_role(mut self, supported: bool) -> Self {
        self.developer_role = supported;
        self
    }

    /// Responses API only: whether OpenAI keeps the response (`store`). Unset: the API's
    /// default.
    pub fn store(mut self, store: bool) -> Self {
        self.store = Some(store);
        self
    }

    /// Adds a top-level field to every request body (e.g. `max_completion_tokens`, `seed`,
    /// OpenRouter's `provider`). It overrides a field the client would have set.
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

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, _)| (n.as_str(), "[redacted]"))
            .collect();
        f.debug_struct("OpenAiConfig")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("auth_style", &self.auth_style)
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("headers", &headers)
            .field("query", &self.query)
            .field("strict_tools", &self.strict_tools)
            .field("include_usage", &self.include_usage)
            .field("developer_role", &self.developer_role)
            .field("store", &self.store)
            .field("extra_body", &self.extra_body.keys().collect::<Vec<_>>())
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}
