//! The session actor: one task owns all mutable state of a session.
//!
//! Everything else — public handles, speech pipelines, tools, hooks, handoff workflows — sends
//! closures to the actor ([`AgentSession::exec`]/[`AgentSession::post`]) and never touches the
//! state directly. A closure runs to completion without awaiting, so no lock is ever held
//! across an `.await` and no two tasks can interleave inside one state change: the class of
//! deadlocks and races peers suffer from cannot be written here.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};

use tokio::sync::{mpsc, oneshot};

use super::agent::AgentRef;
use super::events::{AgentState, CloseReason, ErrorSource, EventKind, SessionEvent, SpeechSource};
use super::run::{RunEvent, RunGuard, RunRecord, RunToken};
use super::speech::{SpeechError, SpeechHandle, SpeechPriority};
use super::{AgentSession, SessionError, SessionOptions, Shared};
use crate::chat::{
    AgentConfigUpdate, AgentHandoff, ChatContext, ChatItem, ChatMessage, CopyOptions,
};
use crate::clock::Timestamp;
use crate::llm::{Llm, ToolChoice};
use crate::tools::FunctionTool;

/// A small, fast hasher for the actor's maps (keys are ids the session made itself, so
/// hash flooding is not a concern); SipHash showed in profiles.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

pub(crate) type Command<U> = Box<dyn FnOnce(&mut State<U>) + Send>;

pub(crate) type ActivityId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActivityStatus {
    /// Plays its queue and accepts user turns.
    Running,
    /// Handing control away: plays what is queued, accepts nothing new.
    Draining,
    /// Waiting for a task it awaits: nothing plays until control comes back.
    Paused,
    /// Replaced; its speech is gone.
    Closed,
}

pub(crate) struct Activity<U: Send + 'static> {
    /// Set when this activity runs an awaited task.
    pub task: Option<super::task::TaskSlot>,
    /// Tasks awaited from this activity run one at a time.
    pub task_lock: Arc<tokio::sync::Mutex<()>>,
    pub agent: AgentRef<U>,
    pub agent_id: String,
    pub chat_ctx: ChatContext,
    pub tools: Vec<FunctionTool<U>>,
    pub status: ActivityStatus,
    queue: BinaryHeap<(SpeechPriority, Reverse<u64>, String)>,
    current: Option<String>,
    speeches: HashSet<String>,
    idle_waiters: Vec<oneshot::Sender<()>>,
    /// Resolved when nothing plays or waits in the queue (speech in its tool phase aside).
    quiet_waiters: Vec<oneshot::Sender<()>>,
}

/// What a queued speech will do.
pub(crate) enum SpeechKind {
    /// Speak this text (no model).
    Say { text: String, add_to_chat_ctx: bool },
    /// Generate a reply.
    Reply(Box<ReplyPlan>),
}

pub(crate) struct ReplyPlan {
    pub user_message: Option<ChatMessage>,
    pub instructions: Option<String>,
    pub tool_choice: Option<ToolChoice>,
    pub allowed_tools: Option<Vec<String>>,
    /// Created inside `on_enter`: tools flagged ignore-on-enter are hidden.
    pub in_on_enter: bool,
    /// Created inside a tool: the default tool choice is `none`.
    pub in_tool: bool,
    /// The reply's context as edited by `on_user_turn_completed` (first step only).
    pub turn_ctx: Option<ChatContext>,
    /// When the voice turn this reply answers ended (for its metrics).
    pub timing: Option<super::voice::TurnTiming>,
    /// A generation started before the turn was committed, used if its request matches.
    pub preemptive: Option<super::voice::Preemptive>,
}

struct SpeechEntry {
    handle: SpeechHandle,
    activity: ActivityId,
    run: Option<RunToken>,
}

/// A speech asked for while no activity could take it (a handoff in flight).
struct Deferred {
    handle: SpeechHandle,
    kind: SpeechKind,
    source: SpeechSource,
    run: Option<RunToken>,
}

