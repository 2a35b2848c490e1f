//! Voice sessions in virtual time: a scripted caller speaks (a tone is speech, zeros are
//! silence), a loudness VAD cuts utterances, scripted STT/LLM/TTS answer after fixed delays,
//! and the tests assert state transitions and what was stored, to the millisecond.
//!
//! Timeline constants used by every test (all times from the session start):
//! - VAD: 20 ms windows, speech starts after 100 ms of speech (back-dated to its first
//!   window), ends after 300 ms of silence (back-dated to its last speech window).
//! - STT: 100 ms from the end of an utterance to its transcript.
//! - Endpointing: 500 ms after the end of speech.
//! - LLM: 300 ms to the first token, then the whole text at once.
//! - TTS: 50 ms to the first audio, 20 characters per second.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard::chat::{ChatItem, Role};
use switchboard::clock::Timestamp;
use switchboard::testing::{ScriptedLlm, ScriptedReply, ScriptedStt, ScriptedTts};
use switchboard::tools::FunctionTool;
use switchboard::voice::audio::AudioFrame;
use switchboard::voice::output::RecordingOutput;
use switchboard::voice::vad::{ModelVad, VadError, VadModel, VadModelState, VadOptions};
use switchboard::{
    Agent, AgentSession, AgentState, EventKind, InterruptionOptions, SessionEvent, TurnHandling,
    UserState,
};
use switchboard::{RunContext, async_trait};

/// Probability 1 for any audible window, 0 for silence.
struct Loudness;

impl VadModel for Loudness {
    fn name(&self) -> &str {
        "loudness"
    }
    fn supports_sample_rate(&self, sample_rate: u32) -> bool {
        sample_rate == 16_000
    }
    fn window_size(&self, _sample_rate: u32) -> usize {
        320
    }
    fn new_state(&self, _sample_rate: u32) -> Box<dyn VadModelState> {
        Box::new(LoudnessState)
    }
}

struct LoudnessState;

impl VadModelState for LoudnessState {
    fn predict(&mut self, window: &[f32]) -> Result<f32, VadError> {
        let mean = window.iter().map(|s| s.abs()).sum::<f32>() / window.len().max(1) as f32;
        Ok(if mean > 0.01 { 1.0 } else { 0.0 })
    }
    fn reset(&mut self) {}
}

fn vad() -> Arc<ModelVad> {
    let options = VadOptions {
        min_speech_duration: Duration::from_millis(100),
        min_silence_duration: Duration::from_millis(300),
        prefix_padding: Duration::ZERO,
        ..VadOptions::default()
    };
    Arc::new(ModelVad::new(Arc::new(Loudness), options).unwrap())
}

const FRAME: Duration = Duration::from_millis(20);

#[derive(Clone, Copy)]
enum Part {
    Speech(u64),
    Silence(u64),
}
use Part::{Silence, Speech};

/// The caller: pushes one 20 ms frame at the end of each 20 ms, as a microphone would.
fn caller(session: AgentSession, script: Vec<Part>, rate: u32, channels: u16) {
    tokio::spawn(async move {
        let mut sample = 0u64;
        for part in script {
            let (ms, loud) = match part {
                Speech(ms) => (ms, true),
                Silence(ms) => (ms, false),
            };
            for _ in 0..ms / 20 {
                tokio::time::sleep(FRAME).await;
                let per_channel = rate as usize / 50;
                let mut samples = Vec::with_capacity(per_channel * channels as usize);
                for _ in 0..per_channel {
                    // A 250 Hz square wave survives any resampling.
                    let phase = (sample as f64 * 250.0 / rate as f64).fract();
                    let value = match (loud, phase < 0.5) {
                        (false, _) => 0,
                        (true, true) => 3000,
                        (true, false) => -3000,
                    };
                    samples.extend(std::iter::repeat_n(value, channels as usize));
                    sample += 1;
                }
                if session
                    .push_audio(AudioFrame::new(samples, rate, channels).unwrap())
                    .is_err()
                {
                    return;
                }
            }
        }
        let _ = session.end_audio_input();
    });
}

struct Receptionist;
#[async_trait]
impl Agent for Receptionist {
    fn instructions(&self) -> String {
        "You book appointments.".into()
    }
}

struct Harness {
    session: AgentSession,
    events: tokio::sync::mpsc::UnboundedReceiver<SessionEvent>,
    t0: Timestamp,
    output: Arc<RecordingOutput>,
    tts: ScriptedTts,
}

/// Milliseconds from `t0`, rounded: tokio's timer wheel fires on whole-millisecond ticks of
/// its own start, so instants may sit a fraction of a millisecond off the test's `t0`.
fn ms(t0: Timestamp, at: Timestamp) -> u64 {
    ((at.duration_since(t0).as_nanos() + 500_000) / 1_000_000) as u64
}

/// A scripted LLM answering after 300 ms.
fn llm() -> ScriptedLlm {
    ScriptedLlm::new().with_time_to_first_token(Duration::from_millis(300))
}

async fn start(
    llm: Arc<ScriptedLlm>,
    stt: ScriptedStt,
    turn: TurnHandling,
    agent: impl Agent,
) -> Harness {
    let t0 = Timestamp::now();
    let output = Arc::new(RecordingOutput::new(16_000));
    let tts = ScriptedTts::new();
    let session = AgentSession::builder()
        .llm(llm)
        .vad(vad())
        .stt(Arc::new(stt.with_delay(Duration::from_millis(100))))
        .tts(Arc::new(tts.clone()))
        .audio_output(output.clone())
        .turn_handling(turn)
        .user_away_timeout(None)
        .build();
    let events = session.subscribe();
    session.start(agent).await.unwrap();
    Harness {
        session,
        events,
        t0,
        output,
        tts,
    }
}

