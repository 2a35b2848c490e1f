//! Scenario files: conversations written as data (TOML), run against a workflow in virtual
//! time, reported as text and as JUnit XML.
//!
//! ```toml
//! workflow = "frontdesk"
//!
//! [[turn]]
//! user = "Hi, are you open on Saturday?"
//! expect = [
//!   { function_call = "get_opening_hours", args = { day = "saturday" } },
//!   { function_call_output = "Open 9:00 to 13:00 on saturday." },
//!   { message = "assistant", contains = "9:00" },
//! ]
//! max_virtual_ms = 50
//! ```
//!
//! A [`ScenarioRunner`] is given a callback that starts a session of a named workflow; the CLI
//! (`switchboard test FILE...`) wires in the built-in workflows. See `docs/testing.md` for the
//! whole format.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;

use super::expect::{EventMatcher, RunExpect};
use super::judge::{EvaluationReport, Judge, JudgeGroup, Verdict, VerdictCache, judge_intent};
use crate::chat::{ChatContext, Role};
use crate::llm::Llm;
use crate::session::{AgentSession, RunEvent, RunResult, SessionError};

// ---------------------------------------------------------------------------------------------
// The file format

/// How a step's expectations are matched against its events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// Each expectation is the next event, and no event may follow the last one (default).
    #[default]
    Exact,
    /// The expectations match events in order; other events may come between and after.
    InOrder,
}

/// One entry of a step's `expect` list. Exactly one of `message`, `function_call`,
/// `function_call_output` (or `output_contains`) and `agent_handoff` says which event it
/// expects; `judge` alone judges the step's last agent message.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// A message with this role (`assistant`, `user`, `system`, `developer`).
    pub message: Option<String>,
    /// With `message`: a substring of its text.
    pub contains: Option<String>,
    /// A call of this tool.
    pub function_call: Option<String>,
    /// With `function_call`: a subset of its arguments.
    pub args: Option<Value>,
    /// A tool output equal to this text.
    pub function_call_output: Option<String>,
    /// A tool output containing this text.
    pub output_contains: Option<String>,
    /// With a tool output: whether it reports an error.
    pub is_error: Option<bool>,
    /// A handoff to the agent with this id.
    pub agent_handoff: Option<String>,
    /// An intent the message must fulfil, checked by the judge model when one is given
    /// (skipped otherwise). Alone, it applies to the step's last agent message.
    pub judge: Option<String>,
}

fn parse_role(role: &str) -> Result<Role, String> {
    match role {
        "assistant" => Ok(Role::Assistant),
        "user" => Ok(Role::User),
        "system" => Ok(Role::System),
        "developer" => Ok(Role::Developer),
        other => Err(format!(
            "unknown role {other:?}: expected assistant, user, system or developer"
        )),
    }
}

impl ExpectSpec {
    /// The event this entry expects, or `None` for a judge-only entry.
    pub fn matcher(&self) -> Result<Option<EventMatcher>, String> {
        let kinds = [
            self.message.is_some(),
            self.function_call.is_some(),
            self.function_call_output.is_some() || self.output_contains.is_some(),
            self.agent_handoff.is_some(),
        ]
        .iter()
        .filter(|k| **k)
        .count();
        if kinds > 1 {
            return Err(
                "give only one of message, function_call, function_call_output (or \
                        output_contains) and agent_handoff"
                    .to_owned(),
            );
        }
        let only = |field: &str, present: bool, with: &str| {
            if present {
                Err(format!("`{field}` only goes with `{with}`"))
            } else {
                Ok(())
            }
        };
        let matcher = if let Some(role) = &self.message {
            only("args", self.args.is_some(), "function_call")?;
            only("is_error", self.is_error.is_some(), "function_call_output")?;
            EventMatcher::Message {
                role: Some(parse_role(role)?),
                contains: self.contains.clone(),
            }
        } else if let Some(name) = &self.function_call {
            only("contains", self.contains.is_some(), "message")?;
            only("is_error", self.is_error.is_some(), "function_call_output")?;
            EventMatcher::FunctionCall {
                name: Some(name.clone()),
                args: self.args.clone(),
            }
        } else if self.function_call_output.is_some() || self.output_contains.is_some() {
            only("contains", self.contains.is_some(), "message")?;
            only("args", self.args.is_some(), "function_call")?;
            EventMatcher::FunctionCallOutput {
                output: self.function_call_output.clone(),
                contains: self.output_contains.clone(),
                is_error: self.is_error,
            }
        } else if let Some(agent) = &self.agent_handoff {
            only("contains", self.contains.is_some(), "message")?;
            only("args", self.args.is_some(), "function_call")?;
            only("is_error", self.is_error.is_some(), "function_call_output")?;
            EventMatcher::agent_handoff_to(agent.clone())
        } else {
            return match &self.judge {
                Some(intent) if intent.trim().is_empty() => Err("`judge` is empty".to_owned()),
                Some(_) => {
                    only("contains", self.contains.is_some(), "message")?;
                    only("args", self.args.is_some(), "function_call")?;
                    only("is_error", self.is_error.is_some(), "function_call_output")?;
                    Ok(None)
                }
                None => Err("say which event is expected: message, function_call, \
                             function_call_output, output_contains, agent_handoff or judge"
                    .to_owned()),
            };
        };
        if self.judge.is_some() && !matches!(matcher, EventMatcher::Message { .. }) {
            return Err("`judge` only goes with `message`, or alone".to_owned());
        }
        Ok(Some(matcher))
    }

