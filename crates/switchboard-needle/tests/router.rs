//! RouterLlm with scripted models: the router's calls win, otherwise the chat model speaks.

use std::sync::Arc;

use serde_json::json;
use switchboard::chat::{ChatContext, FunctionCall, FunctionCallOutput, Role};
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, ToolChoice, ToolDefinition, collect,
};
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard_needle::{ChatTools, RouterLlm, RouterOptions};

fn hours() -> ToolDefinition {
    ToolDefinition {
        name: "get_hours".into(),
        description: "Opening hours.".into(),
        parameters: json!({"type": "object", "properties": {}}),
        strict_parameters: None,
    }
}

fn asking(text: &str) -> ChatRequest {
    let mut ctx = ChatContext::new();
    ctx.add_message(Role::User, text);
    ChatRequest::new(ctx).with_tools([hours()])
}

/// A router that calls `get_hours` for "When are you open?" and nothing otherwise (an empty
/// text, like NeedleLlm).
fn router() -> Arc<ScriptedLlm> {
    Arc::new(
        ScriptedLlm::new()
            .with_model("router")
            .on(
                "When are you open?",
                ScriptedReply::tool("get_hours", json!({})),
            )
            .otherwise(ScriptedReply::text("")),
    )
}

fn chat() -> Arc<ScriptedLlm> {
    Arc::new(
        ScriptedLlm::new()
            .with_model("chat")
            .on("after:get_hours", ScriptedReply::echo_tool_output())
            .otherwise(ScriptedReply::text("Happy to help!")),
    )
}

fn served_by(chunks: &[ChatChunk]) -> Option<String> {
    chunks.iter().find_map(|c| match c {
        ChatChunk::ServedBy { model, .. } => Some(model.clone()),
        _ => None,
    })
}

async fn chunks(llm: &RouterLlm, request: ChatRequest) -> Vec<ChatChunk> {
    use futures::StreamExt;
    llm.chat(request)
        .map(|c| c.expect("no error"))
        .collect()
        .await
}

#[tokio::test]
async fn the_routers_tool_call_is_the_answer() {
    let (r, c) = (router(), chat());
    let llm = RouterLlm::new(r.clone(), c.clone());
    let chunks = chunks(&llm, asking("When are you open?")).await;
    assert_eq!(served_by(&chunks).as_deref(), Some("router"));
    assert!(chunks.contains(&ChatChunk::Finish(FinishReason::ToolCalls)));
    let response = collect(llm.chat(asking("When are you open?")))
        .await
        .unwrap();
    assert_eq!(response.tool_calls.len(), 1);
    assert_eq!(response.tool_calls[0].name, "get_hours");
    assert_eq!(response.text, "");
    assert_eq!(c.request_count(), 0, "the chat model is not asked");
}

#[tokio::test]
async fn without_a_call_the_chat_model_speaks_without_tools() {
    let (r, c) = (router(), chat());
    let llm = RouterLlm::new(r.clone(), c.clone());
    let chunks = chunks(&llm, asking("Tell me a joke")).await;
    assert_eq!(served_by(&chunks).as_deref(), Some("chat"));
    let response = collect(llm.chat(asking("Tell me a joke"))).await.unwrap();
    assert_eq!(response.text, "Happy to help!");
    assert!(response.tool_calls.is_empty());
    let seen = c.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].tools.is_empty(), "tools are stripped by default");
    assert_eq!(seen[0].tool_choice, ToolChoice::Auto);
    assert_eq!(r.request_count(), 2);
}

#[tokio::test]
async fn kept_tools_reach_the_chat_model() {
    let (r, c) = (router(), chat());
    let options = RouterOptions {
        chat_tools: ChatTools::Keep,
        ..RouterOptions::default()
    };
    let llm = RouterLlm::with_options(r, c.clone(), options);
    collect(llm.chat(asking("Tell me a joke"))).await.unwrap();
    assert_eq!(c.requests()[0].tools.len(), 1);
}

#[tokio::test]
async fn a_required_call_keeps_the_tools_for_the_chat_model() {
    let (r, c) = (router(), chat());
    let llm = RouterLlm::new(r, c.clone());
    let request = asking("Tell me a joke").with_tool_choice(ToolChoice::Required);
    collect(llm.chat(request)).await.unwrap();
    let seen = c.requests();
    assert_eq!(seen[0].tools.len(), 1);
    assert_eq!(seen[0].tool_choice, ToolChoice::Required);
}

#[tokio::test]
async fn requests_without_tools_or_with_tool_choice_none_skip_the_router() {
    let (r, c) = (router(), chat());
    let llm = RouterLlm::new(r.clone(), c.clone());
    let mut ctx = ChatContext::new();
    ctx.add_message(Role::User, "When are you open?");
    let bare = ChatRequest::new(ctx);
    assert_eq!(
        collect(llm.chat(bare)).await.unwrap().text,
        "Happy to help!"
    );
    let none = asking("When are you open?").with_tool_choice(ToolChoice::None);
    let response = collect(llm.chat(none)).await.unwrap();
    assert_eq!(response.text, "Happy to help!");
    assert!(response.tool_calls.is_empty());
    assert_eq!(r.request_count(), 0);
    assert_eq!(c.request_count(), 2);
}

#[tokio::test]
async fn after_the_tool_ran_the_chat_model_speaks_its_output() {
    let (r, c) = (router(), chat());
    let llm = RouterLlm::new(r, c.clone());
    let mut ctx = ChatContext::new();
    ctx.add_message(Role::User, "When are you open?");
    ctx.insert(FunctionCall::new("call_1", "get_hours", "{}"));
    ctx.insert(FunctionCallOutput::new(
        "call_1",
        "get_hours",
        "Nine to five, Monday to Friday.",
        false,
    ));
    let request = ChatRequest::new(ctx).with_tools([hours()]);
    let response = collect(llm.chat(request)).await.unwrap();
    assert_eq!(response.text, "Nine to five, Monday to Friday.");
}

fn failing_router() -> Arc<ScriptedLlm> {
    Arc::new(
        ScriptedLlm::new().otherwise(ScriptedReply::Error(LlmError::Protocol {
            provider: "needle".into(),
            message: "not JSON".into(),
        })),
    )
}

#[tokio::test]
async fn a_failing_router_hands_over_to_the_chat_model_by_default() {
    let c = chat();
    let llm = RouterLlm::new(failing_router(), c.clone());
    let response = collect(llm.chat(asking("When are you open?")))
        .await
        .unwrap();
    assert_eq!(response.text, "Happy to help!");
}

#[tokio::test]
async fn a_failing_router_can_fail_the_request() {
    let options = RouterOptions {
        chat_on_router_error: false,
        ..RouterOptions::default()
    };
    let c = chat();
    let llm = RouterLlm::with_options(failing_router(), c.clone(), options);
    let error = collect(llm.chat(asking("When are you open?")))
        .await
        .unwrap_err();
    assert!(matches!(error, LlmError::Protocol { .. }), "{error:?}");
    assert_eq!(c.request_count(), 0);
}

#[tokio::test]
async fn the_label_names_both_models() {
    let llm = RouterLlm::new(router(), chat());
    assert_eq!(llm.provider(), "router");
    assert_eq!(llm.model(), "scripted/router+scripted/chat");
}
