//! The session runtime in text mode, in virtual time, with a scripted model.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use switchboard::chat::{ChatContext, ChatItem, ChatMessage, Role};
use switchboard::llm::{ChatChunk, LlmError, ToolCallDelta, ToolChoice};
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::tools::{FunctionTool, StopResponse, ToolError, ToolFlags};
use switchboard::{
    Agent, AgentContext, AgentSession, AgentState, CloseReason, EventKind, Handoff, ReplyOptions,
    RunContext, RunEvent, SayOptions, SessionError, SessionEvent, SpeechPriority, async_trait,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoArgs {}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct DayArgs {
    /// A day of the week.
    day: String,
    /// How many weeks ahead, 0 to 4.
    #[schemars(range(min = 0, max = 4))]
    weeks: Option<u8>,
}

/// Counts calls of the tools of [`Desk`].
#[derive(Default)]
struct Calls {
    hours: AtomicUsize,
    slow: AtomicUsize,
}

/// A configurable test agent.
struct Desk {
    calls: Arc<Calls>,
    greet: Option<&'static str>,
}

impl Desk {
    fn new() -> (Self, Arc<Calls>) {
        let calls = Arc::new(Calls::default());
        (
            Desk {
                calls: calls.clone(),
                greet: None,
            },
            calls,
        )
    }
}

struct Other;

#[async_trait]
impl Agent for Other {
    fn instructions(&self) -> String {
        "other agent".into()
    }
    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        ctx.session().generate_reply("Greet as other.").await?;
        Ok(())
    }
}

struct Third;

impl Agent for Third {
    fn instructions(&self) -> String {
        "third agent".into()
    }
}

#[async_trait]
impl Agent for Desk {
    fn instructions(&self) -> String {
        "desk".into()
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        let calls = self.calls.clone();
        let slow_calls = self.calls.clone();
        vec![
            FunctionTool::new(
                "hours",
                "Opening hours.",
                move |_ctx: RunContext, args: DayArgs| {
                    calls.hours.fetch_add(1, Ordering::SeqCst);
                    async move { format!("open on {} (+{} weeks)", args.day, args.weeks.unwrap_or(0)) }
                },
            ),
            FunctionTool::new(
                "slow",
                "Takes 10 s.",
                move |_ctx: RunContext, _a: NoArgs| {
                    slow_calls.slow.fetch_add(1, Ordering::SeqCst);
                    async move {
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        "slow done"
                    }
                },
            ),
            FunctionTool::new("fails", "Fails.", |_ctx: RunContext, _a: NoArgs| async {
                Err::<String, _>(ToolError::new("the booking system is down"))
            }),
            FunctionTool::new(
                "breaks",
                "Fails internally.",
                |_ctx: RunContext, _a: NoArgs| async {
                    Err::<String, _>(ToolError::internal("db password=hunter2 rejected"))
                },
            ),
            FunctionTool::new("panics", "Panics.", |_ctx: RunContext, _a: NoArgs| async {
                if true {
                    panic!("boom");
                }
                "unreachable"
            }),
            FunctionTool::new(
                "stop",
                "Ends the turn.",
                |_ctx: RunContext, _a: NoArgs| async { StopResponse },
            ),
            FunctionTool::new(
                "nothing",
                "Returns nothing.",
                |_ctx: RunContext, _a: NoArgs| async {},
            ),
            FunctionTool::new("zero", "Returns 0.", |_ctx: RunContext, _a: NoArgs| async {
                0
            }),
            FunctionTool::new(
                "to_other",
                "Hand off.",
                |_ctx: RunContext, _a: NoArgs| async { Handoff::to(Other) },
            ),
            FunctionTool::new(
                "to_other_saying",
                "Hand off with a result.",
                |_ctx: RunContext, _a: NoArgs| async {
                    Handoff::to(Other).with_result("transferring")
                },
            ),
            FunctionTool::new(
                "to_third",
                "Hand off to third.",
                |_ctx: RunContext, _a: NoArgs| async { Handoff::to(Third) },
            ),
            FunctionTool::new(
                "says",
                "Speaks from inside the tool.",
                |ctx: RunContext, _a: NoArgs| async move {
                    ctx.session()
                        .say("One moment please.")
                        .await
                        .map_err(ToolError::internal)?;
                    Ok("said")
                },
            ),
            FunctionTool::new(
                "secret",
                "Hidden on enter.",
                |_ctx: RunContext, _a: NoArgs| async { "s" },
            )
            .with_flags(ToolFlags::IGNORE_ON_ENTER),
        ]
    }

    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        if let Some(instructions) = self.greet {
            ctx.session().generate_reply(instructions).await?;
        }
        Ok(())
    }

    async fn on_user_turn_completed(
        &self,
        _ctx: AgentContext,
        _turn: &mut ChatContext,
        message: &mut ChatMessage,
    ) -> switchboard::Result<()> {
        if message.text().contains("ignore me") {
            return Err(StopResponse.into());
        }
        Ok(())
    }
}

