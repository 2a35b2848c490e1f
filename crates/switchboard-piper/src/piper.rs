//! [`PiperTts`]: a Piper voice through ONNX Runtime.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use switchboard::voice::tts::{Tts, TtsError, TtsStream};

use crate::config::{InferenceScales, PhonemeIds, PiperConfig};
use crate::error::PiperError;
use crate::espeak::{ESPEAK_PROGRAM, Espeak, Pending, assemble_phonemes};
use crate::paths::{
    CONFIG_ENV, CONFIG_SHA256, MODEL_ENV, MODEL_SHA256, PiperPaths, check_file, lock,
};
use crate::split::split_text;
use crate::worker::{Sender, frame_len, send_frames, stream_from_worker};

/// How to load and run a Piper voice.
#[derive(Debug, Clone, PartialEq)]
pub struct PiperOptions {
    /// ONNX sessions shared by all syntheses (default 1). Each holds a copy of the model
    /// (about 100 MB of RSS for a `medium` voice); more sessions let more sessions speak at
    /// the same time.
    pub sessions: usize,
    /// Threads each inference uses (default 1).
    pub intra_threads: usize,
    /// Check the model and config against [`MODEL_SHA256`](crate::MODEL_SHA256) and
    /// [`CONFIG_SHA256`](crate::CONFIG_SHA256), and the runtime library against Silero's
    /// pinned sum (default `true`). Turn it off to load another Piper voice.
    pub verify_checksums: bool,
    /// The espeak-ng program (default `espeak-ng` on `PATH`).
    pub espeak_program: PathBuf,
    /// Inference scales instead of the config's (e.g. a `length_scale` of 1.2 speaks 20 %
    /// slower).
    pub scales: Option<InferenceScales>,
    /// Speaker of a multi-speaker voice (ignored by single-speaker voices).
    pub speaker_id: i64,
    /// Gain applied to the model's output before it is clipped to 16 bits (default 1).
    pub volume: f32,
    /// Duration of the streamed frames (default 100 ms).
    pub frame_duration: Duration,
    /// Maximum characters of the first piece synthesised (default 100: about 6 s of speech,
    /// so the first audio comes early even for a long first sentence).
    pub first_max_chars: usize,
    /// Maximum characters of the other pieces (default 300).
    pub max_chars: usize,
}

impl Default for PiperOptions {
    fn default() -> Self {
        PiperOptions {
            sessions: 1,
            intra_threads: 1,
            verify_checksums: true,
            espeak_program: PathBuf::from(ESPEAK_PROGRAM),
            scales: None,
            speaker_id: 0,
            volume: 1.0,
            frame_duration: Duration::from_millis(100),
            first_max_chars: 100,
            max_chars: 300,
        }
    }
}

/// A Piper voice, loaded once and shared by every session (`Arc<PiperTts>` or
/// `Arc<dyn Tts>`). Implements [`Tts`]: mono audio at the voice's rate (22,050 Hz for
/// `en_US-joe-medium`), streamed piece by piece.
///
/// Text goes through espeak-ng (`espeak-ng -q --ipa`, a subprocess) to IPA phonemes, then
/// through the config's `phoneme_id_map` to ids, then through the VITS model. Phonemes
/// without an id are skipped (and logged). Each piece's phonemisation runs while the previous
/// piece is being inferred.
pub struct PiperTts {
    inner: Arc<Inner>,
    name: String,
}

struct Inner {
    sessions: Vec<Mutex<Session>>,
    next_slot: AtomicUsize,
    output: String,
    has_sid: bool,
    config: PiperConfig,
    ids: PhonemeIds,
    espeak: Espeak,
    scales: [f32; 3],
    speaker_id: i64,
    volume: f32,
    frame_len: usize,
    first_max_chars: usize,
    max_chars: usize,
    model_path: PathBuf,
}

impl fmt::Debug for PiperTts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PiperTts")
            .field("model", &self.inner.model_path)
            .field("sessions", &self.inner.sessions.len())
            .field("sample_rate", &self.inner.config.audio.sample_rate)
            .finish()
    }
}

