//! `voice-latency`: the time the framework itself adds on the voice path, in real time, with
//! instant models: end-of-turn decision → LLM request, first complete sentence → TTS request,
//! first TTS audio → the output. Each model records when it is called or yields.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard::llm::{ChatChunk, ChatRequest, FinishReason, Llm, LlmStream};
use switchboard::testing::ScriptedStt;
use switchboard::voice::audio::AudioFrame;
use switchboard::voice::output::AudioOutput;
use switchboard::voice::tts::{Tts, TtsStream};
use switchboard::voice::vad::{EnergyVadModel, ModelVad, VadOptions};
use switchboard::{Agent, AgentSession, AgentState, EventKind, TurnDetection, TurnHandling};

#[derive(Default)]
struct Marks {
    llm_request: Option<Instant>,
    sentence_complete: Option<Instant>,
    tts_request: Option<Instant>,
    tts_first_audio: Option<Instant>,
    output_first: Option<Instant>,
}

type Probe = Arc<Mutex<Marks>>;

fn mark(probe: &Probe, pick: fn(&mut Marks) -> &mut Option<Instant>) {
    let mut marks = probe.lock().unwrap_or_else(|e| e.into_inner());
    pick(&mut marks).get_or_insert_with(Instant::now);
}

/// Answers at once with two sentences; marks the request and the chunk that completes the
/// first sentence (the tokenizer needs the next word to know the sentence ended).
struct InstantLlm(Probe);

impl Llm for InstantLlm {
    fn provider(&self) -> &str {
        "bench"
    }
    fn model(&self) -> &str {
        "instant"
    }
    fn chat(&self, _request: ChatRequest) -> LlmStream {
        mark(&self.0, |m| &mut m.llm_request);
        let probe = self.0.clone();
        let chunks = vec![
            ChatChunk::Text("Sure, I can help. ".into()),
            ChatChunk::Text("What day works for you?".into()),
            ChatChunk::Finish(FinishReason::Stop),
        ];
        futures::stream::iter(chunks.into_iter().enumerate())
            .map(move |(i, chunk)| {
                if i == 1 {
                    mark(&probe, |m| &mut m.sentence_complete);
                }
                Ok(chunk)
            })
            .boxed()
    }
}

/// 20 ms of audio per sentence, at once; marks the request and the first frame.
struct InstantTts(Probe);

impl Tts for InstantTts {
    fn name(&self) -> &str {
        "instant"
    }
    fn sample_rate(&self) -> u32 {
        16_000
    }
    fn synthesize(&self, _text: &str) -> TtsStream {
        mark(&self.0, |m| &mut m.tts_request);
        let probe = self.0.clone();
        let frame = AudioFrame::new(vec![500i16; 320], 16_000, 1);
        futures::stream::iter([frame])
            .map(move |f| {
                mark(&probe, |m| &mut m.tts_first_audio);
                f.map_err(Into::into)
            })
            .boxed()
    }
}

struct TimedOutput(Probe);

impl AudioOutput for TimedOutput {
    fn capture(&self, _frame: &AudioFrame) {
        mark(&self.0, |m| &mut m.output_first);
    }
    fn clear(&self) {}
}

struct Desk;
#[switchboard::async_trait]
impl Agent for Desk {
    fn instructions(&self) -> String {
        "You answer the phone.".into()
    }
}

fn micros(from: Option<Instant>, to: Option<Instant>) -> Option<f64> {
    Some(to?.checked_duration_since(from?)?.as_secs_f64() * 1e6)
}

pub async fn voice_latency(samples: usize) -> Result<Value, String> {
    let probe: Probe = Arc::default();
    let stt = ScriptedStt::new(Vec::<String>::new()).with_delay(Duration::ZERO);
    let vad = ModelVad::new(Arc::new(EnergyVadModel::default()), VadOptions::default())
        .map_err(|e| e.to_string())?;
    let session = AgentSession::builder()
        .llm(Arc::new(InstantLlm(probe.clone())))
        .vad(Arc::new(vad))
        .stt(Arc::new(stt.clone()))
        .tts(Arc::new(InstantTts(probe.clone())))
        .audio_output(Arc::new(TimedOutput(probe.clone())))
        .turn_handling(TurnHandling {
            turn_detection: Some(TurnDetection::Manual),
            preemptive_generation: false,
            ..TurnHandling::default()
        })
        .user_away_timeout(None)
        .build();
    let mut events = session.subscribe();
    session.start(Desk).await.map_err(|e| e.to_string())?;
    let quiet = AudioFrame::new(vec![3i16; 320], 16_000, 1).map_err(|e| e.to_string())?;
    let loud: Vec<i16> = (0..320)
        .map(|i| if i % 20 < 10 { 8000 } else { -8000 })
        .collect();
    let loud = AudioFrame::new(loud, 16_000, 1).map_err(|e| e.to_string())?;
    let (mut decision, mut sentence, mut audio) = (Vec::new(), Vec::new(), Vec::new());
    for turn in 0..samples {
        stt.push(format!("I need an appointment, turn {turn}"));
        *probe.lock().unwrap_or_else(|e| e.into_inner()) = Marks::default();
        // One utterance: the VAD cuts it and the (instant) STT transcribes it.
        for _ in 0..25 {
            session
                .push_audio(quiet.clone())
                .map_err(|e| e.to_string())?;
        }
        for _ in 0..25 {
            session
                .push_audio(loud.clone())
                .map_err(|e| e.to_string())?;
        }
        for _ in 0..40 {
            session
                .push_audio(quiet.clone())
                .map_err(|e| e.to_string())?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        if stt.remaining() != 0 {
            return Err(format!("turn {turn}: the utterance was not transcribed"));
        }
        let committed = Instant::now();
        session.commit_user_turn().map_err(|e| e.to_string())?;
        // Until the reply has played (40 ms of audio) and the agent listens again.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut spoke = false;
        loop {
            let event = tokio::time::timeout_at(deadline, events.recv())
                .await
                .map_err(|_| format!("turn {turn}: no reply within 5 s"))?
                .ok_or("the session closed")?;
            if let EventKind::AgentStateChanged { new_state, .. } = event.kind {
                spoke |= new_state == AgentState::Speaking;
                if spoke && new_state == AgentState::Listening {
                    break;
                }
            }
        }
        let m = std::mem::take(&mut *probe.lock().unwrap_or_else(|e| e.into_inner()));
        decision.extend(micros(Some(committed), m.llm_request));
        sentence.extend(micros(m.sentence_complete, m.tts_request));
        audio.extend(micros(m.tts_first_audio, m.output_first));
    }
    session.close().await;
    Ok(json!({
        "end_of_turn_to_llm_request_us": crate::summary(&mut decision),
        "first_sentence_to_tts_request_us": crate::summary(&mut sentence),
        "first_tts_audio_to_output_us": crate::summary(&mut audio),
        "turns": samples,
        "note": "real time, instant models; targets: each under 1 ms",
    }))
}
