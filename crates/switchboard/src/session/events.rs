//! Session events: every observable step, typed, in order, with a timestamp.

use std::time::Duration;

use serde::Serialize;

use crate::chat::{ChatItem, FunctionCall, FunctionCallOutput};
use crate::clock::Timestamp;
use crate::llm::Usage;

/// What the agent is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Starting up.
    Initializing,
    /// Nothing to do.
    Idle,
    /// Waiting for the user.
    Listening,
    /// Waiting for the model or for tools.
    Thinking,
    /// Speaking (or, in text mode, writing).
    Speaking,
}

/// What the user is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    /// Speaking.
    Speaking,
    /// Silent, and the agent may speak.
    Listening,
    /// Silent for longer than the user-away timeout.
    Away,
}

/// Why the session closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// [`AgentSession::close`](super::AgentSession::close) was called.
    UserInitiated,
    /// Too many unrecoverable model errors.
    Error,
    /// The transport's participant left.
    ParticipantDisconnected,
    /// The hosting job is shutting down.
    JobShutdown,
}

/// Where an error came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum ErrorSource {
    /// The language model.
    Llm,
    /// Speech-to-text.
    Stt,
    /// Text-to-speech.
    Tts,
    /// Voice activity detection.
    Vad,
    /// A tool, by name.
    Tool(String),
    /// A hook of an agent (`on_enter`, `on_exit`, ...), by agent id.
    Hook(String),
    /// The session itself.
    Session,
}

/// Who asked for a speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeechSource {
    /// [`AgentSession::say`](super::AgentSession::say).
    Say,
    /// [`AgentSession::generate_reply`](super::AgentSession::generate_reply).
    GenerateReply,
    /// An automatic reply to a user turn ([`AgentSession::run`](super::AgentSession::run) or
    /// a voice turn).
    UserTurn,
}

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallStatus {
    /// It returned an output.
    Done,
    /// It returned an error (or failed internally).
    Error,
    /// It was cancelled (session closed).
    Cancelled,
}

/// One step of tool calls has finished. Passed by `&mut` to
/// [`Agent::on_tools_executed`](super::Agent::on_tools_executed), which may cancel the follow-up
/// reply or the handoff, then published as an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolsExecuted {
    /// The calls, in the model's order.
    pub function_calls: Vec<FunctionCall>,
    /// Their outputs (same index, same call).
    pub function_call_outputs: Vec<FunctionCallOutput>,
    /// True when at least one output asks the model to reply.
    pub reply_requested: bool,
    /// The id of the agent a tool hands off to, if any.
    pub handoff_to: Option<String>,
    #[serde(skip)]
    pub(crate) reply_cancelled: bool,
    #[serde(skip)]
    pub(crate) handoff_cancelled: bool,
}

impl ToolsExecuted {
    /// Skips the model's follow-up reply to these outputs.
    pub fn cancel_tool_reply(&mut self) {
        self.reply_cancelled = true;
    }

    /// Cancels the handoff a tool asked for.
    pub fn cancel_agent_handoff(&mut self) {
        self.handoff_cancelled = true;
    }

    /// True when a follow-up reply will be generated.
    pub fn has_tool_reply(&self) -> bool {
        self.reply_requested && !self.reply_cancelled
    }

    /// True when a handoff will happen.
    pub fn has_agent_handoff(&self) -> bool {
        self.handoff_to.is_some() && !self.handoff_cancelled
    }

    /// Calls paired with their outputs.
    pub fn zipped(&self) -> impl Iterator<Item = (&FunctionCall, &FunctionCallOutput)> {
        self.function_calls
            .iter()
            .zip(self.function_call_outputs.iter())
    }
}

/// Metrics of one model request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmMetrics {
    /// The speech the request belongs to.
    pub speech_id: String,
    /// Provider and model, e.g. `openai/gpt-4o-mini`.
    pub model: String,
    /// Time from the request to the first chunk.
    #[serde(with = "duration_secs")]
    pub ttft: Duration,
    /// Time from the request to the end of the stream.
    #[serde(with = "duration_secs")]
    pub duration: Duration,
    /// Token usage, when the provider reported it.
    pub usage: Option<Usage>,
    /// Completion tokens per second, when usage was reported.
    pub tokens_per_second: Option<f64>,
}

mod duration_secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Something that happened in a session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionEvent {
    /// When it happened.
    pub created_at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The kinds of [`SessionEvent`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The agent's state changed.
    AgentStateChanged {
        /// Before.
        old_state: AgentState,
        /// After.
        new_state: AgentState,
    },
    /// The user's state changed.
    UserStateChanged {
        /// Before.
        old_state: UserState,
        /// After.
        new_state: UserState,
    },
    /// A message or a handoff was added to the history. (Tool calls and outputs come with
    /// [`EventKind::FunctionToolsExecuted`].)
    ConversationItemAdded {
        /// The item.
        item: ChatItem,
    },
    /// A step of tool calls finished.
    FunctionToolsExecuted(ToolsExecuted),
    /// A speech was queued.
    SpeechCreated {
        /// Its id.
        speech_id: String,
        /// True when application code asked for it (`say`, `generate_reply`), false for
        /// automatic replies to user turns.
        user_initiated: bool,
        /// What created it.
        source: SpeechSource,
    },
    /// A tool call started.
    ToolCallStarted {
        /// The call.
        function_call: FunctionCall,
    },
    /// A tool call ended.
    ToolCallEnded {
        /// The call's id.
        call_id: String,
        /// How it ended.
        status: ToolCallStatus,
    },
    /// A model request finished.
    LlmMetrics(LlmMetrics),
    /// The user's speech was transcribed (voice sessions).
    UserInputTranscribed {
        /// The text of this transcript (one utterance; interim results grow).
        transcript: String,
        /// False for interim results that may still change.
        is_final: bool,
    },
    /// User speech paused the agent but no words followed within the false-interruption
    /// timeout (voice sessions).
    AgentFalseInterruption {
        /// Whether the paused speech resumed.
        resumed: bool,
    },
    /// Latency figures of a voice turn, once the agent's first audio after it played.
    TurnMetrics(super::voice::TurnMetrics),
    /// Something failed.
    Error {
        /// What failed.
        source: ErrorSource,
        /// The error, without secrets.
        message: String,
        /// False when the failure counts towards closing the session.
        recoverable: bool,
    },
    /// The session closed.
    Close {
        /// Why.
        reason: CloseReason,
        /// The error that caused it, if any.
        error: Option<String>,
    },
}
