//! [`AgentTask`]: an agent that takes control of the conversation until it completes with a
//! typed result, then hands control back to whoever awaited it.
//!
//! ```
//! use std::sync::Arc;
//! use switchboard::{Agent, AgentContext, AgentTask, RunContext, async_trait};
//! use switchboard::tools::FunctionTool;
//!
//! /// Asks for consent to record the call.
//! struct Consent;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Answer {
//!     /// True when the caller agreed.
//!     agreed: bool,
//! }
//!
//! #[async_trait]
//! impl Agent for Consent {
//!     fn instructions(&self) -> String { "Ask whether the caller agrees to be recorded.".into() }
//!     fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
//!         vec![FunctionTool::new("record_answer", "Record the caller's answer.",
//!             |ctx: RunContext, a: Answer| async move { ctx.complete(a.agreed).await.ok(); })]
//!     }
//!     async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
//!         ctx.session().generate_reply("Ask for consent.").await?;
//!         Ok(())
//!     }
//! }
//!
//! impl AgentTask for Consent {
//!     type Output = bool;
//! }
//! // In a tool or a hook of the calling agent:
//! // let agreed: bool = ctx.run_task(Consent).await?;
//! ```

use std::any::{Any, TypeId};

use tokio::sync::oneshot;

use super::agent::{Agent, AgentRef};
use super::context::{AgentContext, RunContext};
use super::events::ErrorSource;
use super::pipeline::{Hook, run_hook};
use super::run::RunToken;
use super::runtime::{ActivityId, ActivityStatus};
use super::speech::CURRENT_TOOL_SPEECH;
use super::{AgentSession, SessionError};
use crate::chat::{
    AgentConfigUpdate, AgentHandoff, ChatContext, ChatItem, CopyOptions, MergeOptions,
};
use crate::session::run::RunEvent;
use crate::tools::FunctionTool;

tokio::task_local! {
    /// The hook or workflow job running in this task.
    pub(crate) static CURRENT_JOB: u64;
}

/// An agent that completes with a typed result. Await it with
/// [`AgentContext::run_task`] (from a hook) or [`RunContext::run_task`] (from a tool); it
/// completes through [`AgentContext::complete`] or [`AgentContext::fail`].
pub trait AgentTask<U: Send + 'static = ()>: Agent<U> {
    /// What the task produces.
    type Output: Send + 'static;

    /// Keep the task's tool calls and outputs when its conversation is merged back into the
    /// caller's context (default: only messages are merged).
    fn preserve_function_call_history(&self) -> bool {
        false
    }
}

/// Why an awaited task did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task failed or the user declined; the message says why.
    #[error("{0}")]
    Failed(String),
    /// The session closed while the task ran.
    #[error("the session closed while the task was running")]
    SessionClosed,
    /// The task was cancelled (e.g. its agent was replaced).
    #[error("the task `{0}` was cancelled")]
    Cancelled(String),
    /// The task completed with a value of another type than its `Output`.
    #[error("the task completed with a value of the wrong type (expected {expected})")]
    WrongOutputType {
        /// The declared output type.
        expected: &'static str,
    },
    /// `complete` or `fail` was called outside a running task.
    #[error("there is no running task to complete here")]
    NotInTask,
    /// The task had already completed.
    #[error("the task `{0}` is already done")]
    AlreadyDone(String),
    /// A task may be awaited only from a tool, `on_enter` or `on_exit`.
    #[error("a task can be awaited only from a tool, on_enter or on_exit")]
    NotAllowedHere,
    /// In a task group: the user wants to go back to earlier steps.
    #[error("going back to {0:?}")]
    GoBack(Vec<String>),
}

impl From<TaskError> for crate::tools::ToolError {
    fn from(e: TaskError) -> Self {
        crate::tools::ToolError::new(e.to_string())
    }
}

impl From<TaskError> for crate::Error {
    fn from(e: TaskError) -> Self {
        crate::Error::Tool(e.into())
    }
}

pub(crate) type TaskValue = Result<Box<dyn Any + Send>, TaskError>;

/// Who awaits a task: the speech whose tool called `run_task`, or a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Awaiter {
    Speech(String),
    Job(u64),
    None,
}