async fn session_with(llm: &Arc<ScriptedLlm>) -> (AgentSession, Arc<Calls>) {
    let (desk, calls) = Desk::new();
    let session = AgentSession::builder().llm(llm.clone()).build();
    session.start(desk).await.unwrap();
    (session, calls)
}

fn kinds(result: &switchboard::RunResult) -> Vec<&'static str> {
    result.events().iter().map(|e| e.kind_name()).collect()
}

fn outputs(result: &switchboard::RunResult) -> Vec<(String, bool)> {
    result
        .events()
        .iter()
        .filter_map(|e| match e {
            RunEvent::FunctionCallOutput(o) => Some((o.output.clone(), o.is_error)),
            _ => None,
        })
        .collect()
}

fn call(name: &str, args: serde_json::Value) -> ScriptedReply {
    ScriptedReply::tool(name, args)
}

#[tokio::test(start_paused = true)]
async fn plain_reply() {
    let llm = Arc::new(ScriptedLlm::new().on("hi", ScriptedReply::text("Hello there!")));
    let (session, _) = session_with(&llm).await;
    let result = session.run("hi").await.unwrap();
    assert_eq!(kinds(&result), ["message"]);
    assert_eq!(result.last_reply().as_deref(), Some("Hello there!"));
    let request = &llm.requests()[0];
    assert_eq!(request.tool_choice, ToolChoice::Auto);
    // The instructions lead the context, the user message ends it.
    let items = request.context.items();
    assert!(
        matches!(&items[0], ChatItem::Message(m) if m.role == Role::System && m.text() == "desk")
    );
    assert!(matches!(items.last(), Some(ChatItem::Message(m)) if m.text() == "hi"));
    // Tools flagged ignore-on-enter are offered outside on_enter.
    assert!(request.tools.iter().any(|t| t.name == "secret"));
}

#[tokio::test(start_paused = true)]
async fn tool_call_with_follow_up_reply() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("hours?", call("hours", json!({"day": "monday"})))
            .on("after:hours", ScriptedReply::echo_tool_output()),
    );
    let (session, calls) = session_with(&llm).await;
    let result = session.run("hours?").await.unwrap();
    assert_eq!(
        kinds(&result),
        ["function_call", "function_call_output", "message"]
    );
    assert_eq!(
        outputs(&result),
        [("open on monday (+0 weeks)".to_owned(), false)]
    );
    assert_eq!(
        result.last_reply().as_deref(),
        Some("open on monday (+0 weeks)")
    );
    assert_eq!(calls.hours.load(Ordering::SeqCst), 1);
    assert_eq!(llm.request_count(), 2);
    // The follow-up sees the call and its output.
    let follow_up = &llm.requests()[1];
    let n = follow_up.context.len();
    assert!(
        matches!(&follow_up.context.items()[n - 2], ChatItem::FunctionCall(c) if c.name == "hours")
    );
    // History holds everything, in order.
    let history = session.history().await;
    let tail: Vec<_> = history.items()[history.len() - 4..]
        .iter()
        .map(|i| i.kind())
        .collect();
    use switchboard::chat::ItemKind::*;
    assert_eq!(tail, [Message, FunctionCall, FunctionCallOutput, Message]);
}

#[tokio::test(start_paused = true)]
async fn unknown_tool_gets_an_error_output_and_a_reply() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("go", call("teleport", json!({})))
            .on("after:teleport", ScriptedReply::text("I can't do that.")),
    );
    let (session, _) = session_with(&llm).await;
    let result = session.run("go").await.unwrap();
    let (output, is_error) = &outputs(&result)[0];
    assert!(is_error);
    assert!(
        output.starts_with("Unknown function: teleport - available tools: hours, slow"),
        "{output}"
    );
    assert_eq!(result.last_reply().as_deref(), Some("I can't do that."));
}

