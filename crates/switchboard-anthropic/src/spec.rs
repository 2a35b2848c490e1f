//! Provider strings such as `anthropic/claude-3-5-haiku-latest`.

use std::sync::Arc;

use switchboard::llm::Llm;

use crate::config::AnthropicConfig;
use crate::messages::AnthropicLlm;

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
    /// An environment variable the provider needs (its API key) is not set.
    #[error("{variable} is not set: {provider} needs it (set it in the environment)")]
    MissingKey {
        /// The provider.
        provider: String,
        /// The environment variable to set.
        variable: &'static str,
    },
}

/// The prefixes [`from_spec`] serves.
pub const PREFIXES: &str = "anthropic/";

/// Builds a model from a provider string, reading the key from the process environment.
///
/// `anthropic/<model>` uses `ANTHROPIC_API_KEY`, and `ANTHROPIC_BASE_URL` when set (default
/// `https://api.anthropic.com`). The model name is everything after the first `/`.
///
/// ```
/// use switchboard_anthropic::{ProviderError, from_spec_with_env};
///
/// let env = |name: &str| (name == "ANTHROPIC_API_KEY").then(|| "sk-ant-test".to_owned());
/// let llm = from_spec_with_env("anthropic/claude-3-5-haiku-latest", env).unwrap();
/// assert_eq!((llm.provider(), llm.model()), ("anthropic", "claude-3-5-haiku-latest"));
///
/// let Err(err) = from_spec_with_env("anthropic/claude-3-5-haiku-latest", |_| None) else { panic!() };
/// assert!(err.to_string().contains("ANTHROPIC_API_KEY"));
/// assert!(matches!(from_spec_with_env("openai/gpt-4o", env), Err(ProviderError::UnknownProvider { .. })));
/// ```
pub fn from_spec(spec: &str) -> Result<Arc<dyn Llm>, ProviderError> {
    from_spec_with_env(spec, |name| std::env::var(name).ok())
}

/// [`from_spec`] with the environment given as a function.
pub fn from_spec_with_env(
    spec: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Llm>, ProviderError> {
    let spec = spec.trim();
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let Some(model) = spec.strip_prefix("anthropic/") else {
        return Err(ProviderError::UnknownProvider {
            spec: spec.to_owned(),
            known: PREFIXES,
        });
    };
    if model.trim().is_empty() {
        return Err(ProviderError::MissingModel {
            spec: spec.to_owned(),
            expected: "anthropic/<model>",
        });
    }
    let key = env("ANTHROPIC_API_KEY").ok_or_else(|| ProviderError::MissingKey {
        provider: "anthropic".to_owned(),
        variable: "ANTHROPIC_API_KEY",
    })?;
    let mut config = AnthropicConfig::new().api_key(key);
    if let Some(url) = env("ANTHROPIC_BASE_URL") {
        config = config.with_base_url(url);
    }
    Ok(Arc::new(AnthropicLlm::new(config, model)))
}
