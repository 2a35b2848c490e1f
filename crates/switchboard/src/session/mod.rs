//! The agent session: one actor per conversation that runs agents, speech, tools and handoffs.
//!
//! ```
//! use std::sync::Arc;
//! use switchboard::{Agent, AgentSession};
//! use switchboard::testing::ScriptedLlm;
//!
//! struct Receptionist;
//! impl Agent for Receptionist {
//!     fn instructions(&self) -> String { "You answer the phone of a clinic.".into() }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let llm = Arc::new(ScriptedLlm::new().on("hello", switchboard::testing::ScriptedReply::text("Hi! How can I help?")));
//! let session = AgentSession::builder().llm(llm).build();
//! session.start(Receptionist).await.unwrap();
//! let result = session.run("hello").await.unwrap();
//! assert_eq!(result.last_reply().as_deref(), Some("Hi! How can I help?"));
//! session.close().await;
//! # });
//! ```

mod agent;
/// Type-erased agents, for workflows inside the crate.
pub(crate) mod agent_ref {
    pub(crate) use super::agent::AgentRef;
}
mod context;
mod events;
mod pipeline;
mod run;
mod runtime;
mod speech;
mod task;
mod voice;

pub use agent::{Agent, Handoff, HandoffContext, agent_id_from_type_name};
pub use context::{AgentContext, RunContext};
pub use events::{
    AgentState, CloseReason, ErrorSource, EventKind, LlmMetrics, SessionEvent, SpeechSource,
    ToolCallStatus, ToolsExecuted, UserState,
};
pub use run::{RunEvent, RunResult};
pub use speech::{SpeechError, SpeechHandle, SpeechPriority};
pub use task::{AgentTask, TaskError, TaskOptions};
pub use voice::{
    EndpointingOptions, InterruptionOptions, TurnDetection, TurnDetector, TurnHandling, TurnMetrics,
};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use self::agent::AgentRef;
use self::context::{CallScope, current_scope};
use self::run::RunRecord;
use self::runtime::{Command, ReplyPlan, SpeechKind, State};
use crate::chat::{ChatContext, ChatMessage, Role};
use crate::llm::{ConnOptions, Llm, ToolChoice};
use crate::tools::FunctionTool;
use crate::voice::audio::AudioFrame;

/// Why a session operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session is closed (or closing).
    #[error("the session is closed")]
    Closed,
    /// `start` has not been called yet.
    #[error("the session has not been started: call start(agent) first")]
    NotStarted,
    /// `start` was called twice.
    #[error("the session was already started")]
    AlreadyStarted,
    /// Audio was pushed to a session without a VAD or STT.
    #[error("this session does not listen to audio: give the builder a vad() and/or stt()")]
    NoAudioInput,
    /// A run is still open; runs do not nest.
    #[error("a run is already in progress: await it before starting another")]
    RunInProgress,
    /// Two tools of one agent share a name.
    #[error("two tools are named `{0}`: tool names must be unique per agent")]
    DuplicateTool(String),
    /// The agent this context belongs to no longer runs.
    #[error("the agent is no longer active")]
    AgentNotActive,
    /// A speech failed.
    #[error(transparent)]
    Speech(#[from] SpeechError),
    /// A root task never completed, even after reminders.
    #[error("the task did not complete after {attempts} attempts")]
    NoFinalOutput {
        /// Turns tried (the first plus the reminders).
        attempts: u32,
        /// Everything the turns produced.
        result: Box<RunResult>,
    },
    /// A root task failed (or completed with the wrong type).
    #[error("the task failed: {0}")]
    Task(task::TaskError),
    /// The turn failed; what it produced before failing is in `result`.
    #[error("the turn failed: {error}")]
    TurnFailed {
        /// Why.
        error: SpeechError,
        /// Everything the turn recorded before the failure.
        result: Box<RunResult>,
    },
}

/// Session-wide options. See [`SessionBuilder`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionOptions {
    /// Tool rounds per speech that get an `auto` follow-up; the next is forced to `none`
    /// (default 3).
    pub max_tool_steps: u32,
    /// Minimum gap between two consecutive speeches (default zero).
    pub min_consecutive_speech_delay: Duration,
    /// Unrecoverable model errors tolerated before the session closes (default 3).
    pub max_unrecoverable_errors: u32,
    /// Mutual silence after which the user is considered away (default 15 s; `None`
    /// disables it).
    pub user_away_timeout: Option<Duration>,
    /// Retries and timeouts of model requests.
    pub conn_options: ConnOptions,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            max_tool_steps: 3,
            min_consecutive_speech_delay: Duration::ZERO,
            max_unrecoverable_errors: 3,
            user_away_timeout: Some(Duration::from_secs(15)),
            conn_options: ConnOptions::default(),
        }
    }
}

