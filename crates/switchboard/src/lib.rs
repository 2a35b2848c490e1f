//! # Switchboard
//!
//! Voice AI agents whose conversations follow explicit, testable workflows.
//!
//! An [`AgentSession`] runs one conversation. [`Agent`]s hold it, [`tools`] let the model act,
//! a tool returning a [`Handoff`] passes the conversation to another agent. Everything the
//! session does is a typed [`SessionEvent`], and [`AgentSession::run`] returns a [`RunResult`]
//! that tests read like the conversation itself. Tests use the scripted models of [`testing`]
//! in virtual time (`tokio::time::pause`): whole conversations run in microseconds, with no
//! sleeps and no flakes.
//!
//! The layers, each using only those above it: [`clock`], [`chat`], [`llm`], [`tools`],
//! [`session`], [`testing`].

pub mod cache;
pub mod chat;
pub mod clock;
pub mod llm;
pub mod session;
pub mod testing;
pub mod tools;
pub mod voice;
pub mod workflows;

pub use async_trait::async_trait;
pub use session::{
    Agent, AgentContext, AgentSession, AgentState, AgentTask, CloseReason, EventKind, Handoff,
    HandoffContext, ReplyOptions, RunContext, RunEvent, RunResult, SayOptions, SessionBuilder,
    SessionError, SessionEvent, SessionOptions, SpeechError, SpeechHandle, SpeechPriority,
    TaskError, TaskOptions, ToolMock,
};
pub use session::{
    EndpointingOptions, InterruptionOptions, TurnDetection, TurnDetector, TurnHandling,
    TurnMetrics, UserState,
};
pub use switchboard_macros::{agent, tool};
pub use tools::{FunctionTool, StopResponse, ToolError};

#[doc(hidden)]
pub mod __private {
    pub use futures;
    pub use schemars;
    pub use serde;
    pub use serde_json;
}

/// The error type of agent hooks: anything a hook may fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Skip the reply (from `on_user_turn_completed`).
    #[error("the response was stopped")]
    StopResponse,
    /// A session operation failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A speech failed.
    #[error(transparent)]
    Speech(#[from] SpeechError),
    /// A model request failed.
    #[error(transparent)]
    Llm(#[from] llm::LlmError),
    /// A tool-level error.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// Anything else.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wraps any error.
    pub fn other(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Other(Box::new(error))
    }
}

impl From<StopResponse> for Error {
    fn from(_: StopResponse) -> Self {
        Error::StopResponse
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
