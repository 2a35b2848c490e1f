//! Provider strings.

mod common;

use common::*;
use switchboard::llm::collect;
use switchboard_anthropic::{ProviderError, from_spec, from_spec_with_env};
use switchboard_replay::ReplayServer;

#[test]
fn bad_specs() {
    assert!(matches!(
        from_spec("openai/gpt-4o"),
        Err(ProviderError::UnknownProvider { .. })
    ));
    assert!(matches!(
        from_spec("anthropic/"),
        Err(ProviderError::MissingModel { .. })
    ));
    let Err(error) = from_spec_with_env("anthropic/claude", |_| None) else {
        panic!("a missing key must fail")
    };
    assert_eq!(
        error,
        ProviderError::MissingKey {
            provider: "anthropic".into(),
            variable: "ANTHROPIC_API_KEY"
        }
    );
}

#[tokio::test]
async fn base_url_variable_is_honoured() {
    let server = ReplayServer::start([sse("text.sse")]).await;
    let url = server.url().to_owned();
    let env = move |name: &str| match name {
        "ANTHROPIC_API_KEY" => Some(KEY.to_owned()),
        "ANTHROPIC_BASE_URL" => Some(url.clone()),
        _ => None,
    };
    let llm = from_spec_with_env("anthropic/claude-3-5-haiku-latest", env).unwrap();
    assert_eq!(llm.model(), "claude-3-5-haiku-latest");
    collect(llm.chat(user("hi"))).await.unwrap();
    let sent = &server.requests()[0];
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.json().unwrap()["model"], "claude-3-5-haiku-latest");
}