pub(crate) struct Shared<U: Send + 'static> {
    commands: mpsc::UnboundedSender<Command<U>>,
    /// The actor's inbox until `start` spawns it.
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Command<U>>>>,
    /// The state, until `start` moves it into the actor.
    initial: Mutex<Option<StateSeed<U>>>,
    userdata: Mutex<U>,
    /// True once closing began: running user code is cancelled.
    pub(crate) closed: watch::Sender<bool>,
    /// Serialises agent switches.
    pub(crate) switch_lock: tokio::sync::Mutex<()>,
    /// When the user becomes away if nothing happens (published by the actor).
    pub(crate) away_deadline: watch::Sender<Option<tokio::time::Instant>>,
    /// The history, kept after the actor stopped.
    pub(crate) final_history: Mutex<Option<ChatContext>>,
    /// Where pushed audio goes (voice sessions, once started).
    audio_in: Mutex<Option<mpsc::UnboundedSender<voice::InputMessage>>>,
    /// What the input task reads about the agent's speech without asking the actor.
    pub(crate) speaking: voice::SpeakingFlags,
}

struct StateSeed<U: Send + 'static> {
    options: SessionOptions,
    llm: Option<Arc<dyn Llm>>,
    tools: Vec<FunctionTool<U>>,
    voice: voice::VoiceIo,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A conversation. Cheap to clone: every clone talks to the same session actor.
///
/// Create one with [`AgentSession::builder`] (or [`AgentSession::with_userdata`]), then
/// [`start`](AgentSession::start) it with an agent.
pub struct AgentSession<U: Send + 'static = ()> {
    pub(crate) shared: Arc<Shared<U>>,
}

impl<U: Send + 'static> Clone for AgentSession<U> {
    fn clone(&self) -> Self {
        AgentSession {
            shared: self.shared.clone(),
        }
    }
}

impl<U: Send + 'static> std::fmt::Debug for AgentSession<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSession").finish_non_exhaustive()
    }
}

/// Builds an [`AgentSession`].
pub struct SessionBuilder<U: Send + 'static> {
    userdata: U,
    llm: Option<Arc<dyn Llm>>,
    tools: Vec<FunctionTool<U>>,
    options: SessionOptions,
    voice: voice::VoiceIo,
}

