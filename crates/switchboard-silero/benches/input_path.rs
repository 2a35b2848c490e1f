//! CPU cost of the VAD input path per second of 48 kHz audio, per session: mix-down,
//! resampling 48 -> 16 kHz, windowing and buffering, Silero inference, the speech state
//! machine. Each benchmark iteration processes one second of audio per session, and the
//! counter is "session-seconds", so divan's `item/s` throughput reads directly as **real-time
//! sessions one core sustains** (1 s / cost per audio second).
//!
//! `batched` runs N sessions' windows through one inference call (batch dimension N) to
//! amortise ONNX Runtime's per-call overhead. After divan's table, a summary measured in
//! thread CPU time (not wall time, which other processes on a shared machine inflate) is
//! printed.
//!
//! Needs `bash scripts/setup.sh`. Run with `cargo bench -p switchboard-silero --bench input_path`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use switchboard::voice::audio::{AudioFrame, Resampler};
use switchboard::voice::vad::{EnergyVadModel, ModelVad, Vad, VadOptions, VadStream};
use switchboard_silero::{SileroOptions, SileroPaths, SileroState, SileroVad};

fn main() {
    divan::main();
    summary();
}

fn model() -> &'static Arc<SileroVad> {
    static MODEL: OnceLock<Arc<SileroVad>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let paths = SileroPaths::from_env().expect("locate the Silero files");
        let options = SileroOptions {
            sessions: 1,
            ..SileroOptions::default()
        };
        SileroVad::load_with(&paths.model, &paths.ort_dylib, options)
            .unwrap_or_else(|e| panic!("{e} (run `bash scripts/setup.sh` first)"))
    })
}

/// One second of 48 kHz speech-like audio (voiced harmonics with a syllable envelope and a
/// little noise; Silero's cost does not depend on the content), as 20 ms frames.
fn second_48k(channels: u16) -> Vec<AudioFrame> {
    let mut seed = 0x1234_5678u32;
    let samples: Vec<i16> = (0..48_000)
        .map(|i| {
            let t = i as f32 / 48_000.0;
            let envelope = (std::f32::consts::PI * 4.0 * t).sin().abs();
            let voiced: f32 = (1..6)
                .map(|h| (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32)
                .sum();
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (seed >> 16) as f32 / 65_536.0 - 0.5;
            ((0.25 * envelope * voiced + 0.01 * noise) * 32_767.0) as i16
        })
        .collect();
    samples
        .chunks(960)
        .map(|c| {
            let data: Vec<i16> = c
                .iter()
                .flat_map(|&s| std::iter::repeat_n(s, usize::from(channels)))
                .collect();
            AudioFrame::new(data, 48_000, channels).expect("frame")
        })
        .collect()
}

fn push_second(stream: &mut dyn VadStream, frames: &[AudioFrame]) {
    for frame in frames {
        black_box(stream.push(frame).expect("push"));
    }
}

/// The whole input path of one session with Silero: 48 kHz mono in 20 ms frames.
#[divan::bench]
fn silero_session_mono(bencher: Bencher) {
    let vad = model().vad(VadOptions::default()).expect("vad");
    let mut stream = vad.stream();
    let frames = second_48k(1);
    bencher
        .counter(ItemsCount::new(1usize))
        .bench_local(|| push_second(stream.as_mut(), &frames));
}

/// The same with 48 kHz stereo input (mixed down in the stream).
#[divan::bench]
fn silero_session_stereo(bencher: Bencher) {
    let vad = model().vad(VadOptions::default()).expect("vad");
    let mut stream = vad.stream();
    let frames = second_48k(2);
    bencher
        .counter(ItemsCount::new(1usize))
        .bench_local(|| push_second(stream.as_mut(), &frames));
}

/// The input path with the energy fallback model instead of Silero.
#[divan::bench]
fn energy_session_mono(bencher: Bencher) {
    let vad =
        ModelVad::new(Arc::new(EnergyVadModel::default()), VadOptions::default()).expect("vad");
    let mut stream = vad.stream();
    let frames = second_48k(1);
    bencher
        .counter(ItemsCount::new(1usize))
        .bench_local(|| push_second(stream.as_mut(), &frames));
}

/// Resampling alone (48 -> 16 kHz mono, 20 ms frames).
#[divan::bench]
fn resample_only(bencher: Bencher) {
    let mut resampler = Resampler::new(48_000, 16_000, 1).expect("resampler");
    let frames = second_48k(1);
    let input: Vec<Vec<f32>> = frames
        .iter()
        .map(|f| {
            let mut v = Vec::new();
            f.to_f32_into(&mut v);
            v
        })
        .collect();
    let mut out = Vec::with_capacity(20_000);
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        out.clear();
        for frame in &input {
            resampler.process_f32(frame, &mut out).expect("resample");
        }
        black_box(out.len());
    });
}

