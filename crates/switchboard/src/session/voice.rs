//! Voice mode: the caller's audio becomes turns (VAD, speech-to-text, endpointing,
//! interruptions, preemptive generation) and the agent's replies become audio (sentence
//! tokenizer, text-to-speech, paced playout with a synchronised transcript).
//!
//! Two tasks per voice session do the work outside the actor, like every other session task:
//! the *input task* (one per session) owns the VAD and STT streams and decides when a turn
//! ends; a *playout* (one per speech step) turns text into audio. Both report to the actor
//! with short commands. All timing uses `tokio::time`, so voice conversations run in virtual
//! time in tests, and the framework adds no waits of its own: a turn is committed the moment
//! the endpointing delay expires and the transcript is in, a sentence goes to TTS the moment
//! it is complete, and audio goes to the output the moment it is synthesised.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::AgentSession;
use super::events::{ErrorSource, EventKind, UserState};
use super::speech::SpeechHandle;
use crate::chat::{ChatContext, ChatMessage, Role};
use crate::llm::{ChatRequest, LlmStream};
use crate::voice::audio::AudioFrame;
use crate::voice::output::AudioOutput;
use crate::voice::stt::{RecognizeFuture, RecognizeOptions, SpeechEvent, Stt, SttError, SttInput};
use crate::voice::text::{SentenceTokenizer, TextTransform};
use crate::voice::tts::Tts;
use crate::voice::vad::{Vad, VadEvent, VadStream};

/// How the end of the user's turn is decided.
#[derive(Clone)]
#[non_exhaustive]
pub enum TurnDetection {
    /// The VAD's end of speech plus the endpointing delay (the default when a VAD is set).
    Vad,
    /// The streaming STT's end-of-speech signal plus the endpointing delay (the default
    /// without a VAD).
    Stt,
    /// Only [`AgentSession::commit_user_turn`] ends a turn.
    Manual,
    /// The VAD's end of speech, then a model that reads the conversation: when it thinks the
    /// user is not done, the session waits up to the maximum endpointing delay.
    Model(Arc<dyn TurnDetector>),
}

impl std::fmt::Debug for TurnDetection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnDetection::Vad => f.write_str("Vad"),
            TurnDetection::Stt => f.write_str("Stt"),
            TurnDetection::Manual => f.write_str("Manual"),
            TurnDetection::Model(_) => f.write_str("Model(..)"),
        }
    }
}

/// A pluggable end-of-turn model (e.g. a small language model trained on conversations).
pub trait TurnDetector: Send + Sync + 'static {
    /// The probability that the user finished their turn; the last item of `chat_ctx` is the
    /// user's transcript so far.
    fn end_of_turn_probability(
        &self,
        chat_ctx: &ChatContext,
    ) -> Pin<Box<dyn Future<Output = f32> + Send>>;

    /// Below this probability the session waits for the maximum endpointing delay.
    fn threshold(&self) -> f32 {
        0.5
    }
}

/// Endpointing delays, measured from the end of the user's speech.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointingOptions {
    /// The wait after the end of speech before the turn is committed (default 0.5 s).
    pub min_delay: Duration,
    /// The wait when the turn detector thinks the user is not done (default 3.0 s).
    pub max_delay: Duration,
}

impl Default for EndpointingOptions {
    fn default() -> Self {
        EndpointingOptions {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(3),
        }
    }
}

/// When user speech interrupts the agent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InterruptionOptions {
    /// Whether user speech interrupts the agent at all (default true).
    pub enabled: bool,
    /// User speech must last this long (default 0.5 s).
    pub min_duration: Duration,
    /// And contain this many transcribed words (default 0: no transcript needed).
    pub min_words: usize,
    /// Pause instead of stopping when the output can pause, and resume when the user said
    /// nothing after all (default true).
    pub resume_false_interruption: bool,
    /// How long after the user stops speaking a paused reply waits for words (default 2 s).
    pub false_interruption_timeout: Duration,
    /// While an uninterruptible speech plays, the STT hears silence instead of the user
    /// (default true).
    pub discard_audio_if_uninterruptible: bool,
}

impl Default for InterruptionOptions {
    fn default() -> Self {
        InterruptionOptions {
            enabled: true,
            min_duration: Duration::from_millis(500),
            min_words: 0,
            resume_false_interruption: true,
            false_interruption_timeout: Duration::from_secs(2),
            discard_audio_if_uninterruptible: true,
        }
    }
}