impl<U: Send + 'static> SessionBuilder<U> {
    /// The default model of every agent.
    pub fn llm(mut self, llm: Arc<dyn Llm>) -> Self {
        self.llm = Some(llm);
        self
    }

    /// A tool every agent gets.
    pub fn tool(mut self, tool: FunctionTool<U>) -> Self {
        self.tools.push(tool);
        self
    }

    /// Tool rounds per speech with an `auto` follow-up (default 3).
    pub fn max_tool_steps(mut self, steps: u32) -> Self {
        self.options.max_tool_steps = steps;
        self
    }

    /// Minimum gap between two consecutive speeches.
    pub fn min_consecutive_speech_delay(mut self, delay: Duration) -> Self {
        self.options.min_consecutive_speech_delay = delay;
        self
    }

    /// Unrecoverable model errors tolerated before closing (default 3).
    pub fn max_unrecoverable_errors(mut self, n: u32) -> Self {
        self.options.max_unrecoverable_errors = n;
        self
    }

    /// Mutual silence after which the user state becomes `away` (default 15 s; `None`
    /// disables it).
    pub fn user_away_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.user_away_timeout = timeout;
        self
    }

    /// Retries and timeouts of model requests.
    pub fn conn_options(mut self, options: ConnOptions) -> Self {
        self.options.conn_options = options;
        self
    }

    /// All options at once.
    pub fn options(mut self, options: SessionOptions) -> Self {
        self.options = options;
        self
    }

    /// The voice activity detector that cuts the caller's audio into utterances (voice
    /// sessions). With a VAD, turns end at its end of speech plus the endpointing delay.
    pub fn vad(mut self, vad: Arc<dyn crate::voice::vad::Vad>) -> Self {
        self.voice.vad = Some(vad);
        self
    }

    /// The speech-to-text model. A non-streaming model transcribes each VAD utterance; a
    /// streaming one hears all audio and sends interim transcripts.
    pub fn stt(mut self, stt: Arc<dyn crate::voice::stt::Stt>) -> Self {
        self.voice.stt = Some(stt);
        self
    }

    /// Options of every recognition (e.g. the language).
    pub fn stt_options(mut self, options: crate::voice::stt::RecognizeOptions) -> Self {
        self.voice.stt_options = options;
        self
    }

    /// The text-to-speech model. Replies are spoken when both a TTS and an
    /// [`audio_output`](SessionBuilder::audio_output) are set; otherwise they are text.
    pub fn tts(mut self, tts: Arc<dyn crate::voice::tts::Tts>) -> Self {
        self.voice.tts = Some(tts);
        self
    }

    /// Where the agent's audio goes.
    pub fn audio_output(mut self, output: Arc<dyn crate::voice::output::AudioOutput>) -> Self {
        self.voice.output = Some(output);
        self
    }

    /// Turn detection, endpointing, interruptions and preemptive generation.
    pub fn turn_handling(mut self, turn: TurnHandling) -> Self {
        self.voice.turn = turn;
        self
    }

    /// Transforms applied to text before it is spoken (default: markdown, then emoji).
    pub fn text_transforms(
        mut self,
        transforms: impl IntoIterator<Item = crate::voice::text::TextTransform>,
    ) -> Self {
        self.voice.transforms = transforms.into_iter().collect();
        self
    }

    /// The session. Nothing runs until [`AgentSession::start`].
    pub fn build(self) -> AgentSession<U> {
        let (commands, inbox) = mpsc::unbounded_channel();
        let (closed, _) = watch::channel(false);
        AgentSession {
            shared: Arc::new(Shared {
                commands,
                inbox: Mutex::new(Some(inbox)),
                initial: Mutex::new(Some(StateSeed {
                    options: self.options,
                    llm: self.llm,
                    tools: self.tools,
                    voice: self.voice,
                })),
                userdata: Mutex::new(self.userdata),
                closed,
                switch_lock: tokio::sync::Mutex::new(()),
                away_deadline: watch::channel(None).0,
                final_history: Mutex::new(None),
                audio_in: Mutex::new(None),
                speaking: voice::SpeakingFlags::default(),
            }),
        }
    }
}

/// What starts a turn.
enum TurnInput {
    User(String),
    Instructions(String),
}

/// A tool mock installed by [`AgentSession::mock_tool`]; dropping it removes the mock.
#[must_use = "the mock is removed when this guard is dropped; call .keep() to keep it"]
pub struct ToolMock<U: Send + 'static> {
    session: Option<AgentSession<U>>,
    key: (std::any::TypeId, String),
}

impl<U: Send + 'static> ToolMock<U> {
    /// Keeps the mock for the rest of the session.
    pub fn keep(mut self) {
        self.session = None;
    }
}

impl<U: Send + 'static> Drop for ToolMock<U> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let key = self.key.clone();
            let _ = session.post(move |st| {
                st.mocks.remove(&key);
            });
        }
    }
}

/// What [`AgentSession::generate_reply`] should do. `&str` and `String` convert into one-off
/// instructions.
#[derive(Debug, Clone, Default)]
pub struct ReplyOptions {
    /// A user message to add before replying.
    pub user_input: Option<String>,
    /// A one-off system instruction for this reply only (not stored).
    pub instructions: Option<String>,
    /// Overrides the tool choice (default `auto`, or `none` inside a tool).
    pub tool_choice: Option<ToolChoice>,
    /// Offers only these tools.
    pub tools: Option<Vec<String>>,
    /// Whether the user may interrupt it (default true).
    pub allow_interruptions: Option<bool>,
    /// Its place in the queue (default normal).
    pub priority: Option<SpeechPriority>,
}

/// How [`AgentSession::say_with`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SayOptions {
    /// Whether the user may interrupt it (default true).
    pub allow_interruptions: bool,
    /// Whether the text is added to the conversation (default true).
    pub add_to_chat_ctx: bool,
    /// Its place in the queue (default normal).
    pub priority: SpeechPriority,
}

impl Default for SayOptions {
    fn default() -> Self {
        SayOptions {
            allow_interruptions: true,
            add_to_chat_ctx: true,
            priority: SpeechPriority::Normal,
        }
    }
}

impl ReplyOptions {
    /// A reply to this user message.
    pub fn user_input(text: impl Into<String>) -> Self {
        ReplyOptions {
            user_input: Some(text.into()),
            ..Self::default()
        }
    }

