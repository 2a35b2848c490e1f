//! The expectation API over run results: every method, passing and failing.

use std::sync::Arc;

use serde_json::json;
use switchboard::chat::Role;
use switchboard::testing::{
    EventMatcher, ExpectationError, RunEventKind, ScriptedLlm, ScriptedReply, json_subset,
};
use switchboard::tools::{FunctionTool, ToolError};
use switchboard::{
    Agent, AgentContext, AgentSession, Handoff, RunContext, RunEvent, RunResult, async_trait,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct DayArgs {
    day: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoArgs {}

struct Desk;

#[async_trait]
impl Agent for Desk {
    fn instructions(&self) -> String {
        "You are the desk.".into()
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        vec![
            FunctionTool::new(
                "hours",
                "Opening hours of a day.",
                |_ctx: RunContext, a: DayArgs| async move { format!("open on {}", a.day) },
            ),
            FunctionTool::new(
                "book",
                "Books a visit.",
                |_ctx: RunContext, _a: NoArgs| async move {
                    Err::<String, _>(ToolError::new("the booking system is down"))
                },
            ),
            FunctionTool::new(
                "to_billing",
                "Transfers to billing.",
                |_ctx: RunContext, _a: NoArgs| async move { Handoff::to(Billing) },
            ),
        ]
    }
}

struct Billing;

#[async_trait]
impl Agent for Billing {
    fn instructions(&self) -> String {
        "You are billing.".into()
    }

    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        ctx.session().generate_reply("Greet as billing.").await?;
        Ok(())
    }
}

/// Never the target of a handoff.
struct Nobody;

/// Two runs:
///
/// `mixed`:   [0] message "Let me check."  [1] call hours(monday)  [2] call book()
///            [3] output "open on monday"  [4] error output of book  [5] message
/// `handoff`: [0] call to_billing()  [1] output ""  [2] handoff desk -> billing
///            [3] message "Billing here."
async fn runs() -> (RunResult, RunResult) {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                "Monday, and book me in",
                ScriptedReply::ToolCalls {
                    text: "Let me check.".into(),
                    calls: vec![
                        ("hours".into(), json!({"day": "monday"}).to_string()),
                        ("book".into(), "{}".into()),
                    ],
                },
            )
            .on(
                "after:book",
                ScriptedReply::text("We are open on Monday, but booking is down."),
            )
            .on(
                "billing please",
                ScriptedReply::tool("to_billing", json!({})),
            )
            .on("Greet as billing.", ScriptedReply::text("Billing here.")),
    );
    let session = AgentSession::builder().llm(llm).build();
    session.start(Desk).await.unwrap();
    let mixed = session.run("Monday, and book me in").await.unwrap();
    let handoff = session.run("billing please").await.unwrap();
    session.close().await;
    (mixed, handoff)
}

/// Asserts that the error lists every event and marks `marked` (or none).
fn assert_listing(error: &ExpectationError, result: &RunResult, marked: Option<usize>) {
    let text = error.to_string();
    assert!(text.starts_with(error.message()), "{text}");
    assert!(text.contains("events of the run:"), "{text}");
    for (i, event) in result.events().iter().enumerate() {
        let line = format!("[{i}] {}", event.describe());
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
        let is_marked = text.contains(&format!(">>> {line}"));
        assert_eq!(
            is_marked,
            Some(i) == marked,
            "mark of event {i} in:\n{text}"
        );
    }
    assert_eq!(error.position(), marked);
    // Debug is the same readable text, so `.unwrap()` shows the listing.
    assert_eq!(format!("{error:?}"), text);
}

#[tokio::test(start_paused = true)]
async fn walks_a_run_in_order() -> Result<(), ExpectationError> {
    let (mixed, _) = runs().await;
    let mut expect = mixed.expect();
    expect
        .next_event()?
        .is_message(Role::Assistant)?
        .text_contains("check")?;
    expect
        .next_event()?
        .is_function_call("hours")?
        .with_args(json!({"day": "monday"}))?;
    expect
        .next_event()?
        .is_function_call("book")?
        .with_args(json!({}))?;
    expect
        .next_event()?
        .is_function_call_output("open on monday")?
        .is_error(false)?;
    expect
        .next_event()?
        .is_function_call_output("the booking system is down")?
        .is_error(true)?;
    expect.next_event()?.is_message(Role::Assistant)?;
    assert_eq!(expect.position(), 6);
    assert_eq!(expect.remaining(), 0);
    expect.no_more_events()
}

