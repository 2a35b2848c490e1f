//! The front desk, tested with the expectation API and with its scenario file.

use std::sync::Arc;

use serde_json::json;
use switchboard::chat::{ChatContext, Role};
use switchboard::testing::{
    ExpectationError, RunEventKind, ScenarioRunner, ScenarioSession, ScenarioStart, ScriptedLlm,
    ScriptedReply, junit_xml,
};
use switchboard::{AgentSession, RunResult, SessionError, async_trait};
use switchboard_examples::frontdesk::{self, Billing, Caller, FrontDesk};
use switchboard_examples::{Started, WorkflowSession, workflow, workflows};

/// The front desk on its scripted model, plus lines the demo does not have.
async fn session() -> (AgentSession<Caller>, RunResult) {
    let llm = frontdesk::scripted_llm()
        .on(
            "Are you open on Funday?",
            ScriptedReply::tool("get_opening_hours", json!({"day": "funday"})),
        )
        .on(
            "My account number is 48x913.",
            ScriptedReply::tool("look_up_balance", json!({"account": "48x913"})),
        )
        .on(
            "My account number is 4829.",
            ScriptedReply::tool("look_up_balance", json!({"account": "4829"})),
        );
    let session = AgentSession::with_userdata(Caller::default())
        .llm(Arc::new(llm))
        .build();
    let greeting = session.start(FrontDesk).await.unwrap();
    (session, greeting)
}

/// A session already handed to billing.
async fn billing_session() -> AgentSession<Caller> {
    let (session, _) = session().await;
    session
        .run("I have a question about my bill.")
        .await
        .unwrap();
    session
}