    /// A reply guided by this one-off instruction.
    pub fn instructions(text: impl Into<String>) -> Self {
        ReplyOptions {
            instructions: Some(text.into()),
            ..Self::default()
        }
    }

    /// Sets the tool choice.
    pub fn with_tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// Restricts the offered tools.
    pub fn with_tools(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tools = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Allows or forbids interruptions.
    pub fn with_allow_interruptions(mut self, allow: bool) -> Self {
        self.allow_interruptions = Some(allow);
        self
    }

    /// Sets the queue priority.
    pub fn with_priority(mut self, priority: SpeechPriority) -> Self {
        self.priority = Some(priority);
        self
    }
}

impl From<&str> for ReplyOptions {
    fn from(instructions: &str) -> Self {
        ReplyOptions::instructions(instructions)
    }
}

impl From<String> for ReplyOptions {
    fn from(instructions: String) -> Self {
        ReplyOptions::instructions(instructions)
    }
}

impl AgentSession<()> {
    /// A builder for a session without user data.
    pub fn builder() -> SessionBuilder<()> {
        SessionBuilder {
            userdata: (),
            llm: None,
            tools: Vec::new(),
            options: SessionOptions::default(),
            voice: voice::VoiceIo {
                transforms: crate::voice::text::TextTransform::DEFAULT.to_vec(),
                ..voice::VoiceIo::default()
            },
        }
    }
}

impl<U: Send + 'static> AgentSession<U> {
    /// A builder for a session holding `userdata`, which tools and hooks can read and change.
    pub fn with_userdata(userdata: U) -> SessionBuilder<U> {
        SessionBuilder {
            userdata,
            llm: None,
            tools: Vec::new(),
            options: SessionOptions::default(),
            voice: voice::VoiceIo {
                transforms: crate::voice::text::TextTransform::DEFAULT.to_vec(),
                ..voice::VoiceIo::default()
            },
        }
    }

    /// Sends a command to the actor without waiting.
    pub(crate) fn post(
        &self,
        f: impl FnOnce(&mut State<U>) + Send + 'static,
    ) -> Result<(), SessionError> {
        self.shared
            .commands
            .send(Box::new(f))
            .map_err(|_| SessionError::Closed)
    }

