//! The main job: a workflow as a simulated phone call through the whole voice pipeline.
//!
//! A simulated caller speaks the workflow's lines (Piper, with a speaking rate and voice
//! varied per run), in real time, into the session: Silero VAD cuts the utterances, the local
//! STT transcribes them, the LLM answers and the local TTS speaks. The terminal shows the transcript as it happens
//! with per-turn latencies; at the end the call recording (caller left, agent right), the event
//! log and the workflow's results are written.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard::chat::{ChatItem, Role};
use switchboard::llm::Llm;
use switchboard::voice::audio::{AudioFrame, FrameChunker, write_wav};
use switchboard::voice::output::{AudioOutput, RecordingOutput};
use switchboard::voice::stt::Stt;
use switchboard::voice::tts::Tts;
use switchboard::voice::vad::{EnergyVadModel, ModelVad, Vad, VadOptions};
use switchboard::{AgentState, EventKind, SessionEvent, TurnMetrics};
use switchboard_examples::{Started, Voice, Workflow};
use switchboard_piper::{
    EspeakOptions, EspeakTts, InferenceScales, PiperOptions, PiperPaths, PiperTts,
};
use tokio::time::Instant;

/// The sample rate of the call recording.
const CALL_RATE: u32 = 16_000;
/// How long the caller waits, once the agent is quiet, before speaking again.
const CALLER_PAUSE: Duration = Duration::from_millis(700);
/// How long the caller waits for the agent to answer at all.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The models of a voice call, loaded once.
pub struct VoiceModels {
    pub vad: Arc<dyn Vad>,
    pub stt: Arc<dyn Stt>,
    pub agent_tts: Arc<dyn Tts>,
    pub names: Vec<(String, String)>,
}

async fn timed<T: Send + 'static>(
    label: &str,
    load: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    use std::io::Write;
    print!("  loading {label} … ");
    let _ = std::io::stdout().flush();
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(load)
        .await
        .map_err(|e| format!("loading {label} failed: {e}"))?;
    match &result {
        Ok(_) => println!("ok ({:.2} s)", started.elapsed().as_secs_f64()),
        Err(_) => println!("failed"),
    }
    result
}

/// Loads Silero VAD (energy fallback), the local STT and Piper (espeak-ng fallback).
pub async fn load_models() -> Result<VoiceModels, String> {
    println!("loading the local models (run `switchboard setup` first on a new machine):");
    let mut names = Vec::new();
    let vad = timed("Silero VAD", || {
        switchboard_silero::SileroVad::from_env()
            .map_err(|e| e.to_string())
            .and_then(|silero| silero.vad(VadOptions::default()).map_err(|e| e.to_string()))
    })
    .await;
    let vad: Arc<dyn Vad> = match vad {
        Ok(vad) => {
            names.push(("vad".into(), "silero-vad 6.2.3".into()));
            Arc::new(vad)
        }
        Err(e) => {
            println!("    Silero VAD unavailable ({e}); using the energy detector");
            names.push(("vad".into(), "energy".into()));
            Arc::new(
                ModelVad::new(Arc::new(EnergyVadModel::default()), VadOptions::default())
                    .map_err(|e| e.to_string())?,
            )
        }
    };
    let stt = timed("Whisper STT", || {
        crate::local_stt().map_err(|e| format!("{e}\n(run `switchboard setup`)"))
    })
    .await?;
    names.push(("stt".into(), stt.name().to_owned()));
    let tts = timed("Piper TTS", || {
        PiperTts::from_env().map_err(|e| e.to_string())
    })
    .await;
    let agent_tts: Arc<dyn Tts> = match tts {
        Ok(piper) => piper,
        Err(e) => {
            println!("    Piper unavailable ({e}); the agent speaks with espeak-ng");
            Arc::new(EspeakTts::new())
        }
    };
    names.push(("tts".into(), agent_tts.name().to_owned()));
    Ok(VoiceModels {
        vad,
        stt,
        agent_tts,
        names,
    })
}

