//! Shared helpers of the real-audio tests: the setup check, speech synthesis with espeak-ng,
//! and speech boundaries measured from the signal's energy.

#![allow(dead_code)]

#[path = "../../../../tests-support/setup.rs"]
mod setup;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use switchboard::voice::audio::{AudioFrame, read_wav, write_wav};
use switchboard::voice::vad::VadEvent;
use switchboard_silero::SileroPaths;

pub const FIRST: &str = "Hello, I would like to book an appointment.";
pub const SECOND: &str = "Could you do Tuesday at three in the afternoon?";

/// The Silero files and espeak-ng, installed by `scripts/setup.sh` if they are not.
pub fn ensure_setup() -> SileroPaths {
    static SETUP: OnceLock<Result<SileroPaths, String>> = OnceLock::new();
    setup::ensure_installed(&SETUP, "real-audio (Silero VAD)", || {
        let paths = SileroPaths::from_env().map_err(|e| e.to_string())?;
        setup::file(&paths.model)?;
        setup::file(&paths.ort_dylib)?;
        setup::espeak()?;
        Ok(paths)
    })
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    setup::temp_dir("switchboard-silero", name)
}

fn espeak(text: &str, path: &Path) -> AudioFrame {
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(path)
        .arg(text)
        .status()
        .expect("run espeak-ng (installed by scripts/setup.sh)");
    assert!(status.success(), "espeak-ng failed: {status}");
    read_wav(path).expect("read espeak-ng's WAV")
}

/// Synthesises the test conversation at espeak's native 22,050 Hz: 0.5 s of silence, the
/// first sentence, 1 s of silence, the second sentence, 0.5 s of silence. The WAV is written
/// to `dir` and read back.
pub fn conversation(dir: &Path) -> AudioFrame {
    let first = espeak(FIRST, &dir.join("first.wav"));
    let second = espeak(SECOND, &dir.join("second.wav"));
    let rate = first.sample_rate();
    assert_eq!(rate, 22_050, "espeak-ng's native rate");
    let gap = |ms| AudioFrame::silence(Duration::from_millis(ms), rate, 1).expect("silence");
    let all = AudioFrame::concat(&[gap(500), first, gap(1_000), second, gap(500)], rate, 1)
        .expect("concatenate");
    let path = dir.join("conversation.wav");
    write_wav(&path, &all).expect("write the conversation");
    read_wav(&path).expect("read the conversation back")
}

/// Speech segments measured from the signal: 10 ms frames whose RMS level is within 40 dB of
/// the loudest frame are active; active runs closer than 550 ms (the VAD's minimum silence)
/// are merged, and runs shorter than 100 ms dropped.
pub fn energy_segments(audio: &AudioFrame) -> Vec<(Duration, Duration)> {
    let mono = audio.to_mono();
    let rate = mono.sample_rate() as usize;
    let hop = rate / 100;
    let levels: Vec<f64> = mono
        .data()
        .chunks(hop)
        .map(|frame| {
            let energy =
                frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / frame.len() as f64;
            10.0 * (energy + 1e-9).log10()
        })
        .collect();
    let peak = levels.iter().copied().fold(f64::MIN, f64::max);
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, &level) in levels.iter().enumerate() {
        if level < peak - 40.0 {
            continue;
        }
        match runs.last_mut() {
            Some((_, end)) if i - *end <= 55 => *end = i + 1,
            _ => runs.push((i, i + 1)),
        }
    }
    let frame = |i: usize| {
        Duration::from_secs_f64((i * hop).min(mono.samples_per_channel()) as f64 / rate as f64)
    };
    runs.into_iter()
        .filter(|(s, e)| e - s >= 10)
        .map(|(s, e)| (frame(s), frame(e)))
        .collect()
}

/// Speech segments from VAD events.
pub fn vad_segments(events: &[VadEvent]) -> Vec<(Duration, Duration)> {
    let mut segments = Vec::new();
    let mut start = None;
    for event in events {
        match event {
            VadEvent::StartOfSpeech { at, .. } => start = Some(*at),
            VadEvent::EndOfSpeech {
                at,
                speech_duration,
                ..
            } => {
                let s = start.take().expect("an end without a start");
                assert_eq!(*at - s, *speech_duration);
                segments.push((s, *at));
            }
            _ => {}
        }
    }
    assert!(start.is_none(), "a start without an end");
    segments
}

/// Asserts that `found` has the segments of `expected`, each boundary within `tolerance`.
pub fn assert_segments_match(
    found: &[(Duration, Duration)],
    expected: &[(Duration, Duration)],
    tolerance: Duration,
) {
    assert_eq!(
        found.len(),
        expected.len(),
        "segments: found {found:?}, expected {expected:?}"
    );
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        let (ds, de) = (f.0.abs_diff(e.0), f.1.abs_diff(e.1));
        assert!(
            ds <= tolerance && de <= tolerance,
            "segment {i}: found {f:?}, energy says {e:?} (start off by {ds:?}, end by {de:?}); all found {found:?}, expected {expected:?}"
        );
    }
}