    /// Runs `f` in the actor and returns its result.
    pub(crate) async fn exec<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State<U>) -> R + Send + 'static,
    ) -> Result<R, SessionError> {
        if lock(&self.shared.inbox).is_some() {
            // The actor is not running yet: nothing would ever answer.
            return Err(SessionError::NotStarted);
        }
        let (tx, rx) = oneshot::channel();
        self.post(move |st| {
            let _ = tx.send(f(st));
        })?;
        rx.await.map_err(|_| SessionError::Closed)
    }

    /// Starts the session with its first agent and waits until everything the agent's
    /// `on_enter` produced is done; returns that as a run.
    pub async fn start<A: Agent<U>>(&self, agent: A) -> Result<RunResult, SessionError> {
        self.start_ref(AgentRef::new(agent), None).await
    }

    /// Starts the session with a task as its root agent, to test the task on its own: what it
    /// completes with is the final output of [`run_with_output`](AgentSession::run_with_output).
    pub async fn start_task<T: AgentTask<U>>(&self, task: T) -> Result<RunResult, SessionError> {
        let output = (
            std::any::TypeId::of::<T::Output>(),
            std::any::type_name::<T::Output>(),
        );
        self.start_ref(AgentRef::new(task), Some(output)).await
    }

    async fn start_ref(
        &self,
        agent: AgentRef<U>,
        root_task: Option<(std::any::TypeId, &'static str)>,
    ) -> Result<RunResult, SessionError> {
        let (inbox, seed) = {
            let inbox = lock(&self.shared.inbox).take();
            let seed = lock(&self.shared.initial).take();
            match (inbox, seed) {
                (Some(inbox), Some(seed)) => (inbox, seed),
                _ => return Err(SessionError::AlreadyStarted),
            }
        };
        let mut state = State::new(
            Arc::downgrade(&self.shared),
            seed.options,
            seed.llm,
            seed.tools,
        );
        let voice = Arc::new(seed.voice);
        state.voice = voice.clone();
        tokio::spawn(runtime::run_actor(state, inbox));
        if voice.listens() {
            let (tx, rx) = mpsc::unbounded_channel();
            *lock(&self.shared.audio_in) = Some(tx);
            tokio::spawn(voice::run_input(self.clone(), voice, rx));
        }
        if seed.options.user_away_timeout.is_some() {
            tokio::spawn(runtime::away_timer(self.clone()));
        }

        let record = Arc::new(RunRecord::default());
        let run_record = record.clone();
        let started = self
            .exec(move |st| {
                let (token, done) = st.begin_run(run_record)?;
                st.set_agent_state(AgentState::Initializing);
                let activity =
                    st.finish_handoff(None, agent.clone(), agent.agent.chat_ctx(), Some(&token))?;
                st.root_task = root_task.map(|(type_id, name)| (activity, type_id, name));
                st.set_agent_state(AgentState::Listening);
                if let Some(session) = st.session() {
                    tokio::spawn(pipeline::run_hook(
                        session,
                        activity,
                        agent,
                        pipeline::Hook::OnEnter,
                        Some(token),
                    ));
                }
                Ok::<_, SessionError>(done)
            })
            .await??;
        let _ = started.await;
        self.finish_run(&record)
    }

    fn finish_run(&self, record: &RunRecord) -> Result<RunResult, SessionError> {
        let result = RunResult::from_record(record);
        match lock(&record.last_error).clone() {
            Some(error) => Err(SessionError::TurnFailed {
                error,
                result: Box::new(result),
            }),
            None => Ok(result),
        }
    }

    /// Sends a user message and waits until the agent's reply is complete: every tool call,
    /// follow-up, handoff and the new agent's greeting. Runs do not nest.
    ///
    /// The agent's `on_user_turn_completed` hook runs first (unlike the reference, which skips it
    /// in text mode), so text tests exercise the same path as voice turns.
    pub async fn run(&self, user_input: impl Into<String>) -> Result<RunResult, SessionError> {
        let record = Arc::new(RunRecord::default());
        self.run_on(TurnInput::User(user_input.into()), record.clone())
            .await?;
        self.finish_run(&record)
    }

    /// Like [`run`](AgentSession::run), for a session started with
    /// [`start_task`](AgentSession::start_task): also returns what the task completed with.
    ///
    /// When the turn ends without the task completing, the model is reminded (a one-off
    /// instruction) up to `max_retries` times; then
    /// [`SessionError::NoFinalOutput`] is returned with everything the turns produced. A task
    /// that fails returns [`SessionError::Task`].
    pub async fn run_with_output<T: Send + 'static>(
        &self,
        user_input: impl Into<String>,
        max_retries: u32,
    ) -> Result<(RunResult, T), SessionError> {
        let record = Arc::new(RunRecord::default());
        let mut input = TurnInput::User(user_input.into());
        for attempt in 0..=max_retries {
            self.run_on(input, record.clone()).await?;
            if let Some(output) = record.take_final_output() {
                let result = self.finish_run(&record)?;
                return match output {
                    Ok(value) => value.downcast::<T>().map(|v| (result, *v)).map_err(|_| {
                        SessionError::Task(task::TaskError::WrongOutputType {
                            expected: std::any::type_name::<T>(),
                        })
                    }),
                    Err(error) => Err(SessionError::Task(error)),
                };
            }
            if attempt == max_retries {
                break;
            }
            input = TurnInput::Instructions(
                "You have not provided the final output yet. Complete the task now with the \
                 tool that records the result."
                    .to_owned(),
            );
        }
        let result = self.finish_run(&record)?;
        Err(SessionError::NoFinalOutput {
            attempts: max_retries + 1,
            result: Box::new(result),
        })
    }

    /// One turn recorded into `record`: a user message (through `on_user_turn_completed`) or a
    /// one-off instruction.
    async fn run_on(&self, input: TurnInput, record: Arc<RunRecord>) -> Result<(), SessionError> {
        let session = self.clone();
        let done = self
            .exec(move |st| {
                if st.top().is_none() {
                    return Err(if st.closing {
                        SessionError::Closed
                    } else {
                        SessionError::NotStarted
                    });
                }
                if st.draining {
                    return Err(SessionError::Closed);
                }
                let (token, done) = st.begin_run(record)?;
                match input {
                    TurnInput::User(text) => {
                        let target = st
                            .top()
                            .and_then(|id| st.activity(id).map(|a| (id, a.agent.clone())));
                        let start = TurnStart {
                            text,
                            timing: None,
                            preemptive: None,
                        };
                        tokio::spawn(user_turn(session, start, target, Some(token)));
                    }
                    TurnInput::Instructions(text) => {
                        let plan = ReplyPlan {
                            user_message: None,
                            instructions: Some(text),
                            tool_choice: None,
                            allowed_tools: None,
                            in_on_enter: false,
                            in_tool: false,
                            turn_ctx: None,
                            timing: None,
                            preemptive: None,
                        };
                        let handle = SpeechHandle::new(SpeechPriority::Normal, true);
                        st.create_speech(
                            handle,
                            SpeechKind::Reply(Box::new(plan)),
                            SpeechSource::GenerateReply,
                            Some(token),
                        );
                    }
                }
                Ok(done)
            })
            .await;
        let done = match done {
            Ok(Ok(done)) => done,
            Ok(Err(e)) | Err(e) => return Err(e),
        };
        let _ = done.await;
        if *self.shared.closed.borrow() {
            return Err(SessionError::Closed);
        }
        Ok(())
    }

    /// Feeds the caller's audio (any sample rate and channel count) to a voice session. Push
    /// frames as they arrive, in real time; the session's VAD and STT turn them into turns.
    pub fn push_audio(&self, frame: AudioFrame) -> Result<(), SessionError> {
        self.send_input(voice::InputMessage::Audio(frame))
    }

    /// The caller's audio ended (hung up, end of file): the last utterance is flushed and
    /// transcribed, and a pending turn is committed.
    pub fn end_audio_input(&self) -> Result<(), SessionError> {
        self.send_input(voice::InputMessage::End)
    }

    /// Ends the user's turn now with what was transcribed (manual turn detection, or
    /// push-to-talk).
    pub fn commit_user_turn(&self) -> Result<(), SessionError> {
        self.send_input(voice::InputMessage::Commit)
    }

    /// Discards what the user said in the current turn.
    pub fn clear_user_turn(&self) -> Result<(), SessionError> {
        self.send_input(voice::InputMessage::Clear)
    }

    fn send_input(&self, message: voice::InputMessage) -> Result<(), SessionError> {
        if lock(&self.shared.inbox).is_some() {
            return Err(SessionError::NotStarted);
        }
        match lock(&self.shared.audio_in).as_ref() {
            Some(tx) => tx.send(message).map_err(|_| SessionError::Closed),
            None => Err(SessionError::NoAudioInput),
        }
    }

    /// Speaks `text` as the agent, without the model. The returned handle completes when it has
    /// been played; the text is added to the conversation.
    pub fn say(&self, text: impl Into<String>) -> SpeechHandle {
        self.say_with(text, SayOptions::default())
    }

    /// [`say`](AgentSession::say) with options.
    pub fn say_with(&self, text: impl Into<String>, options: SayOptions) -> SpeechHandle {
        let handle = SpeechHandle::new(options.priority, options.allow_interruptions);
        let kind = SpeechKind::Say {
            text: text.into(),
            add_to_chat_ctx: options.add_to_chat_ctx,
        };
        self.queue(handle, kind, SpeechSource::Say)
    }

    /// Asks the model for a reply. `&str` means one-off instructions; see [`ReplyOptions`].
    /// Awaiting the handle waits for the whole reply.
    pub fn generate_reply(&self, options: impl Into<ReplyOptions>) -> SpeechHandle {
        let options = options.into();
        let scope = current_scope();
        let handle = SpeechHandle::new(
            options.priority.unwrap_or(SpeechPriority::Normal),
            options.allow_interruptions.unwrap_or(true),
        );
        let plan = ReplyPlan {
            user_message: options.user_input.map(|t| ChatMessage::new(Role::User, t)),
            instructions: options.instructions,
            tool_choice: options.tool_choice,
            allowed_tools: options.tools,
            in_on_enter: scope == Some(CallScope::OnEnter),
            in_tool: scope == Some(CallScope::Tool),
            turn_ctx: None,
            timing: None,
            preemptive: None,
        };
        self.queue(
            handle,
            SpeechKind::Reply(Box::new(plan)),
            SpeechSource::GenerateReply,
        )
    }

    fn queue(&self, handle: SpeechHandle, kind: SpeechKind, source: SpeechSource) -> SpeechHandle {
        if lock(&self.shared.inbox).is_some() {
            return SpeechHandle::failed(SpeechError::NotStarted);
        }
        let queued = handle.clone();
        let origin = context::CURRENT_ACTIVITY.try_with(|a| *a).ok();
        match self.post(move |st| st.create_speech_on(queued, kind, source, None, origin)) {
            Ok(()) => handle,
            Err(_) => SpeechHandle::failed(SpeechError::SessionClosed),
        }
    }

    /// Interrupts the current speech and the queued ones (up to the first that disallows
    /// interruptions), and waits until they are done. Without `force`, a current speech that
    /// disallows interruptions is an error.
    pub async fn interrupt(&self, force: bool) -> Result<(), SessionError> {
        let handles = self.exec(move |st| st.interrupt(force)).await??;
        for handle in handles {
            let _ = handle.wait_for_playout().await;
        }
        Ok(())
    }

    /// Hands the conversation to `agent` (the current agent's `on_exit` runs, then the new
    /// agent's `on_enter`). Switches are applied one after another, in call order.
    pub fn update_agent<A: Agent<U>>(&self, agent: A) -> Result<(), SessionError> {
        let agent = AgentRef::new(agent);
        let session = self.clone();
        self.post(move |st| {
            if st.closing {
                return;
            }
            st.current_agent_id = Some(agent.agent.id());
            let token = st.active_run_token();
            tokio::spawn(pipeline::switch_agent(
                session,
                agent,
                HandoffContext::Fresh,
                token,
            ));
        })
    }

    /// A copy of the whole conversation: messages, tool calls and outputs, handoffs and config
    /// updates. Still available after the session closed.
    pub async fn history(&self) -> ChatContext {
        if let Some(history) = lock(&self.shared.final_history).clone() {
            return history;
        }
        match self.exec(|st| st.history.clone()).await {
            Ok(history) => history,
            Err(_) => lock(&self.shared.final_history).clone().unwrap_or_default(),
        }
    }

    /// The id of the agent in control (it changes as soon as a handoff is decided).
    pub async fn current_agent_id(&self) -> Option<String> {
        self.exec(|st| st.current_agent_id.clone())
            .await
            .ok()
            .flatten()
    }

    /// What the agent is doing.
    pub async fn agent_state(&self) -> Option<AgentState> {
        self.exec(|st| st.agent_state).await.ok()
    }

    /// The session's user data. Do not hold the guard across an `.await`.
    pub fn userdata(&self) -> MutexGuard<'_, U> {
        lock(&self.shared.userdata)
    }

    /// Subscribes to the session's events. Listeners never slow the session down: events queue
    /// up for a slow listener instead.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<SessionEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.post(move |st| st.subscribe(tx));
        rx
    }

    /// Lets the session finish what it is doing, then stop taking new work: the current agent's
    /// `on_exit` runs (speech it queues still plays), queued speech plays out, and new user
    /// turns are refused with [`SessionError::Closed`]. Close it afterwards with
    /// [`close`](AgentSession::close) (which then has nothing to interrupt).
    pub async fn drain(&self) -> Result<(), SessionError> {
        let target = self
            .exec(|st| {
                let top = st.top()?;
                st.begin_drain(top);
                st.activity(top).map(|a| (top, a.agent.clone()))
            })
            .await?;
        if let Some((activity, agent)) = target {
            pipeline::run_hook(self.clone(), activity, agent, pipeline::Hook::OnExit, None).await;
            let idle = self.exec(move |st| st.when_idle(activity)).await?;
            let _ = idle.await;
        }
        self.exec(|st| st.draining = true).await
    }

    /// Closes the session: running speech is interrupted, running tools and hooks are
    /// cancelled, an open run ends with [`SessionError::Closed`], and a `close` event is
    /// emitted. Waits until all of that is done. Closing twice is harmless.
    pub async fn close(&self) {
        self.close_with(CloseReason::UserInitiated).await;
    }

    /// [`close`](AgentSession::close) with a reason.
    pub async fn close_with(&self, reason: CloseReason) {
        if lock(&self.shared.inbox).take().is_some() {
            // Never started: nothing runs.
            self.shared.closed.send_replace(true);
            return;
        }
        if let Ok(done) = self
            .exec(move |st| {
                st.begin_close(reason, None);
                st.when_closed()
            })
            .await
        {
            let _ = done.await;
        }
    }

    /// Replaces the implementation of the tool `name` of agents of type `A`; the model still
    /// sees the real schema. The mock gets the decoded argument object. It applies from the
    /// next model step until the returned guard is dropped (or for the whole session after
    /// [`ToolMock::keep`]).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use switchboard::{Agent, AgentSession, RunContext};
    /// # struct FrontDesk;
    /// # impl Agent for FrontDesk { fn instructions(&self) -> String { String::new() } }
    /// # let session = AgentSession::builder().build();
    /// let _mock = session.mock_tool::<FrontDesk, _, _, _>("get_hours", |_ctx: RunContext, _args| async {
    ///     "closed for the holidays"
    /// });
    /// ```
    pub fn mock_tool<A, F, Fut, O>(&self, name: &str, f: F) -> ToolMock<U>
    where
        A: Agent<U>,
        F: Fn(RunContext<U>, serde_json::Map<String, serde_json::Value>) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: std::future::Future<Output = O> + Send + 'static,
        O: crate::tools::IntoToolOutput<U>,
    {
        use futures::FutureExt;
        let key = (std::any::TypeId::of::<A>(), name.to_owned());
        let handler: Arc<crate::tools::Handler<U>> = Arc::new(move |ctx, arguments| {
            f(ctx, arguments)
                .map(crate::tools::IntoToolOutput::into_outcome)
                .boxed()
        });
        let installed = key.clone();
        let _ = self.post(move |st| {
            st.mocks.insert(installed, handler);
        });
        ToolMock {
            session: Some(self.clone()),
            key,
        }
    }

    /// The session's default model.
    pub async fn session_llm(&self) -> Option<Arc<dyn Llm>> {
        self.exec(|st| st.llm.clone()).await.ok().flatten()
    }

    /// Publishes a recoverable error event (e.g. from a workflow).
    pub fn report_error(&self, source: ErrorSource, message: impl Into<String>) {
        let message = message.into();
        let _ = self.post(move |st| st.report_error(source, message, true));
    }

    /// True once the session is closing or closed.
    pub fn is_closed(&self) -> bool {
        *self.shared.closed.borrow()
    }
}

