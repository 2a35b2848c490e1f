//! Provider strings.

mod common;

use common::*;
use switchboard::llm::collect;
use switchboard_openai::{ProviderError, from_spec, from_spec_with_env};
use switchboard_replay::ReplayServer;

fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn prefixes_name_provider_and_model() {
    let all = env(&[
        ("OPENAI_API_KEY", "k"),
        ("GROQ_API_KEY", "k"),
        ("OPENROUTER_API_KEY", "k"),
        ("DEEPSEEK_API_KEY", "k"),
        ("TOGETHER_API_KEY", "k"),
        ("AZURE_OPENAI_API_KEY", "k"),
        ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com"),
    ]);
    for (spec, provider, model) in [
        ("openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("openai-responses/gpt-4.1-mini", "openai", "gpt-4.1-mini"),
        ("azure/my-deployment", "azure", "my-deployment"),
        ("ollama/llama3.2:3b", "ollama", "llama3.2:3b"),
        ("groq/llama-3.1-8b-instant", "groq", "llama-3.1-8b-instant"),
        (
            "openrouter/meta-llama/llama-3.1-8b-instruct",
            "openrouter",
            "meta-llama/llama-3.1-8b-instruct",
        ),
        ("deepseek/deepseek-chat", "deepseek", "deepseek-chat"),
        (
            "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "together",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        ),
        (
            "openai-compatible:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B",
            "openai-compatible",
            "Qwen/Qwen2.5-7B",
        ),
    ] {
        let llm = from_spec_with_env(spec, &all).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!((llm.provider(), llm.model()), (provider, model), "{spec}");
    }
}

#[test]
fn missing_keys_name_the_variable() {
    for (spec, variable) in [
        ("openai/gpt-4o", "OPENAI_API_KEY"),
        ("openai-responses/gpt-4o", "OPENAI_API_KEY"),
        ("groq/x", "GROQ_API_KEY"),
        ("openrouter/x", "OPENROUTER_API_KEY"),
        ("deepseek/x", "DEEPSEEK_API_KEY"),
        ("together/x", "TOGETHER_API_KEY"),
        ("azure/x", "AZURE_OPENAI_ENDPOINT"),
    ] {
        let error = from_spec_with_env(spec, |_| None).err().unwrap();
        assert!(
            matches!(&error, ProviderError::MissingKey { variable: v, .. } if *v == variable),
            "{spec}: {error:?}"
        );
        assert!(error.to_string().contains(variable));
    }
    // An empty variable counts as missing.
    assert!(from_spec_with_env("groq/x", env(&[("GROQ_API_KEY", " ")])).is_err());
    // Ollama needs no key.
    assert!(from_spec_with_env("ollama/llama3.2", |_| None).is_ok());
}

#[test]
fn bad_specs() {
    assert!(matches!(
        from_spec("mistral/x"),
        Err(ProviderError::UnknownProvider { .. })
    ));
    assert!(matches!(
        from_spec("gpt-4o"),
        Err(ProviderError::UnknownProvider { .. })
    ));
    assert!(matches!(
        from_spec("ollama/"),
        Err(ProviderError::MissingModel { .. })
    ));
    assert!(matches!(
        from_spec("openai-compatible:http://127.0.0.1:8000/v1"),
        Err(ProviderError::MissingModel { .. })
    ));
    assert!(matches!(
        from_spec("openai-compatible:ftp://host/v1#m"),
        Err(ProviderError::InvalidUrl { .. })
    ));
}

#[tokio::test]
async fn base_url_and_compatible_key_variables_are_honoured() {
    let server = ReplayServer::start([
        sse("chat_text.sse"),
        sse("chat_text.sse"),
        sse("chat_text.sse"),
    ])
    .await;
    let base = format!("{}/v1", server.url());

    let openai_env = {
        let base = base.clone();
        move |name: &str| match name {
            "OPENAI_API_KEY" => Some(KEY.to_owned()),
            "OPENAI_BASE_URL" => Some(base.clone()),
            "OPENAI_ORG_ID" => Some("org-9".to_owned()),
            _ => None,
        }
    };
    let llm = from_spec_with_env("openai/gpt-4o-mini", openai_env).unwrap();
    collect(llm.chat(user("hi"))).await.unwrap();

    // openai-compatible never sends OPENAI_API_KEY to another host...
    let spec = format!("openai-compatible:{base}#local-model");
    let leaky = |name: &str| (name == "OPENAI_API_KEY").then(|| KEY.to_owned());
    collect(from_spec_with_env(&spec, leaky).unwrap().chat(user("hi")))
        .await
        .unwrap();
    // ...but sends its own key when set.
    let own = |name: &str| (name == "OPENAI_COMPATIBLE_API_KEY").then(|| "local-key".to_owned());
    collect(from_spec_with_env(&spec, own).unwrap().chat(user("hi")))
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(requests[0].header("openai-organization"), Some("org-9"));
    assert_eq!(requests[0].json().unwrap()["model"], "gpt-4o-mini");
    assert_eq!(requests[1].header("authorization"), None);
    assert_eq!(requests[1].json().unwrap()["model"], "local-model");
    assert_eq!(
        requests[2].header("authorization"),
        Some("Bearer local-key")
    );
}
