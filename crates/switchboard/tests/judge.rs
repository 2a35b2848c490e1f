//! LLM judges with scripted judge models: intent checks on one message, judge groups over a
//! conversation, and the on-disk verdict cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard::chat::{AgentConfigUpdate, AgentHandoff, ChatContext, ChatItem, Role};
use switchboard::llm::{ChatRequest, LlmError, ToolChoice};
use switchboard::testing::{
    Judge, JudgeError, JudgeGroup, ScriptedLlm, ScriptedReply, Verdict, VerdictCache,
    VerdictSource, judge_intent,
};
use switchboard::{Agent, AgentSession, RunResult};

struct Desk;

impl Agent for Desk {
    fn instructions(&self) -> String {
        "You are the front desk of a clinic.".into()
    }
}

async fn reply_run(text: &str) -> RunResult {
    let llm = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::text(text)));
    let session = AgentSession::builder().llm(llm).build();
    session.start(Desk).await.unwrap();
    let result = session.run("Hello?").await.unwrap();
    session.close().await;
    result
}

fn intent_verdict(success: bool, reason: &str) -> ScriptedReply {
    ScriptedReply::tool(
        "check_intent",
        json!({"success": success, "reason": reason}),
    )
}

fn verdict(verdict: &str, reasoning: &str) -> ScriptedReply {
    ScriptedReply::tool(
        "submit_verdict",
        json!({"verdict": verdict, "reasoning": reasoning}),
    )
}