/// Turn-taking options of a voice session (the reference's `turn_handling`).
#[derive(Debug, Clone)]
pub struct TurnHandling {
    /// How turns end; `None` picks [`TurnDetection::Vad`] when a VAD is set, else
    /// [`TurnDetection::Stt`] for a streaming STT, else [`TurnDetection::Manual`].
    pub turn_detection: Option<TurnDetection>,
    /// Endpointing delays.
    pub endpointing: EndpointingOptions,
    /// Interruptions by user speech.
    pub interruption: InterruptionOptions,
    /// Start the reply on the final transcript, before the end of turn is decided, and keep
    /// it if the turn's context is unchanged at commit (default true).
    pub preemptive_generation: bool,
}

impl Default for TurnHandling {
    fn default() -> Self {
        TurnHandling {
            turn_detection: None,
            endpointing: EndpointingOptions::default(),
            interruption: InterruptionOptions::default(),
            preemptive_generation: true,
        }
    }
}

/// The voice components of a session. Set with the [`SessionBuilder`](super::SessionBuilder).
#[derive(Clone, Default)]
pub(crate) struct VoiceIo {
    pub vad: Option<Arc<dyn Vad>>,
    pub stt: Option<Arc<dyn Stt>>,
    pub tts: Option<Arc<dyn Tts>>,
    pub output: Option<Arc<dyn AudioOutput>>,
    pub turn: TurnHandling,
    pub transforms: Vec<TextTransform>,
    pub stt_options: RecognizeOptions,
}

impl VoiceIo {
    /// Whether speech is spoken (TTS and an output), rather than delivered as text.
    pub fn speaks(&self) -> bool {
        self.tts.is_some() && self.output.is_some()
    }

    /// Whether the session listens to audio.
    pub fn listens(&self) -> bool {
        self.vad.is_some() || self.stt.is_some()
    }

    fn detection(&self) -> TurnDetection {
        match &self.turn.turn_detection {
            Some(d) => d.clone(),
            None if self.vad.is_some() => TurnDetection::Vad,
            None if self
                .stt
                .as_ref()
                .is_some_and(|s| s.capabilities().streaming) =>
            {
                TurnDetection::Stt
            }
            None => TurnDetection::Manual,
        }
    }
}

/// Per-turn latency figures of a voice turn, emitted as [`EventKind::TurnMetrics`] once the
/// agent's first audio after the turn has played. That audio is usually the reply's first
/// step; when that step only calls tools, it is whatever speaks first next (the tool step's
/// follow-up, a task's or a new agent's greeting), and `tts_ttfb` is that playout's. A turn
/// after which the agent never spoke is sent without `end_to_end` at the next turn or when the
/// session closes. All from one monotonic clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnMetrics {
    /// The reply's speech.
    pub speech_id: String,
    /// End of the user's speech (VAD) to the turn being committed.
    #[serde(with = "opt_secs")]
    pub end_of_utterance_delay: Option<Duration>,
    /// End of the user's speech to the final transcript.
    #[serde(with = "opt_secs")]
    pub transcription_delay: Option<Duration>,
    /// LLM request to first chunk (with preemptive generation: from the commit, usually less).
    #[serde(with = "opt_secs")]
    pub llm_ttft: Option<Duration>,
    /// First sentence sent to TTS to its first audio.
    #[serde(with = "opt_secs")]
    pub tts_ttfb: Option<Duration>,
    /// End of the user's speech to the first audio of the reply.
    #[serde(with = "opt_secs")]
    pub end_to_end: Option<Duration>,
    /// Whether the reply came from a preemptive generation.
    pub preemptive: bool,
}

mod opt_secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// When the turn a reply answers ended, for its metrics.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TurnTiming {
    pub end_of_speech: Option<Instant>,
    pub transcribed: Option<Instant>,
    pub committed: Option<Instant>,
}

