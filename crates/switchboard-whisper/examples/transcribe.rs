//! Transcribes WAV files with the set-up Whisper model and prints timings:
//! `cargo run --release --example transcribe -- a.wav b.wav`.

use std::time::{Duration, Instant};

use switchboard::voice::audio::{OnTruncated, decode_wav};
use switchboard_whisper::WhisperStt;

/// CPU time of the whole process.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (wall, cpu) = (Instant::now(), cpu_time());
    let whisper = WhisperStt::from_env()?;
    if let Some(report) = whisper.conversion() {
        println!(
            "converted {} ({} bytes, {} tensors) in {:.2} s",
            report.output.display(),
            report.bytes,
            report.tensors,
            report.elapsed.as_secs_f64()
        );
    }
    println!(
        "load: {:.3} s wall, {:.3} s CPU ({})",
        wall.elapsed().as_secs_f64(),
        (cpu_time() - cpu).as_secs_f64(),
        whisper.model_path().display()
    );
    for path in std::env::args().skip(1) {
        // Keep: `espeak-ng --stdout` writes a WAV header with a placeholder length.
        let file = std::io::BufReader::new(std::fs::File::open(&path)?);
        let audio = decode_wav(file, &path, OnTruncated::Keep)?.frame;
        let (wall, cpu) = (Instant::now(), cpu_time());
        let speech = whisper.transcribe_with(&audio, None)?;
        let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
        let secs = audio.duration().as_secs_f64();
        println!(
            "{path}: {secs:.2} s audio, {:.3} s wall, {:.3} s CPU, RTF {:.3} (CPU) / {:.3} (wall), confidence {:.2}: {}",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            cpu.as_secs_f64() / secs,
            wall.as_secs_f64() / secs,
            speech.confidence.unwrap_or(f32::NAN),
            speech.text
        );
    }
    Ok(())
}
