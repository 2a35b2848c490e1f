//! [`GetConsentTask`]: asks a yes/no consent question and records the answer with the
//! question.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::common::{Capture, CaptureOptions, capture_builders, confirm_tool, decline_tool};
use crate::session::{Agent, AgentContext, AgentTask, RunContext};
use crate::tools::{FunctionTool, ToolFlags};

/// The question [`GetConsentTask::default`] asks.
pub const DEFAULT_CONSENT_QUESTION: &str =
    "Do you agree to this call being recorded and to us storing the details you give us?";

/// What [`GetConsentTask`] collects: the answer, and the question it answers (for the record).
/// A "no" is a result like a "yes", not a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetConsentResult {
    /// True when the caller said yes.
    pub granted: bool,
    /// The question as it was put to the caller.
    pub question: String,
}

/// Asks the caller a yes/no consent question.
///
/// Tools: `record_consent(granted)` (always hidden from the greeting, so the model must put the
/// question first), `confirm_consent()` (only when confirmation is required),
/// `decline_consent_capture(reason)` (no clear answer at all; a "no" goes through
/// `record_consent`). Output: [`GetConsentResult`].
///
/// ```
/// use switchboard::workflows::GetConsentTask;
/// let task = GetConsentTask::new("May we send you reminders by text message?");
/// assert_eq!(task.question(), "May we send you reminders by text message?");
/// // let consent = ctx.run_task(task).await?;
/// // if !consent.granted { /* do not send reminders */ }
/// ```
pub struct GetConsentTask {
    question: String,
    options: CaptureOptions,
    capture: Arc<Capture<GetConsentResult>>,
}

impl Default for GetConsentTask {
    fn default() -> Self {
        Self::new(DEFAULT_CONSENT_QUESTION)
    }
}

/// A copy with the same question and options and no captured answer.
impl Clone for GetConsentTask {
    fn clone(&self) -> Self {
        GetConsentTask {
            question: self.question.clone(),
            options: self.options.clone(),
            capture: self.capture.fresh(),
        }
    }
}

capture_builders!(GetConsentTask);

impl GetConsentTask {
    /// A task asking `question` (a yes/no question; an empty one falls back to
    /// [`DEFAULT_CONSENT_QUESTION`]).
    pub fn new(question: impl Into<String>) -> Self {
        let question = question.into();
        let question = if question.trim().is_empty() {
            DEFAULT_CONSENT_QUESTION.to_owned()
        } else {
            question.trim().to_owned()
        };
        GetConsentTask {
            question,
            options: CaptureOptions::default(),
            capture: Arc::new(Capture::new("answer", "record_consent", "confirm_consent")),
        }
    }

    /// The question.
    pub fn question(&self) -> &str {
        &self.question
    }

    /// The one-off instruction `on_enter` gives the model (scripted models key on it).
    pub fn prompt(&self) -> String {
        self.options.prompt_or(format!(
            "Ask the caller this yes/no question: {}",
            self.question
        ))
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ConsentArgs {
    /// True when the caller clearly said yes, false when they clearly said no.
    granted: bool,
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for GetConsentTask {
    fn instructions(&self) -> String {
        let mut task = format!(
            "Your only job now is to ask the caller this yes/no question and record the answer: \
             \"{}\" Put the question faithfully; you may explain it, but never pressure the \
             caller. When they clearly say yes or no, call `record_consent`. If the answer is \
             unclear, ask again. If they will not answer at all, call \
             `decline_consent_capture`.",
            self.question
        );
        if self.options.confirmation_required() {
            task.push_str(
                " After recording it, repeat the answer back and call `confirm_consent` only \
                 once the caller says it is right.",
            );
        }
        self.options.instructions.compose(&task)
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<U>> {
        let this = self.clone();
        let mut tools = vec![
            FunctionTool::new(
                "record_consent",
                "Record the caller's yes or no to the question (call again if they change it).",
                move |ctx: RunContext<U>, args: ConsentArgs| {
                    let this = this.clone();
                    async move {
                        let answer = if args.granted { "yes" } else { "no" };
                        let read_back = format!(
                            "The caller's answer is now \"{answer}\" to: {} Repeat it back and \
                             ask them to confirm. Do not call `confirm_consent` until they do.",
                            this.question
                        );
                        let result = GetConsentResult {
                            granted: args.granted,
                            question: this.question.clone(),
                        };
                        this.capture
                            .record(
                                &ctx,
                                result,
                                answer.to_owned(),
                                this.options.confirmation_required(),
                                read_back,
                            )
                            .await
                    }
                },
            )
            // Consent is never recorded before the question was put.
            .with_flags(ToolFlags::IGNORE_ON_ENTER),
            decline_tool("decline_consent_capture", "answer"),
        ];
        if self.options.confirmation_required() {
            tools.push(confirm_tool(self.capture.clone()));
        }
        tools
    }

    async fn on_enter(&self, ctx: AgentContext<U>) -> crate::Result<()> {
        ctx.session().generate_reply(self.prompt()).await?;
        Ok(())
    }
}

impl<U: Send + 'static> AgentTask<U> for GetConsentTask {
    type Output = GetConsentResult;
}
