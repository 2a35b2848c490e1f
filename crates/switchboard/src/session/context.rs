//! What hooks and tools receive: [`AgentContext`] and [`RunContext`].

use std::ops::Deref;
use std::sync::MutexGuard;

use super::runtime::ActivityId;
use super::speech::{SpeechError, SpeechHandle};
use super::{AgentSession, SessionError};
use crate::chat::{AgentConfigUpdate, ChatContext, CopyOptions, FunctionCall};
use crate::tools::FunctionTool;

tokio::task_local! {
    /// Where the running user code was called from, for defaults that depend on it.
    pub(crate) static CALL_SCOPE: CallScope;
    /// The activity whose tool or hook is running in this task: speech it creates plays on
    /// that agent, even while it hands control away.
    pub(crate) static CURRENT_ACTIVITY: ActivityId;
}

/// Where user code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallScope {
    OnEnter,
    OnExit,
    Tool,
}

pub(crate) fn current_scope() -> Option<CallScope> {
    CALL_SCOPE.try_with(|s| *s).ok()
}

/// Given to an agent's hooks: the session, and operations on the agent itself.
pub struct AgentContext<U: Send + 'static = ()> {
    session: AgentSession<U>,
    pub(crate) activity: ActivityId,
    agent_id: String,
}

impl<U: Send + 'static> Clone for AgentContext<U> {
    fn clone(&self) -> Self {
        AgentContext {
            session: self.session.clone(),
            activity: self.activity,
            agent_id: self.agent_id.clone(),
        }
    }
}

impl<U: Send + 'static> AgentContext<U> {
    pub(crate) fn new(session: AgentSession<U>, activity: ActivityId, agent_id: String) -> Self {
        AgentContext {
            session,
            activity,
            agent_id,
        }
    }

    /// The session.
    pub fn session(&self) -> &AgentSession<U> {
        &self.session
    }

    /// The session's user data. Do not hold the guard across an `.await`.
    pub fn userdata(&self) -> MutexGuard<'_, U> {
        self.session.userdata()
    }

    /// This agent's id.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// A copy of this agent's context.
    pub async fn chat_ctx(&self) -> Result<ChatContext, SessionError> {
        let activity = self.activity;
        self.session
            .exec(move |st| st.activity(activity).map(|a| a.chat_ctx.clone()))
            .await?
            .ok_or(SessionError::AgentNotActive)
    }

    /// Replaces this agent's instructions; records a config update. Replies generated after
    /// this (including the follow-up of the tool calling it) use them.
    pub async fn update_instructions(
        &self,
        instructions: impl Into<String>,
    ) -> Result<(), SessionError> {
        let instructions = instructions.into();
        let activity = self.activity;
        self.session
            .exec(move |st| {
                let agent_id = st.activity(activity)?.agent_id.clone();
                let mut update = AgentConfigUpdate::new(Some(agent_id));
                update.instructions = Some(instructions.clone());
                st.history.insert(update.clone());
                let a = st.activity_mut(activity)?;
                a.chat_ctx.set_instructions(&instructions);
                a.chat_ctx.insert(update);
                Some(())
            })
            .await?
            .ok_or(SessionError::AgentNotActive)
    }

    /// Replaces this agent's own tools (session tools stay). Records a config update when the
    /// names changed, and drops tool items of removed tools from the agent's context.
    pub async fn update_tools(&self, tools: Vec<FunctionTool<U>>) -> Result<(), SessionError> {
        let activity = self.activity;
        self.session
            .exec(move |st| {
                let session_tools = st.session_tools.clone();
                let mut names = std::collections::HashSet::new();
                let mut merged = Vec::new();
                for tool in session_tools.into_iter().chain(tools) {
                    if names.insert(tool.name().to_owned()) {
                        merged.push(tool);
                    }
                }
                let a = st
                    .activity_mut(activity)
                    .ok_or(SessionError::AgentNotActive)?;
                let old: Vec<String> = a.tools.iter().map(|t| t.name().to_owned()).collect();
                let new: Vec<String> = merged.iter().map(|t| t.name().to_owned()).collect();
                a.tools = merged;
                if old == new {
                    return Ok(());
                }
                a.chat_ctx = a.chat_ctx.copy(&CopyOptions {
                    tools: Some(new.clone()),
                    ..CopyOptions::default()
                });
                let mut update = AgentConfigUpdate::new(Some(a.agent_id.clone()));
                update.tools_added = new.iter().filter(|n| !old.contains(n)).cloned().collect();
                update.tools_removed = old.iter().filter(|n| !new.contains(n)).cloned().collect();
                a.chat_ctx.insert(update.clone());
                st.history.insert(update);
                Ok(())
            })
            .await?
    }

    /// Replaces this agent's context with a copy of `ctx` filtered to its tools; the
    /// instructions are written back.
    pub async fn update_chat_ctx(&self, ctx: ChatContext) -> Result<(), SessionError> {
        let activity = self.activity;
        self.session
            .exec(move |st| {
                let a = st
                    .activity_mut(activity)
                    .ok_or(SessionError::AgentNotActive)?;
                let names = a.tools.iter().map(|t| t.name().to_owned()).collect();
                let instructions = a.agent.agent.instructions();
                let mut copy = ctx.copy(&CopyOptions {
                    tools: Some(names),
                    ..CopyOptions::default()
                });
                copy.set_instructions(&instructions);
                a.chat_ctx = copy;
                Ok(())
            })
            .await?
    }
}

/// Given to a tool: the session, the speech whose model step called it, and the call itself.
/// Derefs to [`AgentContext`] for the agent operations.
pub struct RunContext<U: Send + 'static = ()> {
    agent: AgentContext<U>,
    speech: SpeechHandle,
    call: FunctionCall,
    step: u32,
}

impl<U: Send + 'static> Clone for RunContext<U> {
    fn clone(&self) -> Self {
        RunContext {
            agent: self.agent.clone(),
            speech: self.speech.clone(),
            call: self.call.clone(),
            step: self.step,
        }
    }
}

impl<U: Send + 'static> Deref for RunContext<U> {
    type Target = AgentContext<U>;
    fn deref(&self) -> &AgentContext<U> {
        &self.agent
    }
}

impl<U: Send + 'static> RunContext<U> {
    pub(crate) fn new(
        agent: AgentContext<U>,
        speech: SpeechHandle,
        call: FunctionCall,
        step: u32,
    ) -> Self {
        RunContext {
            agent,
            speech,
            call,
            step,
        }
    }

    /// The speech whose model step made this call.
    pub fn speech_handle(&self) -> &SpeechHandle {
        &self.speech
    }

    /// The call being executed.
    pub fn function_call(&self) -> &FunctionCall {
        &self.call
    }

    /// Waits until the text of the step that made this call has been played out. Safe inside
    /// the tool (unlike awaiting the speech handle itself).
    pub async fn wait_for_playout(&self) {
        self.speech.wait_generation_done(self.step).await;
    }

    /// Forbids interrupting this speech from now on; an error if it was already interrupted.
    pub fn disallow_interruptions(&self) -> Result<(), SpeechError> {
        self.speech.set_allow_interruptions(false)
    }
}
