//! Shared helpers of the tests: the setup check, the voice loaded once per test binary, and
//! measurements of the produced audio.

#![allow(dead_code)]

#[path = "../../../../tests-support/setup.rs"]
mod setup;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard::voice::audio::AudioFrame;
use switchboard::voice::tts::{Tts, TtsError};
use switchboard_piper::{PiperOptions, PiperPaths, PiperTts};

/// The Piper voice, ONNX Runtime and espeak-ng, installed by `scripts/setup.sh` if they are
/// not.
pub fn ensure_setup() -> PiperPaths {
    static SETUP: OnceLock<Result<PiperPaths, String>> = OnceLock::new();
    setup::ensure_installed(&SETUP, "Piper", || {
        let paths = PiperPaths::from_env().map_err(|e| e.to_string())?;
        setup::file(&paths.model)?;
        setup::file(&paths.config)?;
        setup::file(&paths.ort_dylib)?;
        setup::espeak()?;
        Ok(paths)
    })
}

/// The voice, loaded once per test binary (default options: 1 session, 1 thread).
pub fn piper() -> Arc<PiperTts> {
    static VOICE: OnceLock<Arc<PiperTts>> = OnceLock::new();
    VOICE
        .get_or_init(|| {
            let paths = ensure_setup();
            PiperTts::load(&paths, PiperOptions::default())
                .unwrap_or_else(|e| panic!("load the Piper voice: {e}"))
        })
        .clone()
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    setup::temp_dir("switchboard-piper", name)
}

/// What a synthesis stream delivered, and when.
pub struct Run {
    pub frames: Vec<AudioFrame>,
    pub error: Option<TtsError>,
    /// From the call to the first frame.
    pub first_frame: Option<Duration>,
    /// From the call to the end of the stream.
    pub total: Duration,
}

impl Run {
    pub fn audio(&self, rate: u32) -> AudioFrame {
        AudioFrame::concat(&self.frames, rate, 1).expect("frames of one format")
    }
}

/// Drains `tts.synthesize(text)`, timing the first frame and the end.
pub async fn run(tts: &dyn Tts, text: &str) -> Run {
    let started = Instant::now();
    let mut stream = tts.synthesize(text);
    let mut run = Run {
        frames: Vec::new(),
        error: None,
        first_frame: None,
        total: Duration::ZERO,
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(frame) => {
                run.first_frame.get_or_insert_with(|| started.elapsed());
                run.frames.push(frame);
            }
            Err(e) => {
                assert!(run.error.is_none(), "a second error after {:?}", run.error);
                run.error = Some(e);
            }
        }
    }
    run.total = started.elapsed();
    run
}

/// RMS level of the audio, in [0, 1].
pub fn rms(audio: &AudioFrame) -> f64 {
    let data = audio.data();
    if data.is_empty() {
        return 0.0;
    }
    let sum: f64 = data
        .iter()
        .map(|&s| (f64::from(s) / 32_768.0).powi(2))
        .sum();
    (sum / data.len() as f64).sqrt()
}

/// Asserts that the audio is speech-like: the rate, a plausible duration, not silent.
pub fn assert_speech(audio: &AudioFrame, rate: u32, min: Duration, max: Duration) {
    assert_eq!(audio.sample_rate(), rate);
    assert_eq!(audio.channels(), 1);
    let duration = audio.duration();
    assert!(
        duration >= min && duration <= max,
        "duration {duration:?} is not within {min:?}..{max:?}"
    );
    let level = rms(audio);
    assert!(level > 0.01, "the audio is (nearly) silent: RMS {level}");
}

/// An `espeak-ng` wrapper in `dir` that fails (exit 3, "boom" on stderr) for any text
/// containing `FAIL`, and runs the real program otherwise.
pub fn failing_espeak(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("espeak-ng-failing");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$*\" in *FAIL*) echo boom >&2; exit 3;; esac\nexec espeak-ng \"$@\"\n",
    )
    .expect("write the wrapper");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}