/// Silero inference alone: 31.25 windows per second, one call each.
#[divan::bench]
fn silero_inference_only(bencher: Bencher) {
    let mut state = model().new_stream_state(16_000).expect("state");
    let audio: Vec<f32> = {
        let mut resampler = Resampler::new(48_000, 16_000, 1).expect("resampler");
        let mut out = Vec::new();
        for frame in second_48k(1) {
            let mut v = Vec::new();
            frame.to_f32_into(&mut v);
            resampler.process_f32(&v, &mut out).expect("resample");
        }
        resampler.flush_f32(&mut out).expect("flush");
        out
    };
    let windows: Vec<&[f32]> = audio.chunks_exact(512).collect();
    let per_second = 16_000.0 / 512.0 / windows.len() as f64;
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        for w in &windows {
            black_box(state.predict(w).expect("predict"));
        }
    });
    let _ = per_second;
}

/// N sessions, each with its own resampler and window buffer, whose windows go through one
/// batched inference call per 32 ms step.
struct Batch {
    resamplers: Vec<Resampler>,
    pending: Vec<Vec<f32>>,
    states: Vec<SileroState>,
    scratch: Vec<f32>,
}

impl Batch {
    fn new(n: usize) -> Self {
        Batch {
            resamplers: (0..n)
                .map(|_| Resampler::new(48_000, 16_000, 1).expect("resampler"))
                .collect(),
            pending: vec![Vec::new(); n],
            states: (0..n)
                .map(|_| model().new_stream_state(16_000).expect("state"))
                .collect(),
            scratch: Vec::new(),
        }
    }

    fn push_second(&mut self, frames: &[AudioFrame]) {
        for frame in frames {
            for (resampler, pending) in self.resamplers.iter_mut().zip(&mut self.pending) {
                self.scratch.clear();
                frame.mix_to_mono_f32(&mut self.scratch);
                resampler
                    .process_f32(&self.scratch, pending)
                    .expect("resample");
            }
            while self.pending.iter().all(|p| p.len() >= 512) {
                let windows: Vec<&[f32]> = self.pending.iter().map(|p| &p[..512]).collect();
                let mut refs: Vec<&mut SileroState> = self.states.iter_mut().collect();
                black_box(model().predict_batch(&mut refs, &windows).expect("batch"));
                for p in &mut self.pending {
                    p.drain(..512);
                }
            }
        }
    }
}

#[divan::bench(args = [1, 4, 16, 64])]
fn batched(bencher: Bencher, n: usize) {
    let mut batch = Batch::new(n);
    let frames = second_48k(1);
    bencher
        .counter(ItemsCount::new(n))
        .bench_local(|| batch.push_second(&frames));
}

/// CPU time of the calling thread (Linux), else `None`.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Runs `step` (one audio-second for `sessions` sessions) for about two seconds and returns
/// the CPU (or wall) time per session per audio second.
fn cost_per_session_second(sessions: usize, mut step: impl FnMut()) -> (Duration, &'static str) {
    step(); // warm up
    let wall = std::time::Instant::now();
    let cpu = thread_cpu_time();
    let mut rounds = 0u32;
    while wall.elapsed() < Duration::from_secs(2) || rounds < 3 {
        step();
        rounds += 1;
    }
    let per_round = match (cpu, thread_cpu_time()) {
        (Some(a), Some(b)) => ((b - a) / rounds, "CPU"),
        _ => (wall.elapsed() / rounds, "wall"),
    };
    (per_round.0 / sessions as u32, per_round.1)
}

fn summary() {
    // Only after a real run (not `--list` or a filtered run of something else).
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let frames = second_48k(1);
    println!("\nInput path per session per second of 48 kHz audio (thread CPU time):");
    let vad = model().vad(VadOptions::default()).expect("vad");
    let mut stream = vad.stream();
    let (cost, clock) = cost_per_session_second(1, || push_second(stream.as_mut(), &frames));
    report("silero, one call per window", cost, clock);
    for n in [16usize, 64] {
        let mut batch = Batch::new(n);
        let (cost, clock) = cost_per_session_second(n, || batch.push_second(&frames));
        report(&format!("silero, batches of {n} sessions"), cost, clock);
    }
    let energy =
        ModelVad::new(Arc::new(EnergyVadModel::default()), VadOptions::default()).expect("vad");
    let mut stream = energy.stream();
    let (cost, clock) = cost_per_session_second(1, || push_second(stream.as_mut(), &frames));
    report("energy fallback", cost, clock);
}

fn report(what: &str, cost: Duration, clock: &str) {
    let sessions = 1.0 / cost.as_secs_f64();
    println!(
        "  {what:<34} {:>8.1} us {clock} per audio-second -> {:>6.0} real-time sessions per core",
        cost.as_secs_f64() * 1e6,
        sessions
    );
}
