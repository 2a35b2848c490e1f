//! Scenario files: parsing, running in virtual time, reports and JUnit XML.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard::testing::{
    CheckStatus, MatchMode, Scenario, ScenarioRunner, ScenarioStart, ScriptedLlm, ScriptedReply,
    junit_xml, write_junit,
};
use switchboard::tools::{FunctionTool, ToolError};
use switchboard::{Agent, AgentContext, AgentSession, Handoff, RunContext, async_trait};

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
                "get_opening_hours",
                "Opening hours of a day.",
                |_ctx: RunContext, a: DayArgs| async move {
                    match a.day.as_str() {
                        "sunday" => Ok(format!("Closed on {}.", a.day)),
                        "funday" => Err(ToolError::new("not a day")),
                        _ => Ok(format!("Open 9:00 to 13:00 on {}.", a.day)),
                    }
                },
            ),
            FunctionTool::new(
                "to_billing",
                "Transfers to billing.",
                |_ctx: RunContext, _a: NoArgs| async move { Handoff::to(Billing) },
            ),
        ]
    }

    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        ctx.session().say("Desk here, how can I help?").await?;
        Ok(())
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

/// An agent that says nothing on its own.
struct Quiet;

impl Agent for Quiet {
    fn instructions(&self) -> String {
        "You are quiet.".into()
    }
}

fn scripted(first_token: Duration) -> ScriptedLlm {
    ScriptedLlm::new()
        .with_time_to_first_token(first_token)
        .on(
            "Open on Saturday?",
            ScriptedReply::tool("get_opening_hours", json!({"day": "saturday"})),
        )
        .on(
            "And Sunday?",
            ScriptedReply::tool("get_opening_hours", json!({"day": "sunday"})),
        )
        .on("after:get_opening_hours", ScriptedReply::echo_tool_output())
        .on(
            "Billing, please.",
            ScriptedReply::tool("to_billing", json!({})),
        )
        .on("Greet as billing.", ScriptedReply::text("Billing here."))
        .otherwise(ScriptedReply::text("Sorry?"))
}

/// A runner that knows one workflow, `desk`, whose model waits `first_token` before each
/// answer.
fn runner_with(first_token: Duration) -> ScenarioRunner {
    ScenarioRunner::new(move |workflow| {
        let known = workflow == "desk";
        let workflow = workflow.to_owned();
        Box::pin(async move {
            if !known {
                return Err(format!("no workflow named `{workflow}`"));
            }
            let session = AgentSession::builder()
                .llm(Arc::new(scripted(first_token)))
                .build();
            let greeting = session.start(Desk).await.map_err(|e| e.to_string())?;
            Ok(ScenarioStart {
                session: Box::new(session),
                greeting,
            })
        })
    })
}

fn runner() -> ScenarioRunner {
    runner_with(Duration::ZERO)
}

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml(text, "test").unwrap()
}

const PASSING: &str = r#"
workflow = "desk"
name = "desk basics"

[start]
expect = [
  { agent_handoff = "desk" },
  { message = "assistant", contains = "how can I help" },
]

[[turn]]
user = "Open on Saturday?"
expect = [
  { function_call = "get_opening_hours", args = { day = "saturday" } },
  { function_call_output = "Open 9:00 to 13:00 on saturday.", is_error = false },
  { message = "assistant", contains = "9:00" },
]
max_virtual_ms = 50

[[turn]]
user = "Billing, please."
expect = [
  { function_call = "to_billing" },
  { output_contains = "" },
  { agent_handoff = "billing" },
  { message = "assistant", contains = "Billing here" },
]
"#;