impl Harness {
    /// Runs virtual time until `until` ms, then returns every event so far.
    async fn run_until(&mut self, until: u64) -> Vec<SessionEvent> {
        let now = ms(self.t0, Timestamp::now());
        tokio::time::sleep(Duration::from_millis(until.saturating_sub(now))).await;
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            out.push(e);
        }
        out
    }

    /// "agent thinking@1700"-style lines for state changes.
    fn states(&self, events: &[SessionEvent]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::AgentStateChanged { new_state, .. } => Some(format!(
                    "agent {}@{}",
                    state_name(*new_state),
                    ms(self.t0, e.created_at)
                )),
                EventKind::UserStateChanged { new_state, .. } => Some(format!(
                    "user {}@{}",
                    user_state_name(*new_state),
                    ms(self.t0, e.created_at)
                )),
                _ => None,
            })
            .collect()
    }

    async fn assistant_messages(&self) -> Vec<(String, bool)> {
        self.session
            .history()
            .await
            .items()
            .iter()
            .filter_map(|item| match item {
                ChatItem::Message(m) if m.role == Role::Assistant => {
                    Some((m.text(), m.interrupted))
                }
                _ => None,
            })
            .collect()
    }

    async fn user_messages(&self) -> Vec<String> {
        self.session
            .history()
            .await
            .items()
            .iter()
            .filter_map(|item| match item {
                ChatItem::Message(m) if m.role == Role::User => Some(m.text()),
                _ => None,
            })
            .collect()
    }
}

fn state_name(s: AgentState) -> &'static str {
    match s {
        AgentState::Initializing => "initializing",
        AgentState::Listening => "listening",
        AgentState::Thinking => "thinking",
        AgentState::Speaking => "speaking",
        _ => "other",
    }
}

fn user_state_name(s: UserState) -> &'static str {
    match s {
        UserState::Speaking => "speaking",
        UserState::Listening => "listening",
        UserState::Away => "away",
    }
}

fn metrics(events: &[SessionEvent]) -> Vec<switchboard::TurnMetrics> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TurnMetrics(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn no_preemption() -> TurnHandling {
    TurnHandling {
        preemptive_generation: false,
        ..TurnHandling::default()
    }
}

const REPLY: &str = "Sure. What day works for you?";

#[tokio::test(start_paused = true)]
async fn a_simple_turn_runs_vad_stt_llm_tts_on_the_clock() {
    let llm = Arc::new(llm().reply_text(REPLY));
    let stt = ScriptedStt::new(["I need an appointment"]);
    let mut h = start(llm, stt, no_preemption(), Receptionist).await;
    caller(
        h.session.clone(),
        vec![Silence(200), Speech(1000), Silence(3000)],
        16_000,
        1,
    );
    let events = h.run_until(4000).await;
    // Speech 200..1200 (back-dated); transcript at 1600; committed at 1200 + 500 = 1700;
    // LLM first token at 2000; "Sure." to TTS at once, first audio at 2050; "Sure." plays
    // 250 ms, "What day works for you?" 1150 ms: playout ends at 3450.
    assert_eq!(
        h.states(&events),
        [
            "agent listening@0",
            "user speaking@200",
            "user listening@1200",
            "agent thinking@1700",
            "agent speaking@2050",
            "agent listening@3450",
        ]
    );
    assert_eq!(h.user_messages().await, ["I need an appointment"]);
    assert_eq!(h.assistant_messages().await, [(REPLY.to_owned(), false)]);
    assert_eq!(h.tts.requests(), ["Sure.", "What day works for you?"]);
    assert_eq!(h.output.heard(), Duration::from_millis(1400));
    let m = &metrics(&events)[0];
    assert_eq!(m.end_of_utterance_delay, Some(Duration::from_millis(500)));
    assert_eq!(m.transcription_delay, Some(Duration::from_millis(400)));
    assert_eq!(m.llm_ttft, Some(Duration::from_millis(300)));
    assert_eq!(m.tts_ttfb, Some(Duration::from_millis(50)));
    assert_eq!(m.end_to_end, Some(Duration::from_millis(850)));
    assert!(!m.preemptive);
    let transcripts: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::UserInputTranscribed {
                transcript,
                is_final,
            } => Some((transcript.clone(), *is_final, ms(h.t0, e.created_at))),
            _ => None,
        })
        .collect();
    assert_eq!(
        transcripts,
        [("I need an appointment".to_owned(), true, 1600)]
    );
}

#[tokio::test(start_paused = true)]
async fn audio_at_other_rates_and_channel_counts_is_resampled() {
    let llm = Arc::new(llm().reply_text(REPLY));
    let stt = ScriptedStt::new(["I need an appointment"]);
    let mut h = start(llm, stt, no_preemption(), Receptionist).await;
    caller(
        h.session.clone(),
        vec![Silence(200), Speech(1000), Silence(3000)],
        44_100,
        2,
    );
    let events = h.run_until(4000).await;
    let states = h.states(&events);
    assert!(
        states.contains(&"agent thinking@1700".to_owned()),
        "{states:?}"
    );
    assert_eq!(h.assistant_messages().await, [(REPLY.to_owned(), false)]);
}

