//! [`SpeechHandle`]: one agent turn, across all of its tool steps.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::chat::{ChatItem, new_id};
use crate::llm::LlmError;

/// Priority of a speech in its agent's queue. Higher plays first; equal priorities play in the
/// order they were queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpeechPriority {
    /// Plays after everything else.
    Low = 0,
    /// The default for replies, `say` and `generate_reply`.
    Normal = 5,
    /// Plays before normal speech.
    High = 10,
}

/// Why a speech failed. Read it with [`SpeechHandle::error`] or by awaiting the handle.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpeechError {
    /// The model request failed (after retries).
    #[error("the model request failed: {0}")]
    Llm(#[from] LlmError),
    /// The session has no model for this agent.
    #[error("no LLM is configured for agent `{0}`: set one on the session or the agent")]
    NoLlm(String),
    /// `generate_reply` restricted the tools to names that do not exist.
    #[error("unknown tool(s) {names:?}; available: {available:?}")]
    UnknownTools {
        /// The unknown names.
        names: Vec<String>,
        /// The tools that exist.
        available: Vec<String>,
    },
    /// The session has not been started.
    #[error("the session has not been started: call start(agent) first")]
    NotStarted,
    /// The session closed before the speech could finish.
    #[error("the session closed")]
    SessionClosed,
    /// The agent that owned the speech was replaced before it could play.
    #[error("the agent was replaced before the speech could play")]
    AgentGone,
    /// The speech disallows interruptions and the interruption was not forced.
    #[error("this speech does not allow interruptions")]
    InterruptionsDisallowed,
    /// Awaiting a speech from inside one of its own tools would wait forever.
    #[error("a tool cannot wait for its own speech: use RunContext::wait_for_playout")]
    AwaitedFromOwnTool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct SpeechState {
    /// How many times the scheduler authorised the speech (once per step).
    pub authorized: u32,
    /// How many steps finished playing out.
    pub generations_done: u32,
    pub interrupted: bool,
    pub done: bool,
    pub num_steps: u32,
    pub error: Option<SpeechError>,
    pub chat_items: Vec<ChatItem>,
}

pub(crate) struct SpeechInner {
    pub id: String,
    pub priority: SpeechPriority,
    pub allow_interruptions: AtomicBool,
    pub state: watch::Sender<SpeechState>,
}

/// One agent turn: the reply, its tool calls and every follow-up step. Cheap to clone.
///
/// Awaiting the handle waits until the whole turn is done, including tools, and returns the
/// first error recorded. It never panics.
#[derive(Clone)]
pub struct SpeechHandle {
    pub(crate) inner: Arc<SpeechInner>,
}

impl std::fmt::Debug for SpeechHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state.borrow();
        f.debug_struct("SpeechHandle")
            .field("id", &self.inner.id)
            .field("done", &state.done)
            .field("interrupted", &state.interrupted)
            .finish()
    }
}

tokio::task_local! {
    /// The speech whose tool is running in this task, to detect self-awaits.
    pub(crate) static CURRENT_TOOL_SPEECH: String;
}

impl SpeechHandle {
    pub(crate) fn new(priority: SpeechPriority, allow_interruptions: bool) -> Self {
        let (state, _) = watch::channel(SpeechState {
            num_steps: 1,
            ..SpeechState::default()
        });
        SpeechHandle {
            inner: Arc::new(SpeechInner {
                id: new_id("speech"),
                priority,
                allow_interruptions: AtomicBool::new(allow_interruptions),
                state,
            }),
        }
    }

    /// A handle that is already done with `error` (e.g. the session was closed).
    pub(crate) fn failed(error: SpeechError) -> Self {
        let handle = SpeechHandle::new(SpeechPriority::Normal, true);
        handle.finish(Some(error));
        handle
    }

    /// The speech's id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Its priority.
    pub fn priority(&self) -> SpeechPriority {
        self.inner.priority
    }