#[test]
fn a_passing_scenario() {
    let report = runner().run_blocking(&scenario(PASSING));
    assert!(report.passed(), "{report}");
    assert_eq!(report.name, "desk basics");
    let labels: Vec<&str> = report.steps.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["start", "turn 1", "turn 2"]);
    let turn1 = &report.steps[1];
    let checks: Vec<&str> = turn1.checks.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(
        checks,
        [
            r#"expectation 1 (function_call `get_opening_hours` with args {"day":"saturday"})"#,
            r#"expectation 2 (function_call_output "Open 9:00 to 13:00 on saturday." (not an error))"#,
            r#"expectation 3 (message from the assistant containing "9:00")"#,
            "no further events",
            "virtual time within 50 ms",
        ]
    );
    let text = report.to_string();
    assert_eq!(
        text,
        "scenario `desk basics`, workflow `desk`\n\
         \x20 PASS  start  [0 ms virtual]\n\
         \x20 PASS  turn 1 \"Open on Saturday?\"  [0 ms virtual]\n\
         \x20 PASS  turn 2 \"Billing, please.\"  [0 ms virtual]\n\
         result: PASSED (3 steps)"
    );
    let xml = junit_xml(std::slice::from_ref(&report));
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"switchboard scenarios\" tests=\"3\" failures=\"0\" errors=\"0\" skipped=\"0\""), "{xml}");
    assert!(xml.contains("<testcase name=\"turn 1: Open on Saturday?\" classname=\"scenarios.desk basics\" time=\"0.000\">\n    </testcase>"), "{xml}");
    assert!(xml.contains("<property name=\"workflow\" value=\"desk\"/>"));
}

const FAILING: &str = r#"
workflow = "desk"

[[turn]]
user = "Open on Saturday?"
expect = [
  { function_call = "get_opening_hours", args = { day = "saturday" } },
  { function_call_output = "Open 9:00 to 13:00 on saturday." },
  { message = "assistant" },
]

[[turn]]
user = "And Sunday?"
expect = [
  { function_call = "get_opening_hours", args = { day = "sunday" } },
  { function_call_output = "Open 10:00 to 12:00 on sunday." },
  { message = "assistant", contains = "10:00" },
]

[[turn]]
user = "Open on Saturday?"
expect = [ { function_call = "get_opening_hours" } ]
"#;

#[test]
fn a_failing_scenario_names_the_turn_and_the_expectation() {
    let report = runner().run_blocking(&scenario(FAILING));
    assert!(!report.passed());
    let failed: Vec<&str> = report.failed_steps().map(|s| s.label.as_str()).collect();
    assert_eq!(failed, ["turn 2", "turn 3"], "{report}");

    let turn2 = &report.steps[1];
    assert_eq!(turn2.checks[0].status, CheckStatus::Passed);
    assert_eq!(
        turn2.checks[1].label,
        r#"expectation 2 (function_call_output "Open 10:00 to 12:00 on sunday.")"#
    );
    let CheckStatus::Failed(why) = &turn2.checks[1].status else {
        panic!("{report}");
    };
    assert_eq!(
        why,
        "Event 1 is not a function_call_output \"Open 10:00 to 12:00 on sunday.\": expected the output \"Open 10:00 to 12:00 on sunday.\", found \"Closed on sunday.\".\n\
         events of the run:\n\
         \x20   [0] function_call get_opening_hours({\"day\":\"sunday\"})\n\
         >>> [1] function_call_output get_opening_hours: \"Closed on sunday.\"\n\
         \x20   [2] message assistant: \"Closed on sunday.\""
    );
    assert_eq!(
        turn2.checks[2].status,
        CheckStatus::Skipped("not checked: an earlier expectation of this step failed".into())
    );
    // Turn 3 lists only the call: the output and the reply are extra events.
    let extra = &report.steps[2].checks[1];
    assert_eq!(extra.label, "no further events");
    assert!(
        matches!(&extra.status, CheckStatus::Failed(why) if why.starts_with("Expected no more events, but 2 left, from event 1."))
    );

    let text = report.to_string();
    println!("{text}");
    assert!(
        text.contains("  FAIL  turn 2 \"And Sunday?\"  [0 ms virtual]\n"),
        "{text}"
    );
    assert!(text.contains("        ok   expectation 1 (function_call `get_opening_hours` with args {\"day\":\"sunday\"})\n"), "{text}");
    assert!(text.contains("        FAIL expectation 2 (function_call_output \"Open 10:00 to 12:00 on sunday.\")\n             Event 1 is not a function_call_output"), "{text}");
    assert!(
        text.contains(
            "             >>> [1] function_call_output get_opening_hours: \"Closed on sunday.\"\n"
        ),
        "{text}"
    );
    assert!(text.contains("        skip expectation 3 (message from the assistant containing \"10:00\"): not checked"), "{text}");
    assert!(
        text.ends_with("result: FAILED (2 of 3 steps failed)"),
        "{text}"
    );

    let xml = junit_xml(std::slice::from_ref(&report));
    assert!(
        xml.contains("tests=\"3\" failures=\"2\" errors=\"0\""),
        "{xml}"
    );
    assert!(xml.contains("<testcase name=\"turn 2: And Sunday?\" classname=\"scenarios.test\" time=\"0.000\">\n      <failure message=\"expectation 2 (function_call_output &quot;Open 10:00 to 12:00 on sunday.&quot;): Event 1 is not a function_call_output &quot;Open 10:00 to 12:00 on sunday.&quot;: expected the output &quot;Open 10:00 to 12:00 on sunday.&quot;, found &quot;Closed on sunday.&quot;.\" type=\"expectation\">"), "{xml}");
    assert!(
        xml.contains("&gt;&gt;&gt; [1] function_call_output"),
        "{xml}"
    );
}