#[tokio::test(start_paused = true)]
async fn invalid_arguments_name_the_field_and_skip_the_tool() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("a", call("hours", json!({"weeks": 1})))
            .on("b", call("hours", json!({"day": "monday", "weeks": 9})))
            .on(
                "c",
                ScriptedReply::ToolCalls {
                    text: String::new(),
                    calls: vec![("hours".into(), "{\"day\": \"friday\"".into())],
                },
            )
            .on(
                "d",
                ScriptedReply::ToolCalls {
                    text: String::new(),
                    calls: vec![("hours".into(), "[1, 2]".into())],
                },
            )
            .on("after:hours", ScriptedReply::text("ok")),
    );
    let (session, calls) = session_with(&llm).await;
    let missing = session.run("a").await.unwrap();
    let (output, is_error) = &outputs(&missing)[0];
    assert!(
        *is_error
            && output.contains("Error parsing arguments for `hours`")
            && output.contains("day"),
        "{output}"
    );
    let out_of_range = session.run("b").await.unwrap();
    let (output, is_error) = &outputs(&out_of_range)[0];
    assert!(
        *is_error && output.contains("`weeks` must be at most 4"),
        "{output}"
    );
    assert_eq!(calls.hours.load(Ordering::SeqCst), 0);
    // Unclosed JSON is repaired; the canonical JSON is stored on the call.
    let repaired = session.run("c").await.unwrap();
    assert_eq!(
        outputs(&repaired),
        [("open on friday (+0 weeks)".to_owned(), false)]
    );
    assert!(
        matches!(&repaired.events()[0], RunEvent::FunctionCall(c) if c.arguments == r#"{"day":"friday"}"#)
    );
    let not_object = session.run("d").await.unwrap();
    assert!(outputs(&not_object)[0].1);
    assert_eq!(calls.hours.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn tool_error_versus_internal_error() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("a", call("fails", json!({})))
            .on("b", call("breaks", json!({})))
            .on("c", call("panics", json!({})))
            .otherwise(ScriptedReply::text("sorry")),
    );
    let (session, _) = session_with(&llm).await;
    let failed = session.run("a").await.unwrap();
    assert_eq!(
        outputs(&failed),
        [("the booking system is down".to_owned(), true)]
    );
    let broke = session.run("b").await.unwrap();
    assert_eq!(
        outputs(&broke),
        [("An internal error occurred".to_owned(), true)]
    );
    let panicked = session.run("c").await.unwrap();
    assert_eq!(
        outputs(&panicked),
        [("An internal error occurred".to_owned(), true)]
    );
    // Errors always get a reply; internal details never reach the model or the history.
    assert_eq!(panicked.last_reply().as_deref(), Some("sorry"));
    let history = serde_json::to_string(&session.history().await).unwrap();
    assert!(!history.contains("hunter2") && !history.contains("boom"));
}

#[tokio::test(start_paused = true)]
async fn stop_response_and_empty_outputs_ask_for_no_reply() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("stop", call("stop", json!({})))
            .on("nothing", call("nothing", json!({})))
            .on("zero", call("zero", json!({})))
            .on("after:zero", ScriptedReply::text("zero it is")),
    );
    let (session, _) = session_with(&llm).await;
    let stopped = session.run("stop").await.unwrap();
    assert_eq!(kinds(&stopped), ["function_call", "function_call_output"]);
    assert_eq!(outputs(&stopped), [(String::new(), false)]);
    let nothing = session.run("nothing").await.unwrap();
    assert_eq!(kinds(&nothing), ["function_call", "function_call_output"]);
    assert_eq!(llm.request_count(), 2);
    // 0 is a real output, shown as "0", and asks for a reply.
    let zero = session.run("zero").await.unwrap();
    assert_eq!(outputs(&zero), [("0".to_owned(), false)]);
    assert_eq!(zero.last_reply().as_deref(), Some("zero it is"));
}