/// A reply started before the end of the turn was decided.
pub(crate) struct Preemptive {
    pub user_message: ChatMessage,
    pub fingerprint: u64,
    /// Taken by the reply that uses it; the driver task keeps feeding it while this lives.
    pub stream: Option<LlmStream>,
    pub started: Instant,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Preemptive {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A cheap identity of a request: the ids and texts of its items, its tools and tool choice.
/// Two requests with the same fingerprint ask the model the same thing.
pub(crate) fn fingerprint(request: &ChatRequest) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for item in request.context.items() {
        item.id().hash(&mut h);
        if let crate::chat::ChatItem::Message(m) = item {
            m.text().hash(&mut h);
        }
    }
    for tool in &request.tools {
        tool.name.hash(&mut h);
    }
    format!("{:?}", request.tool_choice).hash(&mut h);
    h.finish()
}

/// Messages to the input task.
pub(crate) enum InputMessage {
    Audio(AudioFrame),
    Commit,
    Clear,
    End,
}

/// Controls of the playout of the current speech step, shared with the input task.
#[derive(Debug)]
pub(crate) struct PlayoutControl {
    pub speech_id: String,
    pub paused: watch::Sender<bool>,
}

/// What the input task needs to know about the agent's speech, without asking the actor.
#[derive(Debug, Default)]
pub(crate) struct SpeakingFlags {
    /// Audio of an uninterruptible speech is playing.
    pub uninterruptible: AtomicBool,
}

// ---------------------------------------------------------------------------------------
// Input: audio → turns

type Recognition = Pin<Box<dyn Future<Output = (Instant, Result<String, SttError>)> + Send>>;

struct UserInput<U: Send + 'static> {
    session: AgentSession<U>,
    io: Arc<VoiceIo>,
    detection: TurnDetection,
    vad: Option<Box<dyn VadStream>>,
    stt_input: Option<Box<dyn SttInput>>,
    /// Non-streaming recognitions in flight, one per VAD utterance.
    recognitions: FuturesUnordered<Recognition>,
    /// Audio pushed so far (the VAD's timeline).
    audio_pos: Duration,
    speaking: bool,
    end_of_speech: Option<Instant>,
    /// Final transcripts of the turn so far.
    transcript: String,
    interim: String,
    transcribed_at: Option<Instant>,
    endpoint_at: Option<Instant>,
    /// The endpointing delay (or the STT's end of utterance) has passed since the last speech.
    endpoint_reached: bool,
    interrupt_at: Option<Instant>,
    /// Interruption decided by duration, waiting for `min_words`.
    interrupt_pending_words: bool,
    /// The reply paused by this turn's speech, and when to resume it.
    paused: Option<String>,
    resume_at: Option<Instant>,
    words_at_pause: usize,
    preemptive: Option<Preemptive>,
    preemptive_text: String,
    input_ended: bool,
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

fn join_text(into: &mut String, more: &str) {
    let more = more.trim();
    if more.is_empty() {
        return;
    }
    if !into.is_empty() {
        into.push(' ');
    }
    into.push_str(more);
}

/// The input task: one per listening session, until the input ends or the session closes.
pub(crate) async fn run_input<U: Send + 'static>(
    session: AgentSession<U>,
    io: Arc<VoiceIo>,
    mut rx: mpsc::UnboundedReceiver<InputMessage>,
) {
    let mut stt_events = None;
    let mut stt_input = None;
    if let Some(stt) = &io.stt
        && stt.capabilities().streaming
    {
        match stt.stream(&io.stt_options) {
            Ok(stream) => {
                stt_input = Some(stream.input);
                stt_events = Some(stream.events);
            }
            Err(error) => report(&session, ErrorSource::Stt, error.to_string(), true),
        }
    }
    let mut input = UserInput {
        session: session.clone(),
        detection: io.detection(),
        vad: io.vad.as_ref().map(|v| v.stream()),
        stt_input,
        recognitions: FuturesUnordered::new(),
        audio_pos: Duration::ZERO,
        speaking: false,
        end_of_speech: None,
        transcript: String::new(),
        interim: String::new(),
        transcribed_at: None,
        endpoint_at: None,
        endpoint_reached: false,
        interrupt_at: None,
        interrupt_pending_words: false,
        paused: None,
        resume_at: None,
        words_at_pause: 0,
        preemptive: None,
        preemptive_text: String::new(),
        input_ended: false,
        io,
    };
    let mut closed = session.shared.closed.subscribe();
    loop {
        if input.input_ended && input.recognitions.is_empty() && stt_events.is_none() {
            input.maybe_commit().await;
            break;
        }
        tokio::select! {
            biased;
            _ = async { let _ = closed.wait_for(|c| *c).await; } => break,
            message = rx.recv(), if !input.input_ended => match message {
                Some(InputMessage::Audio(frame)) => input.on_audio(frame).await,
                Some(InputMessage::Commit) => input.commit().await,
                Some(InputMessage::Clear) => input.clear(),
                Some(InputMessage::End) | None => input.end_of_input().await,
            },
            Some((at, result)) = input.recognitions.next(), if !input.recognitions.is_empty() => {
                match result {
                    Ok(text) => input.on_final(text, at).await,
                    Err(error) => {
                        report(&session, ErrorSource::Stt, error.to_string(), true);
                        input.maybe_commit().await;
                    }
                }
            }
            event = async {
                match stt_events.as_mut() {
                    Some(events) => events.next().await,
                    None => std::future::pending().await,
                }
            } => match event {
                Some(Ok(event)) => input.on_stt_event(event).await,
                Some(Err(error)) => {
                    report(&session, ErrorSource::Stt, error.to_string(), true);
                    // Reconnect: a failed stream must not leave the session deaf.
                    stt_events = None;
                    input.stt_input = None;
                    if !input.input_ended
                        && let Some(stt) = input.io.stt.clone()
                    {
                        match stt.stream(&input.io.stt_options) {
                            Ok(stream) => {
                                input.stt_input = Some(stream.input);
                                stt_events = Some(stream.events);
                            }
                            Err(error) => report(&session, ErrorSource::Stt, format!("cannot reconnect: {error}"), false),
                        }
                    }
                }
                None => {
                    stt_events = None;
                    input.stt_input = None;
                }
            },
            _ = sleep_opt(input.endpoint_at) => {
                input.endpoint_at = None;
                input.endpoint_reached = true;
                input.maybe_commit().await;
            }
            _ = sleep_opt(input.interrupt_at) => {
                input.interrupt_at = None;
                input.try_interrupt().await;
            }
            _ = sleep_opt(input.resume_at) => {
                input.resume_at = None;
                input.resume_false_interruption().await;
            }
        }
    }
    if let Some(mut stt) = input.stt_input.take() {
        stt.end();
    }
}