    /// A short description, for reports.
    pub fn describe(&self) -> String {
        let judged = |intent: &str| format!("judge {intent:?}");
        match self.matcher() {
            Ok(Some(matcher)) => match &self.judge {
                Some(intent) => format!("{matcher}, {}", judged(intent)),
                None => matcher.to_string(),
            },
            Ok(None) => format!(
                "{} on the last agent message",
                judged(self.judge.as_deref().unwrap_or_default())
            ),
            Err(e) => format!("invalid expectation: {e}"),
        }
    }
}

/// One step of a scenario: the start of the workflow (`[start]`) or a user turn (`[[turn]]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// What the user says (turns only).
    pub user: Option<String>,
    /// What the step must produce. Empty: nothing is checked but the time budget.
    #[serde(default)]
    pub expect: Vec<ExpectSpec>,
    /// The most virtual time the step may take, in milliseconds.
    pub max_virtual_ms: Option<u64>,
    /// How `expect` is matched (default `exact`).
    #[serde(default, rename = "match")]
    pub match_mode: MatchMode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    workflow: String,
    name: Option<String>,
    description: Option<String>,
    start: Option<StepSpec>,
    #[serde(default)]
    turn: Vec<StepSpec>,
    #[serde(default)]
    judges: Vec<String>,
    reference: Option<String>,
}

/// A scenario file, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name (the `name` key, else the file's stem).
    pub name: String,
    /// The workflow it runs against.
    pub workflow: String,
    /// What it is about.
    pub description: Option<String>,
    /// Expectations on what the workflow's start produces (`[start]`).
    pub start: Option<StepSpec>,
    /// The user turns (`[[turn]]`), in order.
    pub turns: Vec<StepSpec>,
    /// Built-in judges that grade the whole conversation when a judge model is given.
    pub judges: Vec<String>,
    /// What the conversation should achieve, for the judges.
    pub reference: Option<String>,
    /// The file it was read from.
    pub path: Option<PathBuf>,
}

/// A scenario file that cannot be read or is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ScenarioError {
    /// The file (or the name given to [`Scenario::from_toml`]).
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