/// What the runtime keeps for a running task.
pub(crate) struct TaskSlot {
    completion: Option<oneshot::Sender<TaskValue>>,
    output_type: TypeId,
    output_type_name: &'static str,
    pub parent: ActivityId,
    awaiter: Awaiter,
    /// Hooks of the caller that the run stopped waiting for while the task runs.
    detached_jobs: Vec<u64>,
    preserve_function_calls: bool,
}

impl TaskSlot {
    pub fn fail(mut self, error: TaskError) {
        if let Some(tx) = self.completion.take() {
            let _ = tx.send(Err(error));
        }
    }
}

/// Options for awaiting a task.
pub struct TaskOptions<U: Send + 'static> {
    /// The context the task starts with (default: its own `chat_ctx()`, usually empty).
    pub chat_ctx: Option<ChatContext>,
    /// Tools added to the task's own (used by task groups for the go-back tool).
    pub extra_tools: Vec<FunctionTool<U>>,
}

impl<U: Send + 'static> Default for TaskOptions<U> {
    fn default() -> Self {
        TaskOptions {
            chat_ctx: None,
            extra_tools: Vec::new(),
        }
    }
}

fn current_awaiter() -> Awaiter {
    if let Ok(speech) = CURRENT_TOOL_SPEECH.try_with(Clone::clone) {
        return Awaiter::Speech(speech);
    }
    if let Ok(job) = CURRENT_JOB.try_with(|j| *j) {
        return Awaiter::Job(job);
    }
    Awaiter::None
}