#[test]
fn in_order_matching_allows_gaps_and_extra_events() {
    let text = r#"
workflow = "desk"
[[turn]]
user = "Billing, please."
match = "in_order"
expect = [ { function_call = "to_billing" }, { message = "assistant", contains = "Billing here" } ]
"#;
    let parsed = scenario(text);
    assert_eq!(parsed.turns[0].match_mode, MatchMode::InOrder);
    let report = runner().run_blocking(&parsed);
    assert!(report.passed(), "{report}");

    // In order means in order.
    let reversed = text.replace(
        r#"{ function_call = "to_billing" }, { message = "assistant", contains = "Billing here" }"#,
        r#"{ message = "assistant", contains = "Billing here" }, { function_call = "to_billing" }"#,
    );
    let report = runner().run_blocking(&scenario(&reversed));
    let CheckStatus::Failed(why) = &report.steps[0].checks[1].status else {
        panic!("{report}");
    };
    assert!(
        why.starts_with(
            "Expected another function_call `to_billing` at or after event 4, but none left."
        ),
        "{why}"
    );
}

#[test]
fn latency_budgets_use_virtual_time() {
    let text = r#"
workflow = "desk"
[[turn]]
user = "Open on Saturday?"
max_virtual_ms = 250
[[turn]]
user = "Open on Saturday?"
max_virtual_ms = 500
"#;
    // Each model answer takes 200 ms of virtual time; a tool turn needs two answers.
    let report = runner_with(Duration::from_millis(200)).run_blocking(&scenario(text));
    assert_eq!(report.steps[0].virtual_time, Duration::from_millis(400));
    assert_eq!(
        report.steps[0].checks[0].status,
        CheckStatus::Failed(
            "the step took 400 ms of virtual time, over its budget of 250 ms".into()
        )
    );
    assert!(report.steps[1].passed(), "{report}");
    assert!(report.to_string().contains("[400 ms virtual]"));
    let xml = junit_xml(&[report]);
    assert!(xml.contains("time=\"0.400\""), "{xml}");
}

const JUDGED: &str = r#"
workflow = "desk"
judges = ["task_completion", "conciseness"]
reference = "Saturday hours are 9:00 to 13:00."

[[turn]]
user = "Open on Saturday?"
expect = [
  { function_call = "get_opening_hours" },
  { function_call_output = "Open 9:00 to 13:00 on saturday." },
  { message = "assistant", judge = "gives the Saturday opening hours" },
  { judge = "mentions 13:00" },
]
"#;