#[tokio::test(start_paused = true)]
async fn greets_the_caller() -> Result<(), ExpectationError> {
    let (session, greeting) = session().await;
    let mut expect = greeting.expect();
    expect
        .next_event()?
        .is_agent_handoff::<FrontDesk>()?
        .event();
    expect
        .next_event()?
        .is_message(Role::Assistant)?
        .text_contains("Riverside Clinic, front desk")?;
    expect.no_more_events()?;
    session.close().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn answers_opening_hours_from_the_tool() -> Result<(), ExpectationError> {
    let (session, _) = session().await;
    let result = session.run("Hi, are you open on Saturday?").await.unwrap();
    let mut expect = result.expect();
    expect
        .next_event()?
        .is_function_call("get_opening_hours")?
        .with_args(json!({"day": "saturday"}))?;
    expect
        .next_event()?
        .is_function_call_output("Open 9:00 to 13:00 on saturday.")?
        .is_error(false)?;
    expect
        .next_event()?
        .is_message(Role::Assistant)?
        .text_contains("9:00 to 13:00")?;
    expect.no_more_events()?;
    session.close().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn says_when_the_clinic_is_closed() -> Result<(), ExpectationError> {
    let (session, _) = session().await;
    let result = session.run("And on Sunday?").await.unwrap();
    let expect = result.expect();
    expect.contains_function_call("get_opening_hours", json!({"day": "sunday"}))?;
    expect.contains_function_call_output("Closed on sunday.", false)?;
    expect
        .at(-1)?
        .is_message(Role::Assistant)?
        .text_contains("Closed")?;
    session.close().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_invalid_day_is_an_error_output() -> Result<(), ExpectationError> {
    let (session, _) = session().await;
    let result = session.run("Are you open on Funday?").await.unwrap();
    let mut expect = result.expect();
    expect
        .next_event()?
        .is_function_call("get_opening_hours")?
        .with_args(json!({"day": "funday"}))?;
    let output = expect
        .next_event()?
        .is_function_call_output(
            "`funday` is not a day of the week; ask the caller which day they mean",
        )?
        .is_error(true)?;
    assert_eq!(output.output().name, "get_opening_hours");
    // The model hears about the error and answers the caller.
    expect.next_event()?.is_message(Role::Assistant)?;
    expect.no_more_events()?;
    session.close().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn hands_billing_questions_to_billing() -> Result<(), ExpectationError> {
    let (session, _) = session().await;
    let result = session
        .run("I have a question about my bill.")
        .await
        .unwrap();
    // The exact sequence: the call, its output, the front desk's reply, the handoff and
    // billing's greeting (from its on_enter), all in the same run.
    let mut expect = result.expect();
    expect
        .next_event()?
        .is_function_call("transfer_to_billing")?
        .with_args(json!({}))?;
    expect
        .next_event()?
        .is_function_call_output("Transferring you to billing now.")?
        .is_error(false)?;
    expect
        .next_event()?
        .is_message(Role::Assistant)?
        .text_contains("transfer you to billing")?;
    expect
        .next_event()?
        .is_agent_handoff::<Billing>()?
        .from_agent("front_desk")?;
    expect
        .next_event()?
        .is_message(Role::Assistant)?
        .text_contains("six-digit account number")?;
    expect.no_more_events()?;

    expect.contains_agent_handoff_to("billing")?;
    assert_eq!(session.current_agent_id().await.as_deref(), Some("billing"));
    session.close().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn looks_up_a_balance() -> Result<(), ExpectationError> {
    let session = billing_session().await;
    let result = session.run("My account number is 482913.").await.unwrap();
    let mut expect = result.expect();
    expect
        .next_event()?
        .is_function_call("look_up_balance")?
        .with_args(json!({"account": "482913"}))?;
    expect
        .next_event()?
        .is_function_call_output("The balance of account 482913 is $22.05.")?;
    expect.next_event()?.is_message(Role::Assistant)?;
    expect.no_more_events()?;
    assert_eq!(session.userdata().account.as_deref(), Some("482913"));
    session.close().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn rejects_an_invalid_account_number() -> Result<(), ExpectationError> {
    let session = billing_session().await;

    // Letters: the tool itself refuses.
    let letters = session.run("My account number is 48x913.").await.unwrap();
    let mut expect = letters.expect();
    expect
        .next_event_of(RunEventKind::FunctionCallOutput)?
        .is_function_call_output("an account number has only digits")?
        .is_error(true)?;
    expect.next_event()?.is_message(Role::Assistant)?;
    expect.no_more_events()?;

    // Too short: the arguments fail the schema before the tool runs.
    let short = session.run("My account number is 4829.").await.unwrap();
    let output = short
        .expect()
        .next_event_of(RunEventKind::FunctionCallOutput)?
        .as_function_call_output()?
        .is_error(true)?;
    assert!(
        output
            .output()
            .output
            .contains("`account` must be at least 6 characters long"),
        "{}",
        output.output().output
    );

    // Nothing was stored.
    assert_eq!(session.userdata().account, None);
    session.close().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_failed_expectation_shows_the_whole_run() {
    let (session, _) = session().await;
    let result = session.run("And on Sunday?").await.unwrap();
    let error = result
        .expect()
        .at(1)
        .unwrap()
        .is_function_call_output("Open on sunday.")
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Event 1 is not a function_call_output \"Open on sunday.\": expected the output \"Open on sunday.\", found \"Closed on sunday.\".\n\
         events of the run:\n\
         \x20   [0] function_call get_opening_hours({\"day\":\"sunday\"})\n\
         >>> [1] function_call_output get_opening_hours: \"Closed on sunday.\"\n\
         \x20   [2] message assistant: \"Closed on sunday.\""
    );
    session.close().await;
}

#[tokio::test(start_paused = true)]
async fn judges_the_reply_with_a_scripted_judge() -> Result<(), ExpectationError> {
    let (session, _) = session().await;
    let result = session.run("Hi, are you open on Saturday?").await.unwrap();
    let judge = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::tool(
        "check_intent",
        json!({"success": true, "reason": "It gives the Saturday hours."}),
    )));
    result
        .expect()
        .at(-1)?
        .is_message(Role::Assistant)?
        .judge(&judge, "tells the caller the Saturday opening hours")
        .await?;
    session.close().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The scenario file

/// Drives a registry session (type-erased) as a scenario session.
struct Registry(Box<dyn WorkflowSession>);

#[async_trait]
impl ScenarioSession for Registry {
    async fn run(&self, user_input: &str) -> Result<RunResult, SessionError> {
        self.0.run(user_input).await
    }
    async fn history(&self) -> ChatContext {
        self.0.history().await
    }
    async fn close(&self) {
        self.0.close().await
    }
}

/// A runner that starts the built-in workflows on their scripted models, as the CLI does.
fn registry_runner() -> ScenarioRunner {
    ScenarioRunner::new(|name| {
        let found = workflow(name);
        let name = name.to_owned();
        Box::pin(async move {
            let Some(workflow) = found else {
                let names: Vec<_> = workflows().iter().map(|w| w.name).collect();
                return Err(format!(
                    "no workflow named `{name}`; built-in workflows: {}",
                    names.join(", ")
                ));
            };
            let Started {
                session, greeting, ..
            } = (workflow.start)(
                (workflow.scripted_llm)(),
                switchboard_examples::Voice::none(),
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok(ScenarioStart {
                session: Box::new(Registry(session)),
                greeting,
            })
        })
    })
}

const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/frontdesk.toml");

#[test]
fn the_scenario_file_passes() {
    let reports = registry_runner().run_files([SCENARIO]);
    let report = &reports[0];
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.name, "frontdesk demo call");
    assert_eq!(report.steps.len(), 7, "start, five turns and the judges");
    // Without a judge model the judges are skipped, not failed.
    assert!(report.steps[6].skipped());
    let xml = junit_xml(&reports);
    assert!(
        xml.contains("tests=\"7\" failures=\"0\" errors=\"0\" skipped=\"1\""),
        "{xml}"
    );
}

#[test]
fn the_scenario_file_runs_its_judges_with_a_judge_model() {
    let judge = Arc::new(
        ScriptedLlm::new().otherwise(ScriptedReply::dynamic(|request| {
            match request.tools.first().map(|t| t.name.as_str()) {
                Some("check_intent") => ScriptedReply::tool(
                    "check_intent",
                    json!({"success": true, "reason": "It does."}),
                ),
                _ => ScriptedReply::tool(
                    "submit_verdict",
                    json!({"verdict": "pass", "reasoning": "Fine."}),
                ),
            }
        })),
    );
    let report = registry_runner()
        .with_judge(judge.clone())
        .run_file(SCENARIO);
    assert!(report.passed(), "{report}");
    // Two intent checks and four conversation judges (the handoff judge sees a real handoff).
    assert_eq!(judge.request_count(), 6);
}

#[test]
fn an_unknown_workflow_lists_the_built_in_ones() {
    let scenario = switchboard::testing::Scenario::from_toml(
        "workflow = \"reception\"\n[[turn]]\nuser = \"hi\"\n",
        "x",
    )
    .unwrap();
    let report = registry_runner().run_blocking(&scenario);
    let error = report.error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with(
            "cannot start workflow `reception`: no workflow named `reception`; built-in workflows: "
        ) && error.contains("frontdesk"),
        "{error}"
    );
}