#[tokio::test(start_paused = true)]
async fn handoff_without_and_with_a_spoken_result() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("bare", call("to_other", json!({})))
            .on("Greet as other.", ScriptedReply::text("Other here."))
            .on(
                "after:to_other_saying",
                ScriptedReply::text("Let me transfer you."),
            ),
    );
    let (session, _) = session_with(&llm).await;
    let bare = session.run("bare").await.unwrap();
    assert_eq!(
        kinds(&bare),
        [
            "function_call",
            "function_call_output",
            "agent_handoff",
            "message"
        ]
    );
    assert!(bare.events()[2].is_handoff_to::<Other>());
    assert_eq!(bare.last_reply().as_deref(), Some("Other here."));
    assert_eq!(llm.request_count(), 2, "tool call, new agent's greeting");

    let llm = Arc::new(
        ScriptedLlm::new()
            .on("saying", call("to_other_saying", json!({})))
            .on("Greet as other.", ScriptedReply::text("Other here."))
            .on(
                "after:to_other_saying",
                ScriptedReply::text("Let me transfer you."),
            ),
    );
    let (session, _) = session_with(&llm).await;
    let saying = session.run("saying").await.unwrap();
    assert_eq!(
        kinds(&saying),
        [
            "function_call",
            "function_call_output",
            "message",
            "agent_handoff",
            "message"
        ]
    );
    assert_eq!(outputs(&saying), [("transferring".to_owned(), false)]);
    let texts: Vec<_> = saying
        .events()
        .iter()
        .filter_map(|e| match e {
            RunEvent::Message(m) => Some(m.text()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["Let me transfer you.", "Other here."]);
    assert_eq!(llm.request_count(), 3);
    // The old agent's last reply could not call tools.
    assert_eq!(llm.requests()[1].tool_choice, ToolChoice::None);
    assert_eq!(session.current_agent_id().await.as_deref(), Some("other"));
    // The new agent starts fresh: its context has no trace of the desk's conversation.
    let greeting_ctx = &llm.requests()[2].context;
    assert!(
        !greeting_ctx
            .iter()
            .any(|i| matches!(i, ChatItem::Message(m) if m.text() == "saying"))
    );
}

#[tokio::test(start_paused = true)]
async fn first_handoff_of_a_step_wins() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                "both",
                ScriptedReply::ToolCalls {
                    text: String::new(),
                    calls: vec![
                        ("to_third".into(), "{}".into()),
                        ("to_other".into(), "{}".into()),
                    ],
                },
            )
            .otherwise(ScriptedReply::text("fine")),
    );
    let (session, _) = session_with(&llm).await;
    let result = session.run("both").await.unwrap();
    let outs = outputs(&result);
    assert_eq!(outs[0], (String::new(), false));
    assert!(
        outs[1].1 && outs[1].0.contains("only one handoff"),
        "{outs:?}"
    );
    assert!(result.events().iter().any(|e| e.is_handoff_to::<Third>()));
    assert!(!result.events().iter().any(|e| e.is_handoff_to::<Other>()));
    assert_eq!(session.current_agent_id().await.as_deref(), Some("third"));
}