    /// True when the whole turn is over.
    pub fn is_done(&self) -> bool {
        self.inner.state.borrow().done
    }

    /// True when it was interrupted.
    pub fn interrupted(&self) -> bool {
        self.inner.state.borrow().interrupted
    }

    /// True when it has been scheduled (authorised to play) at least once.
    pub fn is_scheduled(&self) -> bool {
        self.inner.state.borrow().authorized > 0
    }

    /// How many LLM steps it has run or is running.
    pub fn num_steps(&self) -> u32 {
        self.inner.state.borrow().num_steps
    }

    /// The first error recorded, if any.
    pub fn error(&self) -> Option<SpeechError> {
        self.inner.state.borrow().error.clone()
    }

    /// The items this speech added to the conversation.
    pub fn chat_items(&self) -> Vec<ChatItem> {
        self.inner.state.borrow().chat_items.clone()
    }

    /// Whether the user may interrupt it.
    pub fn allow_interruptions(&self) -> bool {
        self.inner.allow_interruptions.load(Ordering::Acquire)
    }

    /// Allows or forbids interruptions. Forbidding them on an already interrupted speech is an
    /// error.
    pub fn set_allow_interruptions(&self, allow: bool) -> Result<(), SpeechError> {
        if !allow && self.interrupted() {
            return Err(SpeechError::InterruptionsDisallowed);
        }
        self.inner
            .allow_interruptions
            .store(allow, Ordering::Release);
        Ok(())
    }

    /// Interrupts the speech: playout stops, no follow-up reply is generated (tools already
    /// running finish and are recorded). A no-op when it is done or already interrupted; an
    /// error when it disallows interruptions.
    pub fn interrupt(&self) -> Result<(), SpeechError> {
        if !self.allow_interruptions() && !self.is_done() && !self.interrupted() {
            return Err(SpeechError::InterruptionsDisallowed);
        }
        self.force_interrupt();
        Ok(())
    }

    /// Interrupts the speech even when it disallows interruptions.
    pub fn force_interrupt(&self) {
        self.inner.state.send_if_modified(|s| {
            if s.done || s.interrupted {
                false
            } else {
                s.interrupted = true;
                true
            }
        });
    }

    /// Waits until the whole turn, tools included, is done. Returns the first error recorded.
    /// Called from one of this speech's own tools it returns
    /// [`SpeechError::AwaitedFromOwnTool`] at once instead of waiting forever.
    pub async fn wait_for_playout(&self) -> Result<(), SpeechError> {
        let own = CURRENT_TOOL_SPEECH
            .try_with(|id| *id == self.inner.id)
            .unwrap_or(false);
        if own {
            return Err(SpeechError::AwaitedFromOwnTool);
        }
        let mut rx = self.inner.state.subscribe();
        let state = rx.wait_for(|s| s.done).await;
        match state {
            Ok(state) => state.error.clone().map_or(Ok(()), Err),
            // The sender lives in this handle, so it cannot be gone.
            Err(_) => Ok(()),
        }
    }

    pub(crate) async fn wait_generation_done(&self, step: u32) {
        let mut rx = self.inner.state.subscribe();
        let _ = rx.wait_for(|s| s.generations_done >= step || s.done).await;
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut SpeechState)) {
        self.inner.state.send_modify(f);
    }

    pub(crate) fn finish(&self, error: Option<SpeechError>) {
        self.update(|s| {
            if let Some(e) = error {
                s.error.get_or_insert(e);
            }
            s.done = true;
        });
    }
}

impl IntoFuture for SpeechHandle {
    type Output = Result<(), SpeechError>;
    type IntoFuture = BoxFuture<'static, Result<(), SpeechError>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.wait_for_playout().await })
    }
}

impl IntoFuture for &SpeechHandle {
    type Output = Result<(), SpeechError>;
    type IntoFuture = BoxFuture<'static, Result<(), SpeechError>>;

    fn into_future(self) -> Self::IntoFuture {
        self.clone().into_future()
    }
}