#[test]
fn judges_are_skipped_without_a_judge_model() {
    let report = runner().run_blocking(&scenario(JUDGED));
    assert!(report.passed(), "{report}");
    let turn = &report.steps[0];
    assert_eq!(
        turn.checks[2].label,
        r#"expectation 3 (message from the assistant, judge "gives the Saturday opening hours")"#
    );
    assert_eq!(
        turn.checks[2].status,
        CheckStatus::Skipped("no judge model given".into())
    );
    assert_eq!(
        turn.checks[3].label,
        r#"expectation 4 (judge "mentions 13:00" on the last agent message)"#
    );
    assert!(matches!(turn.checks[3].status, CheckStatus::Skipped(_)));
    let judges = &report.steps[1];
    assert_eq!(judges.label, "judges");
    assert!(judges.skipped());
    let text = report.to_string();
    assert!(text.contains("  SKIP  judges  [0 ms virtual]\n        skip judge `task_completion`: no judge model given"), "{text}");
    let xml = junit_xml(&[report]);
    assert!(xml.contains("skipped=\"1\""), "{xml}");
    assert!(
        xml.contains("<skipped message=\"no judge model given\"/>"),
        "{xml}"
    );
    assert!(xml.contains("<system-out>skipped expectation 3"), "{xml}");
}

#[test]
fn a_step_with_only_judge_entries_checks_no_events() {
    let text = "workflow = \"desk\"\n[[turn]]\nuser = \"Open on Saturday?\"\nexpect = [{ judge = \"gives the hours\" }]\n";
    let report = runner().run_blocking(&scenario(text));
    assert!(report.passed(), "{report}");
    assert_eq!(report.steps[0].checks.len(), 1);
}

#[test]
fn judges_run_with_a_judge_model() {
    let judge = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::dynamic(|request| {
        let system = request.context.items()[0].as_message().unwrap().text();
        let user = request.context.items()[1].as_message().unwrap().text();
        if system.contains("check_intent") {
            let success = user.contains("Saturday opening hours");
            ScriptedReply::tool(
                "check_intent",
                json!({"success": success, "reason": if success { "It does." } else { "It does not say 13:00 clearly." }}),
            )
        } else if system.contains("Criterion `conciseness`") {
            ScriptedReply::tool("submit_verdict", json!({"verdict": "fail", "reasoning": "Rambles."}))
        } else {
            ScriptedReply::tool("submit_verdict", json!({"verdict": "pass", "reasoning": "Done."}))
        }
    })));
    let report = runner()
        .with_judge(judge.clone())
        .run_blocking(&scenario(JUDGED));
    assert!(!report.passed());
    let turn = &report.steps[0];
    assert_eq!(turn.checks[2].status, CheckStatus::Passed, "{report}");
    assert_eq!(
        turn.checks[3].status,
        CheckStatus::Failed(
            "Judgement failed: It does not say 13:00 clearly.\njudged message: \"Open 9:00 to 13:00 on saturday.\"".into()
        )
    );
    let judges = &report.steps[1];
    assert_eq!(
        judges.checks[0].label,
        "judge `task_completion` (pass: Done.)"
    );
    assert_eq!(judges.checks[0].status, CheckStatus::Passed);
    assert_eq!(
        judges.checks[1].status,
        CheckStatus::Failed("verdict fail: Rambles.".into())
    );
    // 2 intent checks + 2 conversation judges; the judges saw the reference.
    assert_eq!(judge.request_count(), 4);
    assert!(judge.requests().iter().any(|r| {
        r.context.items()[1]
            .as_message()
            .unwrap()
            .text()
            .contains("Saturday hours are 9:00 to 13:00.")
    }));
}