impl<U: Send + 'static> AgentContext<U> {
    /// Runs `task` until it completes and returns its result. The calling agent is paused, not
    /// closed; a handoff item records each switch. Only from a tool, `on_enter` or `on_exit`.
    /// Tasks awaited at the same time by one agent (parallel tool calls) run one after another.
    pub async fn run_task<T: AgentTask<U>>(&self, task: T) -> Result<T::Output, TaskError> {
        self.run_task_with(task, TaskOptions::default()).await
    }

    /// [`run_task`](AgentContext::run_task) with options.
    pub async fn run_task_with<T: AgentTask<U>>(
        &self,
        task: T,
        options: TaskOptions<U>,
    ) -> Result<T::Output, TaskError> {
        let preserve = task.preserve_function_call_history();
        let agent = AgentRef::new(task);
        let value = self
            .run_task_erased(
                agent,
                TypeId::of::<T::Output>(),
                std::any::type_name::<T::Output>(),
                preserve,
                options,
            )
            .await?;
        value
            .downcast::<T::Output>()
            .map(|b| *b)
            .map_err(|_| TaskError::WrongOutputType {
                expected: std::any::type_name::<T::Output>(),
            })
    }

    pub(crate) async fn run_task_erased(
        &self,
        agent: AgentRef<U>,
        output_type: TypeId,
        output_type_name: &'static str,
        preserve_function_calls: bool,
        options: TaskOptions<U>,
    ) -> TaskValue {
        let awaiter = current_awaiter();
        if awaiter == Awaiter::None {
            return Err(TaskError::NotAllowedHere);
        }
        let session = self.session().clone();
        let parent = self.activity_id();
        // One task at a time per calling agent.
        let slot_lock = session
            .exec(move |st| st.activity(parent).map(|a| a.task_lock.clone()))
            .await
            .map_err(|_| TaskError::SessionClosed)?
            .ok_or(TaskError::SessionClosed)?;
        let _one_at_a_time = slot_lock.lock().await;
        // The caller pauses only after the speech it already queued has played.
        let quiet = session
            .exec(move |st| st.when_quiet(parent))
            .await
            .map_err(|_| TaskError::SessionClosed)?;
        let _ = quiet.await;

        let (tx, rx) = oneshot::channel();
        let start_session = session.clone();
        let started = session
            .exec(move |st| {
                if st.closing {
                    return Err(TaskError::SessionClosed);
                }
                let parent_activity = st.activity(parent).ok_or(TaskError::SessionClosed)?;
                if parent_activity.status == ActivityStatus::Closed {
                    return Err(TaskError::SessionClosed);
                }
                let parent_id = parent_activity.agent_id.clone();
                // The run that watched the caller now watches the task's greeting instead, so
                // `run()` returns while the task waits for the user.
                let run = st.run_of(&awaiter).or_else(|| st.active_run_token());
                st.detach(&awaiter);
                // Hooks of the caller may be waiting on the awaiter (e.g. `on_enter` awaiting
                // the reply whose tool runs the task): the run stops waiting for them too.
                let detached_jobs = st.detach_jobs_of(parent);
                if let Some(p) = st.activity_mut(parent) {
                    p.status = ActivityStatus::Paused;
                }
                let mut ctx = options.chat_ctx.unwrap_or_else(|| agent.agent.chat_ctx());
                let item = AgentHandoff::new(Some(parent_id), agent.agent.id());
                st.history.insert(item.clone());
                st.record_run(
                    run.as_ref(),
                    RunEvent::AgentHandoff {
                        item: item.clone(),
                        new_agent_type: agent.type_name,
                        new_agent_type_id: agent.type_id,
                    },
                );
                st.emit(super::EventKind::ConversationItemAdded {
                    item: ChatItem::AgentHandoff(std::sync::Arc::new(item)),
                });
                ctx.retain(|i| !matches!(i, ChatItem::AgentHandoff(_)));
                let activity = st
                    .start_activity_with(agent.clone(), ctx, options.extra_tools)
                    .map_err(|e| {
                        TaskError::Failed(format!(
                            "activity doesn't start for {}: {e}",
                            agent.agent.id()
                        ))
                    })?;
                if let Some(a) = st.activity_mut(activity) {
                    a.task = Some(TaskSlot {
                        completion: Some(tx),
                        output_type,
                        output_type_name,
                        parent,
                        awaiter,
                        detached_jobs,
                        preserve_function_calls,
                    });
                }
                tokio::spawn(run_hook(start_session, activity, agent, Hook::OnEnter, run));
                Ok(())
            })
            .await;
        match started {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // Undo the pause if the task never started.
                let _ = session.post(move |st| {
                    if let Some(p) = st.activity_mut(parent)
                        && p.status == ActivityStatus::Paused
                    {
                        p.status = ActivityStatus::Running;
                    }
                });
                return Err(e);
            }
            Err(_) => return Err(TaskError::SessionClosed),
        }
        rx.await.unwrap_or(Err(TaskError::SessionClosed))
    }

    /// Completes the task this agent runs as, with `value`; control goes back to the caller,
    /// whose await returns `value`. Typically called from one of the task's tools, which then
    /// returns nothing.
    pub async fn complete<T: Send + 'static>(&self, value: T) -> Result<(), TaskError> {
        self.finish_task(Ok(Box::new(value)), TypeId::of::<T>())
            .await
    }

    /// Completes the task this agent runs as with an error (e.g. the user declined).
    pub async fn fail(&self, error: TaskError) -> Result<(), TaskError> {
        self.finish_task(Err(error), TypeId::of::<()>()).await
    }

    async fn finish_task(&self, value: TaskValue, type_id: TypeId) -> Result<(), TaskError> {
        let session = self.session().clone();
        let activity = self.activity_id();
        let speech = CURRENT_TOOL_SPEECH.try_with(Clone::clone).ok();
        let job = CURRENT_JOB.try_with(|j| *j).ok();
        let workflow_session = session.clone();
        session
            .exec(move |st| {
                let agent_id = st.activity(activity).map(|a| a.agent_id.clone());
                let Some(a) = st.activity_mut(activity) else {
                    return Err(TaskError::NotInTask);
                };
                let Some(slot) = a.task.as_ref() else {
                    let draining = a.status == ActivityStatus::Draining;
                    let root = st.root_task.filter(|(root, _, _)| *root == activity);
                    if let (Some((_, expected, expected_name)), false) = (root, draining) {
                        // The session's root task: the value is the run's final output.
                        if value.is_ok() && expected != type_id {
                            return Err(TaskError::WrongOutputType {
                                expected: expected_name,
                            });
                        }
                        let run = speech
                            .as_deref()
                            .and_then(|s| st.speech_run(s))
                            .or_else(|| job.and_then(|j| st.job_run(j)))
                            .or_else(|| st.active_run_token());
                        if let Some(run) = run {
                            *run.record
                                .final_output
                                .lock()
                                .unwrap_or_else(|p| p.into_inner()) = Some(value);
                        }
                        return Ok(());
                    }
                    return Err(match agent_id {
                        Some(id) if draining => TaskError::AlreadyDone(id),
                        _ => TaskError::NotInTask,
                    });
                };
                if value.is_ok() && slot.output_type != type_id {
                    return Err(TaskError::WrongOutputType {
                        expected: slot.output_type_name,
                    });
                }
                let slot = a.task.take().ok_or(TaskError::NotInTask)?;
                a.status = ActivityStatus::Draining;
                // The run watching the completing speech (or hook) watches the return too.
                let run = speech
                    .as_deref()
                    .and_then(|s| st.speech_run(s))
                    .or_else(|| job.and_then(|j| st.job_run(j)))
                    .or_else(|| st.active_run_token());
                tokio::spawn(return_control(workflow_session, activity, slot, value, run));
                Ok(())
            })
            .await
            .map_err(|_| TaskError::SessionClosed)?
    }

    pub(crate) fn activity_id(&self) -> ActivityId {
        self.activity
    }
}