#[tokio::test(start_paused = true)]
async fn max_tool_steps_forces_a_final_text_reply() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("loop", call("hours", json!({"day": "monday"})))
            .on("after:hours", call("hours", json!({"day": "monday"}))),
    );
    // The last forced reply is text.
    llm.push_keyed(
        "after:hours".into(),
        call("hours", json!({"day": "monday"})),
    );
    let (desk, calls) = Desk::new();
    let session = AgentSession::builder()
        .llm(llm.clone())
        .max_tool_steps(2)
        .build();
    session.start(desk).await.unwrap();
    // With tool choice none, the scripted model's tool call is ignored and the turn ends.
    let result = session.run("loop").await.unwrap();
    let choices: Vec<_> = llm
        .requests()
        .iter()
        .map(|r| r.tool_choice.clone())
        .collect();
    assert_eq!(
        choices,
        [
            ToolChoice::Auto,
            ToolChoice::Auto,
            ToolChoice::Auto,
            ToolChoice::None
        ]
    );
    assert_eq!(
        calls.hours.load(Ordering::SeqCst),
        3,
        "max_tool_steps + 1 tool rounds"
    );
    assert_eq!(outputs(&result).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn parallel_calls_run_concurrently_and_commit_in_call_order() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                "both",
                ScriptedReply::ToolCalls {
                    text: "Checking.".into(),
                    calls: vec![
                        ("slow".into(), "{}".into()),
                        ("hours".into(), r#"{"day":"tue"}"#.into()),
                    ],
                },
            )
            .on("after:hours", ScriptedReply::text("done")),
    );
    let (session, _) = session_with(&llm).await;
    let started = tokio::time::Instant::now();
    let result = session.run("both").await.unwrap();
    // Both ran at once: the step took as long as the slow one, not the sum.
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(
        kinds(&result),
        [
            "message",
            "function_call",
            "function_call",
            "function_call_output",
            "function_call_output",
            "message"
        ]
    );
    let names: Vec<_> = result
        .events()
        .iter()
        .filter_map(|e| match e {
            RunEvent::FunctionCallOutput(o) => Some(o.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["slow", "hours"]);
}

#[tokio::test(start_paused = true)]
async fn interrupting_a_reply_with_a_tool_in_flight_records_it_once() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                "slow",
                ScriptedReply::ToolCalls {
                    text: "Let me check.".into(),
                    calls: vec![("slow".into(), "{}".into())],
                },
            )
            .on("after:slow", ScriptedReply::text("should not be asked")),
    );
    let (session, calls) = session_with(&llm).await;
    let runner = session.clone();
    let run = tokio::spawn(async move { runner.run("slow").await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    session.interrupt(false).await.unwrap();
    let result = run.await.unwrap().unwrap();
    assert_eq!(calls.slow.load(Ordering::SeqCst), 1);
    assert_eq!(
        kinds(&result),
        ["message", "function_call", "function_call_output"]
    );
    assert_eq!(llm.request_count(), 1, "no follow-up after an interruption");
    let history = session.history().await;
    let count = |kind| history.iter().filter(|i| i.kind() == kind).count();
    assert_eq!(count(switchboard::chat::ItemKind::FunctionCall), 1);
    assert_eq!(count(switchboard::chat::ItemKind::FunctionCallOutput), 1);
}

#[tokio::test(start_paused = true)]
async fn say_and_generate_reply_from_a_tool_and_from_on_enter() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("Welcome the caller.", ScriptedReply::text("Welcome!"))
            .on("wait", call("says", json!({})))
            .on("after:says", ScriptedReply::text("Done waiting.")),
    );
    let (mut desk, _) = Desk::new();
    desk.greet = Some("Welcome the caller.");
    let session = AgentSession::builder().llm(llm.clone()).build();
    let greeting = session.start(desk).await.unwrap();
    assert_eq!(kinds(&greeting), ["agent_handoff", "message"]);
    assert_eq!(greeting.last_reply().as_deref(), Some("Welcome!"));
    // A reply generated in on_enter hides ignore-on-enter tools.
    assert!(!llm.requests()[0].tools.iter().any(|t| t.name == "secret"));
    let result = session.run("wait").await.unwrap();
    let texts: Vec<_> = result
        .events()
        .iter()
        .filter_map(|e| match e {
            RunEvent::Message(m) => Some(m.text()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["One moment please.", "Done waiting."]);
}

#[tokio::test(start_paused = true)]
async fn on_user_turn_completed_can_stop_the_response() {
    let llm = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::text("reply")));
    let (session, _) = session_with(&llm).await;
    let before = session.history().await.len();
    let result = session.run("please ignore me").await.unwrap();
    assert!(result.events().is_empty());
    assert_eq!(llm.request_count(), 0);
    assert_eq!(
        session.history().await.len(),
        before,
        "the user message is not recorded"
    );
    let result = session.run("hello").await.unwrap();
    assert_eq!(result.last_reply().as_deref(), Some("reply"));
}

#[tokio::test(start_paused = true)]
async fn a_second_concurrent_run_is_rejected() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .otherwise(ScriptedReply::text("slow"))
            .with_time_to_first_token(Duration::from_secs(1)),
    );
    let (session, _) = session_with(&llm).await;
    let runner = session.clone();
    let first = tokio::spawn(async move { runner.run("one").await });
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(matches!(
        session.run("two").await,
        Err(SessionError::RunInProgress)
    ));
    assert!(first.await.unwrap().is_ok());
    // The next run is accepted at once.
    assert!(session.run("three").await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn queue_plays_by_priority_then_fifo() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .otherwise(ScriptedReply::text("first"))
            .with_time_to_first_token(Duration::from_secs(1)),
    );
    let (session, _) = session_with(&llm).await;
    let first = session.generate_reply("busy");
    let low = session.say_with(
        "low",
        SayOptions {
            priority: SpeechPriority::Low,
            ..SayOptions::default()
        },
    );
    let normal_a = session.say("normal a");
    let high = session.say_with(
        "high",
        SayOptions {
            priority: SpeechPriority::High,
            ..SayOptions::default()
        },
    );
    let normal_b = session.say("normal b");
    for h in [&first, &low, &normal_a, &high, &normal_b] {
        h.await.unwrap();
    }
    let history = session.history().await;
    let said: Vec<_> = history
        .iter()
        .filter_map(|i| match i {
            ChatItem::Message(m) if m.role == Role::Assistant => Some(m.text()),
            _ => None,
        })
        .collect();
    assert_eq!(said, ["first", "high", "normal a", "normal b", "low"]);
}