/// The caller's voice for this run: Piper with a speaking rate and voice variation chosen by
/// `seed` (Whisper hears it word for word), or espeak-ng when Piper is unavailable.
fn caller_voice(seed: u64) -> Result<(Arc<dyn Tts>, String), String> {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let length_scale = 0.9 + next(30) as f32 / 100.0;
    let noise_scale = 0.5 + next(30) as f32 / 100.0;
    let noise_w = 0.6 + next(30) as f32 / 100.0;
    let volume = 0.8 + next(40) as f32 / 100.0;
    let options = PiperOptions {
        scales: Some(InferenceScales {
            noise_scale,
            length_scale,
            noise_w,
        }),
        volume,
        ..PiperOptions::default()
    };
    match PiperPaths::from_env().and_then(|paths| PiperTts::load(&paths, options)) {
        Ok(piper) => Ok((
            piper,
            format!(
                "Piper, length {length_scale:.2}, noise {noise_scale:.2}/{noise_w:.2}, volume {volume:.2}"
            ),
        )),
        Err(e) => {
            let words_per_minute = 145 + next(30) as u32;
            let pitch = 35 + next(30) as u8;
            let tts = EspeakTts::with_options(EspeakOptions {
                words_per_minute: Some(words_per_minute),
                pitch: Some(pitch),
                ..EspeakOptions::default()
            });
            tts.check()
                .map_err(|e| format!("the simulated caller needs espeak-ng: {e}"))?;
            Ok((
                Arc::new(tts),
                format!(
                    "espeak-ng en-us, {words_per_minute} wpm, pitch {pitch} (Piper unavailable: {e})"
                ),
            ))
        }
    }
}

/// What the caller is waiting for.
#[derive(Debug, Default)]
struct CallState {
    agent_state: Option<AgentState>,
    /// When the agent last became quiet (listening with nothing queued).
    quiet_since: Option<Instant>,
    user_turns: usize,
    agent_turns: usize,
    current_agent: String,
    metrics: Vec<TurnMetrics>,
}

impl CallState {
    fn observe(&mut self, event: &SessionEvent) {
        match &event.kind {
            EventKind::AgentStateChanged { new_state, .. } => {
                self.agent_state = Some(*new_state);
                self.quiet_since = (*new_state == AgentState::Listening).then(Instant::now);
            }
            EventKind::ConversationItemAdded { item } => match item {
                ChatItem::Message(m) if m.role == Role::User => self.user_turns += 1,
                ChatItem::Message(m) if m.role == Role::Assistant => self.agent_turns += 1,
                ChatItem::AgentHandoff(h) => self.current_agent = h.new_agent_id.clone(),
                _ => {}
            },
            EventKind::TurnMetrics(m) => self.metrics.push(m.clone()),
            _ => {}
        }
    }