#[tokio::test(start_paused = true)]
async fn preemptive_generation_saves_the_llm_latency_behind_endpointing() {
    let run = |turn: TurnHandling| async move {
        let llm = Arc::new(llm().reply_text(REPLY));
        let stt = ScriptedStt::new(["I need an appointment"]);
        let mut h = start(llm.clone(), stt, turn, Receptionist).await;
        caller(
            h.session.clone(),
            vec![Silence(200), Speech(1000), Silence(3000)],
            16_000,
            1,
        );
        let events = h.run_until(4000).await;
        assert_eq!(h.assistant_messages().await, [(REPLY.to_owned(), false)]);
        (metrics(&events)[0].clone(), llm.request_count())
    };
    let (preemptive, requests) = run(TurnHandling::default()).await;
    assert_eq!(
        requests, 1,
        "the preemptive request was reused, not repeated"
    );
    assert!(preemptive.preemptive);
    // Started at the transcript (1600), first token at 1900, audio at 1950.
    assert_eq!(preemptive.end_to_end, Some(Duration::from_millis(750)));
    assert_eq!(preemptive.llm_ttft, Some(Duration::from_millis(200)));
    let (plain, _) = run(no_preemption()).await;
    assert!(!plain.preemptive);
    assert_eq!(plain.end_to_end, Some(Duration::from_millis(850)));
}