#[tokio::test(start_paused = true)]
async fn interrupt_walk_stops_at_a_protected_speech() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .otherwise(ScriptedReply::text("long answer"))
            .with_time_to_first_token(Duration::from_secs(5)),
    );
    let (session, _) = session_with(&llm).await;
    let current = session.generate_reply("talk");
    let queued = session.say("queued");
    let protected = session.say_with(
        "protected",
        SayOptions {
            allow_interruptions: false,
            ..SayOptions::default()
        },
    );
    let behind = session.say("behind");
    tokio::time::sleep(Duration::from_millis(1)).await;
    session.interrupt(false).await.unwrap();
    assert!(current.interrupted());
    assert!(queued.interrupted());
    for h in [&protected, &behind] {
        h.await.unwrap();
        assert!(!h.interrupted());
    }
    let history = session.history().await;
    let said: Vec<_> = history
        .iter()
        .filter_map(|i| match i {
            ChatItem::Message(m) if m.role == Role::Assistant => Some(m.text()),
            _ => None,
        })
        .collect();
    assert_eq!(said, ["protected", "behind"]);
    // A protected current speech refuses a non-forced interrupt.
    let speaking =
        session.generate_reply(ReplyOptions::instructions("talk").with_allow_interruptions(false));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(session.interrupt(false).await.is_err());
    session.interrupt(true).await.unwrap();
    assert!(speaking.interrupted());
}