impl Scenario {
    /// Reads a scenario file.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            source_name: path.display().to_string(),
            message: format!("cannot read the file: {e}"),
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let mut scenario = Self::parse(&text, &name, &path.display().to_string())?;
        scenario.path = Some(path.to_owned());
        Ok(scenario)
    }

    /// Parses a scenario from TOML text; `name` is used when the text has no `name` key.
    pub fn from_toml(text: &str, name: &str) -> Result<Scenario, ScenarioError> {
        Self::parse(text, name, name)
    }

    fn parse(text: &str, name: &str, source_name: &str) -> Result<Scenario, ScenarioError> {
        let error = |message: String| ScenarioError {
            source_name: source_name.to_owned(),
            message,
        };
        let raw: RawScenario = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        if raw.workflow.trim().is_empty() {
            return Err(error("`workflow` is empty".to_owned()));
        }
        if raw.turn.is_empty() && raw.start.is_none() {
            return Err(error(
                "the scenario has no step: add a [start] table or [[turn]] tables".to_owned(),
            ));
        }
        let check = |label: &str, step: &StepSpec| -> Result<(), ScenarioError> {
            for (i, e) in step.expect.iter().enumerate() {
                e.matcher()
                    .map_err(|m| error(format!("{label}, expectation {}: {m}", i + 1)))?;
            }
            Ok(())
        };
        if let Some(start) = &raw.start {
            if start.user.is_some() {
                return Err(error(
                    "[start] has no `user`: it checks what the workflow does before anyone speaks"
                        .to_owned(),
                ));
            }
            check("[start]", start)?;
        }
        for (i, turn) in raw.turn.iter().enumerate() {
            let label = format!("turn {}", i + 1);
            match &turn.user {
                Some(user) if !user.trim().is_empty() => {}
                _ => return Err(error(format!("{label}: `user` is missing or empty"))),
            }
            check(&label, turn)?;
        }
        for judge in &raw.judges {
            if Judge::by_name(judge).is_none() {
                let names: Vec<String> = Judge::builtins()
                    .iter()
                    .map(|j| j.name().to_owned())
                    .collect();
                return Err(error(format!(
                    "unknown judge {judge:?}; built-in judges: {}",
                    names.join(", ")
                )));
            }
        }
        Ok(Scenario {
            name: raw.name.unwrap_or_else(|| name.to_owned()),
            workflow: raw.workflow,
            description: raw.description,
            start: raw.start,
            turns: raw.turn,
            judges: raw.judges,
            reference: raw.reference,
            path: None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions under test

/// A started session, as the runner drives it. Implemented by every [`AgentSession`]; wrap
/// other handles (e.g. a type-erased session of a workflow registry) in a small adapter.
#[async_trait::async_trait]
pub trait ScenarioSession: Send + Sync {
    /// One user turn.
    async fn run(&self, user_input: &str) -> Result<RunResult, SessionError>;
    /// The whole conversation, for the judges.
    async fn history(&self) -> ChatContext;
    /// Closes the session.
    async fn close(&self);
}

#[async_trait::async_trait]
impl<U: Send + 'static> ScenarioSession for AgentSession<U> {
    async fn run(&self, user_input: &str) -> Result<RunResult, SessionError> {
        AgentSession::run(self, user_input).await
    }
    async fn history(&self) -> ChatContext {
        AgentSession::history(self).await
    }
    async fn close(&self) {
        AgentSession::close(self).await
    }
}

/// What the runner's start callback returns: the started session and what its start produced.
pub struct ScenarioStart {
    /// The session.
    pub session: Box<dyn ScenarioSession>,
    /// The run of the first agent's `on_enter` (checked by `[start]`).
    pub greeting: RunResult,
}

impl fmt::Debug for ScenarioStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScenarioStart")
            .field("greeting", &self.greeting)
            .finish_non_exhaustive()
    }
}

type StartFn = dyn Fn(&str) -> BoxFuture<'static, Result<ScenarioStart, String>> + Send + Sync;

// ---------------------------------------------------------------------------------------------
// Reports

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckStatus {
    /// It held.
    Passed,
    /// It did not; the text says why (with the run's events where relevant).
    Failed(String),
    /// It was not evaluated; the text says why.
    Skipped(String),
}

/// One check of a step: an expectation, the time budget, or a judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// What was checked, e.g. `expectation 2 (function_call_output "...")`.
    pub label: String,
    /// How it went.
    pub status: CheckStatus,
}

/// One step of a scenario run.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// `start`, `turn 1`, ..., or `judges`.
    pub label: String,
    /// What the user said (turns only).
    pub user: Option<String>,
    /// Virtual time the step took.
    pub virtual_time: Duration,
    /// Why the step could not run to its end (e.g. the turn failed).
    pub error: Option<String>,
    /// The checks, in order.
    pub checks: Vec<CheckReport>,
}

