//! NeedleLlm with the real engine and weights (installed by scripts/setup.sh).

mod common;

use std::sync::Arc;

use serde_json::json;
use switchboard::chat::{ChatContext, Role};
use switchboard::llm::{ChatRequest, FinishReason, Llm, ToolDefinition, collect};
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard_needle::{
    DateFact, Needle, NeedleError, NeedleLlm, NeedleOptions, NeedlePaths, RouterLlm,
};

fn book() -> ToolDefinition {
    ToolDefinition {
        name: "book_appointment".into(),
        description: "Book an appointment at the clinic.".into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "day": {"type": "string", "description": "Day of the week"},
                "time": {"type": "string", "description": "Time, HH:MM"}
            },
            "required": ["day", "time"]
        }),
        strict_parameters: None,
    }
}

fn hours() -> ToolDefinition {
    ToolDefinition {
        name: "get_hours".into(),
        description: "Return the clinic's opening hours for each day of the week.".into(),
        parameters: json!({"type": "object", "properties": {}, "required": []}),
        strict_parameters: None,
    }
}

fn asking(text: &str) -> ChatRequest {
    let mut ctx = ChatContext::new();
    ctx.add_message(Role::System, "You are the front desk of a clinic.");
    ctx.add_message(Role::Assistant, "Riverside Clinic, how can I help?");
    ctx.add_message(Role::User, text);
    ChatRequest::new(ctx).with_tools([book(), hours()])
}

fn needle() -> Arc<NeedleLlm> {
    let paths = common::ensure_setup();
    let dir = paths.library.parent().expect("a directory").to_owned();
    let needle = NeedleLlm::load(&dir).expect("load Needle");
    // Reproducible: no date fact (the day would change the prompt).
    Arc::new(needle.with_options(NeedleOptions {
        date: DateFact::Off,
        ..NeedleOptions::default()
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needle_picks_the_right_tool_and_nothing_for_small_talk() {
    let llm = needle();

    let booking = collect(llm.chat(asking("Can I book an appointment for Tuesday at 3pm?")))
        .await
        .expect("routing works");
    assert_eq!(booking.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(booking.tool_calls.len(), 1, "{booking:?}");
    let call = &booking.tool_calls[0];
    assert_eq!(call.name, "book_appointment");
    assert!(call.call_id.starts_with("call_"), "{call:?}");
    let args: serde_json::Value = serde_json::from_str(&call.arguments).expect("JSON arguments");
    assert!(
        args["day"]
            .as_str()
            .is_some_and(|d| d.to_lowercase().contains("tue")),
        "{args}"
    );
    assert!(
        args["time"]
            .as_str()
            .is_some_and(|t| t.contains("15") || t.contains('3')),
        "{args}"
    );
    assert!(booking.usage.is_some_and(|u| u.completion_tokens > 0));

    let hours = collect(llm.chat(asking("When are you open?")))
        .await
        .unwrap();
    assert_eq!(hours.tool_calls.len(), 1, "{hours:?}");
    assert_eq!(hours.tool_calls[0].name, "get_hours");
    assert_eq!(hours.tool_calls[0].arguments, "{}");

    let joke = collect(llm.chat(asking("Tell me a joke"))).await.unwrap();
    assert!(joke.tool_calls.is_empty(), "{joke:?}");
    assert_eq!(joke.text, "");
    assert_eq!(joke.finish_reason, Some(FinishReason::Stop));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_pairs_needle_with_a_chat_model() {
    let chat = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::text("Why did the nurse…")));
    let router = RouterLlm::new(needle(), chat.clone());
    let joke = collect(router.chat(asking("Tell me a joke")))
        .await
        .unwrap();
    assert_eq!(joke.text, "Why did the nurse…");
    assert!(joke.tool_calls.is_empty());
    assert_eq!(chat.request_count(), 1);
    assert!(chat.requests()[0].tools.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_different_tool_sets_are_serialised() {
    let llm = needle();
    let hours_only = {
        let mut ctx = ChatContext::new();
        ctx.add_message(Role::User, "What are your opening hours?");
        ChatRequest::new(ctx).with_tools([hours()])
    };
    let booking_only = {
        let mut ctx = ChatContext::new();
        ctx.add_message(Role::User, "Please book me in on Friday at 10am.");
        ChatRequest::new(ctx).with_tools([book()])
    };
    let (a, b) = tokio::join!(
        collect(llm.chat(hours_only)),
        collect(llm.chat(booking_only))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.tool_calls.len(), 1, "{a:?}");
    assert_eq!(a.tool_calls[0].name, "get_hours");
    assert_eq!(b.tool_calls.len(), 1, "{b:?}");
    assert_eq!(b.tool_calls[0].name, "book_appointment");
}

#[test]
fn the_engine_is_loaded_once_per_process() {
    let paths = common::ensure_setup();
    let first = Needle::load(&paths, true).unwrap();
    let second = Needle::load(&paths, false).unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert!(Arc::ptr_eq(&Needle::loaded().unwrap(), &first));
    // Other files (here: links to the same ones) cannot be loaded next to it.
    let dir = common::temp_dir("other");
    std::os::unix::fs::symlink(&paths.library, dir.join("libneedle3.so")).unwrap();
    std::os::unix::fs::symlink(&paths.weights, dir.join("needle3.cact")).unwrap();
    let error = Needle::load(&NeedlePaths::in_dir(&dir), true).unwrap_err();
    assert!(
        matches!(error, NeedleError::AlreadyLoaded { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("already loaded"), "{error}");
}