pub(crate) struct State<U: Send + 'static> {
    shared: Weak<Shared<U>>,
    pub options: SessionOptions,
    pub llm: Option<Arc<dyn Llm>>,
    pub session_tools: Vec<FunctionTool<U>>,
    pub history: ChatContext,
    activities: HashMap<ActivityId, Activity<U>>,
    /// Bottom to top; the top is the agent in control.
    stack: Vec<ActivityId>,
    /// The id of the agent in control, updated as soon as a handoff is decided.
    pub current_agent_id: Option<String>,
    speeches: HashMap<String, SpeechEntry>,
    deferred: Vec<Deferred>,
    next_activity: ActivityId,
    next_seq: u64,
    subscribers: Vec<mpsc::UnboundedSender<SessionEvent>>,
    active_run: Option<Weak<RunGuard>>,
    pub agent_state: AgentState,
    pub user_state: super::events::UserState,
    pub closing: bool,
    /// Set by `drain`: no new user turns.
    pub draining: bool,
    unrecoverable_llm_errors: u32,
    last_speech_end: Option<tokio::time::Instant>,
    delay_timer_armed: bool,
    close_waiters: Vec<oneshot::Sender<()>>,
    /// Hooks and workflows that a run watches: their agent and the token of the run watching.
    jobs: HashMap<u64, (Option<ActivityId>, Option<RunToken>)>,
    next_job: u64,
    pending_close: Option<(CloseReason, Option<String>)>,
    /// The session's root agent when it is a task: its activity and output type.
    pub root_task: Option<(ActivityId, std::any::TypeId, &'static str)>,
    /// Tool mocks by agent type and tool name.
    pub mocks: HashMap<(std::any::TypeId, String), Arc<crate::tools::Handler<U>>>,
    pub(crate) stop: bool,
    /// Voice components (empty in text sessions).
    pub voice: Arc<super::voice::VoiceIo>,
    /// The playout of the speech step whose audio is playing.
    pub playout: Option<Arc<super::voice::PlayoutControl>>,
    /// A voice turn's metrics waiting for the agent's first audio after it (when the reply's
    /// first step only called tools), with the end of the user's speech.
    pending_turn_metrics: Option<(super::voice::TurnMetrics, Option<tokio::time::Instant>)>,
}