#[tokio::test(start_paused = true)]
async fn events_trace_states_items_and_tools() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("hours?", call("hours", json!({"day": "monday"})))
            .on("after:hours", ScriptedReply::text("Monday it is.")),
    );
    let (desk, _) = Desk::new();
    let session = AgentSession::builder().llm(llm.clone()).build();
    let mut events = session.subscribe();
    session.start(desk).await.unwrap();
    session.run("hours?").await.unwrap();
    session.close().await;
    let mut all: Vec<SessionEvent> = Vec::new();
    while let Ok(e) = events.try_recv() {
        all.push(e);
    }
    assert!(all.windows(2).all(|w| w[0].created_at < w[1].created_at));
    let states: Vec<_> = all
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AgentStateChanged { new_state, .. } => Some(*new_state),
            _ => None,
        })
        .collect();
    use AgentState::*;
    // Start, the tool step, the follow-up's text, done.
    assert_eq!(states, [Listening, Thinking, Speaking, Listening]);
    assert!(all.iter().any(|e| matches!(
        &e.kind,
        EventKind::SpeechCreated {
            user_initiated: false,
            ..
        }
    )));
    assert!(all.iter().any(|e| matches!(&e.kind, EventKind::FunctionToolsExecuted(t) if t.function_calls.len() == 1 && t.has_tool_reply())));
    assert!(
        all.iter()
            .any(|e| matches!(&e.kind, EventKind::LlmMetrics(m) if m.usage.is_some()))
    );
    assert!(matches!(
        all.last().map(|e| &e.kind),
        Some(EventKind::Close {
            reason: CloseReason::UserInitiated,
            ..
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn model_errors_fail_the_turn_keep_what_was_said_and_close_after_too_many() {
    let error = LlmError::Status {
        provider: "scripted".into(),
        status: 400,
        message: "bad request".into(),
    };
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                "cut",
                ScriptedReply::ChunksThenError(
                    vec![ChatChunk::Text("Half a ".into())],
                    error.clone(),
                ),
            )
            .on(
                "cut call",
                ScriptedReply::ChunksThenError(
                    vec![ChatChunk::ToolCall(ToolCallDelta {
                        index: 0,
                        id: Some("c1".into()),
                        name: Some("hours".into()),
                        arguments: "{\"day\":".into(),
                    })],
                    error.clone(),
                ),
            )
            .otherwise(ScriptedReply::Error(error)),
    );
    let (desk, calls) = Desk::new();
    let session = AgentSession::builder()
        .llm(llm.clone())
        .max_unrecoverable_errors(2)
        .build();
    let mut events = session.subscribe();
    session.start(desk).await.unwrap();
    match session.run("cut").await {
        Err(SessionError::TurnFailed { result, .. }) => {
            assert_eq!(result.last_reply().as_deref(), Some("Half a "))
        }
        other => panic!("expected a failed turn, got {other:?}"),
    }
    assert!(matches!(
        session.run("cut call").await,
        Err(SessionError::TurnFailed { .. })
    ));
    assert_eq!(
        calls.hours.load(Ordering::SeqCst),
        0,
        "a call cut mid-stream never runs"
    );
    let _ = session.run("again").await;
    // Three unrecoverable errors > 2 allowed: the session closed with reason `error`.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(session.is_closed());
    let mut close = None;
    while let Ok(e) = events.try_recv() {
        if let EventKind::Close { reason, .. } = e.kind {
            close = Some(reason);
        }
    }
    assert_eq!(close, Some(CloseReason::Error));
    assert!(
        session
            .history()
            .await
            .iter()
            .any(|i| matches!(i, ChatItem::Message(m) if m.text() == "Half a "))
    );
}

#[tokio::test(start_paused = true)]
async fn closing_mid_turn_cancels_a_tool_that_never_returns() {
    let llm = Arc::new(ScriptedLlm::new().on("slow", call("slow", json!({}))));
    let (session, _) = session_with(&llm).await;
    let runner = session.clone();
    let run = tokio::spawn(async move { runner.run("slow").await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    session.close().await;
    assert!(matches!(run.await.unwrap(), Err(SessionError::Closed)));
    // Closed sessions refuse work with clear errors, and keep their history.
    assert!(matches!(
        session.run("again").await,
        Err(SessionError::Closed)
    ));
    assert!(session.say("hello").await.is_err());
    let history = session.history().await;
    assert!(history.iter().any(
        |i| matches!(i, ChatItem::FunctionCallOutput(o) if o.output == "the tool was cancelled")
    ));
    session.close().await;
}

struct PanickyEnter;

#[async_trait]
impl Agent for PanickyEnter {
    fn instructions(&self) -> String {
        "panics on enter".into()
    }
    async fn on_enter(&self, _ctx: AgentContext) -> switchboard::Result<()> {
        panic!("on_enter bug");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_hook_is_reported_and_the_session_goes_on() {
    let llm = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::text("still here")));
    let session = AgentSession::builder().llm(llm).build();
    let mut events = session.subscribe();
    session.start(PanickyEnter).await.unwrap();
    let result = session.run("hello").await.unwrap();
    assert_eq!(result.last_reply().as_deref(), Some("still here"));
    let mut hook_error = false;
    while let Ok(e) = events.try_recv() {
        hook_error |= matches!(&e.kind, EventKind::Error { source: switchboard::session::ErrorSource::Hook(id), .. } if id == "panicky_enter");
    }
    assert!(hook_error);
}

#[tokio::test(start_paused = true)]
async fn update_agent_switches_in_call_order() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("Greet as other.", ScriptedReply::text("Other here."))
            .otherwise(ScriptedReply::text("ok")),
    );
    let (session, _) = session_with(&llm).await;
    session.update_agent(Other).unwrap();
    session.update_agent(Third).unwrap();
    let result = session.run("who are you").await.unwrap();
    assert_eq!(session.current_agent_id().await.as_deref(), Some("third"));
    let history = session.history().await;
    let handoffs: Vec<_> = history
        .iter()
        .filter_map(|i| match i {
            ChatItem::AgentHandoff(h) => Some((h.old_agent_id.clone(), h.new_agent_id.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        handoffs,
        [
            (None, "desk".to_owned()),
            (Some("desk".to_owned()), "other".to_owned()),
            (Some("other".to_owned()), "third".to_owned())
        ]
    );
    assert_eq!(result.last_reply().as_deref(), Some("ok"));
}

struct Twins;

impl Agent for Twins {
    fn instructions(&self) -> String {
        "has two tools with one name".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        let t = || {
            FunctionTool::new("same", "Same name.", |_ctx: RunContext, _a: NoArgs| async {
                "x"
            })
        };
        vec![t(), t()]
    }
}

#[tokio::test(start_paused = true)]
async fn duplicate_tool_names_are_refused_at_start() {
    let session = AgentSession::builder()
        .llm(Arc::new(ScriptedLlm::new()))
        .build();
    assert!(
        matches!(session.start(Twins).await, Err(SessionError::DuplicateTool(name)) if name == "same")
    );
}

#[tokio::test(start_paused = true)]
async fn operations_before_start_are_clear_errors() {
    let session = AgentSession::builder().build();
    assert!(matches!(
        session.run("hi").await,
        Err(SessionError::NotStarted)
    ));
    assert!(session.say("hi").await.is_err());
    let (desk, _) = Desk::new();
    session.start(desk).await.unwrap();
    let (desk, _) = Desk::new();
    assert!(matches!(
        session.start(desk).await,
        Err(SessionError::AlreadyStarted)
    ));
    // No model configured: the turn fails with a clear error.
    match session.run("hi").await {
        Err(SessionError::TurnFailed { error, .. }) => assert!(
            error
                .to_string()
                .contains("no LLM is configured for agent `desk`")
        ),
        other => panic!("expected NoLlm, got {other:?}"),
    }
}

struct Polite;

#[async_trait]
impl Agent for Polite {
    fn instructions(&self) -> String {
        "polite".into()
    }
    async fn on_exit(&self, ctx: AgentContext) -> switchboard::Result<()> {
        ctx.session().say("Goodbye from on_exit.").await?;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn drain_runs_on_exit_plays_queued_speech_then_refuses_turns() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .otherwise(ScriptedReply::text("queued reply"))
            .with_time_to_first_token(Duration::from_secs(1)),
    );
    let session = AgentSession::builder().llm(llm).build();
    session.start(Polite).await.unwrap();
    let queued = session.generate_reply("say something");
    session.drain().await.unwrap();
    assert!(queued.is_done() && !queued.interrupted());
    let said: Vec<_> = session
        .history()
        .await
        .iter()
        .filter_map(|i| match i {
            ChatItem::Message(m) if m.role == Role::Assistant => Some(m.text()),
            _ => None,
        })
        .collect();
    assert_eq!(said, ["queued reply", "Goodbye from on_exit."]);
    assert!(matches!(
        session.run("hello").await,
        Err(SessionError::Closed)
    ));
    session.close().await;
}

#[tokio::test(start_paused = true)]
async fn min_consecutive_speech_delay_spaces_out_speeches() {
    let llm = Arc::new(ScriptedLlm::new());
    let (desk, _) = Desk::new();
    let session = AgentSession::builder()
        .llm(llm)
        .min_consecutive_speech_delay(Duration::from_millis(700))
        .build();
    session.start(desk).await.unwrap();
    let started = tokio::time::Instant::now();
    let first = session.say("one");
    let second = session.say("two");
    first.await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(700));
    second.await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(700));
}

struct PanickyTurn;

#[async_trait]
impl Agent for PanickyTurn {
    fn instructions(&self) -> String {
        "panics on some turns".into()
    }
    async fn on_user_turn_completed(
        &self,
        _ctx: AgentContext,
        _turn: &mut ChatContext,
        message: &mut ChatMessage,
    ) -> switchboard::Result<()> {
        if message.text() == "boom" {
            panic!("turn hook bug");
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_turn_hook_skips_the_turn_reports_it_and_the_session_goes_on() {
    let llm = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::text("fine")));
    let session = AgentSession::builder().llm(llm.clone()).build();
    let mut events = session.subscribe();
    session.start(PanickyTurn).await.unwrap();
    let skipped = session.run("boom").await.unwrap();
    assert!(skipped.events().is_empty());
    assert_eq!(llm.request_count(), 0);
    assert_eq!(
        session.run("hello").await.unwrap().last_reply().as_deref(),
        Some("fine")
    );
    let mut reported = false;
    while let Ok(e) = events.try_recv() {
        reported |= matches!(&e.kind, EventKind::Error { message, .. } if message == "on_user_turn_completed panicked");
    }
    assert!(reported);
}

#[tokio::test(start_paused = true)]
async fn the_user_is_away_after_mutual_silence_and_back_on_the_next_turn() {
    let llm = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::text("hi")));
    let (desk, _) = Desk::new();
    let session = AgentSession::builder()
        .llm(llm)
        .user_away_timeout(Some(Duration::from_secs(15)))
        .build();
    let mut events = session.subscribe();
    session.start(desk).await.unwrap();
    session.run("hello").await.unwrap();
    let quiet_from = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(14)).await;
    let user_states = |events: &mut tokio::sync::mpsc::UnboundedReceiver<SessionEvent>| {
        let mut states = Vec::new();
        while let Ok(e) = events.try_recv() {
            if let EventKind::UserStateChanged { new_state, .. } = e.kind {
                states.push((new_state, e.created_at));
            }
        }
        states
    };
    assert!(
        user_states(&mut events).is_empty(),
        "not away before the timeout"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let away = user_states(&mut events);
    assert_eq!(away.len(), 1);
    assert_eq!(away[0].0, switchboard::session::UserState::Away);
    session.run("I'm back").await.unwrap();
    let back = user_states(&mut events);
    assert_eq!(
        back.iter().map(|s| s.0).collect::<Vec<_>>(),
        [switchboard::session::UserState::Listening]
    );
    assert!(quiet_from.elapsed() >= Duration::from_secs(16));

    // Disabled: never away.
    let (desk, _) = Desk::new();
    let quiet = AgentSession::builder()
        .llm(Arc::new(ScriptedLlm::new()))
        .user_away_timeout(None)
        .build();
    let mut events = quiet.subscribe();
    quiet.start(desk).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(user_states(&mut events).is_empty());
}