    fn agent_quiet_for(&self, pause: Duration) -> bool {
        self.agent_state == Some(AgentState::Listening)
            && self.quiet_since.is_some_and(|t| t.elapsed() >= pause)
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("–".into(), |d| format!("{:.2}", d.as_secs_f64()))
}

/// Prints one event as a transcript line.
fn print_event(event: &SessionEvent, state: &CallState) {
    match &event.kind {
        EventKind::UserInputTranscribed {
            transcript,
            is_final: true,
        } => println!("    (heard: \"{transcript}\")"),
        EventKind::ConversationItemAdded { item } => match item {
            ChatItem::Message(m) if m.role == Role::Assistant => {
                let mark = if m.interrupted { " [interrupted]" } else { "" };
                println!("  agent ({}): {}{mark}", state.current_agent, m.text());
            }
            ChatItem::AgentHandoff(h) => println!(
                "    · handoff {} → {}",
                h.old_agent_id.as_deref().unwrap_or("(start)"),
                h.new_agent_id
            ),
            _ => {}
        },
        EventKind::FunctionToolsExecuted(executed) => {
            for (call, output) in executed.zipped() {
                let mark = if output.is_error { "error" } else { "→" };
                println!(
                    "    · tool {}({}) {mark} {}",
                    call.name, call.arguments, output.output
                );
            }
        }
        EventKind::TurnMetrics(m) => println!(
            "    (end of speech → first audio {} s: endpointing {}, transcript {}, LLM first token {}, TTS first audio {})",
            secs(m.end_to_end),
            secs(m.end_of_utterance_delay),
            secs(m.transcription_delay),
            secs(m.llm_ttft),
            secs(m.tts_ttfb),
        ),
        EventKind::Error {
            source, message, ..
        } => {
            println!("    ! {source:?} error: {message}")
        }
        _ => {}
    }
}

/// Synthesises a caller line at the call rate, in 20 ms frames.
async fn caller_audio(tts: &Arc<dyn Tts>, line: &str) -> Result<Vec<AudioFrame>, String> {
    use futures::StreamExt;
    let mut stream = tts.synthesize(line);
    let mut resampler = None;
    let mut chunker =
        FrameChunker::new(CALL_RATE, 1, Duration::from_millis(20)).map_err(|e| e.to_string())?;
    let mut frames = Vec::new();
    while let Some(frame) = stream.next().await {
        let frame = frame.map_err(|e| format!("caller voice: {e}"))?.to_mono();
        let resampler = match &mut resampler {
            Some(r) => r,
            None => resampler.insert(
                switchboard::voice::audio::Resampler::new(frame.sample_rate(), CALL_RATE, 1)
                    .map_err(|e| e.to_string())?,
            ),
        };
        let resampled = resampler.process(&frame).map_err(|e| e.to_string())?;
        frames.extend(chunker.push(&resampled).map_err(|e| e.to_string())?);
    }
    if let Some(r) = resampler.as_mut() {
        let rest = r.flush().map_err(|e| e.to_string())?;
        frames.extend(chunker.push(&rest).map_err(|e| e.to_string())?);
    }
    frames.extend(chunker.flush_padded());
    Ok(frames)
}

/// Runs the call; returns the log of events and the summary written to results.json.
pub async fn run_call(
    workflow: &Workflow,
    llm: Arc<dyn Llm>,
    models: &VoiceModels,
    out: &Path,
    seed: u64,
) -> Result<(), String> {
    let origin = Instant::now();
    let agent_track = Arc::new(RecordingOutput::starting_at(CALL_RATE, origin));
    let caller_track = RecordingOutput::starting_at(CALL_RATE, origin);
    let (caller_tts, caller_description) = tokio::task::spawn_blocking(move || caller_voice(seed))
        .await
        .map_err(|e| e.to_string())??;
    println!("caller voice: {caller_description} (seed {seed})\n");

    let voice = Voice {
        vad: Some(models.vad.clone()),
        stt: Some(models.stt.clone()),
        tts: Some(models.agent_tts.clone()),
        output: Some(agent_track.clone() as Arc<dyn AudioOutput>),
        turn: None,
    };
    let Started {
        session,
        mut events,
        greeting: _,
    } = (workflow.start)(llm, voice)
        .await
        .map_err(|e| format!("could not start `{}`: {e}", workflow.name))?;
    let mut state = CallState {
        current_agent: session.current_agent_id().await.unwrap_or_default(),
        ..CallState::default()
    };
    let mut log: Vec<SessionEvent> = Vec::new();
    let silence =
        AudioFrame::silence(Duration::from_millis(20), CALL_RATE, 1).map_err(|e| e.to_string())?;
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);