fn report<U: Send + 'static>(
    session: &AgentSession<U>,
    source: ErrorSource,
    message: String,
    recoverable: bool,
) {
    let _ = session.post(move |st| st.report_error(source, message, recoverable));
}

/// Maps VAD audio time to the session clock: `at` lies `pos - at` behind the audio pushed so
/// far, which arrived now.
fn instant_of(pos: Duration, at: Duration) -> Instant {
    let now = Instant::now();
    now.checked_sub(pos.saturating_sub(at)).unwrap_or(now)
}

/// The current agent's context plus the transcript so far, for the turn detector.
async fn turn_context<U: Send + 'static>(session: &AgentSession<U>, text: String) -> ChatContext {
    let mut ctx = session
        .exec(|st| {
            st.top()
                .and_then(|id| st.activity(id).map(|a| a.chat_ctx.clone()))
                .unwrap_or_default()
        })
        .await
        .unwrap_or_default();
    ctx.insert(ChatMessage::new(Role::User, text));
    ctx
}

/// What user speech did to the agent's current speech.
pub(crate) enum Interruption {
    /// Nothing to interrupt (no current speech, or it disallows interruptions).
    None,
    /// The playout of this speech was paused (it may resume).
    Paused(String),
    /// The current speech was interrupted.
    Interrupted,
}