/// The user turn of a run: the agent's `on_user_turn_completed`, then the reply.
/// A user turn to answer: typed (`run`) or spoken (a committed voice turn).
pub(crate) struct TurnStart {
    pub text: String,
    pub timing: Option<voice::TurnTiming>,
    pub preemptive: Option<voice::Preemptive>,
}

async fn user_turn<U: Send + 'static>(
    session: AgentSession<U>,
    start: TurnStart,
    target: Option<(runtime::ActivityId, AgentRef<U>)>,
    token: Option<run::RunToken>,
) {
    let TurnStart {
        text,
        timing,
        preemptive,
    } = start;
    // A preemptive generation answered this very message: keep its id so the request matches.
    let mut message = match &preemptive {
        Some(p) => p.user_message.clone(),
        None => ChatMessage::new(Role::User, text),
    };
    let mut turn_ctx = None;
    if let Some((activity, agent)) = target {
        let ctx_activity = activity;
        let Ok(Some(mut ctx)) = session
            .exec(move |st| st.activity(ctx_activity).map(|a| a.chat_ctx.clone()))
            .await
        else {
            return;
        };
        ctx.insert(message.clone());
        let agent_ctx = AgentContext::new(session.clone(), activity, agent.agent.id());
        // User code: in its own task, so a panic is reported instead of ending the turn
        // silently.
        let hook_agent = agent.clone();
        let hook = pipeline::run_guarded(&session, async move {
            let result = hook_agent
                .agent
                .on_user_turn_completed(agent_ctx, &mut ctx, &mut message)
                .await;
            (result, ctx, message)
        })
        .await;
        let report = |text: String| {
            let agent_id = agent.agent.id();
            let _ =
                session.post(move |st| st.report_error(ErrorSource::Hook(agent_id), text, true));
        };
        match hook {
            pipeline::Guarded::Done((Ok(()), mut edited_ctx, edited_message)) => {
                // Keep edits to the message in the turn's context.
                edited_ctx.upsert(edited_message.clone());
                message = edited_message;
                turn_ctx = Some(edited_ctx);
            }
            pipeline::Guarded::Done((Err(crate::Error::StopResponse), _, _))
            | pipeline::Guarded::Cancelled => return,
            pipeline::Guarded::Done((Err(error), _, _)) => {
                report(format!("on_user_turn_completed failed: {error}"));
                return;
            }
            pipeline::Guarded::Panicked => {
                report("on_user_turn_completed panicked".to_owned());
                return;
            }
        }
    }
    let handle = SpeechHandle::new(SpeechPriority::Normal, true);
    let plan = ReplyPlan {
        user_message: Some(message),
        instructions: None,
        tool_choice: None,
        allowed_tools: None,
        in_on_enter: false,
        in_tool: false,
        turn_ctx,
        timing,
        preemptive,
    };
    let _ = session.post(move |st| {
        st.create_speech(
            handle,
            SpeechKind::Reply(Box::new(plan)),
            SpeechSource::UserTurn,
            token,
        )
    });
}