/// A unique, empty directory under the system's temp dir.
fn temp_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "switchboard-judge-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn texts(request: &ChatRequest) -> Vec<(Role, String)> {
    request
        .context
        .iter()
        .filter_map(|item| item.as_message().map(|m| (m.role, m.text())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// check_intent

#[tokio::test(start_paused = true)]
async fn judge_passes_and_sends_the_two_message_request() {
    let result = reply_run("We open at 8:00 on Monday.").await;
    let judge = Arc::new(ScriptedLlm::new().otherwise(intent_verdict(true, "It gives the hours.")));
    result
        .expect()
        .next_event()
        .unwrap()
        .is_message(Role::Assistant)
        .unwrap()
        .judge(&judge, "tells the caller when the clinic opens on Monday")
        .await
        .unwrap();

    let requests = judge.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let messages = texts(request);
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0].0, Role::System);
    assert!(messages[0].1.contains("check_intent"));
    assert!(messages[0].1.contains("Be strict"));
    assert_eq!(messages[1].0, Role::User);
    assert!(
        messages[1]
            .1
            .contains("tells the caller when the clinic opens on Monday")
    );
    assert!(messages[1].1.contains("We open at 8:00 on Monday."));
    assert_eq!(request.tools.len(), 1);
    assert_eq!(request.tools[0].name, "check_intent");
    assert_eq!(
        request.tools[0].parameters["required"],
        json!(["success", "reason"])
    );
    assert_eq!(request.tool_choice, ToolChoice::Required);
    assert_eq!(request.temperature, Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn judge_takes_any_llm_handle() {
    let result = reply_run("Hi!").await;
    let message = result.expect().at(0).unwrap().as_message().unwrap();
    let scripted = ScriptedLlm::new().otherwise(intent_verdict(true, "ok"));
    message.judge(&scripted, "greets").await.unwrap();
    let shared: Arc<dyn switchboard::llm::Llm> =
        Arc::new(ScriptedLlm::new().otherwise(intent_verdict(true, "ok")));
    message.judge(&shared, "greets").await.unwrap();
    message.judge(shared.as_ref(), "greets").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn gpt5_models_get_no_temperature() {
    let judge = ScriptedLlm::new()
        .with_model("gpt-5-mini")
        .otherwise(intent_verdict(true, "ok"));
    judge_intent(&judge, "Hi!", "greets", None).await.unwrap();
    assert_eq!(judge.requests()[0].temperature, None);
}

#[tokio::test(start_paused = true)]
async fn judge_fails_with_the_models_reason() {
    let result = reply_run("We are closed on Sundays.").await;
    let judge = Arc::new(
        ScriptedLlm::new().otherwise(intent_verdict(false, "It talks about Sunday, not Monday.")),
    );
    let error = result
        .expect()
        .at(0)
        .unwrap()
        .is_message(Role::Assistant)
        .unwrap()
        .judge(&judge, "gives the Monday opening hours")
        .await
        .unwrap_err();
    assert_eq!(
        error.message(),
        "Judgement of message 0 against the intent \"gives the Monday opening hours\" failed: \
         Judgement failed: It talks about Sunday, not Monday."
    );
    assert!(
        error
            .to_string()
            .contains(">>> [0] message assistant: \"We are closed on Sundays.\"")
    );
}

#[tokio::test(start_paused = true)]
async fn judge_fails_when_the_model_does_not_call_check_intent() {
    let judge = ScriptedLlm::new().otherwise(ScriptedReply::text("Looks fine to me."));
    let error = judge_intent(&judge, "Hi!", "greets", None)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        JudgeError::NoVerdict {
            tool: "check_intent",
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "the judge model did not call `check_intent`; it answered \"Looks fine to me.\""
    );

    let other_tool = ScriptedLlm::new().otherwise(ScriptedReply::tool("submit_verdict", json!({})));
    let error = judge_intent(&other_tool, "Hi!", "greets", None)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the judge model did not call `check_intent`; it answered a call of `submit_verdict`"
    );
}

#[tokio::test(start_paused = true)]
async fn judge_fails_on_malformed_arguments() {
    for (arguments, reason) in [
        ("{\"success\": true", "EOF while parsing"),
        ("{\"success\": \"yes\", \"reason\": \"r\"}", "invalid type"),
        ("{\"reason\": \"r\"}", "missing field `success`"),
    ] {
        let judge = ScriptedLlm::new().otherwise(ScriptedReply::ToolCalls {
            text: String::new(),
            calls: vec![("check_intent".into(), arguments.into())],
        });
        let error = judge_intent(&judge, "Hi!", "greets", None)
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("the judge model called `check_intent` with malformed arguments")
                && text.contains(reason)
                && text.ends_with(arguments),
            "{text}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn judge_rejects_empty_message_and_intent_without_asking() {
    let judge = ScriptedLlm::new().otherwise(intent_verdict(true, "ok"));
    assert!(matches!(
        judge_intent(&judge, "  ", "greets", None).await,
        Err(JudgeError::EmptyMessage)
    ));
    let result = reply_run("Hi!").await;
    let error = result
        .expect()
        .at(0)
        .unwrap()
        .as_message()
        .unwrap()
        .judge(&judge, "")
        .await
        .unwrap_err();
    assert_eq!(
        error.message(),
        "Judgement of message 0 against the intent \"\" failed: the intent is empty: say what the message should do"
    );
    assert_eq!(judge.request_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn judge_reports_model_errors() {
    let judge = ScriptedLlm::new().otherwise(ScriptedReply::Error(LlmError::Other {
        provider: "scripted".into(),
        message: "overloaded".into(),
        retryable: false,
    }));
    let error = judge_intent(&judge, "Hi!", "greets", None)
        .await
        .unwrap_err();
    assert!(matches!(error, JudgeError::Llm(_)));
    assert!(
        error.to_string().starts_with("the judge model failed:"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn judge_cached_asks_once() {
    let dir = temp_dir("intent");
    let cache = VerdictCache::new(&dir);
    let result = reply_run("We open at 8:00.").await;
    let message = result.expect().at(0).unwrap().as_message().unwrap();
    let judge = Arc::new(ScriptedLlm::new().otherwise(intent_verdict(true, "ok")));
    message
        .judge_cached(&judge, "gives the hours", &cache)
        .await
        .unwrap();
    message
        .judge_cached(&judge, "gives the hours", &cache)
        .await
        .unwrap();
    assert_eq!(judge.request_count(), 1);
    // Another intent is another question.
    message
        .judge_cached(&judge, "gives the address", &cache)
        .await
        .unwrap();
    assert_eq!(judge.request_count(), 2);
    assert_eq!(cache.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Judge groups

fn conversation(with_handoff: bool) -> ChatContext {
    let mut ctx = ChatContext::new();
    ctx.insert(AgentHandoff::new(None, "front_desk"));
    ctx.add_message(Role::System, "You are the front desk.");
    ctx.add_message(Role::User, "Are you open on Saturday?");
    ctx.add_message(Role::Assistant, "Yes, from 9:00 to 13:00.");
    if with_handoff {
        ctx.add_message(Role::User, "And I have a billing question.");
        ctx.insert(AgentHandoff::new(Some("front_desk".into()), "billing"));
        let mut update = AgentConfigUpdate::new(Some("billing".into()));
        update.instructions = Some("You are billing. Ask for the account number.".into());
        ctx.insert(update);
        ctx.add_message(
            Role::Assistant,
            "Billing here. Your account number, please?",
        );
    }
    ctx
}

/// A judge model that answers by criterion: `answers` maps a judge name to its reply.
fn judge_model(answers: Vec<(&'static str, ScriptedReply)>) -> Arc<ScriptedLlm> {
    Arc::new(
        ScriptedLlm::new().otherwise(ScriptedReply::dynamic(move |request| {
            let system = texts(request)
                .first()
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            answers
                .iter()
                .find(|(name, _)| system.contains(&format!("Criterion `{name}`")))
                .map(|(_, reply)| reply.clone())
                .unwrap_or_else(|| verdict("pass", "fine"))
        })),
    )
}

#[tokio::test(start_paused = true)]
async fn group_scores_pass_maybe_fail_and_reports_broken_judges() {
    let llm = judge_model(vec![
        ("task_completion", verdict("pass", "Answered the question.")),
        (
            "accuracy",
            verdict("maybe", "Hours not confirmed by a tool."),
        ),
        ("conciseness", verdict("fail", "Too long.")),
        ("coherence", ScriptedReply::text("I think it is coherent.")),
        (
            "safety",
            ScriptedReply::tool(
                "submit_verdict",
                json!({"verdict": "great", "reasoning": "x"}),
            ),
        ),
    ]);
    let group = JudgeGroup::new(
        llm.clone(),
        [
            Judge::task_completion(),
            Judge::accuracy(),
            Judge::conciseness(),
            Judge::coherence(),
            Judge::safety(),
        ],
    );
    let report = group.evaluate(&conversation(false)).await;
    assert_eq!(report.outcomes.len(), 5, "no judge is dropped");
    assert_eq!(
        report.outcome("task_completion").unwrap().verdict(),
        Some(Verdict::Pass)
    );
    assert_eq!(
        report.outcome("accuracy").unwrap().verdict(),
        Some(Verdict::Maybe)
    );
    assert_eq!(
        report.outcome("conciseness").unwrap().verdict(),
        Some(Verdict::Fail)
    );
    // (1 + 0.5 + 0) / 3: failed judges are reported, not scored.
    assert_eq!(report.score(), Some(0.5));
    assert!(!report.passed());
    let errors: Vec<(&str, String)> = report.errors().map(|(n, e)| (n, e.to_string())).collect();
    assert_eq!(
        errors,
        [
            (
                "coherence",
                "the judge model did not call `submit_verdict`; it answered \"I think it is coherent.\"".to_owned()
            ),
            (
                "safety",
                "the judge model called `submit_verdict` with malformed arguments (unknown verdict \"great\": expected pass, fail or maybe): {\"reasoning\":\"x\",\"verdict\":\"great\"}".to_owned()
            ),
        ]
    );

    let text = report.to_string();
    assert!(
        text.contains("task_completion  PASS   Answered the question."),
        "{text}"
    );
    assert!(
        text.contains("accuracy         MAYBE  Hours not confirmed by a tool."),
        "{text}"
    );
    assert!(text.contains("conciseness      FAIL   Too long."), "{text}");
    assert!(
        text.contains("coherence        ERROR  the judge model did not call `submit_verdict`"),
        "{text}"
    );
    assert!(
        text.ends_with("score 0.50 (3 of 5 judges gave a verdict, 2 failed)"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn group_requests_force_submit_verdict() {
    let llm = judge_model(vec![]);
    let report = JudgeGroup::new(llm.clone(), [Judge::relevancy()])
        .evaluate_with_reference(&conversation(false), "Saturday hours are 9:00 to 13:00.")
        .await;
    assert!(report.passed());
    let request = &llm.requests()[0];
    assert_eq!(
        request.tool_choice,
        ToolChoice::Named("submit_verdict".into())
    );
    assert_eq!(request.tools[0].name, "submit_verdict");
    assert_eq!(
        request.tools[0].parameters["properties"]["verdict"]["enum"],
        json!(["pass", "fail", "maybe"])
    );
    assert_eq!(request.temperature, Some(0.0));
    let messages = texts(request);
    assert_eq!(messages.len(), 2);
    assert!(messages[0].1.contains("Criterion `relevancy`"));
    let user = &messages[1].1;
    assert!(
        user.contains("User: Are you open on Saturday?\nAgent: Yes, from 9:00 to 13:00."),
        "{user}"
    );
    assert!(user.contains(
        "Reference (what the conversation should achieve):\nSaturday hours are 9:00 to 13:00."
    ));
    assert!(
        !user.contains("You are the front desk."),
        "instructions are left out: {user}"
    );
}

#[tokio::test(start_paused = true)]
async fn task_completion_sees_the_latest_instructions() {
    let llm = judge_model(vec![]);
    JudgeGroup::new(llm.clone(), [Judge::task_completion()])
        .evaluate(&conversation(true))
        .await;
    let user = &texts(&llm.requests()[0])[1].1;
    assert!(
        user.starts_with("The agent's instructions:\nYou are billing. Ask for the account number."),
        "{user}"
    );
    assert!(
        user.contains("(transfer from agent front_desk to agent billing)"),
        "{user}"
    );

    let llm = judge_model(vec![]);
    JudgeGroup::new(llm.clone(), [Judge::task_completion()])
        .evaluate(&conversation(false))
        .await;
    let user = &texts(&llm.requests()[0])[1].1;
    assert!(
        user.starts_with("The agent's instructions:\nYou are the front desk."),
        "{user}"
    );
}

#[tokio::test(start_paused = true)]
async fn handoff_judge_passes_without_a_real_handoff() {
    let llm = judge_model(vec![("handoff", verdict("fail", "Lost the context."))]);
    let group = JudgeGroup::new(llm.clone(), [Judge::handoff()]);

    // Only the first agent taking over: no model call.
    let report = group.evaluate(&conversation(false)).await;
    let outcome = report.outcome("handoff").unwrap();
    assert_eq!(outcome.verdict(), Some(Verdict::Pass));
    assert_eq!(outcome.source, VerdictSource::Automatic);
    assert_eq!(llm.request_count(), 0);
    assert!(report.to_string().contains("(automatic)"));

    // A real handoff is judged.
    let report = group.evaluate(&conversation(true)).await;
    assert_eq!(
        report.outcome("handoff").unwrap().verdict(),
        Some(Verdict::Fail)
    );
    assert_eq!(llm.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn group_judges_run_concurrently() {
    // Each answer takes one virtual second; eight judges in parallel take one second, not eight.
    let llm = Arc::new(
        ScriptedLlm::new()
            .with_time_to_first_token(Duration::from_secs(1))
            .otherwise(verdict("pass", "fine")),
    );
    let started = tokio::time::Instant::now();
    let report = JudgeGroup::builtins(llm.clone())
        .evaluate(&conversation(true))
        .await;
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(llm.request_count(), 8);
    assert_eq!(report.score(), Some(1.0));
    let names: Vec<&str> = report.outcomes.iter().map(|o| o.judge.as_str()).collect();
    assert_eq!(
        names,
        [
            "task_completion",
            "handoff",
            "tool_use",
            "accuracy",
            "safety",
            "relevancy",
            "coherence",
            "conciseness"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn group_reports_model_errors_and_empty_conversations() {
    let llm = Arc::new(ScriptedLlm::new()); // no script: every request fails
    let report = JudgeGroup::new(llm, [Judge::safety()])
        .evaluate(&conversation(false))
        .await;
    assert!(matches!(
        report.outcome("safety").unwrap().result,
        Err(JudgeError::Llm(_))
    ));
    assert_eq!(report.score(), None);
    assert!(
        report
            .to_string()
            .ends_with("no score (0 of 1 judges gave a verdict, 1 failed)")
    );

    let llm = judge_model(vec![]);
    let mut empty = ChatContext::new();
    empty.add_message(Role::System, "instructions only");
    let report = JudgeGroup::new(llm.clone(), [Judge::coherence()])
        .evaluate(&empty)
        .await;
    assert!(matches!(
        report.outcome("coherence").unwrap().result,
        Err(JudgeError::EmptyConversation)
    ));
    assert_eq!(llm.request_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn verdicts_are_case_insensitive_and_custom_judges_work() {
    let llm = judge_model(vec![("politeness", verdict("PASS", "Polite."))]);
    let report = JudgeGroup::new(
        llm,
        [Judge::custom(
            "politeness",
            "Is the agent polite? Fail on rudeness.",
        )],
    )
    .evaluate(&conversation(false))
    .await;
    assert_eq!(
        report.outcome("politeness").unwrap().verdict(),
        Some(Verdict::Pass)
    );
    assert_eq!(Judge::by_name("tool_use").unwrap().name(), "tool_use");
    assert!(Judge::by_name("nope").is_none());
}

#[tokio::test(start_paused = true)]
async fn verdict_cache_makes_repeated_evaluations_free_and_identical() {
    let dir = temp_dir("group");
    let cache = VerdictCache::new(&dir);
    assert!(cache.is_empty());
    let llm = judge_model(vec![
        ("accuracy", verdict("maybe", "Not sure.")),
        ("coherence", ScriptedReply::text("no verdict")),
    ]);
    let group = JudgeGroup::new(
        llm.clone(),
        [Judge::accuracy(), Judge::coherence(), Judge::safety()],
    )
    .with_cache(cache.clone());

    let first = group.evaluate(&conversation(false)).await;
    assert_eq!(llm.request_count(), 3);
    assert_eq!(cache.len(), 2, "only usable verdicts are kept");
    assert!(
        first
            .outcomes
            .iter()
            .all(|o| o.source == VerdictSource::Model)
    );

    // The same conversation again, in a fresh context with new ids and timestamps.
    let second = group.evaluate(&conversation(false)).await;
    assert_eq!(
        llm.request_count(),
        4,
        "only the judge without a verdict asks again"
    );
    assert_eq!(
        second.outcome("accuracy").unwrap().source,
        VerdictSource::Cache
    );
    assert_eq!(
        second.outcome("safety").unwrap().source,
        VerdictSource::Cache
    );
    assert_eq!(
        second.outcome("coherence").unwrap().source,
        VerdictSource::Model
    );
    for name in ["accuracy", "safety"] {
        assert_eq!(
            first.outcome(name).unwrap().result.as_ref().unwrap(),
            second.outcome(name).unwrap().result.as_ref().unwrap()
        );
    }
    assert!(second.to_string().contains("(cached)"));

    // A different model is a different key.
    let other = judge_model(vec![]);
    let renamed = Arc::new(
        ScriptedLlm::new()
            .with_model("other")
            .otherwise(verdict("pass", "x")),
    );
    JudgeGroup::new(renamed.clone(), [Judge::safety()])
        .with_cache(cache.clone())
        .evaluate(&conversation(false))
        .await;
    assert_eq!(renamed.request_count(), 1);
    // A different conversation too.
    JudgeGroup::new(other.clone(), [Judge::safety()])
        .with_cache(cache.clone())
        .evaluate(&conversation(true))
        .await;
    assert_eq!(other.request_count(), 1);

    // A corrupt file is a miss, not an error.
    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(entry.unwrap().path(), "not json").unwrap();
    }
    let report = group.evaluate(&conversation(false)).await;
    assert_eq!(llm.request_count(), 7);
    assert_eq!(
        report.outcome("safety").unwrap().verdict(),
        Some(Verdict::Pass)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cache_files_are_named_by_judge_and_stable_hash() {
    let dir = temp_dir("names");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let cache = VerdictCache::new(&dir);
    let llm = judge_model(vec![]);
    rt.block_on(
        JudgeGroup::new(llm, [Judge::custom("my judge/1", "Anything.")])
            .with_cache(cache.clone())
            .evaluate(&conversation(false)),
    );
    let names: Vec<String> = std::fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(
        names[0].starts_with("my_judge_1-") && names[0].ends_with(".json"),
        "{names:?}"
    );
    assert_eq!(names[0].len(), "my_judge_1-".len() + 32 + ".json".len());
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(&names[0])).unwrap()).unwrap();
    assert_eq!(stored["key"]["judge"], "my judge/1");
    assert_eq!(stored["key"]["model"], "scripted/scripted");
    assert_eq!(stored["arguments"]["verdict"], "pass");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn conversations_render_without_ids_or_times() {
    let mut ctx = conversation(true);
    ctx.insert(switchboard::chat::FunctionCall::new(
        "c1",
        "look_up",
        "{\"a\":1}",
    ));
    ctx.insert(switchboard::chat::FunctionCallOutput::new(
        "c1", "look_up", "nope", true,
    ));
    let text = switchboard::testing::render_conversation(&ctx);
    assert_eq!(
        text,
        "(agent front_desk takes the conversation)\n\
         User: Are you open on Saturday?\n\
         Agent: Yes, from 9:00 to 13:00.\n\
         User: And I have a billing question.\n\
         (transfer from agent front_desk to agent billing)\n\
         Agent: Billing here. Your account number, please?\n\
         Agent calls tool look_up({\"a\":1})\n\
         Tool look_up failed: nope"
    );
    assert!(
        ctx.iter()
            .any(|i| matches!(i, ChatItem::AgentConfigUpdate(_)))
    );
}