impl<U: Send + 'static> UserInput<U> {
    async fn on_audio(&mut self, frame: AudioFrame) {
        if frame.is_empty() {
            return;
        }
        self.audio_pos += frame.duration();
        let events = match self.vad.as_mut() {
            Some(vad) => vad.push(&frame).unwrap_or_else(|error| {
                report(&self.session, ErrorSource::Vad, error.to_string(), true);
                Vec::new()
            }),
            None => Vec::new(),
        };
        if let Some(stt) = self.stt_input.as_mut() {
            let discard = self.io.turn.interruption.discard_audio_if_uninterruptible
                && self
                    .session
                    .shared
                    .speaking
                    .uninterruptible
                    .load(Ordering::Relaxed);
            let pushed = if discard {
                AudioFrame::silence(frame.duration(), frame.sample_rate(), frame.channels())
                    .map_err(SttError::from)
                    .and_then(|silence| stt.push(&silence))
            } else {
                stt.push(&frame)
            };
            if let Err(error) = pushed {
                report(&self.session, ErrorSource::Stt, error.to_string(), true);
            }
        }
        self.on_vad_events(events).await;
    }

    async fn on_vad_events(&mut self, events: Vec<VadEvent>) {
        for event in events {
            match event {
                VadEvent::StartOfSpeech { at, .. } => {
                    self.on_start_of_speech(instant_of(self.audio_pos, at))
                        .await
                }
                VadEvent::EndOfSpeech { at, audio, .. } => {
                    self.on_end_of_speech(instant_of(self.audio_pos, at), Some(audio))
                        .await
                }
                _ => {}
            }
        }
    }

    fn set_user_state(&self, state: UserState, at: Instant) {
        let back = Instant::now().saturating_duration_since(at);
        let _ = self
            .session
            .post(move |st| st.set_user_state_at(state, back));
    }

    async fn on_start_of_speech(&mut self, at: Instant) {
        self.speaking = true;
        self.endpoint_at = None;
        self.endpoint_reached = false;
        self.resume_at = None;
        self.set_user_state(UserState::Speaking, at);
        if self.io.turn.interruption.enabled {
            let due = at + self.io.turn.interruption.min_duration;
            if due <= Instant::now() {
                self.try_interrupt().await;
            } else {
                self.interrupt_at = Some(due);
            }
        }
    }

    async fn on_end_of_speech(&mut self, at: Instant, audio: Option<AudioFrame>) {
        self.speaking = false;
        self.end_of_speech = Some(at);
        self.interrupt_at = None;
        self.set_user_state(UserState::Listening, at);
        if let Some(stt) = self.stt_input.as_mut() {
            if let Err(error) = stt.flush() {
                report(&self.session, ErrorSource::Stt, error.to_string(), true);
            }
        } else if let (Some(stt), Some(audio)) = (&self.io.stt, audio) {
            let recognition: RecognizeFuture = stt.recognize(audio, &self.io.stt_options);
            self.recognitions.push(Box::pin(async move {
                let result = recognition.await.map(|speech| speech.text);
                (Instant::now(), result)
            }));
        }
        if self.paused.is_some() {
            self.resume_at =
                Some(Instant::now() + self.io.turn.interruption.false_interruption_timeout);
        }
        if matches!(self.detection, TurnDetection::Vad | TurnDetection::Model(_)) {
            self.arm_endpoint(at, self.io.turn.endpointing.min_delay);
        }
    }

    fn arm_endpoint(&mut self, from: Instant, delay: Duration) {
        let at = from + delay;
        if at <= Instant::now() {
            self.endpoint_at = None;
            self.endpoint_reached = true;
        } else {
            self.endpoint_at = Some(at);
            self.endpoint_reached = false;
        }
    }

    async fn on_stt_event(&mut self, event: SpeechEvent) {
        match event {
            SpeechEvent::StartOfSpeech if self.vad.is_none() => {
                self.on_start_of_speech(Instant::now()).await
            }
            SpeechEvent::Interim(speech) => {
                self.interim = speech.text.clone();
                self.emit_transcript(speech.text, false);
                if self.interrupt_pending_words {
                    self.try_interrupt().await;
                }
            }
            SpeechEvent::Final(speech) => self.on_final(speech.text, Instant::now()).await,
            SpeechEvent::EndOfSpeech => {
                if self.vad.is_none() {
                    self.speaking = false;
                    self.end_of_speech = Some(Instant::now());
                    self.interrupt_at = None;
                    self.set_user_state(UserState::Listening, Instant::now());
                }
                if matches!(self.detection, TurnDetection::Stt) {
                    self.arm_endpoint(Instant::now(), self.io.turn.endpointing.min_delay);
                    self.maybe_commit().await;
                }
            }
            _ => {}
        }
    }

    fn emit_transcript(&self, transcript: String, is_final: bool) {
        let _ = self.session.post(move |st| {
            st.emit(EventKind::UserInputTranscribed {
                transcript,
                is_final,
            })
        });
    }

    async fn on_final(&mut self, text: String, at: Instant) {
        self.interim.clear();
        if !text.trim().is_empty() {
            join_text(&mut self.transcript, &text);
            self.transcribed_at = Some(at);
            self.emit_transcript(text.trim().to_owned(), true);
            if self.paused.is_some() {
                // Words after all: the pause becomes an interruption.
                if word_count(&self.transcript) > self.words_at_pause
                    && word_count(&self.transcript) >= self.io.turn.interruption.min_words
                {
                    self.stop_paused().await;
                }
            } else if self.interrupt_pending_words {
                self.try_interrupt().await;
            }
            if let TurnDetection::Model(detector) = self.detection.clone()
                && !self.speaking
                && let Some(eos) = self.end_of_speech
            {
                let ctx = turn_context(&self.session, self.transcript.clone()).await;
                let probability = detector.end_of_turn_probability(&ctx).await;
                let delay = if probability < detector.threshold() {
                    self.io.turn.endpointing.max_delay
                } else {
                    self.io.turn.endpointing.min_delay
                };
                self.arm_endpoint(eos, delay);
            }
            if self.io.turn.preemptive_generation && !self.speaking {
                self.start_preemptive().await;
            }
        }
        self.maybe_commit().await;
    }

    async fn maybe_commit(&mut self) {
        if self.speaking || !self.recognitions.is_empty() || !self.endpoint_reached {
            return;
        }
        if matches!(self.detection, TurnDetection::Manual) {
            return;
        }
        if self.transcript.trim().is_empty() {
            // Noise, or speech the STT heard nothing in: no turn.
            self.endpoint_reached = false;
            return;
        }
        self.commit().await;
    }

    fn clear(&mut self) {
        self.transcript.clear();
        self.interim.clear();
        self.endpoint_at = None;
        self.endpoint_reached = false;
        self.preemptive = None;
        self.preemptive_text.clear();
        self.interrupt_pending_words = false;
    }

    async fn end_of_input(&mut self) {
        self.input_ended = true;
        if let Some(vad) = self.vad.as_mut() {
            match vad.flush() {
                Ok(events) => self.on_vad_events(events).await,
                Err(error) => report(&self.session, ErrorSource::Vad, error.to_string(), true),
            }
        }
        if let Some(stt) = self.stt_input.as_mut() {
            let _ = stt.flush();
            stt.end();
        }
        self.endpoint_at = None;
        self.endpoint_reached = true;
    }

    /// User speech lasted `min_duration`: interrupt (or pause) the agent if it is speaking.
    async fn try_interrupt(&mut self) {
        let options = self.io.turn.interruption;
        if !options.enabled || self.paused.is_some() {
            return;
        }
        let words = word_count(&self.transcript) + word_count(&self.interim);
        if options.min_words > 0 && words < options.min_words {
            self.interrupt_pending_words = true;
            return;
        }
        self.interrupt_pending_words = false;
        let pause = options.resume_false_interruption
            && self.io.output.as_ref().is_some_and(|o| o.supports_pause());
        let outcome = self
            .session
            .exec(move |st| st.interrupt_by_user(pause))
            .await
            .unwrap_or(Interruption::None);
        if let Interruption::Paused(id) = outcome {
            self.paused = Some(id);
            self.words_at_pause = word_count(&self.transcript);
            if !self.speaking {
                self.resume_at = Some(Instant::now() + options.false_interruption_timeout);
            }
        }
    }

    async fn stop_paused(&mut self) {
        self.resume_at = None;
        if let Some(id) = self.paused.take() {
            let _ = self.session.exec(move |st| st.stop_paused(&id)).await;
        }
    }

    async fn resume_false_interruption(&mut self) {
        let Some(id) = self.paused.take() else {
            return;
        };
        if self.speaking {
            self.paused = Some(id);
            return;
        }
        let _ = self.session.exec(move |st| st.resume_paused(&id)).await;
        // What the user said (nothing, or noise) is not a turn.
        self.clear();
    }

    async fn start_preemptive(&mut self) {
        if self.preemptive.is_some() && self.preemptive_text == self.transcript {
            return;
        }
        self.preemptive = None;
        let message = ChatMessage::new(Role::User, self.transcript.clone());
        let preview = message.clone();
        let Ok(Some(plan)) = self
            .session
            .exec(move |st| st.preview_reply(&preview))
            .await
        else {
            return;
        };
        let (llm, agent, request) = plan;
        let fingerprint = fingerprint(&request);
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut stream = agent.agent.llm_node(llm, request);
            while let Some(chunk) = stream.next().await {
                if tx.send(chunk).is_err() {
                    return;
                }
            }
        });
        let mut rx = rx;
        self.preemptive_text = self.transcript.clone();
        self.preemptive = Some(Preemptive {
            user_message: message,
            fingerprint,
            stream: Some(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()),
            started: Instant::now(),
            driver,
        });
    }

    /// Ends the user's turn with what was transcribed and starts the reply.
    async fn commit(&mut self) {
        let text = std::mem::take(&mut self.transcript).trim().to_owned();
        let preemptive = self
            .preemptive
            .take()
            .filter(|_| self.preemptive_text == text);
        let timing = TurnTiming {
            end_of_speech: self.end_of_speech,
            transcribed: self.transcribed_at,
            committed: Some(Instant::now()),
        };
        self.clear();
        self.end_of_speech = None;
        self.transcribed_at = None;
        if text.is_empty() {
            return;
        }
        if self.paused.is_some() {
            self.stop_paused().await;
        }
        let session = self.session.clone();
        let _ = self.session.post(move |st| {
            if st.closing || st.draining {
                return;
            }
            if let Some(current) = st.current_speech()
                && !current.allow_interruptions()
                && !current.is_done()
            {
                tracing::info!(speech = %current.id(), "user turn dropped: the agent's speech disallows interruptions");
                return;
            }
            let target = st
                .top()
                .and_then(|id| st.activity(id).map(|a| (id, a.agent.clone())));
            let token = st.active_run_token();
            tokio::spawn(super::user_turn(
                session,
                super::TurnStart {
                    text,
                    timing: Some(timing),
                    preemptive,
                },
                target,
                token,
            ));
        });
    }
}

