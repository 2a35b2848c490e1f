//! Provider strings such as `openai/gpt-4o-mini` or `ollama/llama3.2`.

use std::sync::Arc;

use switchboard::llm::Llm;

use crate::chat::OpenAiLlm;
use crate::config::OpenAiConfig;
use crate::responses::OpenAiResponsesLlm;

/// Why a provider string could not be turned into a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The prefix is not one this crate serves.
    #[error("unknown provider in {spec:?} (this crate serves: {known})")]
    UnknownProvider {
        /// The whole spec.
        spec: String,
        /// The prefixes this crate serves.
        known: &'static str,
    },
    /// The spec has no model name.
    #[error("no model name in {spec:?} (expected {expected})")]
    MissingModel {
        /// The whole spec.
        spec: String,
        /// The expected syntax.
        expected: &'static str,
    },
    /// An environment variable the provider needs (its API key, Azure's endpoint) is not set.
    #[error("{variable} is not set: {provider} needs it (set it in the environment)")]
    MissingKey {
        /// The provider.
        provider: String,
        /// The environment variable to set.
        variable: &'static str,
    },
    /// The base URL is not an http(s) URL.
    #[error("invalid base URL {url:?} in {spec:?}")]
    InvalidUrl {
        /// The whole spec.
        spec: String,
        /// The URL.
        url: String,
    },
}

/// The prefixes [`from_spec`] serves.
pub const PREFIXES: &str = "openai/, openai-responses/, azure/, ollama/, groq/, openrouter/, deepseek/, together/, openai-compatible:";

const COMPATIBLE_SYNTAX: &str = "openai-compatible:http://host:port/v1#<model>";

/// Builds a model from a provider string, reading keys from the process environment.
///
/// | spec | server | key variable |
/// |---|---|---|
/// | `openai/<model>` | `OPENAI_BASE_URL` or `https://api.openai.com/v1` (Chat Completions) | `OPENAI_API_KEY` (also `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`) |
/// | `openai-responses/<model>` | as `openai/`, but the Responses API | as `openai/` |
/// | `azure/<deployment>` | `AZURE_OPENAI_ENDPOINT`, api-version `OPENAI_API_VERSION` (default `2024-10-21`) | `AZURE_OPENAI_API_KEY` |
/// | `ollama/<model>` | `http://localhost:11434/v1` | none |
/// | `groq/<model>` | `https://api.groq.com/openai/v1` | `GROQ_API_KEY` |
/// | `openrouter/<model>` | `https://openrouter.ai/api/v1` | `OPENROUTER_API_KEY` |
/// | `deepseek/<model>` | `https://api.deepseek.com` | `DEEPSEEK_API_KEY` |
/// | `together/<model>` | `https://api.together.xyz/v1` | `TOGETHER_API_KEY` |
/// | `openai-compatible:<base-url>#<model>` | the base URL, e.g. `http://127.0.0.1:8000/v1` | `OPENAI_COMPATIBLE_API_KEY` if set (never `OPENAI_API_KEY`, which is not sent to other hosts) |
///
/// The model name is everything after the first `/` (so `openrouter/meta-llama/llama-3.1-8b`
/// names the model `meta-llama/llama-3.1-8b`), or after the last `#` for
/// `openai-compatible:`.
///
/// ```
/// use switchboard_openai::{ProviderError, from_spec};
///
/// let llm = from_spec("ollama/llama3.2").unwrap();
/// assert_eq!((llm.provider(), llm.model()), ("ollama", "llama3.2"));
///
/// let local = from_spec("openai-compatible:http://127.0.0.1:8080/v1#qwen2.5").unwrap();
/// assert_eq!(local.model(), "qwen2.5");
///
/// assert!(matches!(from_spec("mystery/x"), Err(ProviderError::UnknownProvider { .. })));
/// ```
pub fn from_spec(spec: &str) -> Result<Arc<dyn Llm>, ProviderError> {
    from_spec_with_env(spec, |name| std::env::var(name).ok())
}

