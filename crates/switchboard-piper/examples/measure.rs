//! Measures the Piper voice and espeak-ng on this machine: load time, time to first audio,
//! real-time factor, peak RSS. Needs `scripts/setup.sh`.
//!
//! `cargo run --release --example measure -- [out-dir]` (writes piper.wav and espeak.wav).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard::voice::audio::{AudioFrame, write_wav};
use switchboard::voice::tts::Tts;
use switchboard_piper::{EspeakTts, PiperTts};

const ONE: &str = "Sure, I can help with that.";
const THREE: &str = "Sure, I can help with that. Your table for two is booked at seven o'clock tonight. Is there anything else you would like me to do?";

/// Time to the first frame, time to the end, and the audio.
async fn run(tts: &dyn Tts, text: &str) -> (Duration, Duration, AudioFrame) {
    let started = Instant::now();
    let mut stream = tts.synthesize(text);
    let mut first = None;
    let mut frames = Vec::new();
    while let Some(frame) = stream.next().await {
        first.get_or_insert_with(|| started.elapsed());
        frames.push(frame.expect("synthesis"));
    }
    let total = started.elapsed();
    let audio = AudioFrame::concat(&frames, tts.sample_rate(), 1).expect("concat");
    (first.unwrap_or(total), total, audio)
}

fn cpu_time() -> Duration {
    // utime + stime of the process, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    println!("before load: {}", rss());
    let started = Instant::now();
    let cpu = cpu_time();
    let piper = PiperTts::from_env().expect("load Piper (run scripts/setup.sh)");
    println!(
        "piper load: {:?} wall, {:?} cpu; {}",
        started.elapsed(),
        cpu_time() - cpu,
        rss()
    );
    for round in 0..3 {
        let cpu = cpu_time();
        let (first, total, audio) = run(piper.as_ref(), ONE).await;
        println!(
            "piper one sentence #{round}: first audio {first:?}, total {total:?} (cpu {:?}), audio {:?}, RTF {:.3}",
            cpu_time() - cpu,
            audio.duration(),
            total.as_secs_f64() / audio.duration().as_secs_f64()
        );
    }
    let cpu = cpu_time();
    let (first, total, audio) = run(piper.as_ref(), THREE).await;
    let cpu = cpu_time() - cpu;
    let peak = audio
        .data()
        .iter()
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap_or(0);
    println!(
        "piper three sentences: first audio {first:?}, total {total:?}, audio {:?}, RTF wall {:.3} cpu {:.3}, peak {peak}; {}",
        audio.duration(),
        total.as_secs_f64() / audio.duration().as_secs_f64(),
        cpu.as_secs_f64() / audio.duration().as_secs_f64(),
        rss()
    );
    write_wav(out.join("piper.wav"), &audio).expect("write piper.wav");
    println!("phonemes: {}", piper.phonemize(THREE).expect("phonemes"));

    let espeak = EspeakTts::new();
    for round in 0..3 {
        let (first, total, audio) = run(&espeak, ONE).await;
        println!(
            "espeak one sentence #{round}: first audio {first:?}, total {total:?}, audio {:?}",
            audio.duration()
        );
    }
    let (first, total, audio) = run(&espeak, THREE).await;
    println!(
        "espeak three sentences: first audio {first:?}, total {total:?}, audio {:?}, RTF {:.4}",
        audio.duration(),
        total.as_secs_f64() / audio.duration().as_secs_f64()
    );
    write_wav(out.join("espeak.wav"), &audio).expect("write espeak.wav");
}