// ---------------------------------------------------------------------------------------
// Output: text → audio

/// One sentence of a playout and where its audio lies on the playout's timeline.
struct Segment {
    text: String,
    start: Duration,
    duration: Option<Duration>,
}

/// What a playout delivered.
#[derive(Debug, Default)]
pub(crate) struct PlayoutResult {
    /// The part of the text the listener heard (everything unless interrupted).
    pub played_text: String,
    pub interrupted: bool,
    pub first_audio: Option<Instant>,
    pub tts_ttfb: Option<Duration>,
}

/// Speaks one step's text as it streams in: sentences go to TTS as soon as they are complete,
/// audio goes to the output as soon as it is synthesised, and the playout position is tracked
/// so an interruption stores only what was heard.
pub(crate) struct Playout {
    text_tx: Option<mpsc::UnboundedSender<String>>,
    task: tokio::task::JoinHandle<PlayoutResult>,
}

impl Playout {
    pub fn start<U: Send + 'static>(
        session: AgentSession<U>,
        io: Arc<VoiceIo>,
        handle: SpeechHandle,
    ) -> Self {
        let (text_tx, text_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(play(session, io, handle, text_rx));
        Playout {
            text_tx: Some(text_tx),
            task,
        }
    }

    /// Adds streamed text.
    pub fn push(&self, delta: &str) {
        if let Some(tx) = &self.text_tx {
            let _ = tx.send(delta.to_owned());
        }
    }

    /// Ends the text and waits until it has played (or the speech was interrupted).
    pub async fn finish(mut self) -> PlayoutResult {
        self.text_tx = None;
        (&mut self.task).await.unwrap_or_default()
    }
}