impl PiperTts {
    /// Loads the voice at `paths`: checks that the files exist (and, by default, their
    /// SHA-256), reads the config, checks that espeak-ng runs and knows the voice's language,
    /// and opens `options.sessions` ONNX sessions in the process's ONNX Runtime environment
    /// (shared with Silero, see [`switchboard_silero::ort_environment`]).
    ///
    /// ```no_run
    /// use switchboard_piper::{PiperOptions, PiperPaths, PiperTts};
    ///
    /// let paths = PiperPaths::new("voices/en_US-joe-medium.onnx", "lib/libonnxruntime.so.1.32.0");
    /// let tts = PiperTts::load(&paths, PiperOptions::default())?;
    /// # Ok::<(), switchboard_piper::PiperError>(())
    /// ```
    pub fn load(paths: &PiperPaths, options: PiperOptions) -> Result<Arc<PiperTts>, PiperError> {
        let started = Instant::now();
        let verify = options.verify_checksums;
        check_file(
            "Piper voice config",
            &paths.config,
            CONFIG_ENV,
            verify.then_some(CONFIG_SHA256),
        )?;
        check_file(
            "Piper model",
            &paths.model,
            MODEL_ENV,
            verify.then_some(MODEL_SHA256),
        )?;
        check_file(
            "ONNX Runtime library",
            &paths.ort_dylib,
            crate::ORT_DYLIB_ENV,
            verify.then_some(switchboard_silero::ORT_DYLIB_SHA256),
        )?;
        let config = PiperConfig::load(&paths.config)?;
        let espeak = Espeak {
            program: options.espeak_program.clone(),
            voice: config.espeak.voice.clone(),
        };
        espeak.check()?;

        let env = switchboard_silero::ort_environment(&paths.ort_dylib)?;
        let model_error = |message: String| PiperError::Model {
            path: paths.model.clone(),
            message,
        };
        let mut sessions = Vec::new();
        let mut io = None;
        for _ in 0..options.sessions.max(1) {
            let session = build_session(&env, &paths.model, options.intra_threads.max(1))
                .map_err(model_error)?;
            if io.is_none() {
                io = Some(check_io(&session).map_err(model_error)?);
            }
            sessions.push(Mutex::new(session));
        }
        let Some((output, has_sid)) = io else {
            return Err(model_error("no session was opened".into()));
        };
        let sample_rate = config.audio.sample_rate;
        let name = format!(
            "piper-{}",
            paths
                .model
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "voice".into())
        );
        tracing::debug!(
            model = %paths.model.display(),
            sessions = sessions.len(),
            elapsed = ?started.elapsed(),
            "loaded Piper voice"
        );
        Ok(Arc::new(PiperTts {
            inner: Arc::new(Inner {
                sessions,
                next_slot: AtomicUsize::new(0),
                output,
                has_sid,
                ids: config.phoneme_ids(),
                scales: options.scales.unwrap_or(config.inference).to_array(),
                config,
                espeak,
                speaker_id: options.speaker_id,
                volume: if options.volume.is_finite() {
                    options.volume
                } else {
                    1.0
                },
                frame_len: frame_len(options.frame_duration, sample_rate),
                first_max_chars: options.first_max_chars,
                max_chars: options.max_chars,
                model_path: paths.model.clone(),
            }),
            name,
        }))
    }

    /// Loads from the paths of [`PiperPaths::from_env`] (`SWITCHBOARD_PIPER_MODEL`,
    /// `ORT_DYLIB_PATH`, else the setup cache) with default options.
    pub fn from_env() -> Result<Arc<PiperTts>, PiperError> {
        Self::load(&PiperPaths::from_env()?, PiperOptions::default())
    }

    /// The voice config.
    pub fn config(&self) -> &PiperConfig {
        &self.inner.config
    }

    /// The model file.
    pub fn model_path(&self) -> &Path {
        &self.inner.model_path
    }

    /// The phoneme string Piper speaks for `text` (blocking: runs espeak-ng), with the
    /// clause punctuation restored. For inspection and tests.
    pub fn phonemize(&self, text: &str) -> Result<String, TtsError> {
        self.inner.espeak.phonemes(text)
    }

    /// Synthesises `text` in one go on the calling thread (blocking): `f32` samples at
    /// [`Tts::sample_rate`], before the volume and the 16-bit conversion. Long text is not
    /// split; use [`Tts::synthesize`] to stream.
    pub fn synthesize_blocking(&self, text: &str) -> Result<Vec<f32>, TtsError> {
        let phonemes = self.phonemize(text)?;
        self.inner.infer_phonemes(&phonemes)
    }
}

impl Inner {
    /// Runs the model on a phoneme string; empty audio when there is nothing to say.
    fn infer_phonemes(&self, phonemes: &str) -> Result<Vec<f32>, TtsError> {
        let encoded = self.ids.encode(phonemes);
        if !encoded.unknown.is_empty() {
            tracing::warn!(
                unknown = ?encoded.unknown,
                "Piper: skipped phonemes that the voice has no id for"
            );
        }
        if encoded.phonemes == 0 {
            return Ok(Vec::new());
        }
        self.infer(&encoded.ids)
    }