impl StepReport {
    fn new(label: String, user: Option<String>) -> Self {
        StepReport {
            label,
            user,
            virtual_time: Duration::ZERO,
            error: None,
            checks: Vec::new(),
        }
    }

    /// True when the step ran and no check failed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && !self.failures().any(|_| true)
    }

    /// True when every check was skipped (and there was at least one).
    pub fn skipped(&self) -> bool {
        self.error.is_none()
            && !self.checks.is_empty()
            && self
                .checks
                .iter()
                .all(|c| matches!(c.status, CheckStatus::Skipped(_)))
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckReport> {
        self.checks
            .iter()
            .filter(|c| matches!(c.status, CheckStatus::Failed(_)))
    }

    fn title(&self) -> String {
        match &self.user {
            Some(user) => format!("{} {user:?}", self.label),
            None => self.label.clone(),
        }
    }
}

/// What running one scenario found.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: String,
    /// The workflow it ran against.
    pub workflow: String,
    /// The file, when it came from one.
    pub path: Option<PathBuf>,
    /// Why the scenario could not run at all (invalid file, workflow failed to start).
    pub error: Option<String>,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
}

impl ScenarioReport {
    fn failed_to_load(error: &ScenarioError, path: Option<&Path>) -> Self {
        ScenarioReport {
            name: path
                .and_then(Path::file_stem)
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| error.source_name.clone()),
            workflow: String::new(),
            path: path.map(Path::to_owned),
            error: Some(error.to_string()),
            steps: Vec::new(),
        }
    }

    /// True when the scenario ran and every step passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.steps.iter().all(StepReport::passed)
    }

    /// The steps that failed.
    pub fn failed_steps(&self) -> impl Iterator<Item = &StepReport> {
        self.steps.iter().filter(|s| !s.passed())
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scenario `{}`", self.name)?;
        if let Some(path) = &self.path {
            write!(f, " ({})", path.display())?;
        }
        if !self.workflow.is_empty() {
            write!(f, ", workflow `{}`", self.workflow)?;
        }
        writeln!(f)?;
        if let Some(error) = &self.error {
            writeln!(f, "  ERROR {}", indent(error, "        ").trim_start())?;
            return f.write_str("result: ERROR");
        }
        for step in &self.steps {
            let status = if step.error.is_some() {
                "ERROR"
            } else if !step.passed() {
                "FAIL "
            } else if step.skipped() {
                "SKIP "
            } else {
                "PASS "
            };
            writeln!(
                f,
                "  {status} {}  [{} ms virtual]",
                step.title(),
                step.virtual_time.as_millis()
            )?;
            if let Some(error) = &step.error {
                writeln!(f, "{}", indent(error, "        "))?;
            }
            for check in &step.checks {
                match &check.status {
                    CheckStatus::Passed if step.passed() => {}
                    CheckStatus::Passed => writeln!(f, "        ok   {}", check.label)?,
                    CheckStatus::Failed(why) => {
                        writeln!(f, "        FAIL {}", check.label)?;
                        writeln!(f, "{}", indent(why, "             "))?;
                    }
                    CheckStatus::Skipped(why) => {
                        writeln!(f, "        skip {}: {why}", check.label)?;
                    }
                }
            }
        }
        let failed = self.failed_steps().count();
        if failed == 0 {
            write!(f, "result: PASSED ({} steps)", self.steps.len())
        } else {
            write!(
                f,
                "result: FAILED ({failed} of {} steps failed)",
                self.steps.len()
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The runner

/// A judge that waits for the judge model: where its outcome goes and what it judges.
enum PendingJudge {
    Intent {
        step: usize,
        check: usize,
        intent: String,
        message: String,
    },
    Group {
        step: usize,
        history: ChatContext,
        judges: Vec<Judge>,
        reference: Option<String>,
    },
}

const NO_JUDGE_MODEL: &str = "no judge model given";

/// Runs scenarios against workflows that a callback starts by name.
///
/// [`run_blocking`](ScenarioRunner::run_blocking) runs the conversation on its own
/// current-thread runtime with paused (virtual) time, then runs the judges, if a judge model is
/// given, on a normal runtime (a real model needs real time). [`run`](ScenarioRunner::run)
/// does everything on the caller's runtime instead.
#[derive(Clone)]
pub struct ScenarioRunner {
    start: Arc<StartFn>,
    judge: Option<Arc<dyn Llm>>,
    cache: Option<VerdictCache>,
}

impl fmt::Debug for ScenarioRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScenarioRunner")
            .field(
                "judge",
                &self
                    .judge
                    .as_ref()
                    .map(|l| format!("{}/{}", l.provider(), l.model())),
            )
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl ScenarioRunner {
    /// A runner whose `start(workflow_name)` starts a session of that workflow and returns it
    /// with its greeting run (or a message saying why it cannot).
    pub fn new<F>(start: F) -> Self
    where
        F: Fn(&str) -> BoxFuture<'static, Result<ScenarioStart, String>> + Send + Sync + 'static,
    {
        ScenarioRunner {
            start: Arc::new(start),
            judge: None,
            cache: None,
        }
    }

    /// The model that evaluates `judge` expectations and the scenario's `judges`. Without
    /// one they are reported as skipped.
    pub fn with_judge(mut self, llm: Arc<dyn Llm>) -> Self {
        self.judge = Some(llm);
        self
    }

    /// Keeps judge verdicts in `cache` and reuses them.
    pub fn with_verdict_cache(mut self, cache: VerdictCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Runs a scenario on the caller's runtime (pause its time for deterministic budgets).
    pub async fn run(&self, scenario: &Scenario) -> ScenarioReport {
        let (mut report, pending) = self.execute(scenario).await;
        self.evaluate_judges(&mut report, pending).await;
        report
    }

    /// Runs a scenario: the conversation on a fresh current-thread runtime with paused time,
    /// then the judges on a normal runtime. Safe to call from inside a runtime (it then works
    /// on a helper thread).
    pub fn run_blocking(&self, scenario: &Scenario) -> ScenarioReport {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.run_here(scenario);
        }
        std::thread::scope(
            |scope| match scope.spawn(|| self.run_here(scenario)).join() {
                Ok(report) => report,
                Err(panic) => std::panic::resume_unwind(panic),
            },
        )
    }

    /// Reads and runs a scenario file; a file that cannot be read or parsed gives a report
    /// with its error.
    pub fn run_file(&self, path: impl AsRef<Path>) -> ScenarioReport {
        let path = path.as_ref();
        match Scenario::load(path) {
            Ok(scenario) => self.run_blocking(&scenario),
            Err(error) => ScenarioReport::failed_to_load(&error, Some(path)),
        }
    }

    /// Reads and runs scenario files, one after another.
    pub fn run_files<P: AsRef<Path>>(
        &self,
        paths: impl IntoIterator<Item = P>,
    ) -> Vec<ScenarioReport> {
        paths.into_iter().map(|p| self.run_file(p)).collect()
    }

    fn run_here(&self, scenario: &Scenario) -> ScenarioReport {
        let runtime_error = |e: std::io::Error| ScenarioReport {
            name: scenario.name.clone(),
            workflow: scenario.workflow.clone(),
            path: scenario.path.clone(),
            error: Some(format!("cannot build a runtime: {e}")),
            steps: Vec::new(),
        };
        let paused = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return runtime_error(e),
        };
        let (mut report, pending) = paused.block_on(self.execute(scenario));
        drop(paused);
        // Without a judge model the pending judges keep their "skipped" status.
        if self.judge.is_some() && !pending.is_empty() {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(real_time) => real_time.block_on(self.evaluate_judges(&mut report, pending)),
                Err(e) => return runtime_error(e),
            }
        }
        report
    }

    /// Runs the conversation and the deterministic checks; returns the judges still to run.
    async fn execute(&self, scenario: &Scenario) -> (ScenarioReport, Vec<PendingJudge>) {
        let mut report = ScenarioReport {
            name: scenario.name.clone(),
            workflow: scenario.workflow.clone(),
            path: scenario.path.clone(),
            error: None,
            steps: Vec::new(),
        };
        let mut pending = Vec::new();
        let started_at = tokio::time::Instant::now();
        let ScenarioStart { session, greeting } = match (self.start)(&scenario.workflow).await {
            Ok(started) => started,
            Err(e) => {
                report.error = Some(format!(
                    "cannot start workflow `{}`: {e}",
                    scenario.workflow
                ));
                return (report, pending);
            }
        };
        if let Some(spec) = &scenario.start {
            let mut step = StepReport::new("start".to_owned(), None);
            step.virtual_time = started_at.elapsed();
            check_step(&mut step, &greeting, spec, report.steps.len(), &mut pending);
            report.steps.push(step);
        }
        for (i, spec) in scenario.turns.iter().enumerate() {
            let user = spec.user.clone().unwrap_or_default();
            let mut step = StepReport::new(format!("turn {}", i + 1), Some(user.clone()));
            let turn_start = tokio::time::Instant::now();
            let outcome = session.run(&user).await;
            step.virtual_time = turn_start.elapsed();
            match outcome {
                Ok(result) => {
                    check_step(&mut step, &result, spec, report.steps.len(), &mut pending)
                }
                Err(SessionError::TurnFailed { error, result }) => {
                    step.error = Some(format!(
                        "the turn failed: {error}\nevents of the run:\n{}",
                        result.describe(None)
                    ));
                }
                Err(error) => step.error = Some(format!("the turn failed: {error}")),
            }
            report.steps.push(step);
        }
        if !scenario.judges.is_empty() {
            let mut step = StepReport::new("judges".to_owned(), None);
            let judges: Vec<Judge> = scenario
                .judges
                .iter()
                .filter_map(|name| Judge::by_name(name))
                .collect();
            for judge in &judges {
                step.checks.push(CheckReport {
                    label: format!("judge `{}`", judge.name()),
                    status: CheckStatus::Skipped(NO_JUDGE_MODEL.to_owned()),
                });
            }
            pending.push(PendingJudge::Group {
                step: report.steps.len(),
                history: session.history().await,
                judges,
                reference: scenario.reference.clone(),
            });
            report.steps.push(step);
        }
        session.close().await;
        (report, pending)
    }

    async fn evaluate_judges(&self, report: &mut ScenarioReport, pending: Vec<PendingJudge>) {
        let Some(llm) = &self.judge else {
            return;
        };
        for judge in pending {
            match judge {
                PendingJudge::Intent {
                    step,
                    check,
                    intent,
                    message,
                } => {
                    let status =
                        match judge_intent(llm.as_ref(), &message, &intent, self.cache.as_ref())
                            .await
                        {
                            Ok(_) => CheckStatus::Passed,
                            Err(e) => {
                                CheckStatus::Failed(format!("{e}\njudged message: {message:?}"))
                            }
                        };
                    if let Some(c) = report
                        .steps
                        .get_mut(step)
                        .and_then(|s| s.checks.get_mut(check))
                    {
                        c.status = status;
                    }
                }
                PendingJudge::Group {
                    step,
                    history,
                    judges,
                    reference,
                } => {
                    let mut group = JudgeGroup::new(llm.clone(), judges);
                    if let Some(cache) = &self.cache {
                        group = group.with_cache(cache.clone());
                    }
                    let evaluation = match &reference {
                        Some(reference) => group.evaluate_with_reference(&history, reference).await,
                        None => group.evaluate(&history).await,
                    };
                    if let Some(step) = report.steps.get_mut(step) {
                        step.checks = group_checks(&evaluation);
                    }
                }
            }
        }
    }
}

fn group_checks(evaluation: &EvaluationReport) -> Vec<CheckReport> {
    evaluation
        .outcomes
        .iter()
        .map(|o| {
            let label = format!("judge `{}`", o.judge);
            match &o.result {
                Ok(v) if v.verdict == Verdict::Fail => CheckReport {
                    label,
                    status: CheckStatus::Failed(format!("verdict fail: {}", v.reasoning)),
                },
                Ok(v) => CheckReport {
                    label: format!("{label} ({}: {})", v.verdict, v.reasoning),
                    status: CheckStatus::Passed,
                },
                Err(e) => CheckReport {
                    label,
                    status: CheckStatus::Failed(format!("the judge gave no verdict: {e}")),
                },
            }
        })
        .collect()
}

/// Checks one step's run against its spec, filling `step.checks`.
fn check_step(
    step: &mut StepReport,
    result: &RunResult,
    spec: &StepSpec,
    step_index: usize,
    pending: &mut Vec<PendingJudge>,
) {
    let mut cursor: RunExpect<'_> = result.expect();
    let mut failed = false;
    for (i, expectation) in spec.expect.iter().enumerate() {
        let label = format!("expectation {} ({})", i + 1, expectation.describe());
        if failed {
            step.checks.push(CheckReport {
                label,
                status: CheckStatus::Skipped(
                    "not checked: an earlier expectation of this step failed".to_owned(),
                ),
            });
            continue;
        }
        let matcher = match expectation.matcher() {
            Ok(m) => m,
            Err(e) => {
                failed = true;
                step.checks.push(CheckReport {
                    label,
                    status: CheckStatus::Failed(e),
                });
                continue;
            }
        };
        let judged_text = match matcher {
            None => {
                // A judge alone: the step's last agent message.
                match result.last_reply() {
                    Some(text) => Some(text),
                    None => {
                        failed = true;
                        step.checks.push(CheckReport {
                            label,
                            status: CheckStatus::Failed(format!(
                                "the step produced no agent message to judge\nevents of the run:\n{}",
                                result.describe(None)
                            )),
                        });
                        continue;
                    }
                }
            }
            Some(matcher) => {
                let found = match spec.match_mode {
                    MatchMode::Exact => cursor.next_event().and_then(|e| e.matches(matcher)),
                    MatchMode::InOrder => cursor.next_matching(matcher),
                };
                match found {
                    Ok(event) => match event.event() {
                        RunEvent::Message(m) if expectation.judge.is_some() => Some(m.text()),
                        _ => None,
                    },
                    Err(error) => {
                        failed = true;
                        step.checks.push(CheckReport {
                            label,
                            status: CheckStatus::Failed(error.to_string()),
                        });
                        continue;
                    }
                }
            }
        };
        let status = match (&expectation.judge, judged_text) {
            (Some(intent), Some(message)) => {
                pending.push(PendingJudge::Intent {
                    step: step_index,
                    check: step.checks.len(),
                    intent: intent.clone(),
                    message,
                });
                CheckStatus::Skipped(NO_JUDGE_MODEL.to_owned())
            }
            _ => CheckStatus::Passed,
        };
        step.checks.push(CheckReport { label, status });
    }
    // Judge-only entries consume no event: a list of them says nothing about the events.
    let checks_events = spec
        .expect
        .iter()
        .any(|e| matches!(e.matcher(), Ok(Some(_))));
    if spec.match_mode == MatchMode::Exact && checks_events && !failed {
        let status = match cursor.no_more_events() {
            Ok(()) => CheckStatus::Passed,
            Err(error) => CheckStatus::Failed(error.to_string()),
        };
        step.checks.push(CheckReport {
            label: "no further events".to_owned(),
            status,
        });
    }
    if let Some(budget) = spec.max_virtual_ms {
        let took = step.virtual_time;
        let status = if took <= Duration::from_millis(budget) {
            CheckStatus::Passed
        } else {
            CheckStatus::Failed(format!(
                "the step took {} ms of virtual time, over its budget of {budget} ms",
                took.as_millis()
            ))
        };
        step.checks.push(CheckReport {
            label: format!("virtual time within {budget} ms"),
            status,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// JUnit XML

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push('\u{fffd}');
            }
            c => out.push(c),
        }
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// The reports as JUnit XML: one `<testsuite>` per scenario, one `<testcase>` per step
/// (times in virtual seconds). Failed checks are `<failure>`s, steps that could not run and
/// scenarios that could not start are `<error>`s, steps whose checks were all skipped are
/// `<skipped>`.
pub fn junit_xml(reports: &[ScenarioReport]) -> String {
    let mut totals = (0usize, 0usize, 0usize, 0usize, Duration::ZERO);
    let mut suites = String::new();
    for report in reports {
        let mut cases = String::new();
        let (mut tests, mut failures, mut errors, mut skipped, mut time) =
            (0usize, 0usize, 0usize, 0usize, Duration::ZERO);
        let classname = xml_escape(&format!("scenarios.{}", report.name));
        if let Some(error) = &report.error {
            tests += 1;
            errors += 1;
            cases.push_str(&format!(
                "    <testcase name=\"load\" classname=\"{classname}\" time=\"0.000\">\n      \
                 <error message=\"{}\" type=\"scenario\">{}</error>\n    </testcase>\n",
                xml_escape(first_line(error)),
                xml_escape(error)
            ));
        }
        for step in &report.steps {
            tests += 1;
            time += step.virtual_time;
            let name = match &step.user {
                Some(user) => format!("{}: {user}", step.label),
                None => step.label.clone(),
            };
            cases.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{classname}\" time=\"{:.3}\">\n",
                xml_escape(&name),
                step.virtual_time.as_secs_f64()
            ));
            if let Some(error) = &step.error {
                errors += 1;
                cases.push_str(&format!(
                    "      <error message=\"{}\" type=\"turn\">{}</error>\n",
                    xml_escape(first_line(error)),
                    xml_escape(error)
                ));
            } else if !step.passed() {
                failures += 1;
                let failed: Vec<&CheckReport> = step.failures().collect();
                let body: Vec<String> = failed
                    .iter()
                    .map(|c| match &c.status {
                        CheckStatus::Failed(why) => format!("{}\n{why}", c.label),
                        _ => c.label.clone(),
                    })
                    .collect();
                let message = failed
                    .first()
                    .map(|c| match &c.status {
                        CheckStatus::Failed(why) => format!("{}: {}", c.label, first_line(why)),
                        _ => c.label.clone(),
                    })
                    .unwrap_or_default();
                cases.push_str(&format!(
                    "      <failure message=\"{}\" type=\"expectation\">{}</failure>\n",
                    xml_escape(&message),
                    xml_escape(&body.join("\n\n"))
                ));
            } else if step.skipped() {
                skipped += 1;
                let why = step
                    .checks
                    .iter()
                    .find_map(|c| match &c.status {
                        CheckStatus::Skipped(why) => Some(why.as_str()),
                        _ => None,
                    })
                    .unwrap_or_default();
                cases.push_str(&format!(
                    "      <skipped message=\"{}\"/>\n",
                    xml_escape(why)
                ));
            }
            let notes: Vec<String> = step
                .checks
                .iter()
                .filter_map(|c| match &c.status {
                    CheckStatus::Skipped(why) if !step.skipped() => {
                        Some(format!("skipped {}: {why}", c.label))
                    }
                    _ => None,
                })
                .collect();
            if !notes.is_empty() {
                cases.push_str(&format!(
                    "      <system-out>{}</system-out>\n",
                    xml_escape(&notes.join("\n"))
                ));
            }
            cases.push_str("    </testcase>\n");
        }
        let file = report
            .path
            .as_ref()
            .map(|p| format!(" file=\"{}\"", xml_escape(&p.display().to_string())))
            .unwrap_or_default();
        suites.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" \
             skipped=\"{skipped}\" time=\"{:.3}\"{file}>\n",
            xml_escape(&report.name),
            time.as_secs_f64()
        ));
        if !report.workflow.is_empty() {
            suites.push_str(&format!(
                "    <properties>\n      <property name=\"workflow\" value=\"{}\"/>\n    </properties>\n",
                xml_escape(&report.workflow)
            ));
        }
        suites.push_str(&cases);
        suites.push_str("  </testsuite>\n");
        totals.0 += tests;
        totals.1 += failures;
        totals.2 += errors;
        totals.3 += skipped;
        totals.4 += time;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"switchboard scenarios\" \
         tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n{suites}</testsuites>\n",
        totals.0,
        totals.1,
        totals.2,
        totals.3,
        totals.4.as_secs_f64()
    )
}

/// Writes [`junit_xml`] to `path`, creating its directory.
pub fn write_junit(path: impl AsRef<Path>, reports: &[ScenarioReport]) -> std::io::Result<()> {
    let path = path.as_ref();
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, junit_xml(reports))
}