impl Drop for Playout {
    fn drop(&mut self) {
        if self.text_tx.is_some() {
            self.task.abort();
        }
    }
}

async fn play<U: Send + 'static>(
    session: AgentSession<U>,
    io: Arc<VoiceIo>,
    handle: SpeechHandle,
    mut text_rx: mpsc::UnboundedReceiver<String>,
) -> PlayoutResult {
    let (Some(tts), Some(output)) = (io.tts.clone(), io.output.clone()) else {
        return PlayoutResult::default();
    };
    let speech_id = handle.id().to_owned();
    let (paused_tx, mut paused_rx) = watch::channel(false);
    let control = Arc::new(PlayoutControl {
        speech_id: speech_id.clone(),
        paused: paused_tx,
    });
    // Registered at the first audio: only audio that plays can be paused.
    let mut registered = Some(control.clone());
    let uninterruptible = !handle.allow_interruptions();

    let mut tokenizer = SentenceTokenizer::new();
    let mut pending: VecDeque<String> = VecDeque::new();
    let mut text_open = true;
    let mut synth: Option<crate::voice::tts::TtsStream> = None;
    let mut segments: Vec<Segment> = Vec::new();
    let mut queued = Duration::ZERO;
    let mut play_end: Option<Instant> = None;
    let mut paused_since: Option<Instant> = None;
    let mut first_request: Option<Instant> = None;
    let mut result = PlayoutResult::default();
    let mut state_rx = handle.inner.state.subscribe();

    loop {
        while synth.is_none() {
            let Some(sentence) = pending.pop_front() else {
                break;
            };
            let spoken = TextTransform::apply_all(&io.transforms, &sentence);
            let empty = spoken.trim().is_empty();
            segments.push(Segment {
                text: sentence,
                start: queued,
                duration: empty.then_some(Duration::ZERO),
            });
            if !empty {
                first_request.get_or_insert_with(Instant::now);
                synth = Some(tts.synthesize(&spoken));
            }
        }
        let finished = !text_open && synth.is_none() && pending.is_empty();
        let end_wait =
            (finished && paused_since.is_none()).then(|| play_end.unwrap_or_else(Instant::now));
        tokio::select! {
            biased;
            _ = state_rx.wait_for(|s| s.interrupted || s.done) => {
                result.interrupted = true;
                break;
            }
            changed = paused_rx.changed() => {
                if changed.is_err() {
                    continue;
                }
                let paused = *paused_rx.borrow_and_update();
                let now = Instant::now();
                if paused && paused_since.is_none() {
                    paused_since = Some(now);
                    output.pause();
                } else if !paused && let Some(since) = paused_since.take() {
                    if let Some(end) = play_end.as_mut() {
                        *end += now - since;
                    }
                    output.resume();
                }
            }
            delta = text_rx.recv(), if text_open => match delta {
                Some(delta) => pending.extend(tokenizer.push(&delta)),
                None => {
                    pending.extend(tokenizer.flush());
                    text_open = false;
                }
            },
            frame = async { match synth.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } } => match frame {
                Some(Ok(frame)) if frame.is_empty() => {}
                Some(Ok(frame)) => {
                    let now = Instant::now();
                    output.capture(&frame);
                    if result.first_audio.is_none() {
                        result.first_audio = Some(now);
                        result.tts_ttfb = first_request.map(|r| now - r);
                        if uninterruptible {
                            session.shared.speaking.uninterruptible.store(true, Ordering::Relaxed);
                        }
                        let control = registered.take();
                        let ttfb = result.tts_ttfb;
                        let _ = session.post(move |st| {
                            st.playout = control;
                            st.agent_started_speaking();
                            st.first_agent_audio(now, ttfb);
                        });
                    }
                    let start = match play_end {
                        Some(end) if end > now || paused_since.is_some() => end,
                        _ => now,
                    };
                    play_end = Some(start + frame.duration());
                    queued += frame.duration();
                }
                Some(Err(error)) => {
                    report(&session, ErrorSource::Tts, error.to_string(), true);
                    close_segment(&mut segments, queued);
                    synth = None;
                }
                None => {
                    close_segment(&mut segments, queued);
                    synth = None;
                }
            },
            _ = sleep_opt(end_wait) => break,
        }
    }

    if result.interrupted {
        output.clear();
        close_segment(&mut segments, queued);
        let reference = paused_since.unwrap_or_else(Instant::now);
        let remaining = play_end.map_or(Duration::ZERO, |end| {
            end.saturating_duration_since(reference)
        });
        let played = queued.saturating_sub(remaining);
        result.played_text = played_text(&segments, played);
    } else {
        result.played_text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
    }
    if uninterruptible {
        session
            .shared
            .speaking
            .uninterruptible
            .store(false, Ordering::Relaxed);
    }
    let _ = session.post(move |st| {
        if st
            .playout
            .as_ref()
            .is_some_and(|p| p.speech_id == speech_id)
        {
            st.playout = None;
        }
    });
    result
}