impl<U: Send + 'static> State<U> {
    pub fn new(
        shared: Weak<Shared<U>>,
        options: SessionOptions,
        llm: Option<Arc<dyn Llm>>,
        session_tools: Vec<FunctionTool<U>>,
    ) -> Self {
        State {
            shared,
            options,
            llm,
            session_tools,
            history: ChatContext::new(),
            activities: HashMap::default(),
            stack: Vec::new(),
            current_agent_id: None,
            speeches: HashMap::default(),
            deferred: Vec::new(),
            next_activity: 1,
            next_seq: 0,
            subscribers: Vec::new(),
            active_run: None,
            agent_state: AgentState::Initializing,
            user_state: super::events::UserState::Listening,
            closing: false,
            draining: false,
            unrecoverable_llm_errors: 0,
            pending_turn_metrics: None,
            last_speech_end: None,
            delay_timer_armed: false,
            close_waiters: Vec::new(),
            jobs: HashMap::default(),
            next_job: 1,
            pending_close: None,
            root_task: None,
            mocks: HashMap::default(),
            stop: false,
            voice: Arc::default(),
            playout: None,
        }
    }

    /// A handle for spawned tasks; `None` once every handle was dropped.
    pub fn session(&self) -> Option<AgentSession<U>> {
        self.shared.upgrade().map(|shared| AgentSession { shared })
    }

    // ----- events -----

    pub fn subscribe(&mut self, tx: mpsc::UnboundedSender<SessionEvent>) {
        self.subscribers.push(tx);
    }

    pub fn emit(&mut self, kind: EventKind) {
        self.emit_at(kind, Timestamp::now());
    }

    /// Emits an event dated `created_at` (back-dated voice boundaries).
    pub fn emit_at(&mut self, kind: EventKind, created_at: Timestamp) {
        if self.subscribers.is_empty() {
            return;
        }
        let event = SessionEvent { created_at, kind };
        self.subscribers.retain(|tx| tx.send(event.clone()).is_ok());
    }

    pub fn set_agent_state(&mut self, state: AgentState) {
        if self.agent_state != state {
            let old = std::mem::replace(&mut self.agent_state, state);
            self.emit(EventKind::AgentStateChanged {
                old_state: old,
                new_state: state,
            });
            self.arm_away_timer();
        }
    }

    /// Starts the user-away countdown when both sides are silent; stops it otherwise.
    fn arm_away_timer(&self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let silent = self.agent_state == AgentState::Listening
            && self.user_state == super::events::UserState::Listening;
        let deadline = silent.then(|| {
            tokio::time::Instant::now() + self.options.user_away_timeout.unwrap_or_default()
        });
        // Only real changes wake the timer task (most state changes keep it disarmed).
        shared.away_deadline.send_if_modified(|current| {
            let changed = *current != deadline;
            *current = deadline;
            changed
        });
    }

    pub fn set_user_state(&mut self, state: super::events::UserState) {
        self.set_user_state_at(state, std::time::Duration::ZERO);
    }

    /// Changes the user state with an event back-dated by `back` (to the VAD boundary).
    pub fn set_user_state_at(
        &mut self,
        state: super::events::UserState,
        back: std::time::Duration,
    ) {
        if self.user_state != state {
            let old = std::mem::replace(&mut self.user_state, state);
            self.emit_at(
                EventKind::UserStateChanged {
                    old_state: old,
                    new_state: state,
                },
                Timestamp::now().saturating_sub(back),
            );
            self.arm_away_timer();
        }
    }

    // ----- voice -----

    /// The speech the agent in control is playing (or preparing), if any.
    pub fn current_speech(&self) -> Option<SpeechHandle> {
        let activity = self.activity(self.top()?)?;
        let id = activity.current.as_deref()?;
        self.speeches.get(id).map(|e| e.handle.clone())
    }

    /// User speech lasted long enough to interrupt: pause the current speech's audio when
    /// `pause` (false interruptions can then resume it), otherwise interrupt it.
    pub fn interrupt_by_user(&mut self, pause: bool) -> super::voice::Interruption {
        use super::voice::Interruption;
        let agent_allows = self
            .top()
            .and_then(|id| self.activity(id))
            .and_then(|a| a.agent.agent.allow_interruptions());
        if agent_allows == Some(false) {
            return Interruption::None;
        }
        // Speeches past their playout whose tools still run get no follow-up (§3.7).
        let current_id = self.current_speech().map(|h| h.id().to_owned());
        let mut background = Vec::new();
        if let Some(activity) = self.top().and_then(|id| self.activity(id)) {
            for id in &activity.speeches {
                if Some(id) == current_id.as_ref() {
                    continue;
                }
                if let Some(entry) = self.speeches.get(id)
                    && entry.handle.is_scheduled()
                    && !entry.handle.is_done()
                    && entry.handle.allow_interruptions()
                {
                    background.push(entry.handle.clone());
                }
            }
        }
        let any_background = !background.is_empty();
        for handle in background {
            let _ = handle.interrupt();
        }
        let Some(current) = self.current_speech() else {
            return if any_background {
                Interruption::Interrupted
            } else {
                Interruption::None
            };
        };
        if current.is_done() || current.interrupted() || !current.allow_interruptions() {
            return Interruption::None;
        }
        if pause
            && let Some(playout) = &self.playout
            && playout.speech_id == current.id()
        {
            playout.paused.send_replace(true);
            return Interruption::Paused(current.id().to_owned());
        }
        let _ = current.interrupt();
        Interruption::Interrupted
    }

    /// Words followed the pause: the paused speech is interrupted.
    pub fn stop_paused(&mut self, speech_id: &str) {
        if let Some(entry) = self.speeches.get(speech_id) {
            let _ = entry.handle.interrupt();
        }
    }

    /// No words followed the pause: the paused speech resumes.
    pub fn resume_paused(&mut self, speech_id: &str) {
        let resumed = match &self.playout {
            Some(playout) if playout.speech_id == speech_id => {
                playout.paused.send_replace(false);
                true
            }
            _ => false,
        };
        self.emit(EventKind::AgentFalseInterruption { resumed });
    }

    pub fn report_error(&mut self, source: ErrorSource, message: String, recoverable: bool) {
        tracing::warn!(?source, %message, recoverable, "session error");
        self.emit(EventKind::Error {
            source,
            message,
            recoverable,
        });
    }

    /// Counts an unrecoverable model error; too many close the session.
    pub fn llm_failed(&mut self, message: String) {
        self.unrecoverable_llm_errors += 1;
        self.report_error(ErrorSource::Llm, message.clone(), false);
        if self.unrecoverable_llm_errors > self.options.max_unrecoverable_errors {
            self.begin_close(CloseReason::Error, Some(message));
        }
    }

    pub fn agent_started_speaking(&mut self) {
        self.unrecoverable_llm_errors = 0;
        self.set_agent_state(AgentState::Speaking);
    }

    /// A voice turn's metrics: sent now when they measured the first audio, else held until
    /// the agent's next first audio, whichever speech plays it (a task's greeting, a tool
    /// step's follow-up). A held turn that never heard audio is sent as it is when the next
    /// one arrives or the session closes.
    pub fn turn_metrics(
        &mut self,
        metrics: super::voice::TurnMetrics,
        end_of_speech: Option<tokio::time::Instant>,
    ) {
        self.flush_turn_metrics();
        if metrics.end_to_end.is_some() {
            self.emit(EventKind::TurnMetrics(metrics));
        } else {
            self.pending_turn_metrics = Some((metrics, end_of_speech));
        }
    }

    /// The first audio of a playout: completes a held turn's metrics.
    pub fn first_agent_audio(
        &mut self,
        at: tokio::time::Instant,
        tts_ttfb: Option<std::time::Duration>,
    ) {
        if let Some((mut metrics, end_of_speech)) = self.pending_turn_metrics.take() {
            metrics.end_to_end = end_of_speech.map(|end| at.saturating_duration_since(end));
            metrics.tts_ttfb = tts_ttfb;
            self.emit(EventKind::TurnMetrics(metrics));
        }
    }

    fn flush_turn_metrics(&mut self) {
        if let Some((metrics, _)) = self.pending_turn_metrics.take() {
            self.emit(EventKind::TurnMetrics(metrics));
        }
    }

    // ----- runs -----

    /// The run that new speech attaches to, if one is open.
    pub fn active_run_token(&self) -> Option<RunToken> {
        self.active_run.as_ref().and_then(Weak::upgrade)
    }

    pub fn begin_run(
        &mut self,
        record: Arc<RunRecord>,
    ) -> Result<(RunToken, oneshot::Receiver<()>), SessionError> {
        if self.closing {
            return Err(SessionError::Closed);
        }
        if self.active_run_token().is_some() {
            return Err(SessionError::RunInProgress);
        }
        let (token, done) = RunGuard::new(record);
        self.active_run = Some(Arc::downgrade(&token));
        self.set_user_state(super::events::UserState::Listening);
        Ok((token, done))
    }

    pub fn record_run(&self, run: Option<&RunToken>, event: RunEvent) {
        self.record(run, event);
    }

    /// The run watching a speech or job.
    pub fn run_of(&self, awaiter: &super::task::Awaiter) -> Option<RunToken> {
        match awaiter {
            super::task::Awaiter::Speech(id) => self.speech_run(id),
            super::task::Awaiter::Job(id) => self.job_run(*id),
            super::task::Awaiter::None => None,
        }
    }

    /// The run watching a job.
    pub fn job_run(&self, id: u64) -> Option<RunToken> {
        self.jobs.get(&id).and_then(|(_, run)| run.clone())
    }

    fn record(&self, run: Option<&RunToken>, event: RunEvent) {
        if let Some(run) = run {
            run.record.push(event);
        }
    }

    // ----- activities -----

    pub fn top(&self) -> Option<ActivityId> {
        self.stack.last().copied()
    }

    pub fn activity(&self, id: ActivityId) -> Option<&Activity<U>> {
        self.activities.get(&id)
    }

    pub fn activity_mut(&mut self, id: ActivityId) -> Option<&mut Activity<U>> {
        self.activities.get_mut(&id)
    }

    /// Creates the activity of `agent`, on top of the stack, with `chat_ctx` as its context.
    pub fn start_activity(
        &mut self,
        agent: AgentRef<U>,
        chat_ctx: ChatContext,
    ) -> Result<ActivityId, SessionError> {
        self.start_activity_with(agent, chat_ctx, Vec::new())
    }

    /// [`start_activity`](State::start_activity) with tools added to the agent's own.
    pub fn start_activity_with(
        &mut self,
        agent: AgentRef<U>,
        chat_ctx: ChatContext,
        extra_tools: Vec<FunctionTool<U>>,
    ) -> Result<ActivityId, SessionError> {
        if self.closing {
            return Err(SessionError::Closed);
        }
        let agent_id = agent.agent.id();
        let instructions = agent.agent.instructions();
        let tools = self.collect_tools(&agent, extra_tools)?;
        let tool_names: Vec<String> = tools.iter().map(|t| t.name().to_owned()).collect();
        let mut ctx = chat_ctx.copy(&CopyOptions {
            tools: Some(tool_names.clone()),
            ..CopyOptions::default()
        });
        ctx.set_instructions(&instructions);
        let mut update = AgentConfigUpdate::new(Some(agent_id.clone()));
        update.instructions = Some(instructions);
        update.tools_added = tool_names;
        ctx.insert(update.clone());
        self.history.insert(update);

        let id = self.next_activity;
        self.next_activity += 1;
        self.activities.insert(
            id,
            Activity {
                task: None,
                task_lock: Arc::new(tokio::sync::Mutex::new(())),
                agent,
                agent_id: agent_id.clone(),
                chat_ctx: ctx,
                tools,
                status: ActivityStatus::Running,
                queue: BinaryHeap::new(),
                current: None,
                speeches: HashSet::new(),
                idle_waiters: Vec::new(),
                quiet_waiters: Vec::new(),
            },
        );
        self.stack.push(id);
        self.current_agent_id = Some(agent_id);
        for deferred in std::mem::take(&mut self.deferred) {
            self.enqueue(
                id,
                deferred.handle,
                deferred.kind,
                deferred.source,
                deferred.run,
            );
        }
        Ok(id)
    }

    fn collect_tools(
        &self,
        agent: &AgentRef<U>,
        extra: Vec<FunctionTool<U>>,
    ) -> Result<Vec<FunctionTool<U>>, SessionError> {
        let mut own = agent.agent.clone().tools();
        own.extend(extra);
        let mut seen = HashSet::new();
        let mut tools = Vec::with_capacity(self.session_tools.len() + own.len());
        for tool in self.session_tools.iter().cloned().chain(own) {
            if !seen.insert(tool.name().to_owned()) {
                return Err(SessionError::DuplicateTool(tool.name().to_owned()));
            }
            tools.push(tool);
        }
        Ok(tools)
    }

    /// Records the switch from the top activity to a new one and closes the old one.
    pub fn finish_handoff(
        &mut self,
        old: Option<ActivityId>,
        agent: AgentRef<U>,
        chat_ctx: ChatContext,
        run: Option<&RunToken>,
    ) -> Result<ActivityId, SessionError> {
        let old_agent_id = old.and_then(|id| self.activities.get(&id).map(|a| a.agent_id.clone()));
        if let Some(old) = old {
            self.close_activity(old);
        }
        let new_agent_id = agent.agent.id();
        let item = AgentHandoff::new(old_agent_id, new_agent_id);
        self.history.insert(item.clone());
        self.record(
            run,
            RunEvent::AgentHandoff {
                item: item.clone(),
                new_agent_type: agent.type_name,
                new_agent_type_id: agent.type_id,
            },
        );
        self.emit(EventKind::ConversationItemAdded {
            item: ChatItem::AgentHandoff(std::sync::Arc::new(item)),
        });
        self.start_activity(agent, chat_ctx)
    }

    fn close_activity(&mut self, id: ActivityId) {
        self.stack.retain(|&a| a != id);
        if let Some(mut activity) = self.activities.remove(&id) {
            activity.status = ActivityStatus::Closed;
            for waiter in activity.idle_waiters.drain(..) {
                let _ = waiter.send(());
            }
            for waiter in activity.quiet_waiters.drain(..) {
                let _ = waiter.send(());
            }
            for speech in activity.speeches {
                if let Some(entry) = self.speeches.get(&speech) {
                    entry.handle.force_interrupt();
                }
            }
        }
    }

    /// Resolves when the activity has no speech left (or is gone).
    pub fn when_idle(&mut self, id: ActivityId) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        match self.activities.get_mut(&id) {
            Some(activity) if !activity.speeches.is_empty() => activity.idle_waiters.push(tx),
            _ => {
                let _ = tx.send(());
            }
        }
        rx
    }

    /// Resolves when the activity has nothing playing and nothing queued (speeches whose tools
    /// are running do not count), or is gone.
    pub fn when_quiet(&mut self, id: ActivityId) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let quiet = self.is_quiet(id);
        match self.activities.get_mut(&id) {
            Some(activity) if !quiet => activity.quiet_waiters.push(tx),
            _ => {
                let _ = tx.send(());
            }
        }
        rx
    }

    fn is_quiet(&self, id: ActivityId) -> bool {
        self.activities.get(&id).is_none_or(|a| {
            a.current.is_none()
                && a.queue
                    .iter()
                    .all(|(_, _, s)| self.speeches.get(s).is_none_or(|e| e.handle.is_done()))
        })
    }

    fn notify_quiet(&mut self, id: ActivityId) {
        if self.is_quiet(id)
            && let Some(activity) = self.activities.get_mut(&id)
        {
            for waiter in activity.quiet_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// Marks the top activity as handing control away: it accepts no new speech.
    pub fn begin_drain(&mut self, id: ActivityId) {
        if let Some(activity) = self.activities.get_mut(&id)
            && activity.status == ActivityStatus::Running
        {
            activity.status = ActivityStatus::Draining;
        }
    }

    // ----- speech -----

    /// Queues a new speech on the agent in control (or keeps it until the next agent starts
    /// when a handoff is in flight). Runs attach it when open.
    pub fn create_speech(
        &mut self,
        handle: SpeechHandle,
        kind: SpeechKind,
        source: SpeechSource,
        run: Option<RunToken>,
    ) {
        self.create_speech_on(handle, kind, source, run, None);
    }

    /// [`create_speech`](State::create_speech) from user code of `origin` (a tool or hook of
    /// that agent): the speech plays on that agent while it runs or drains.
    pub fn create_speech_on(
        &mut self,
        handle: SpeechHandle,
        kind: SpeechKind,
        source: SpeechSource,
        run: Option<RunToken>,
        origin: Option<ActivityId>,
    ) {
        if self.closing {
            handle.finish(Some(SpeechError::SessionClosed));
            return;
        }
        let run = run.or_else(|| self.active_run_token());
        self.emit(EventKind::SpeechCreated {
            speech_id: handle.id().to_owned(),
            user_initiated: source != SpeechSource::UserTurn,
            source,
        });
        let origin = origin.filter(|id| {
            self.activities.get(id).is_some_and(|a| {
                matches!(a.status, ActivityStatus::Running | ActivityStatus::Draining)
            })
        });
        if let Some(origin) = origin {
            self.enqueue(origin, handle, kind, source, run);
            return;
        }
        match self.top() {
            Some(top)
                if self
                    .activities
                    .get(&top)
                    .is_some_and(|a| a.status == ActivityStatus::Running) =>
            {
                self.enqueue(top, handle, kind, source, run)
            }
            _ => self.deferred.push(Deferred {
                handle,
                kind,
                source,
                run,
            }),
        }
    }

    fn enqueue(
        &mut self,
        activity_id: ActivityId,
        handle: SpeechHandle,
        kind: SpeechKind,
        _source: SpeechSource,
        run: Option<RunToken>,
    ) {
        let Some(session) = self.session() else {
            handle.finish(Some(SpeechError::SessionClosed));
            return;
        };
        let id = handle.id().to_owned();
        if let Some(activity) = self.activities.get_mut(&activity_id) {
            activity.speeches.insert(id.clone());
        }
        self.speeches.insert(
            id.clone(),
            SpeechEntry {
                handle: handle.clone(),
                activity: activity_id,
                run,
            },
        );
        tokio::spawn(super::pipeline::run_speech(session, handle.clone(), kind));
        self.push_queue(activity_id, &handle);
    }

    fn push_queue(&mut self, activity_id: ActivityId, handle: &SpeechHandle) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(activity) = self.activities.get_mut(&activity_id) {
            activity
                .queue
                .push((handle.priority(), Reverse(seq), handle.id().to_owned()));
        }
        self.schedule(activity_id);
    }

    /// Puts a speech back in its queue for its next step (a follow-up after tools).
    pub fn requeue(&mut self, speech_id: &str) {
        let Some(entry) = self.speeches.get(speech_id) else {
            return;
        };
        let (activity, handle) = (entry.activity, entry.handle.clone());
        self.push_queue(activity, &handle);
    }

    /// Authorises the next queued speech when the agent is free.
    pub fn schedule(&mut self, activity_id: ActivityId) {
        self.schedule_next(activity_id);
        self.notify_quiet(activity_id);
    }

    fn schedule_next(&mut self, activity_id: ActivityId) {
        let delay = self.options.min_consecutive_speech_delay;
        let now = tokio::time::Instant::now();
        let wait = self
            .last_speech_end
            .map(|end| (end + delay).saturating_duration_since(now))
            .unwrap_or_default();
        let Some(activity) = self.activities.get_mut(&activity_id) else {
            return;
        };
        if activity.current.is_some()
            || matches!(
                activity.status,
                ActivityStatus::Closed | ActivityStatus::Paused
            )
        {
            return;
        }
        loop {
            let Some((_, _, id)) = activity.queue.peek() else {
                return;
            };
            let Some(entry) = self.speeches.get(id) else {
                activity.queue.pop();
                continue;
            };
            if entry.handle.is_done() {
                activity.queue.pop();
                continue;
            }
            if !wait.is_zero() {
                if !self.delay_timer_armed {
                    self.delay_timer_armed = true;
                    if let Some(session) = self.session() {
                        tokio::spawn(async move {
                            tokio::time::sleep(wait).await;
                            let _ = session.post(move |st| {
                                st.delay_timer_armed = false;
                                st.schedule(activity_id);
                            });
                        });
                    }
                }
                return;
            }
            let handle = entry.handle.clone();
            activity.queue.pop();
            activity.current = Some(handle.id().to_owned());
            handle.update(|s| s.authorized += 1);
            self.set_agent_state(AgentState::Thinking);
            return;
        }
    }

    /// The current step of `speech_id` finished playing: the next speech may start.
    pub fn generation_done(&mut self, speech_id: &str) {
        let Some(entry) = self.speeches.get(speech_id) else {
            return;
        };
        let activity_id = entry.activity;
        entry.handle.update(|s| s.generations_done += 1);
        if let Some(activity) = self.activities.get_mut(&activity_id)
            && activity.current.as_deref() == Some(speech_id)
        {
            activity.current = None;
            self.last_speech_end = Some(tokio::time::Instant::now());
        }
        self.schedule(activity_id);
        self.update_idle_state();
    }

    /// The speech is over: release everything it held.
    pub fn speech_finished(&mut self, speech_id: &str, error: Option<SpeechError>) {
        let Some(entry) = self.speeches.remove(speech_id) else {
            return;
        };
        entry.handle.finish(error.clone());
        if let Some(run) = &entry.run {
            run.record.speech_finished(error);
        }
        if let Some(activity) = self.activities.get_mut(&entry.activity) {
            activity.speeches.remove(speech_id);
            if activity.current.as_deref() == Some(speech_id) {
                activity.current = None;
            }
            if activity.speeches.is_empty() {
                for waiter in activity.idle_waiters.drain(..) {
                    let _ = waiter.send(());
                }
            }
        }
        self.schedule(entry.activity);
        self.update_idle_state();
        self.check_closed();
        // `entry.run` drops here: the run completes if nothing else watches it.
    }

    /// Back to listening once no speech is playing or pending. (Thinking is set when a speech
    /// is authorised or its tools start; speaking on its first text.)
    fn update_idle_state(&mut self) {
        let playing = self.activities.values().any(|a| a.current.is_some());
        // Speech of agents paused under a task (a tool awaiting it) does not count: the task
        // in control is listening.
        let pending = match self.top().and_then(|id| self.activity(id)) {
            Some(top) => !top.speeches.is_empty(),
            None => !self.speeches.is_empty(),
        };
        if !playing && !pending && self.agent_state != AgentState::Initializing {
            self.set_agent_state(AgentState::Listening);
        }
    }

    /// Registers a hook or workflow of `activity` watched by `run`; returns its job id.
    pub fn add_job(&mut self, activity: Option<ActivityId>, run: Option<RunToken>) -> u64 {
        let id = self.next_job;
        self.next_job += 1;
        self.jobs.insert(id, (activity, run));
        id
    }

    /// Stops runs from waiting for the hooks of `activity` (it pauses for a task); returns
    /// the jobs detached.
    pub fn detach_jobs_of(&mut self, activity: ActivityId) -> Vec<u64> {
        self.jobs
            .iter_mut()
            .filter(|(_, (a, run))| *a == Some(activity) && run.is_some())
            .map(|(id, (_, run))| {
                *run = None;
                *id
            })
            .collect()
    }

    /// The job is over: its run may complete.
    pub fn remove_job(&mut self, id: u64) {
        self.jobs.remove(&id);
    }

    /// Stops a run from waiting for a speech or job (it awaits a task that waits for the
    /// user); returns nothing, the token is dropped.
    pub fn detach(&mut self, awaiter: &super::task::Awaiter) {
        match awaiter {
            super::task::Awaiter::Speech(id) => {
                if let Some(entry) = self.speeches.get_mut(id) {
                    entry.run = None;
                }
            }
            super::task::Awaiter::Job(id) => {
                if let Some((_, run)) = self.jobs.get_mut(id) {
                    *run = None;
                }
            }
            super::task::Awaiter::None => {}
        }
    }

    /// Makes `run` wait for a speech or job again (control came back to it).
    pub fn attach(&mut self, awaiter: &super::task::Awaiter, run: Option<RunToken>) {
        match awaiter {
            super::task::Awaiter::Speech(id) => {
                if let Some(entry) = self.speeches.get_mut(id) {
                    entry.run = run;
                }
            }
            super::task::Awaiter::Job(id) => {
                if let Some((_, slot)) = self.jobs.get_mut(id) {
                    *slot = run;
                }
            }
            super::task::Awaiter::None => {}
        }
    }

    /// Closes an activity (a finished task) without recording anything.
    pub fn remove_activity(&mut self, id: ActivityId) {
        self.close_activity(id);
    }

    pub fn speech_handle(&self, speech_id: &str) -> Option<SpeechHandle> {
        self.speeches.get(speech_id).map(|e| e.handle.clone())
    }

    pub fn speech_run(&self, speech_id: &str) -> Option<RunToken> {
        self.speeches.get(speech_id).and_then(|e| e.run.clone())
    }

    pub fn speech_activity(&self, speech_id: &str) -> Option<ActivityId> {
        self.speeches.get(speech_id).map(|e| e.activity)
    }

    /// Adds an item produced by a speech to its agent's context, the history and its run.
    pub fn commit_item(&mut self, speech_id: &str, item: ChatItem, to_run: bool) {
        let Some(entry) = self.speeches.get(speech_id) else {
            return;
        };
        let activity_id = entry.activity;
        let run = entry.run.clone();
        entry.handle.update(|s| s.chat_items.push(item.clone()));
        if let Some(activity) = self.activities.get_mut(&activity_id) {
            activity.chat_ctx.insert(item.clone());
        }
        self.history.insert(item.clone());
        if to_run {
            let event = match &item {
                ChatItem::Message(m) => Some(RunEvent::Message((**m).clone())),
                ChatItem::FunctionCall(c) => Some(RunEvent::FunctionCall((**c).clone())),
                ChatItem::FunctionCallOutput(o) => {
                    Some(RunEvent::FunctionCallOutput((**o).clone()))
                }
                _ => None,
            };
            if let Some(event) = event {
                self.record(run.as_ref(), event);
            }
        }
        if matches!(item, ChatItem::Message(_)) {
            self.emit(EventKind::ConversationItemAdded { item });
        }
    }

    /// Interrupts the agent in control's current and queued speech; returns the handles
    /// interrupted. Stops at the first queued speech that disallows interruptions.
    pub fn interrupt(&mut self, force: bool) -> Result<Vec<SpeechHandle>, SessionError> {
        let Some(top) = self.top() else {
            return Ok(Vec::new());
        };
        let Some(activity) = self.activities.get(&top) else {
            return Ok(Vec::new());
        };
        let mut interrupted = Vec::new();
        // Speeches past their playout whose tools still run, then the current one.
        let mut order: Vec<&str> = activity
            .speeches
            .iter()
            .map(String::as_str)
            .filter(|id| {
                self.speeches
                    .get(*id)
                    .is_some_and(|e| e.handle.is_scheduled() && !e.handle.is_done())
            })
            .collect();
        order.sort();
        for id in order {
            let Some(entry) = self.speeches.get(id) else {
                continue;
            };
            if force {
                entry.handle.force_interrupt();
            } else if entry.handle.interrupt().is_err() {
                if activity.current.as_deref() == Some(id) {
                    return Err(SessionError::Speech(SpeechError::InterruptionsDisallowed));
                }
                continue;
            }
            interrupted.push(entry.handle.clone());
        }
        // Queued speeches, in playout order, up to the first protected one.
        let mut queued: Vec<_> = activity.queue.iter().cloned().collect();
        queued.sort_by(|a, b| b.cmp(a));
        for (_, _, id) in queued {
            let Some(entry) = self.speeches.get(&id) else {
                continue;
            };
            if entry.handle.is_done() || entry.handle.is_scheduled() {
                continue;
            }
            if !force && !entry.handle.allow_interruptions() {
                tracing::warn!(speech = %id, "stopped interrupting at a speech that disallows interruptions");
                break;
            }
            entry.handle.force_interrupt();
            interrupted.push(entry.handle.clone());
        }
        Ok(interrupted)
    }

    // ----- closing -----

    pub fn begin_close(&mut self, reason: CloseReason, error: Option<String>) {
        if self.closing {
            return;
        }
        self.flush_turn_metrics();
        self.closing = true;
        if let Some(shared) = self.shared.upgrade() {
            shared.closed.send_replace(true);
        }
        for deferred in self.deferred.drain(..) {
            deferred.handle.finish(Some(SpeechError::SessionClosed));
        }
        for entry in self.speeches.values() {
            entry.handle.force_interrupt();
        }
        // Every awaited task fails, innermost first, so each await returns an error.
        for id in self.stack.clone().into_iter().rev() {
            if let Some(slot) = self.activities.get_mut(&id).and_then(|a| a.task.take()) {
                slot.fail(super::task::TaskError::SessionClosed);
            }
        }
        self.jobs.clear();
        self.active_run = None;
        self.pending_close = Some((reason, error));
        self.check_closed();
    }

    pub fn when_closed(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if self.stop {
            let _ = tx.send(());
        } else {
            self.close_waiters.push(tx);
        }
        rx
    }

    fn check_closed(&mut self) {
        if !self.closing || !self.speeches.is_empty() || self.stop {
            return;
        }
        let Some((reason, error)) = self.pending_close.take() else {
            return;
        };
        for id in std::mem::take(&mut self.stack) {
            if let Some(activity) = self.activities.remove(&id) {
                for waiter in activity.idle_waiters {
                    let _ = waiter.send(());
                }
            }
        }
        self.agent_state = AgentState::Initializing;
        self.emit(EventKind::Close { reason, error });
        if let Some(shared) = self.shared.upgrade() {
            *super::lock(&shared.final_history) = Some(self.history.clone());
        }
        self.stop = true;
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

/// Marks the user away after mutual silence: one sleeping task per session, following the
/// deadline the actor publishes (no task or timer per turn).
pub(crate) async fn away_timer<U: Send + 'static>(session: AgentSession<U>) {
    let mut deadline = session.shared.away_deadline.subscribe();
    let mut closed = session.shared.closed.subscribe();
    loop {
        let current = *deadline.borrow_and_update();
        let expired = tokio::select! {
            _ = closed.wait_for(|c| *c) => return,
            changed = deadline.changed() => {
                if changed.is_err() {
                    return;
                }
                false
            }
            _ = async {
                match current {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        if expired {
            let _ = session.post(|st| {
                let silent = st.agent_state == AgentState::Listening
                    && st.user_state == super::events::UserState::Listening;
                if silent && !st.closing {
                    st.set_user_state(super::events::UserState::Away);
                }
            });
            // Wait for the actor to publish the next deadline.
            if deadline.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The actor loop: runs commands until the session is closed or every handle is gone.
pub(crate) async fn run_actor<U: Send + 'static>(
    mut state: State<U>,
    mut commands: mpsc::UnboundedReceiver<Command<U>>,
) {
    while let Some(command) = commands.recv().await {
        // A panic here is a framework bug; it must not take the process down with it.
        if std::panic::catch_unwind(AssertUnwindSafe(|| command(&mut state))).is_err() {
            tracing::error!("internal error in the session actor; closing the session");
            state.report_error(
                ErrorSource::Session,
                "internal error in the session; it was closed".to_owned(),
                false,
            );
            state.begin_close(CloseReason::Error, Some("internal error".to_owned()));
        }
        if state.stop {
            break;
        }
    }
    // Fail whatever is still waiting.
    for entry in state.speeches.values() {
        entry.handle.finish(Some(SpeechError::SessionClosed));
    }
}
