//! Opt-in smoke test against the real API: runs only when ANTHROPIC_API_KEY is set
//! (model: ANTHROPIC_MODEL, default claude-3-5-haiku-latest).

use serde_json::json;
use switchboard::chat::{ChatContext, Role};
use switchboard::llm::{ChatRequest, FinishReason, ToolChoice, ToolDefinition, collect};

#[tokio::test]
async fn live_tool_calling_turn() {
    if std::env::var("ANTHROPIC_API_KEY").map_or(true, |k| k.trim().is_empty()) {
        println!("skipped: ANTHROPIC_API_KEY not set");
        return;
    }
    let model =
        std::env::var("ANTHROPIC_MODEL").unwrap_or_else(|_| "claude-3-5-haiku-latest".to_owned());
    let llm = switchboard_anthropic::from_spec(&format!("anthropic/{model}")).unwrap();
    let mut ctx = ChatContext::new();
    ctx.add_message(Role::System, "Use the tools to answer.");
    ctx.add_message(Role::User, "What's the weather in Paris right now?");
    let request = ChatRequest::new(ctx)
        .with_tools(vec![ToolDefinition {
            name: "get_weather".into(),
            description: "Current weather in a city.".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
            strict_parameters: None,
        }])
        .with_tool_choice(ToolChoice::Required);
    let answer = collect(llm.chat(request)).await.unwrap();
    assert_eq!(answer.finish_reason, Some(FinishReason::ToolCalls));
    let call = &answer.tool_calls[0];
    assert_eq!(call.name, "get_weather");
    let args: serde_json::Value = serde_json::from_str(&call.arguments).unwrap();
    assert!(args["city"].as_str().unwrap().contains("Paris"));
    assert!(answer.usage.unwrap().prompt_tokens > 0);
}