fn close_segment(segments: &mut [Segment], queued: Duration) {
    if let Some(last) = segments.last_mut()
        && last.duration.is_none()
    {
        last.duration = Some(queued.saturating_sub(last.start));
    }
}

/// The text heard after `played` of audio: whole sentences, then the words of the sentence
/// being spoken in proportion to how much of its audio played.
fn played_text(segments: &[Segment], played: Duration) -> String {
    let mut out = String::new();
    for segment in segments {
        let duration = segment.duration.unwrap_or_default();
        if segment.start >= played && !duration.is_zero() {
            break;
        }
        if segment.start + duration <= played {
            join_text(&mut out, &segment.text);
            continue;
        }
        let words: Vec<&str> = segment.text.split_whitespace().collect();
        let fraction = (played - segment.start).as_secs_f64() / duration.as_secs_f64();
        let heard = ((words.len() as f64) * fraction).floor() as usize;
        join_text(&mut out, &words[..heard.min(words.len())].join(" "));
        break;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn played_text_keeps_whole_sentences_and_the_heard_words() {
        let segments = vec![
            Segment {
                text: "Hello there.".into(),
                start: Duration::ZERO,
                duration: Some(Duration::from_secs(1)),
            },
            Segment {
                text: "one two three four".into(),
                start: Duration::from_secs(1),
                duration: Some(Duration::from_secs(2)),
            },
        ];
        assert_eq!(played_text(&segments, Duration::ZERO), "");
        assert_eq!(played_text(&segments, Duration::from_millis(500)), "Hello");
        assert_eq!(
            played_text(&segments, Duration::from_secs(1)),
            "Hello there."
        );
        assert_eq!(
            played_text(&segments, Duration::from_secs(2)),
            "Hello there. one two"
        );
        assert_eq!(
            played_text(&segments, Duration::from_secs(9)),
            "Hello there. one two three four"
        );
    }
}