#[test]
fn judge_verdicts_are_cached_across_runs() {
    let dir =
        std::env::temp_dir().join(format!("switchboard-scenario-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let judge = Arc::new(
        ScriptedLlm::new().otherwise(ScriptedReply::dynamic(|request| {
            if request.tools[0].name == "check_intent" {
                ScriptedReply::tool("check_intent", json!({"success": true, "reason": "ok"}))
            } else {
                ScriptedReply::tool(
                    "submit_verdict",
                    json!({"verdict": "pass", "reasoning": "ok"}),
                )
            }
        })),
    );
    let runner = runner()
        .with_judge(judge.clone())
        .with_verdict_cache(switchboard::testing::VerdictCache::new(&dir));
    assert!(runner.run_blocking(&scenario(JUDGED)).passed());
    assert_eq!(judge.request_count(), 4);
    assert!(runner.run_blocking(&scenario(JUDGED)).passed());
    assert_eq!(
        judge.request_count(),
        4,
        "the second run is answered from the cache"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_turn_is_an_error_and_the_scenario_goes_on() {
    let runner = ScenarioRunner::new(|_| {
        Box::pin(async {
            // No script for "boom": the model request fails.
            let llm = Arc::new(ScriptedLlm::new().on("hi", ScriptedReply::text("Hello.")));
            let session = AgentSession::builder().llm(llm).build();
            let greeting = session.start(Quiet).await.map_err(|e| e.to_string())?;
            Ok(ScenarioStart {
                session: Box::new(session),
                greeting,
            })
        })
    });
    let report = runner.run_blocking(&scenario(
        "workflow = \"any\"\n[[turn]]\nuser = \"boom\"\n[[turn]]\nuser = \"hi\"\nexpect = [{ message = \"assistant\", contains = \"Hello\" }]\n",
    ));
    let error = report.steps[0].error.as_deref().unwrap_or_default();
    assert!(error.starts_with("the turn failed:"), "{report}");
    assert!(report.steps[1].passed(), "{report}");
    assert!(report.to_string().contains("  ERROR turn 1 \"boom\""));
    let xml = junit_xml(&[report]);
    assert!(xml.contains("errors=\"1\""), "{xml}");
    assert!(xml.contains("<error message=\"the turn failed:"), "{xml}");
}

#[test]
fn an_unknown_workflow_is_a_scenario_error() {
    let report = runner().run_blocking(&scenario("workflow = \"nope\"\n[[turn]]\nuser = \"hi\"\n"));
    assert!(!report.passed());
    assert_eq!(
        report.error.as_deref(),
        Some("cannot start workflow `nope`: no workflow named `nope`")
    );
    assert_eq!(
        report.to_string(),
        "scenario `test`, workflow `nope`\n  ERROR cannot start workflow `nope`: no workflow named `nope`\nresult: ERROR"
    );
}

#[test]
fn invalid_files_are_rejected_with_the_place_of_the_problem() {
    let cases = [
        ("[[turn]]\nuser = \"hi\"\n", "missing field `workflow`"),
        ("workflow = \"desk\"\n", "the scenario has no step"),
        (
            "workflow = \"desk\"\nbogus = 1\n[[turn]]\nuser = \"hi\"\n",
            "unknown field `bogus`",
        ),
        (
            "workflow = \"desk\"\n[[turn]]\nexpect = []\n",
            "turn 1: `user` is missing or empty",
        ),
        (
            "workflow = \"desk\"\n[[turn]]\nuser = \"hi\"\nexpect = [{ message = \"bot\" }]\n",
            "turn 1, expectation 1: unknown role \"bot\"",
        ),
        (
            "workflow = \"desk\"\n[[turn]]\nuser = \"hi\"\n[[turn]]\nuser = \"x\"\nexpect = [{ message = \"assistant\", function_call = \"f\" }]\n",
            "turn 2, expectation 1: give only one of message, function_call",
        ),
        (
            "workflow = \"desk\"\n[[turn]]\nuser = \"hi\"\nexpect = [{ function_call = \"f\", contains = \"x\" }]\n",
            "`contains` only goes with `message`",
        ),
        (
            "workflow = \"desk\"\n[[turn]]\nuser = \"hi\"\nexpect = [{ function_call = \"f\", judge = \"x\" }]\n",
            "`judge` only goes with `message`, or alone",
        ),
        (
            "workflow = \"desk\"\n[[turn]]\nuser = \"hi\"\nexpect = [{ }]\n",
            "say which event is expected",
        ),
        (
            "workflow = \"desk\"\n[[turn]]\nuser = \"hi\"\nexpect = [{ message = \"assistant\", colour = \"red\" }]\n",
            "unknown field `colour`",
        ),
        (
            "workflow = \"desk\"\n[[turn]]\nuser = \"hi\"\nmatch = \"loose\"\n",
            "unknown variant `loose`",
        ),
        (
            "workflow = \"desk\"\n[start]\nuser = \"hi\"\n",
            "[start] has no `user`",
        ),
        (
            "workflow = \"desk\"\njudges = [\"vibes\"]\n[[turn]]\nuser = \"hi\"\n",
            "unknown judge \"vibes\"; built-in judges: task_completion, handoff",
        ),
    ];
    for (text, expected) in cases {
        let error = Scenario::from_toml(text, "bad.toml").unwrap_err();
        assert_eq!(error.source_name, "bad.toml");
        assert!(
            error.to_string().contains(expected),
            "{text}\n---\n{error}\n--- should contain ---\n{expected}"
        );
    }
    // TOML errors point at the line.
    let error = Scenario::from_toml("workflow = \"desk\"\n[[turn]]\nuser = \n", "x").unwrap_err();
    assert!(error.message.contains("line 3"), "{error}");
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "switchboard-scenario-{}-{name}",
        std::process::id()
    ))
}

#[test]
fn files_run_and_junit_is_written() {
    let dir = temp_path("files");
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    let bad = dir.join("bad.toml");
    std::fs::write(&good, PASSING).unwrap();
    std::fs::write(&bad, FAILING).unwrap();
    let missing = dir.join("missing.toml");
    let reports = runner().run_files([&good, &bad, &missing]);
    assert_eq!(reports.len(), 3);
    assert!(reports[0].passed());
    assert!(!reports[1].passed());
    assert_eq!(reports[1].name, "bad", "named after the file");
    assert_eq!(reports[1].path.as_deref(), Some(bad.as_path()));
    assert!(
        reports[2]
            .error
            .as_deref()
            .unwrap()
            .contains("cannot read the file")
    );

    let junit = dir.join("out/junit.xml");
    write_junit(&junit, &reports).unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuites name=\"switchboard scenarios\" tests=\"7\" failures=\"2\" errors=\"1\" skipped=\"0\""), "{xml}");
    assert!(
        xml.contains(&format!("file=\"{}\"", good.display())),
        "{xml}"
    );
    assert!(xml.contains("<testcase name=\"load\""), "{xml}");
    assert_eq!(xml.matches("<testsuite ").count(), 3);
    assert_eq!(xml.matches("<testcase ").count(), 7);
    assert_eq!(xml.matches("</testcase>").count(), 7);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn run_blocking_works_inside_a_runtime_and_run_uses_the_callers() {
    let parsed = scenario(PASSING);
    assert!(runner().run_blocking(&parsed).passed());
    tokio::time::pause();
    let report = runner_with(Duration::from_millis(10)).run(&parsed).await;
    assert!(report.passed(), "{report}");
    // Two answers of 10 ms each (a runtime paused late may round each timer up by a tick).
    let took = report.steps[1].virtual_time;
    assert!(
        took >= Duration::from_millis(20) && took < Duration::from_millis(25),
        "{took:?}"
    );
}

#[test]
fn xml_is_escaped() {
    let text = "workflow = \"desk\"\n[[turn]]\nuser = \"<b>&'\\\"\\u0001\"\nexpect = [{ message = \"assistant\", contains = \"]]>\" }]\n";
    let report = runner().run_blocking(&scenario(text));
    let xml = junit_xml(&[report]);
    assert!(
        xml.contains("name=\"turn 1: &lt;b&gt;&amp;&apos;&quot;\u{fffd}\""),
        "{xml}"
    );
    assert!(!xml.contains("]]>"), "{xml}");
    assert!(!xml.contains('\u{1}'));
}

#[test]
fn the_guides_scenario_examples_parse() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/testing.md"
    ))
    .expect("docs/testing.md");
    let mut blocks = 0;
    let mut rest = guide.as_str();
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").expect("closed block");
        let block = &body[..end];
        if block.contains("workflow =") {
            Scenario::from_toml(block, "guide").unwrap_or_else(|e| panic!("{e}\n{block}"));
            blocks += 1;
        }
        rest = &body[end..];
    }
    assert!(blocks >= 1, "the guide shows a scenario file");
}