/// [`from_spec`] with the environment given as a function (for tests and for configuration
/// that does not live in the process environment).
///
/// ```
/// use switchboard_openai::{ProviderError, from_spec_with_env};
///
/// let env = |name: &str| (name == "GROQ_API_KEY").then(|| "gsk-test".to_owned());
/// assert_eq!(from_spec_with_env("groq/llama-3.1-8b-instant", env).unwrap().provider(), "groq");
///
/// let Err(err) = from_spec_with_env("openai/gpt-4o-mini", |_| None) else { panic!() };
/// assert!(err.to_string().contains("OPENAI_API_KEY"));
/// ```
pub fn from_spec_with_env(
    spec: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Llm>, ProviderError> {
    let spec = spec.trim();
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(rest) = spec.strip_prefix("openai-compatible:") {
        let Some((url, model)) = rest.rsplit_once('#').filter(|(_, m)| !m.is_empty()) else {
            return Err(ProviderError::MissingModel {
                spec: spec.to_owned(),
                expected: COMPATIBLE_SYNTAX,
            });
        };
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || reqwest::Url::parse(url).is_err()
        {
            return Err(ProviderError::InvalidUrl {
                spec: spec.to_owned(),
                url: url.to_owned(),
            });
        }
        let mut config = OpenAiConfig::new(url);
        if let Some(key) = env("OPENAI_COMPATIBLE_API_KEY") {
            config = config.api_key(key);
        }
        return Ok(Arc::new(OpenAiLlm::new(config, model)));
    }

    let Some((prefix, model)) = spec.split_once('/') else {
        return Err(ProviderError::UnknownProvider {
            spec: spec.to_owned(),
            known: PREFIXES,
        });
    };
    let known = matches!(
        prefix,
        "openai"
            | "openai-responses"
            | "azure"
            | "ollama"
            | "groq"
            | "openrouter"
            | "deepseek"
            | "together"
    );
    if !known {
        return Err(ProviderError::UnknownProvider {
            spec: spec.to_owned(),
            known: PREFIXES,
        });
    }
    if model.trim().is_empty() {
        return Err(ProviderError::MissingModel {
            spec: spec.to_owned(),
            expected: "<provider>/<model>",
        });
    }
    let key = |variable: &'static str| {
        env(variable).ok_or_else(|| ProviderError::MissingKey {
            provider: prefix.to_owned(),
            variable,
        })
    };
    let openai = || -> Result<OpenAiConfig, ProviderError> {
        let mut config = OpenAiConfig::openai().api_key(key("OPENAI_API_KEY")?);
        if let Some(url) = env("OPENAI_BASE_URL") {
            config = config.with_base_url(url);
        }
        if let Some(org) = env("OPENAI_ORG_ID") {
            config = config.organization(org);
        }
        if let Some(project) = env("OPENAI_PROJECT_ID") {
            config = config.project(project);
        }
        Ok(config)
    };
    let llm: Arc<dyn Llm> = match prefix {
        "openai" => Arc::new(OpenAiLlm::new(openai()?, model)),
        "openai-responses" => Arc::new(OpenAiResponsesLlm::new(openai()?, model)),
        "azure" => {
            let endpoint = key("AZURE_OPENAI_ENDPOINT")?;
            let version = env("OPENAI_API_VERSION").unwrap_or_else(|| "2024-10-21".to_owned());
            let config = OpenAiConfig::azure(&endpoint, model, &version)
                .api_key(key("AZURE_OPENAI_API_KEY")?);
            Arc::new(OpenAiLlm::new(config, model))
        }
        "ollama" => Arc::new(OpenAiLlm::new(OpenAiConfig::ollama(), model)),
        "groq" => Arc::new(OpenAiLlm::new(
            OpenAiConfig::groq().api_key(key("GROQ_API_KEY")?),
            model,
        )),
        "openrouter" => Arc::new(OpenAiLlm::new(
            OpenAiConfig::openrouter().api_key(key("OPENROUTER_API_KEY")?),
            model,
        )),
        "deepseek" => Arc::new(OpenAiLlm::new(
            OpenAiConfig::deepseek().api_key(key("DEEPSEEK_API_KEY")?),
            model,
        )),
        _ => Arc::new(OpenAiLlm::new(
            OpenAiConfig::together().api_key(key("TOGETHER_API_KEY")?),
            model,
        )),
    };
    Ok(llm)
}