    // The caller speaks its next line once the agent has answered and been quiet a moment;
    // between lines it sends silence, as a phone line does.
    let mut lines = workflow.caller_lines.iter();
    let mut speaking: std::collections::VecDeque<AudioFrame> = Default::default();
    let mut waiting_since = Instant::now();
    let mut turns_before = 0usize;
    let mut done = false;
    while !done {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                state.observe(&event);
                print_event(&event, &state);
                log.push(event);
            }
            _ = ticker.tick() => {
                let frame = speaking.pop_front().unwrap_or_else(|| silence.clone());
                caller_track.capture(&frame);
                if session.push_audio(frame).is_err() {
                    break;
                }
                let answered = state.agent_turns > turns_before
                    || waiting_since.elapsed() > ANSWER_TIMEOUT;
                if speaking.is_empty() && answered && state.agent_quiet_for(CALLER_PAUSE) {
                    match lines.next() {
                        Some(line) => {
                            println!("caller: {line}");
                            speaking.extend(caller_audio(&caller_tts, line).await?);
                            turns_before = state.agent_turns;
                            waiting_since = Instant::now();
                        }
                        None => done = true,
                    }
                }
            }
        }
    }
    let _ = session.end_audio_input();
    let history = session.history().await;
    let results = session.results();
    session.close().await;
    while let Ok(event) = events.try_recv() {
        state.observe(&event);
        log.push(event);
    }

    tokio::fs::create_dir_all(out)
        .await
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    // The recording: caller left, agent right.
    let left = caller_track.track();
    let right = agent_track.track();
    let len = left.len().max(right.len());
    let mut stereo = Vec::with_capacity(len * 2);
    for i in 0..len {
        stereo.push(left.get(i).copied().unwrap_or(0));
        stereo.push(right.get(i).copied().unwrap_or(0));
    }
    let call = AudioFrame::new(stereo, CALL_RATE, 2).map_err(|e| e.to_string())?;
    let wav_path = out.join("call.wav");
    write_wav(&wav_path, &call).map_err(|e| format!("cannot write {}: {e}", wav_path.display()))?;
    let events_path = out.join("events.jsonl");
    crate::write_events(&events_path, &log).await?;
    let handoffs = history
        .iter()
        .filter(|i| matches!(i, ChatItem::AgentHandoff(_)))
        .count();
    let median = |pick: fn(&TurnMetrics) -> Option<Duration>| {
        let mut values: Vec<f64> = state
            .metrics
            .iter()
            .filter_map(pick)
            .map(|d| d.as_secs_f64())
            .collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    };
    let latency = json!({
        "end_of_speech_to_first_audio_s": median(|m| m.end_to_end),
        "endpointing_s": median(|m| m.end_of_utterance_delay),
        "transcription_s": median(|m| m.transcription_delay),
        "llm_first_token_s": median(|m| m.llm_ttft),
        "tts_first_audio_s": median(|m| m.tts_ttfb),
        "turns_measured": state.metrics.len(),
    });
    let (collected, collected_line) = crate::collected(&results);
    let summary = json!({
        "workflow": workflow.name,
        "mode": "voice",
        "models": models.names.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "caller_voice": caller_description,
        "seed": seed,
        "results": results,
        "collected": collected,
        "user_turns": state.user_turns,
        "agent_turns": state.agent_turns,
        "handoffs": handoffs,
        "history_items": history.len(),
        "median_latency": latency,
        "call_seconds": call.duration().as_secs_f64(),
    });
    let results_path = out.join("results.json");
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    tokio::fs::write(&results_path, text)
        .await
        .map_err(|e| format!("cannot write {}: {e}", results_path.display()))?;
    println!("\n{collected_line}");
    println!(
        "Call of {:.1} s: {} caller turns, {} agent replies, {} handoffs. Median end of speech → first agent audio: {} s.\nWrote {}, {} and {}.",
        call.duration().as_secs_f64(),
        state.user_turns,
        state.agent_turns,
        handoffs,
        secs(median(|m| m.end_to_end).map(Duration::from_secs_f64)),
        wav_path.display(),
        events_path.display(),
        results_path.display()
    );
    Ok(())
}