impl<U: Send + 'static> RunContext<U> {
    /// Runs a task from this tool; see [`AgentContext::run_task`].
    pub async fn run_task<T: AgentTask<U>>(&self, task: T) -> Result<T::Output, TaskError> {
        (**self).run_task(task).await
    }
}

/// Hands control back from a completed task to the agent that awaited it.
async fn return_control<U: Send + 'static>(
    session: AgentSession<U>,
    activity: ActivityId,
    mut slot: TaskSlot,
    value: TaskValue,
    run: Option<RunToken>,
) {
    let switch = session.shared.clone();
    let _one_at_a_time = switch.switch_lock.lock().await;
    let agent = session
        .exec(move |st| st.activity(activity).map(|a| a.agent.clone()))
        .await
        .ok()
        .flatten();
    if let Some(agent) = agent {
        // The task's `on_exit`, then whatever it still has to say.
        run_hook(session.clone(), activity, agent, Hook::OnExit, run.clone()).await;
        if let Ok(idle) = session.exec(move |st| st.when_idle(activity)).await {
            let _ = idle.await;
        }
    }
    let parent = slot.parent;
    let awaiter = slot.awaiter.clone();
    let detached_jobs = std::mem::take(&mut slot.detached_jobs);
    let preserve = slot.preserve_function_calls;
    let returned = session
        .exec(move |st| -> Result<(), SessionError> {
            let task_ctx = st
                .activity(activity)
                .map(|a| a.chat_ctx.clone())
                .unwrap_or_default();
            let task_id = st.activity(activity).map(|a| a.agent_id.clone());
            st.remove_activity(activity);
            let parent_activity = st
                .activity_mut(parent)
                .ok_or(SessionError::AgentNotActive)?;
            parent_activity.chat_ctx.merge(
                &task_ctx.copy(&CopyOptions {
                    exclude_handoffs: true,
                    ..CopyOptions::default()
                }),
                &MergeOptions {
                    exclude_instructions: true,
                    exclude_function_calls: !preserve,
                },
            );
            let parent_id = parent_activity.agent_id.clone();
            let instructions = parent_activity.agent.agent.instructions();
            parent_activity.chat_ctx.set_instructions(&instructions);
            parent_activity.status = ActivityStatus::Running;
            let item = AgentHandoff::new(task_id, parent_id.clone());
            let (type_name, type_id) = (
                parent_activity.agent.type_name,
                parent_activity.agent.type_id,
            );
            let mut update = AgentConfigUpdate::new(Some(parent_id.clone()));
            update.instructions = Some(instructions);
            parent_activity.chat_ctx.insert(item.clone());
            parent_activity.chat_ctx.insert(update.clone());
            st.history.insert(item.clone());
            st.history.insert(update);
            st.record_run(
                run.as_ref(),
                RunEvent::AgentHandoff {
                    item: item.clone(),
                    new_agent_type: type_name,
                    new_agent_type_id: type_id,
                },
            );
            st.emit(super::EventKind::ConversationItemAdded {
                item: ChatItem::AgentHandoff(std::sync::Arc::new(item)),
            });
            st.current_agent_id = Some(parent_id);
            st.attach(&awaiter, run.clone());
            for job in &detached_jobs {
                st.attach(&Awaiter::Job(*job), run.clone());
            }
            st.schedule(parent);
            Ok(())
        })
        .await;
    if let Ok(Err(error)) = &returned {
        let message = format!("could not return from a task: {error}");
        let _ = session.post(move |st| st.report_error(ErrorSource::Session, message, true));
    }
    if let Some(tx) = slot.completion.take() {
        let _ = tx.send(value);
    }
}
