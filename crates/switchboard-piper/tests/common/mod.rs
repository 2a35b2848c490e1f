//! Shared helpers of the tests: the setup check, the voice loaded once per test binary, and
//! measurements of the produced audio.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard::voice::audio::AudioFrame;
use switchboard::voice::tts::{Tts, TtsError};
use switchboard_piper::{PiperOptions, PiperPaths, PiperTts};

fn espeak_available() -> bool {
    Command::new("espeak-ng")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Makes sure the Piper voice, ONNX Runtime and espeak-ng are installed, running
/// `scripts/setup.sh` once if they are not. Panics with what to do when that fails: these
/// tests never pass silently without their inputs.
pub fn ensure_setup() -> PiperPaths {
    static SETUP: OnceLock<Result<PiperPaths, String>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let ready = |paths: &PiperPaths| {
                paths.model.is_file()
                    && paths.config.is_file()
                    && paths.ort_dylib.is_file()
                    && espeak_available()
            };
            let paths = PiperPaths::from_env().map_err(|e| e.to_string())?;
            if ready(&paths) {
                return Ok(paths);
            }
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup.sh");
            eprintln!(
                "Piper files or espeak-ng missing ({} / {} / {}); running {}",
                paths.model.display(),
                paths.config.display(),
                paths.ort_dylib.display(),
                script.display()
            );
            let status = Command::new("bash").arg(&script).status();
            match status {
                Ok(s) if s.success() && ready(&paths) => Ok(paths),
                Ok(s) => Err(format!(
                    "scripts/setup.sh exited with {s}, or did not install {} / {} / espeak-ng",
                    paths.model.display(),
                    paths.ort_dylib.display()
                )),
                Err(e) => Err(format!("cannot run {}: {e}", script.display())),
            }
        })
        .clone()
        .unwrap_or_else(|e| {
            panic!("the Piper tests need the set-up cache: {e}. Run `bash scripts/setup.sh`.")
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
    let dir = std::env::temp_dir().join(format!("switchboard-piper-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
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