#[tokio::test(start_paused = true)]
async fn next_event_fails_when_none_left() {
    let (_, handoff) = runs().await;
    let mut expect = handoff.expect();
    expect.skip_next(4).unwrap();
    let error = expect.next_event().unwrap_err();
    assert_eq!(
        error.message(),
        "Expected another event, but none left (all 4 events were consumed)."
    );
    assert_listing(&error, &handoff, None);
}

#[tokio::test(start_paused = true)]
async fn next_event_of_skips_other_kinds() -> Result<(), ExpectationError> {
    let (mixed, _) = runs().await;
    let mut expect = mixed.expect();
    let output = expect.next_event_of(RunEventKind::FunctionCallOutput)?;
    assert_eq!(output.index(), 3);
    output.is_function_call_output("open on monday")?;
    expect
        .next_event_of(RunEventKind::FunctionCallOutput)?
        .is_function_call_output("the booking system is down")?;
    assert_eq!(expect.position(), 5);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn next_event_of_fails_without_a_match_and_stays() {
    let (mixed, _) = runs().await;
    let mut expect = mixed.expect();
    expect.skip_next(1).unwrap();
    let error = expect
        .next_event_of(RunEventKind::AgentHandoff)
        .unwrap_err();
    assert_eq!(
        error.message(),
        "Expected another agent_handoff at or after event 1, but none left."
    );
    assert_listing(&error, &mixed, Some(1));
    assert_eq!(
        expect.position(),
        1,
        "a failed search does not move the cursor"
    );
}

#[tokio::test(start_paused = true)]
async fn next_matching_uses_the_whole_matcher() {
    let (mixed, _) = runs().await;
    let mut expect = mixed.expect();
    let found = expect
        .next_matching(EventMatcher::function_call("book", None))
        .unwrap();
    assert_eq!(found.index(), 2);
    let error = expect
        .next_matching(EventMatcher::function_call("hours", None))
        .unwrap_err();
    assert_eq!(
        error.message(),
        "Expected another function_call `hours` at or after event 3, but none left."
    );
    assert_listing(&error, &mixed, Some(3));
}

#[tokio::test(start_paused = true)]
async fn skip_next_event_if_moves_only_on_a_match() {
    let (mixed, _) = runs().await;
    let mut expect = mixed.expect();
    // No match: stays.
    assert!(
        expect
            .skip_next_event_if(EventMatcher::function_call("hours", None))
            .is_none()
    );
    assert_eq!(expect.position(), 0);
    // A kind is a matcher too.
    let skipped = expect
        .skip_next_event_if(RunEventKind::Message)
        .expect("the first event is a message");
    assert_eq!(skipped.index(), 0);
    assert_eq!(expect.position(), 1);
    // A detailed matcher that fails on the arguments does not move either.
    assert!(
        expect
            .skip_next_event_if(EventMatcher::function_call(
                "hours",
                json!({"day": "sunday"})
            ))
            .is_none()
    );
    assert!(
        expect
            .skip_next_event_if(EventMatcher::function_call(
                "hours",
                json!({"day": "monday"})
            ))
            .is_some()
    );
    // At the end there is nothing to skip.
    expect.skip_next(4).unwrap();
    assert!(expect.skip_next_event_if(EventMatcher::any()).is_none());
}

#[tokio::test(start_paused = true)]
async fn skip_next_skips_or_fails() {
    let (mixed, _) = runs().await;
    let mut expect = mixed.expect();
    expect
        .skip_next(2)
        .unwrap()
        .next_event()
        .unwrap()
        .is_function_call("book")
        .unwrap();
    let error = expect.skip_next(4).unwrap_err();
    assert_eq!(
        error.message(),
        "Expected to skip 4 events from event 3, but only 3 left."
    );
    assert_listing(&error, &mixed, None);
    assert_eq!(
        expect.position(),
        3,
        "a failed skip does not move the cursor"
    );
}

#[tokio::test(start_paused = true)]
async fn no_more_events_marks_the_first_extra_event() {
    let (_, handoff) = runs().await;
    let mut expect = handoff.expect();
    expect.skip_next(2).unwrap();
    let error = expect.no_more_events().unwrap_err();
    assert_eq!(
        error.message(),
        "Expected no more events, but 2 left, from event 2."
    );
    assert_listing(&error, &handoff, Some(2));
    expect.skip_next(2).unwrap();
    expect.no_more_events().unwrap();
}

#[tokio::test(start_paused = true)]
async fn at_gives_random_access_from_both_ends() -> Result<(), ExpectationError> {
    let (mixed, _) = runs().await;
    let expect = mixed.expect();
    expect.at(1)?.is_function_call("hours")?;
    expect.at(-1)?.is_message(Role::Assistant)?;
    expect
        .at(-6)?
        .is_message(Role::Assistant)?
        .text_contains("Let me")?;
    assert_eq!(
        expect.position(),
        0,
        "random access does not move the cursor"
    );
    for index in [6, -7] {
        let error = expect.at(index).unwrap_err();
        assert_eq!(
            error.message(),
            format!("Event index {index} is out of range: the run has 6 events.")
        );
        assert_listing(&error, &mixed, None);
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn range_limits_contains_checks() -> Result<(), ExpectationError> {
    let (mixed, _) = runs().await;
    let expect = mixed.expect();
    let calls = expect.range(1..3)?;
    assert_eq!(calls.len(), 2);
    assert!(!calls.is_empty());
    assert_eq!(calls.events()[0].kind_name(), "function_call");
    calls.contains_function_call("book", None)?;
    assert_eq!(expect.range(..)?.len(), 6);
    assert_eq!(expect.range(4..)?.len(), 2);
    assert_eq!(expect.range(0..=1)?.len(), 2);

    // The message is outside the range.
    let error = calls.contains_message(Role::Assistant).unwrap_err();
    assert_eq!(
        error.message(),
        "Expected a message from the assistant among events 1..3, but there is none."
    );
    assert_listing(&error, &mixed, None);

    let error = expect.range(2..9).unwrap_err();
    assert_eq!(
        error.message(),
        "Event range 2..9 is out of range: the run has 6 events."
    );
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = expect.range(4..2).unwrap_err();
    assert!(
        reversed
            .message()
            .starts_with("Event range 4..2 is out of range")
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn contains_function_call_matches_name_and_argument_subset() -> Result<(), ExpectationError> {
    let (mixed, _) = runs().await;
    let expect = mixed.expect();
    let call = expect.contains_function_call("hours", json!({"day": "monday"}))?;
    assert_eq!(call.call().name, "hours");
    assert_eq!(call.args(), json!({"day": "monday"}));
    expect.contains_function_call("book", None)?;

    let error = expect
        .contains_function_call("hours", json!({"day": "sunday"}))
        .unwrap_err();
    assert_eq!(
        error.message(),
        r#"Expected a function_call `hours` with args {"day":"sunday"} among events 0..6, but there is none."#
    );
    assert_listing(&error, &mixed, None);
    let error = expect.contains_function_call("cancel", None).unwrap_err();
    assert!(error.message().contains("function_call `cancel`"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn contains_message_finds_a_role() -> Result<(), ExpectationError> {
    let (mixed, _) = runs().await;
    let expect = mixed.expect();
    let message = expect.contains_message(Role::Assistant)?;
    assert_eq!(message.text(), "Let me check.");
    // The user's input is not an event of the run.
    let error = expect.contains_message(Role::User).unwrap_err();
    assert_eq!(
        error.message(),
        "Expected a message from the user among events 0..6, but there is none."
    );
    assert_listing(&error, &mixed, None);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn contains_function_call_output_checks_text_and_error_flag() -> Result<(), ExpectationError>
{
    let (mixed, _) = runs().await;
    let expect = mixed.expect();
    let output = expect.contains_function_call_output("the booking system is down", true)?;
    assert_eq!(output.output().name, "book");
    expect.contains_function_call_output("open on monday", None)?;

    let error = expect
        .contains_function_call_output("open on monday", true)
        .unwrap_err();
    assert_eq!(
        error.message(),
        r#"Expected a function_call_output "open on monday" (error) among events 0..6, but there is none."#
    );
    assert_listing(&error, &mixed, None);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn contains_agent_handoff_by_type_and_by_id() -> Result<(), ExpectationError> {
    let (mixed, handoff) = runs().await;
    let expect = handoff.expect();
    let found = expect.contains_agent_handoff::<Billing>()?;
    assert_eq!(found.handoff().new_agent_id, "billing");
    assert!(found.new_agent_type().ends_with("Billing"));
    expect.contains_agent_handoff_to("billing")?;

    let error = expect.contains_agent_handoff::<Nobody>().unwrap_err();
    assert!(
        error.message().starts_with("Expected an agent_handoff to ")
            && error.message().contains("Nobody among events 0..4"),
        "{}",
        error.message()
    );
    assert_listing(&error, &handoff, None);
    let error = expect.contains_agent_handoff_to("desk").unwrap_err();
    assert_eq!(
        error.message(),
        "Expected an agent_handoff to `desk` among events 0..4, but there is none."
    );
    let error = mixed
        .expect()
        .contains_agent_handoff_to("billing")
        .unwrap_err();
    assert!(error.message().contains("among events 0..6"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn is_message_checks_kind_and_role() {
    let (mixed, _) = runs().await;
    let expect = mixed.expect();
    expect.at(0).unwrap().is_message(Role::Assistant).unwrap();

    let error = expect.at(0).unwrap().is_message(Role::User).unwrap_err();
    assert_eq!(
        error.message(),
        "Event 0 is not a message from the user: expected a message from the user, found one from the assistant."
    );
    assert_listing(&error, &mixed, Some(0));

    let error = expect
        .at(1)
        .unwrap()
        .is_message(Role::Assistant)
        .unwrap_err();
    assert_eq!(
        error.message(),
        "Event 1 is not a message from the assistant: expected a message event, found a function_call."
    );
    assert_listing(&error, &mixed, Some(1));
}

#[tokio::test(start_paused = true)]
async fn text_contains_checks_the_message_text() {
    let (mixed, _) = runs().await;
    let message = mixed
        .expect()
        .at(-1)
        .unwrap()
        .is_message(Role::Assistant)
        .unwrap();
    message.text_contains("booking is down").unwrap();
    let error = message.text_contains("closed").unwrap_err();
    assert_eq!(
        error.message(),
        r#"Message 5 does not contain "closed": its text is "We are open on Monday, but booking is down."."#
    );
    assert_listing(&error, &mixed, Some(5));
}

#[tokio::test(start_paused = true)]
async fn is_function_call_checks_the_name() {
    let (mixed, _) = runs().await;
    let expect = mixed.expect();
    expect.at(1).unwrap().is_function_call("hours").unwrap();
    let error = expect.at(1).unwrap().is_function_call("book").unwrap_err();
    assert_eq!(
        error.message(),
        "Event 1 is not a function_call `book`: expected a call of `book`, found a call of `hours`."
    );
    assert_listing(&error, &mixed, Some(1));
    let error = expect.at(3).unwrap().is_function_call("hours").unwrap_err();
    assert!(
        error
            .message()
            .ends_with("expected a function_call event, found a function_call_output.")
    );
}

#[tokio::test(start_paused = true)]
async fn with_args_is_a_subset_match_naming_the_differing_path() {
    let (mixed, _) = runs().await;
    let call = mixed
        .expect()
        .at(1)
        .unwrap()
        .is_function_call("hours")
        .unwrap();
    call.with_args(json!({})).unwrap();
    call.with_args(json!({"day": "monday"})).unwrap();

    let error = call.with_args(json!({"day": "tuesday"})).unwrap_err();
    assert_eq!(
        error.message(),
        r#"Event 1 is not a function_call `hours` with args {"day":"tuesday"}: the arguments of `hours` do not contain {"day":"tuesday"}: at `day`: expected "tuesday", found "monday" (arguments: {"day":"monday"})."#
    );
    assert_listing(&error, &mixed, Some(1));
    let error = call.with_args(json!({"weeks": 2})).unwrap_err();
    assert!(
        error.message().contains("at `weeks`: missing"),
        "{}",
        error.message()
    );
}

#[tokio::test(start_paused = true)]
async fn is_function_call_output_checks_the_exact_text() {
    let (mixed, _) = runs().await;
    let expect = mixed.expect();
    expect
        .at(3)
        .unwrap()
        .is_function_call_output("open on monday")
        .unwrap();
    let error = expect
        .at(3)
        .unwrap()
        .is_function_call_output("open on")
        .unwrap_err();
    assert_eq!(
        error.message(),
        r#"Event 3 is not a function_call_output "open on": expected the output "open on", found "open on monday"."#
    );
    assert_listing(&error, &mixed, Some(3));
}

#[tokio::test(start_paused = true)]
async fn is_error_checks_the_error_flag() {
    let (mixed, _) = runs().await;
    let expect = mixed.expect();
    let output = expect.at(4).unwrap().as_function_call_output().unwrap();
    output.is_error(true).unwrap();
    let error = output.is_error(false).unwrap_err();
    assert_eq!(
        error.message(),
        r#"Event 4 is not a function_call_output (not an error): expected a non-error output, found an error output "the booking system is down"."#
    );
    assert_listing(&error, &mixed, Some(4));
}

#[tokio::test(start_paused = true)]
async fn is_agent_handoff_checks_the_agent_type() {
    let (_, handoff) = runs().await;
    let expect = handoff.expect();
    let found = expect.at(2).unwrap().is_agent_handoff::<Billing>().unwrap();
    found.from_agent("desk").unwrap();
    let error = found.from_agent("billing").unwrap_err();
    assert_eq!(
        error.message(),
        "Handoff 2 is not from `billing`: it is from `desk`."
    );

    let error = expect
        .at(2)
        .unwrap()
        .is_agent_handoff::<Nobody>()
        .unwrap_err();
    assert!(
        error
            .message()
            .contains("expected a handoff to an agent of type")
            && error.message().contains("found a handoff to `billing`"),
        "{}",
        error.message()
    );
    assert_listing(&error, &handoff, Some(2));
}

#[tokio::test(start_paused = true)]
async fn is_agent_handoff_to_checks_the_agent_id() {
    let (_, handoff) = runs().await;
    let expect = handoff.expect();
    expect
        .at(2)
        .unwrap()
        .is_agent_handoff_to("billing")
        .unwrap();
    let error = expect
        .at(2)
        .unwrap()
        .is_agent_handoff_to("desk")
        .unwrap_err();
    assert_eq!(
        error.message(),
        "Event 2 is not an agent_handoff to `desk`: expected a handoff to `desk`, found a handoff to `billing`."
    );
    assert_listing(&error, &handoff, Some(2));
    let error = expect
        .at(0)
        .unwrap()
        .is_agent_handoff_to("billing")
        .unwrap_err();
    assert!(
        error
            .message()
            .ends_with("expected an agent_handoff event, found a function_call.")
    );
}

#[tokio::test(start_paused = true)]
async fn the_exact_handoff_sequence() -> Result<(), ExpectationError> {
    let (_, handoff) = runs().await;
    let mut expect = handoff.expect();
    expect
        .next_event()?
        .is_function_call("to_billing")?
        .with_args(json!({}))?;
    expect.next_event()?.is_function_call_output("")?;
    expect.next_event()?.is_agent_handoff::<Billing>()?;
    expect
        .next_event()?
        .is_message(Role::Assistant)?
        .text_contains("Billing here")?;
    expect.no_more_events()
}

#[tokio::test(start_paused = true)]
async fn event_gives_the_raw_event_and_as_checks_only_the_kind() {
    let (mixed, _) = runs().await;
    let expect = mixed.expect();
    match expect.at(1).unwrap().event() {
        RunEvent::FunctionCall(call) => assert_eq!(call.name, "hours"),
        other => panic!("unexpected {other:?}"),
    }
    let call = expect.at(1).unwrap().as_function_call().unwrap();
    assert!(matches!(call.event(), RunEvent::FunctionCall(_)));
    let message = expect.at(0).unwrap().as_message().unwrap();
    assert_eq!(message.message().role, Role::Assistant);
    assert!(matches!(message.event(), RunEvent::Message(_)));

    let error = expect.at(0).unwrap().as_agent_handoff().unwrap_err();
    assert_eq!(
        error.message(),
        "Event 0 is not an agent_handoff: it is a message."
    );
    assert_listing(&error, &mixed, Some(0));
    let error = expect.at(0).unwrap().as_function_call_output().unwrap_err();
    assert_eq!(
        error.message(),
        "Event 0 is not a function_call_output: it is a message."
    );
}

#[tokio::test(start_paused = true)]
async fn matches_takes_any_matcher() {
    let (mixed, _) = runs().await;
    let expect = mixed.expect();
    let output = EventMatcher::FunctionCallOutput {
        output: None,
        contains: Some("booking".into()),
        is_error: Some(true),
    };
    expect.at(4).unwrap().matches(output.clone()).unwrap();
    let error = expect.at(3).unwrap().matches(output).unwrap_err();
    assert_eq!(
        error.message(),
        r#"Event 3 is not a function_call_output containing "booking" (error): expected the output to contain "booking", found "open on monday"."#
    );
    expect.at(0).unwrap().matches(EventMatcher::any()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn unwrap_panics_with_the_listing() {
    let (mixed, _) = runs().await;
    let panic = std::panic::catch_unwind(|| {
        mixed
            .expect()
            .at(0)
            .unwrap()
            .is_function_call("hours")
            .unwrap();
    })
    .unwrap_err();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        text.contains("Event 0 is not a function_call `hours`"),
        "{text}"
    );
    assert!(
        text.contains(">>> [0] message assistant: \"Let me check.\""),
        "{text}"
    );
    assert!(
        text.contains("    [1] function_call hours({\"day\":\"monday\"})"),
        "{text}"
    );
}

#[test]
fn json_subset_rules() {
    let actual = json!({"a": {"b": [1, {"c": "x", "d": true}]}, "n": 2.0, "z": null});
    assert!(json_subset(&json!({}), &actual).is_ok());
    assert!(json_subset(&json!({"a": {"b": [1, {"c": "x"}]}}), &actual).is_ok());
    assert!(
        json_subset(&json!({"n": 2}), &actual).is_ok(),
        "numbers compare by value"
    );
    assert!(json_subset(&json!({"z": null}), &actual).is_ok());
    assert_eq!(
        json_subset(&json!({"a": {"b": [1]}}), &actual).unwrap_err(),
        "at `a.b`: expected 1 elements, found 2"
    );
    assert_eq!(
        json_subset(&json!({"a": {"b": [1, {"c": "y"}]}}), &actual).unwrap_err(),
        r#"at `a.b[1].c`: expected "y", found "x""#
    );
    assert_eq!(
        json_subset(&json!({"q": 1}), &actual).unwrap_err(),
        "at `q`: missing"
    );
    assert_eq!(
        json_subset(&json!([1]), &actual).unwrap_err(),
        r#"at the top level: expected [1], found {"a":{"b":[1,{"c":"x","d":true}]},"n":2.0,"z":null}"#
    );
}

#[test]
fn matchers_describe_themselves() {
    assert_eq!(EventMatcher::any().to_string(), "any event");
    assert_eq!(
        EventMatcher::message(Role::Assistant).to_string(),
        "message from the assistant"
    );
    assert_eq!(
        EventMatcher::function_call_output("ok", false).to_string(),
        r#"function_call_output "ok" (not an error)"#
    );
    assert_eq!(
        EventMatcher::agent_handoff_to("billing").to_string(),
        "agent_handoff to `billing`"
    );
    assert_eq!(
        EventMatcher::from(RunEventKind::FunctionCall).to_string(),
        "function_call"
    );
    assert_eq!(RunEventKind::AgentHandoff.to_string(), "agent_handoff");
}

#[tokio::test(start_paused = true)]
async fn an_empty_run_says_so() {
    let llm = Arc::new(ScriptedLlm::new());
    let session = AgentSession::builder().llm(llm).build();
    let greeting = session.start(Nobody).await.unwrap();
    session.close().await;
    // The start of a session records the first agent taking over.
    let mut expect = greeting.expect();
    expect
        .next_event()
        .unwrap()
        .is_agent_handoff::<Nobody>()
        .unwrap();
    let error = expect.next_event().unwrap_err();
    assert!(error.to_string().contains("agent_handoff (none) -> nobody"));

    let empty = RunResult::default();
    let error = empty.expect().next_event().unwrap_err();
    assert_eq!(
        error.to_string(),
        "Expected another event, but none left (all 0 events were consumed).\nevents of the run:\n  (no events)"
    );
}

impl Agent for Nobody {
    fn instructions(&self) -> String {
        "nobody".into()
    }
}