/// A hook that edits the turn: the preemptive request no longer matches and is discarded.
struct Annotating;
#[async_trait]
impl Agent for Annotating {
    fn instructions(&self) -> String {
        "You book appointments.".into()
    }
    async fn on_user_turn_completed(
        &self,
        _ctx: switchboard::AgentContext,
        turn_ctx: &mut switchboard::chat::ChatContext,
        _message: &mut switchboard::chat::ChatMessage,
    ) -> switchboard::Result<()> {
        turn_ctx.insert(switchboard::chat::ChatMessage::new(
            Role::System,
            "The caller is a returning patient.",
        ));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_preemptive_generation_is_discarded_when_the_turn_context_changed() {
    let llm = Arc::new(llm().reply_text(REPLY).reply_text(REPLY));
    let stt = ScriptedStt::new(["I need an appointment"]);
    let mut h = start(llm.clone(), stt, TurnHandling::default(), Annotating).await;
    caller(
        h.session.clone(),
        vec![Silence(200), Speech(1000), Silence(3000)],
        16_000,
        1,
    );
    let events = h.run_until(4000).await;
    assert_eq!(
        llm.request_count(),
        2,
        "preemptive request, then the real one"
    );
    let last = llm.requests().pop().unwrap();
    assert!(
        last.context
            .items()
            .iter()
            .any(|i| matches!(i, ChatItem::Message(m) if m.text().contains("returning patient"))),
        "the reply used the edited context"
    );
    assert!(!metrics(&events)[0].preemptive);
}

#[tokio::test(start_paused = true)]
async fn an_interruption_mid_reply_stores_only_what_was_heard() {
    let llm = Arc::new(llm().reply_text(REPLY).reply_text("Tuesday it is."));
    let stt = ScriptedStt::new(["I need an appointment", "Tuesday please"]);
    let turn = TurnHandling {
        preemptive_generation: false,
        interruption: InterruptionOptions {
            resume_false_interruption: false,
            ..InterruptionOptions::default()
        },
        ..TurnHandling::default()
    };
    let mut h = start(llm, stt, turn, Receptionist).await;
    // The agent speaks from 2050; the caller talks over it from 2700 for 800 ms.
    caller(
        h.session.clone(),
        vec![
            Silence(200),
            Speech(1000),
            Silence(1500),
            Speech(800),
            Silence(3000),
        ],
        16_000,
        1,
    );
    let events = h.run_until(6000).await;
    // Interrupted at 2700 + 500 (min duration) = 3200: 1150 ms of audio heard: "Sure." and
    // 900 of the 1150 ms of the second sentence: 3 of its 5 words.
    let states = h.states(&events);
    assert!(
        states.contains(&"agent listening@3200".to_owned()),
        "{states:?}"
    );
    let messages = h.assistant_messages().await;
    assert_eq!(messages[0], ("Sure. What day works".to_owned(), true));
    // The second turn (speech 2700..3500) is answered.
    assert_eq!(messages[1], ("Tuesday it is.".to_owned(), false));
    assert_eq!(
        h.user_messages().await,
        ["I need an appointment", "Tuesday please"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_false_interruption_pauses_then_resumes_the_reply() {
    let llm = Arc::new(llm().reply_text(REPLY));
    // The caller's noise is transcribed as nothing.
    let stt = ScriptedStt::new(["I need an appointment", ""]);
    let mut h = start(llm, stt, no_preemption(), Receptionist).await;
    caller(
        h.session.clone(),
        vec![
            Silence(200),
            Speech(1000),
            Silence(1500),
            Speech(600),
            Silence(5000),
        ],
        16_000,
        1,
    );
    let events = h.run_until(8000).await;
    // Paused at 2700 + 500 = 3200 after 1150 ms of audio; the noise ends at 3300, detected
    // at 3600; no words within 2 s: resumed at 5600; the remaining 250 ms end at 5850.
    let resumed: Vec<_> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::AgentFalseInterruption { resumed } => {
                Some((resumed, ms(h.t0, e.created_at)))
            }
            _ => None,
        })
        .collect();
    assert_eq!(resumed, [(true, 5600)]);
    let states = h.states(&events);
    assert!(
        states.contains(&"agent listening@5850".to_owned()),
        "{states:?}"
    );
    assert_eq!(h.assistant_messages().await, [(REPLY.to_owned(), false)]);
    assert_eq!(h.user_messages().await, ["I need an appointment"]);
    assert_eq!(h.output.heard(), Duration::from_millis(1400));
}

#[tokio::test(start_paused = true)]
async fn min_words_keeps_short_backchannels_from_interrupting() {
    let make = |words: &'static str| async move {
        let llm = Arc::new(llm().reply_text(REPLY).reply_text("Okay."));
        let stt = ScriptedStt::new(["I need an appointment", words])
            .streaming()
            .with_word_duration(Duration::from_millis(200));
        let turn = TurnHandling {
            preemptive_generation: false,
            interruption: InterruptionOptions {
                min_words: 3,
                resume_false_interruption: false,
                ..InterruptionOptions::default()
            },
            ..TurnHandling::default()
        };
        let mut h = start(llm, stt, turn, Receptionist).await;
        caller(
            h.session.clone(),
            vec![
                Silence(200),
                Speech(1000),
                Silence(1000),
                Speech(500),
                Silence(4000),
            ],
            16_000,
            1,
        );
        h.run_until(7000).await;
        h.assistant_messages().await
    };
    // The caller speaks 2200..2700 over the reply (2050..3450): "no", "no wait" arrive as
    // interim words, the final transcript at 3000 + 100.
    // Two words: not enough, the reply plays to the end.
    let short = make("uh huh").await;
    assert_eq!(short[0], (REPLY.to_owned(), false));
    // Three words in the final transcript: interrupted when it arrives at 3100, after 1050 ms
    // of audio: "Sure." and 800 of the 1150 ms of the second sentence (3 of 5 words).
    let long = make("no wait Monday").await;
    assert_eq!(long[0], ("Sure. What day works".to_owned(), true));
}

#[tokio::test(start_paused = true)]
async fn a_second_utterance_during_the_reply_latency_interrupts_it_before_any_audio() {
    // Replies take 1.5 s to their first token.
    let llm = Arc::new(
        ScriptedLlm::new()
            .with_time_to_first_token(Duration::from_millis(1500))
            .reply_text("First answer.")
            .reply_text("Second answer."),
    );
    let stt = ScriptedStt::new(["I need an appointment", "for my daughter"]);
    let mut h = start(llm.clone(), stt, no_preemption(), Receptionist).await;
    caller(
        h.session.clone(),
        vec![
            Silence(200),
            Speech(1000),
            Silence(800),
            Speech(800),
            Silence(4000),
        ],
        16_000,
        1,
    );
    let events = h.run_until(7000).await;
    // Turn 1 committed at 1700, its first token due at 3200. The caller speaks again at 2000;
    // at 2500 (min duration) the reply, still thinking, is interrupted: nothing was heard, so
    // nothing is stored. Turn 2 (2000..2800) commits at 3300 and is answered from 4850.
    assert_eq!(
        h.states(&events),
        [
            "agent listening@0",
            "user speaking@200",
            "user listening@1200",
            "agent thinking@1700",
            "user speaking@2000",
            "agent listening@2500",
            "user listening@2800",
            "agent thinking@3300",
            "agent speaking@4850",
            "agent listening@5550",
        ]
    );
    assert_eq!(
        h.user_messages().await,
        ["I need an appointment", "for my daughter"]
    );
    assert_eq!(
        h.assistant_messages().await,
        [("Second answer.".to_owned(), false)]
    );
    // The second reply saw both user messages.
    let last = llm.requests().pop().unwrap();
    let users = last
        .context
        .items()
        .iter()
        .filter(|i| matches!(i, ChatItem::Message(m) if m.role == Role::User))
        .count();
    assert_eq!(users, 2);
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct DayArgs {
    day: String,
}

/// Checks availability in one second.
struct Booking;
#[async_trait]
impl Agent for Booking {
    fn instructions(&self) -> String {
        "Book.".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        vec![FunctionTool::new(
            "check_availability",
            "Checks a day",
            |_ctx: RunContext, args: DayArgs| async move {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                format!("{} is free at 3 pm", args.day)
            },
        )]
    }
}

fn booking_llm() -> Arc<ScriptedLlm> {
    Arc::new(
        llm()
            .reply(ScriptedReply::ToolCalls {
                text: "Let me check.".into(),
                calls: vec![(
                    "check_availability".into(),
                    json!({"day": "Tuesday"}).to_string(),
                )],
            })
            .reply(ScriptedReply::echo_tool_output())
            .reply_text("Sorry, go ahead."),
    )
}

#[tokio::test(start_paused = true)]
async fn a_tool_turn_plays_its_two_steps_in_turn() {
    let stt = ScriptedStt::new(["Is Tuesday free?"]);
    let mut h = start(booking_llm(), stt, no_preemption(), Booking).await;
    caller(
        h.session.clone(),
        vec![Silence(200), Speech(1000), Silence(6000)],
        16_000,
        1,
    );
    let events = h.run_until(7000).await;
    // Step 1's answer streams at 2000: "Let me check." plays 2050..2700 (650 ms) while the
    // tool, dispatched with the answer, runs 2000..3000 (the agent thinks from the end of the
    // playout until then); step 2 starts at 3000, first token 3300, audio 3350, "Tuesday is
    // free at 3 pm" 1150 ms.
    assert_eq!(
        h.states(&events),
        [
            "agent listening@0",
            "user speaking@200",
            "user listening@1200",
            "agent thinking@1700",
            "agent speaking@2050",
            "agent thinking@2700",
            "agent speaking@3350",
            "agent listening@4500",
        ]
    );
    assert_eq!(
        h.assistant_messages().await,
        [
            ("Let me check.".to_owned(), false),
            ("Tuesday is free at 3 pm".to_owned(), false)
        ]
    );
    assert_eq!(h.output.heard(), Duration::from_millis(650 + 1150));
}

#[tokio::test(start_paused = true)]
async fn a_turn_that_first_calls_a_tool_is_measured_to_its_first_audio() {
    let llm = Arc::new(
        llm()
            .reply_tool("check_availability", json!({"day": "Tuesday"}))
            .reply(ScriptedReply::echo_tool_output()),
    );
    let stt = ScriptedStt::new(["Is Tuesday free?"]);
    let mut h = start(llm, stt, no_preemption(), Booking).await;
    caller(
        h.session.clone(),
        vec![Silence(200), Speech(1000), Silence(5000)],
        16_000,
        1,
    );
    let events = h.run_until(6000).await;
    // Committed at 1700; step 1 answers with the call at 2000 (no words); the tool runs
    // 2000..3000; step 2's first token at 3300, its audio at 3350: 2150 ms after the end of
    // speech at 1200, in one metrics event for the turn.
    let turns = metrics(&events);
    assert_eq!(turns.len(), 1, "{turns:?}");
    let millis = |d: Option<Duration>| d.map(|d| d.as_millis());
    assert_eq!(millis(turns[0].end_to_end), Some(2150));
    assert_eq!(millis(turns[0].llm_ttft), Some(300));
    assert_eq!(millis(turns[0].tts_ttfb), Some(50));
}

/// Greets on arrival.
struct Greeter;
#[async_trait]
impl Agent for Greeter {
    fn instructions(&self) -> String {
        "Billing.".into()
    }
    async fn on_enter(&self, ctx: switchboard::AgentContext) -> switchboard::Result<()> {
        ctx.session().say("Billing here.");
        Ok(())
    }
}

/// Hands off to the greeter with no words of its own.
struct SilentTransfer;
#[async_trait]
impl Agent for SilentTransfer {
    fn instructions(&self) -> String {
        "Transfer.".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        vec![FunctionTool::new(
            "to_billing",
            "Transfers to billing",
            |_ctx: RunContext, _args: NoArgs| async move { switchboard::Handoff::to(Greeter) },
        )]
    }
}

#[tokio::test(start_paused = true)]
async fn a_turn_answered_by_the_next_agent_is_measured_to_its_greeting() {
    let llm = Arc::new(llm().reply_tool("to_billing", json!({})));
    let stt = ScriptedStt::new(["Billing, please."]);
    let mut h = start(llm, stt, no_preemption(), SilentTransfer).await;
    caller(
        h.session.clone(),
        vec![Silence(200), Speech(1000), Silence(3000)],
        16_000,
        1,
    );
    let events = h.run_until(4000).await;
    // The call comes at 2000 and hands off at once; the greeter's first audio plays at
    // 2050, 850 ms after the end of speech at 1200.
    let turns = metrics(&events);
    assert_eq!(turns.len(), 1, "{turns:?}");
    assert_eq!(turns[0].end_to_end.map(|d| d.as_millis()), Some(850));
    assert_eq!(turns[0].tts_ttfb.map(|d| d.as_millis()), Some(50));
    assert_eq!(
        h.assistant_messages().await,
        [("Billing here.".to_owned(), false)]
    );
}

/// A task that asks its question on arrival.
struct AskConsent;
#[async_trait]
impl Agent for AskConsent {
    fn instructions(&self) -> String {
        "Ask for consent.".into()
    }
    async fn on_enter(&self, ctx: switchboard::AgentContext) -> switchboard::Result<()> {
        ctx.session().say("May we record this call?");
        Ok(())
    }
}
impl switchboard::AgentTask for AskConsent {
    type Output = bool;
}

/// Starts the consent task from a tool.
struct Intake;
#[async_trait]
impl Agent for Intake {
    fn instructions(&self) -> String {
        "Intake.".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        vec![FunctionTool::new(
            "start_intake",
            "Starts the intake",
            |ctx: RunContext, _args: NoArgs| async move {
                let granted = ctx.run_task(AskConsent).await?;
                Ok::<_, switchboard::ToolError>(format!("consent: {granted}"))
            },
        )]
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_started_by_a_tool_speaks_after_the_words_of_its_call() {
    let llm = Arc::new(llm().reply(ScriptedReply::ToolCalls {
        text: "Sure, one moment.".into(),
        calls: vec![("start_intake".into(), "{}".into())],
    }));
    let stt = ScriptedStt::new(["I'd like an appointment."]);
    let mut h = start(llm, stt, no_preemption(), Intake).await;
    caller(
        h.session.clone(),
        vec![Silence(200), Speech(1000), Silence(5000)],
        16_000,
        1,
    );
    let events = h.run_until(6000).await;
    // The answer streams at 2000 and the tool starts the task at once, but the task's
    // question waits for "Sure, one moment." (850 ms of audio from 2050 to 2900): it plays
    // from 2950 (its own 50 ms TTS delay), whole, after it.
    assert_eq!(
        h.assistant_messages().await,
        [
            ("Sure, one moment.".to_owned(), false),
            ("May we record this call?".to_owned(), false)
        ]
    );
    let spoken =
        h.tts.duration_of("Sure, one moment.") + h.tts.duration_of("May we record this call?");
    assert_eq!(h.output.heard(), spoken, "both lines played whole");
    let speaking: Vec<String> = h
        .states(&events)
        .into_iter()
        .filter(|s| s.starts_with("agent speaking"))
        .collect();
    assert_eq!(speaking, ["agent speaking@2050", "agent speaking@2950"]);
}

#[tokio::test(start_paused = true)]
async fn tool_results_survive_an_interruption_during_the_tool() {
    let llm = Arc::new(
        llm()
            .reply(ScriptedReply::ToolCalls {
                text: "Let me check.".into(),
                calls: vec![(
                    "check_availability".into(),
                    json!({"day": "Tuesday"}).to_string(),
                )],
            })
            .reply_text("Sorry, go ahead."),
    );
    let stt = ScriptedStt::new(["Is Tuesday free?", "hello?"]);
    let mut h = start(llm.clone(), stt, no_preemption(), Booking).await;
    // The caller speaks again 2300..2900: "Let me check." has played (2050..2700) but the
    // tool still runs (2000..3000). The speech is interrupted at 2800; the tool finishes and
    // its result is kept, but it gets no follow-up; the new turn (committed at 3400) is
    // answered instead.
    caller(
        h.session.clone(),
        vec![
            Silence(200),
            Speech(1000),
            Silence(1100),
            Speech(600),
            Silence(5000),
        ],
        16_000,
        1,
    );
    h.run_until(8000).await;
    let history = h.session.history().await;
    let output = history.items().iter().find_map(|i| match i {
        ChatItem::FunctionCallOutput(o) => Some(o.output.clone()),
        _ => None,
    });
    assert_eq!(
        output.as_deref(),
        Some("Tuesday is free at 3 pm"),
        "the tool's result was kept"
    );
    assert_eq!(
        h.assistant_messages().await,
        [
            ("Let me check.".to_owned(), false),
            ("Sorry, go ahead.".to_owned(), false)
        ]
    );
    assert_eq!(
        llm.request_count(),
        2,
        "no follow-up step for the interrupted speech"
    );
    let last = llm.requests().pop().unwrap();
    assert!(
        last.context
            .items()
            .iter()
            .any(|i| matches!(i, ChatItem::FunctionCallOutput(_))),
        "the new turn's reply sees the tool result"
    );
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoArgs {}

/// Hands off to billing at once (the model says a long line with the call).
struct Transferring;
#[async_trait]
impl Agent for Transferring {
    fn instructions(&self) -> String {
        "Transfer.".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        vec![FunctionTool::new(
            "to_billing",
            "Transfers to billing",
            |_ctx: RunContext, _args: NoArgs| async move { switchboard::Handoff::to(Receptionist) },
        )]
    }
}

#[tokio::test(start_paused = true)]
async fn a_handoff_interrupted_during_its_playout_does_not_happen() {
    let llm = Arc::new(
        llm()
            .reply(ScriptedReply::ToolCalls {
                text: "Let me transfer you to our billing team, one moment please.".into(),
                calls: vec![("to_billing".into(), "{}".into())],
            })
            .reply_text("Sorry, go ahead."),
    );
    let stt = ScriptedStt::new(["I have a billing question.", "wait, no"]);
    let mut h = start(llm.clone(), stt, no_preemption(), Transferring).await;
    let first_agent = h.session.current_agent_id().await;
    // The answer streams at 2000 and plays from 2050 for about three seconds; the tool runs
    // (and returns its handoff) at once. The caller speaks 2500..3100, interrupting at 3000,
    // still during the playout: the call and its output are kept, the handoff is refused and
    // no follow-up is generated; the caller's new turn is answered by the same agent.
    caller(
        h.session.clone(),
        vec![
            Silence(200),
            Speech(1000),
            Silence(1300),
            Speech(600),
            Silence(4000),
        ],
        16_000,
        1,
    );
    h.run_until(7000).await;
    assert_eq!(h.session.current_agent_id().await, first_agent);
    let history = h.session.history().await;
    let output = history
        .items()
        .iter()
        .find_map(|i| match i {
            ChatItem::FunctionCallOutput(o) => Some(o.clone()),
            _ => None,
        })
        .expect("the call's output is committed");
    assert_eq!(
        output.output,
        "the agent handoff was interrupted and did not happen"
    );
    assert!(output.is_error);
    assert!(
        !history
            .items()
            .iter()
            .any(|i| matches!(i, ChatItem::AgentHandoff(h) if h.old_agent_id.is_some())),
        "no handoff item"
    );
    let messages = h.assistant_messages().await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].1,
        "the first answer was interrupted: {messages:?}"
    );
    assert_eq!(messages[1], ("Sorry, go ahead.".to_owned(), false));
    assert_eq!(
        llm.request_count(),
        2,
        "no follow-up for the interrupted step"
    );
}

#[tokio::test(start_paused = true)]
async fn manual_turn_detection_waits_for_commit_user_turn() {
    let llm = Arc::new(llm().reply_text(REPLY));
    let stt = ScriptedStt::new(["I need an appointment"]);
    let turn = TurnHandling {
        turn_detection: Some(switchboard::TurnDetection::Manual),
        preemptive_generation: false,
        ..TurnHandling::default()
    };
    let mut h = start(llm, stt, turn, Receptionist).await;
    caller(
        h.session.clone(),
        vec![Silence(200), Speech(1000), Silence(3000)],
        16_000,
        1,
    );
    h.run_until(3000).await;
    assert!(
        h.user_messages().await.is_empty(),
        "no turn without a commit"
    );
    h.session.commit_user_turn().unwrap();
    let events = h.run_until(5000).await;
    assert_eq!(h.user_messages().await, ["I need an appointment"]);
    let states = h.states(&events);
    assert_eq!(states[0], "agent thinking@3000", "{states:?}");
}

#[tokio::test(start_paused = true)]
async fn stt_turn_detection_ends_turns_on_the_recognisers_end_of_speech() {
    // No VAD: the streaming STT hears everything and finalises after 300 ms of silence
    // (speech 200..1200, final at 1500 + 100), then says the utterance ended: the turn is
    // committed 500 ms later, at 2100, while the audio input is still open.
    let llm = Arc::new(llm().reply_text(REPLY));
    let stt = ScriptedStt::new(["I need an appointment"]).streaming();
    let output = Arc::new(RecordingOutput::new(16_000));
    let session = AgentSession::builder()
        .llm(llm)
        .stt(Arc::new(stt))
        .tts(Arc::new(ScriptedTts::new()))
        .audio_output(output)
        .user_away_timeout(None)
        .build();
    session.start(Receptionist).await.unwrap();
    let mut events = session.subscribe();
    caller(
        session.clone(),
        vec![Silence(200), Speech(1000), Silence(5000)],
        16_000,
        1,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t0 = Timestamp::now().saturating_sub(Duration::from_secs(3));
    let mut thinking = None;
    while let Ok(e) = events.try_recv() {
        if let EventKind::AgentStateChanged {
            new_state: AgentState::Thinking,
            ..
        } = e.kind
        {
            thinking.get_or_insert(ms(t0, e.created_at));
        }
    }
    assert_eq!(thinking, Some(2100));
    let history = session.history().await;
    let users: Vec<String> = history
        .items()
        .iter()
        .filter_map(|i| match i {
            ChatItem::Message(m) if m.role == Role::User => Some(m.text()),
            _ => None,
        })
        .collect();
    assert_eq!(users, ["I need an appointment"]);
}

/// Thinks the user is done only when the transcript ends with a full stop.
struct Punctuation;
impl switchboard::TurnDetector for Punctuation {
    fn end_of_turn_probability(
        &self,
        chat_ctx: &switchboard::chat::ChatContext,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = f32> + Send>> {
        let done = match chat_ctx.items().last() {
            Some(ChatItem::Message(m)) => m.text().ends_with('.'),
            _ => true,
        };
        Box::pin(async move { if done { 0.9 } else { 0.1 } })
    }
}

#[tokio::test(start_paused = true)]
async fn a_turn_detector_that_hears_an_unfinished_sentence_waits_the_maximum_delay() {
    let turn = |_: ()| TurnHandling {
        turn_detection: Some(switchboard::TurnDetection::Model(Arc::new(Punctuation))),
        preemptive_generation: false,
        ..TurnHandling::default()
    };
    for (transcript, committed_at) in [("I need an appointment.", 1700), ("I need an", 4200)] {
        let llm = Arc::new(llm().reply_text(REPLY));
        let mut h = start(llm, ScriptedStt::new([transcript]), turn(()), Receptionist).await;
        caller(
            h.session.clone(),
            vec![Silence(200), Speech(1000), Silence(5000)],
            16_000,
            1,
        );
        let events = h.run_until(6000).await;
        let thinking = format!("agent thinking@{committed_at}");
        assert!(
            h.states(&events).contains(&thinking),
            "{transcript}: {:?}",
            h.states(&events)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_user_turn_during_uninterruptible_speech_is_dropped() {
    let llm = Arc::new(llm());
    let stt = ScriptedStt::new(["hello", "are you there"]);
    let mut h = start(llm.clone(), stt, no_preemption(), Receptionist).await;
    // A 2.5 s announcement that may not be interrupted, then the caller talks over it.
    let announcement = h.session.say_with(
        "This call may be recorded for quality purposes, thank you.",
        switchboard::SayOptions {
            allow_interruptions: false,
            ..Default::default()
        },
    );
    caller(
        h.session.clone(),
        vec![Silence(200), Speech(800), Silence(4000)],
        16_000,
        1,
    );
    h.run_until(5000).await;
    assert!(announcement.is_done());
    assert_eq!(
        h.assistant_messages().await,
        [(
            "This call may be recorded for quality purposes, thank you.".to_owned(),
            false
        )]
    );
    assert!(h.user_messages().await.is_empty(), "the turn was dropped");
    assert_eq!(llm.request_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_tts_failure_mid_sentence_is_reported_and_the_reply_goes_on() {
    let output = Arc::new(RecordingOutput::new(16_000));
    let llm = Arc::new(llm().reply_text("This part breaks. This part plays."));
    let session = AgentSession::builder()
        .llm(llm)
        .vad(vad())
        .stt(Arc::new(ScriptedStt::new(["hi"])))
        .tts(Arc::new(ScriptedTts::new().fail_on("breaks")))
        .audio_output(output.clone())
        .turn_handling(no_preemption())
        .user_away_timeout(None)
        .build();
    let mut events = session.subscribe();
    session.start(Receptionist).await.unwrap();
    caller(
        session.clone(),
        vec![Silence(200), Speech(600), Silence(4000)],
        16_000,
        1,
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut tts_errors = 0;
    while let Ok(e) = events.try_recv() {
        if let EventKind::Error {
            source: switchboard::session::ErrorSource::Tts,
            ..
        } = e.kind
        {
            tts_errors += 1;
        }
    }
    assert_eq!(tts_errors, 1);
    // One 20 ms frame of the broken sentence, then the whole second sentence (16 chars).
    assert_eq!(output.heard(), Duration::from_millis(20 + 800));
    let history = session.history().await;
    assert!(
        history
            .items()
            .iter()
            .any(|i| matches!(i, ChatItem::Message(m) if m.role == Role::Assistant))
    );
    assert!(!session.is_closed());
}

/// Reads a notice that the caller may not talk over.
struct Notice;
#[async_trait]
impl Agent for Notice {
    fn instructions(&self) -> String {
        "Read the notice.".into()
    }
    fn allow_interruptions(&self) -> Option<bool> {
        Some(false)
    }
}

#[tokio::test(start_paused = true)]
async fn an_agent_can_disallow_interruptions_by_speech() {
    let llm = Arc::new(llm().reply_text(REPLY).reply_text("Tuesday it is."));
    let stt = ScriptedStt::new(["I need an appointment", "Tuesday please"]);
    let mut h = start(llm, stt, no_preemption(), Notice).await;
    // As in the interruption test: the caller talks over the reply from 2700 for 800 ms.
    caller(
        h.session.clone(),
        vec![
            Silence(200),
            Speech(1000),
            Silence(1500),
            Speech(800),
            Silence(3000),
        ],
        16_000,
        1,
    );
    h.run_until(6000).await;
    let messages = h.assistant_messages().await;
    assert_eq!(messages[0], (REPLY.to_owned(), false), "played to the end");
    assert_eq!(
        messages[1],
        ("Tuesday it is.".to_owned(), false),
        "the turn is still answered"
    );
}

/// A streaming STT whose first stream breaks after one interim result; later streams work.
#[derive(Clone, Default)]
struct FlakyStt {
    opened: Arc<std::sync::atomic::AtomicUsize>,
    inner: Option<ScriptedStt>,
}

impl switchboard::voice::stt::Stt for FlakyStt {
    fn name(&self) -> &str {
        "flaky"
    }
    fn capabilities(&self) -> switchboard::voice::stt::SttCapabilities {
        switchboard::voice::stt::SttCapabilities {
            streaming: true,
            interim_results: true,
        }
    }
    fn recognize(
        &self,
        _audio: AudioFrame,
        _options: &switchboard::voice::stt::RecognizeOptions,
    ) -> switchboard::voice::stt::RecognizeFuture {
        Box::pin(async {
            Err(switchboard::voice::stt::SttError::Unsupported(
                "batch".into(),
            ))
        })
    }
    fn stream(
        &self,
        options: &switchboard::voice::stt::RecognizeOptions,
    ) -> Result<switchboard::voice::stt::SttStream, switchboard::voice::stt::SttError> {
        use futures::StreamExt;
        let n = self
            .opened
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let inner = self.inner.as_ref().unwrap().stream(options)?;
        if n == 0 {
            // The connection drops at once.
            let broken = futures::stream::iter([Err(switchboard::voice::stt::SttError::Closed)]);
            return Ok(switchboard::voice::stt::SttStream {
                input: inner.input,
                events: broken.boxed(),
            });
        }
        Ok(inner)
    }
}

#[tokio::test(start_paused = true)]
async fn a_streaming_stt_that_drops_is_reconnected_and_the_error_reported() {
    let stt = FlakyStt {
        inner: Some(ScriptedStt::new(["I need an appointment"]).streaming()),
        ..FlakyStt::default()
    };
    let opened = stt.opened.clone();
    let output = Arc::new(RecordingOutput::new(16_000));
    let session = AgentSession::builder()
        .llm(Arc::new(llm().reply_text(REPLY)))
        .vad(vad())
        .stt(Arc::new(stt))
        .tts(Arc::new(ScriptedTts::new()))
        .audio_output(output)
        .turn_handling(no_preemption())
        .user_away_timeout(None)
        .build();
    let mut events = session.subscribe();
    session.start(Receptionist).await.unwrap();
    caller(
        session.clone(),
        vec![Silence(200), Speech(1000), Silence(4000)],
        16_000,
        1,
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        opened.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "reconnected once"
    );
    let mut stt_errors = 0;
    while let Ok(e) = events.try_recv() {
        if let EventKind::Error {
            source: switchboard::session::ErrorSource::Stt,
            ..
        } = e.kind
        {
            stt_errors += 1;
        }
    }
    assert_eq!(stt_errors, 1);
    let history = session.history().await;
    assert!(
        history
            .items()
            .iter()
            .any(|i| matches!(i, ChatItem::Message(m) if m.role == Role::User && m.text() == "I need an appointment")),
        "the turn after the reconnect was heard"
    );
}