    fn infer(&self, ids: &[i64]) -> Result<Vec<f32>, TtsError> {
        let started = Instant::now();
        let error = |e: ort::Error| TtsError::Model(format!("Piper inference failed: {e}"));
        let lengths = [ids.len() as i64];
        let sid = [self.speaker_id];
        let audio = self.with_session(|session| {
            let input = TensorRef::from_array_view(([1usize, ids.len()], ids)).map_err(error)?;
            let lengths = TensorRef::from_array_view(([1usize], &lengths[..])).map_err(error)?;
            let scales = TensorRef::from_array_view(([3usize], &self.scales[..])).map_err(error)?;
            let mut inputs =
                ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales];
            if self.has_sid {
                let sid = TensorRef::from_array_view(([1usize], &sid[..])).map_err(error)?;
                inputs.push(("sid".into(), sid.into()));
            }
            let outputs = session.run(inputs).map_err(error)?;
            let output = outputs.get(&self.output).ok_or_else(|| {
                TtsError::Model(format!("Piper model returned no `{}` tensor", self.output))
            })?;
            let (_, samples) = output.try_extract_tensor::<f32>().map_err(|e| {
                TtsError::BadAudio(format!("Piper model output is not f32 audio: {e}"))
            })?;
            Ok::<_, TtsError>(samples.to_vec())
        })?;
        tracing::trace!(
            ids = ids.len(),
            samples = audio.len(),
            elapsed = ?started.elapsed(),
            "Piper inference"
        );
        Ok(audio)
    }

    /// Runs `f` with a free session, or waits for one.
    fn with_session<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        for session in &self.sessions {
            match session.try_lock() {
                Ok(mut guard) => return f(&mut guard),
                Err(TryLockError::Poisoned(poisoned)) => return f(&mut poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        f(&mut lock(&self.sessions[slot]))
    }

    fn to_i16(&self, audio: &[f32]) -> Vec<i16> {
        audio
            .iter()
            .map(|&s| {
                (s * self.volume * 32_768.0)
                    .round()
                    .clamp(-32_768.0, 32_767.0) as i16
            })
            .collect()
    }

    /// The synthesis worker: phonemises piece `i + 1` (in an espeak-ng process) while piece
    /// `i` is inferred; stops when the stream is dropped or on the first error.
    fn run(&self, pieces: &[String], tx: &Sender) {
        let rate = self.config.audio.sample_rate;
        let start = |piece: &String| self.espeak.start_phonemes(piece);
        let mut next: Option<Result<Pending, TtsError>> = pieces.first().map(start);
        for (i, piece) in pieces.iter().enumerate() {
            let Some(pending) = next.take() else { return };
            let phonemes = pending
                .and_then(Pending::finish)
                .map(|out| assemble_phonemes(piece, &String::from_utf8_lossy(&out)));
            next = pieces.get(i + 1).map(start);
            if tx.is_closed() {
                return;
            }
            match phonemes.and_then(|p| self.infer_phonemes(&p)) {
                Ok(audio) => {
                    if !send_frames(tx, &self.to_i16(&audio), rate, self.frame_len) {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.unbounded_send(Err(e));
                    return;
                }
            }
        }
    }
}

impl Tts for PiperTts {
    fn name(&self) -> &str {
        &self.name
    }

    fn sample_rate(&self) -> u32 {
        self.inner.config.audio.sample_rate
    }

    fn synthesize(&self, text: &str) -> TtsStream {
        let pieces = split_text(text, self.inner.first_max_chars, self.inner.max_chars);
        if pieces.is_empty() {
            return Box::pin(futures::stream::empty());
        }
        let inner = self.inner.clone();
        stream_from_worker(move |tx| inner.run(&pieces, tx))
    }
}

/// One session with `threads` intra-op threads, no spinning.
fn build_session(
    env: &ort::environment::Environment,
    model: &Path,
    threads: usize,
) -> Result<Session, String> {
    let text = |e: ort::Error<_>| e.to_string();
    Session::builder(env)
        .map_err(|e| e.to_string())?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(text)?
        .with_intra_threads(threads)
        .map_err(text)?
        .with_inter_threads(1)
        .map_err(text)?
        .with_intra_op_spinning(false)
        .map_err(text)?
        .commit_from_file(model)
        .map_err(|e| e.to_string())
}

/// Checks Piper's inputs; returns the audio output's name and whether there is a `sid` input.
fn check_io(session: &Session) -> Result<(String, bool), String> {
    let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    for name in ["input", "input_lengths", "scales"] {
        if !inputs.contains(&name) {
            return Err(format!(
                "not a Piper voice: no `{name}` input (inputs: {inputs:?})"
            ));
        }
    }
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let output = if outputs.contains(&"output") {
        "output"
    } else {
        outputs
            .first()
            .copied()
            .ok_or_else(|| "not a Piper voice: the model has no output".to_string())?
    };
    Ok((output.to_string(), inputs.contains(&"sid")))
}
