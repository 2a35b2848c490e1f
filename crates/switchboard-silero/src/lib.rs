//! Silero VAD (v5/v6 ONNX) for Switchboard, run through ONNX Runtime with
//! [`ort`](https://docs.rs/ort) loading `libonnxruntime` dynamically.
//!
//! [`SileroVad`] is the shared model: loaded once per process, `Send + Sync`, used by every
//! session through [`ModelVad`], which adds the resampling, windowing and speech state
//! machine of `switchboard::voice::vad`. Each stream keeps its own recurrent state and context
//! samples; the ONNX sessions are a small pool shared by all streams.
//!
//! The model and the runtime library come from PyPI (`silero-vad` 6.2.3 and `onnxruntime`
//! 1.32.0) and are installed by `scripts/setup.sh` into `${SWITCHBOARD_CACHE:-~/.cache/switchboard}`.
//! Both files are checked against pinned SHA-256 sums before they are loaded.
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard::voice::audio::read_wav;
//! use switchboard::voice::vad::{Vad, VadEvent, VadOptions};
//! use switchboard_silero::SileroVad;
//!
//! let model = SileroVad::from_env()?; // paths from env vars or the setup cache
//! let vad: Arc<dyn Vad> = Arc::new(model.vad(VadOptions::default())?);
//! let mut stream = vad.stream(); // one per session
//! let audio = read_wav("call.wav")?; // any rate and channel count
//! for event in stream.push(&audio)?.into_iter().chain(stream.flush()?) {
//!     if let VadEvent::StartOfSpeech { at, .. } = event {
//!         println!("speech at {at:?}");
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use sha2::{Digest, Sha256};
use switchboard::voice::vad::{ModelVad, VadError, VadModel, VadModelState, VadOptions};

/// Environment variable naming the Silero model file (overrides the setup cache).
pub const MODEL_ENV: &str = "SWITCHBOARD_SILERO_MODEL";
/// Environment variable naming the ONNX Runtime shared library (overrides the setup cache).
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";
/// Environment variable naming the setup cache (default `$HOME/.cache/switchboard`).
pub const CACHE_ENV: &str = switchboard::cache::CACHE_ENV;

/// SHA-256 of `silero_vad.onnx` from PyPI `silero-vad` 6.2.3.
pub const MODEL_SHA256: &str = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";
/// SHA-256 of `libonnxruntime.so.1.32.0` from PyPI `onnxruntime` 1.32.0 (manylinux x86_64).
pub const ORT_DYLIB_SHA256: &str =
    "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f";

/// Where `scripts/setup.sh` puts the model, relative to the cache.
pub const MODEL_IN_CACHE: &str = "silero-vad-6.2.3/silero_vad.onnx";
/// Where `scripts/setup.sh` puts the runtime library, relative to the cache.
pub const ORT_DYLIB_IN_CACHE: &str = "onnxruntime-1.32.0/libonnxruntime.so.1.32.0";

const STATE_LEN: usize = 2 * 128;
const FIX: &str = "run scripts/setup.sh";

/// Errors of loading and running Silero.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SileroError {
    /// Neither the environment variables nor a home directory say where the files are.
    #[error(
        "cannot locate the Silero VAD files: set {MODEL_ENV} and {ORT_DYLIB_ENV}, or {CACHE_ENV} (or HOME), then {FIX}"
    )]
    NotConfigured,
    /// A file is missing.
    #[error("{what} not found at {}: {FIX} (or set {env})", path.display())]
    MissingFile {
        /// Which file.
        what: &'static str,
        /// Where it was expected.
        path: PathBuf,
        /// The variable that overrides the path.
        env: &'static str,
    },
    /// A file has the wrong SHA-256 (corrupt, partial or another version).
    #[error(
        "{what} at {} has SHA-256 {actual}, expected {expected}: the file is corrupt or another version; delete it and {FIX}",
        path.display()
    )]
    Checksum {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The pinned sum.
        expected: String,
        /// The file's sum.
        actual: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// ONNX Runtime could not be loaded or initialised.
    #[error("cannot load ONNX Runtime from {}: {message}; {FIX}", path.display())]
    Runtime {
        /// The library.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// ONNX Runtime was already loaded from another library in this process.
    #[error(
        "ONNX Runtime is already loaded from {} in this process; cannot also load {}",
        loaded.display(),
        requested.display()
    )]
    AlreadyLoaded {
        /// The library in use.
        loaded: PathBuf,
        /// The library requested now.
        requested: PathBuf,
    },
    /// The model could not be loaded, or is not a Silero VAD model.
    #[error("cannot load the Silero VAD model {}: {message}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Inference failed.
    #[error("Silero VAD inference failed: {0}")]
    Inference(String),
    /// The model returned something that is not a probability (NaN, out of range, wrong
    /// shape). The stream's recurrent state is reset.
    #[error("Silero VAD returned an invalid output: {0}")]
    InvalidOutput(String),
    /// A window of the wrong size, or a sample rate Silero does not support.
    #[error("invalid Silero VAD input: {0}")]
    InvalidInput(String),
}

impl From<SileroError> for VadError {
    fn from(error: SileroError) -> Self {
        VadError::model(error)
    }
}

/// Where the model and the runtime library are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SileroPaths {
    /// `silero_vad.onnx`.
    pub model: PathBuf,
    /// `libonnxruntime.so.1.32.0`.
    pub ort_dylib: PathBuf,
}

impl SileroPaths {
    /// The paths `scripts/setup.sh` uses under `cache`.
    pub fn in_cache(cache: &Path) -> Self {
        SileroPaths {
            model: cache.join(MODEL_IN_CACHE),
            ort_dylib: cache.join(ORT_DYLIB_IN_CACHE),
        }
    }

    /// Resolves the paths: [`MODEL_ENV`] and [`ORT_DYLIB_ENV`] when set, else the setup cache
    /// ([`CACHE_ENV`], default `$HOME/.cache/switchboard`). The files are not checked here.
    pub fn from_env() -> Result<Self, SileroError> {
        let var = switchboard::cache::path_var;
        let cached = cache_dir().map(|dir| Self::in_cache(&dir));
        let model = var(MODEL_ENV).or_else(|| cached.as_ref().map(|c| c.model.clone()));
        let ort_dylib = var(ORT_DYLIB_ENV).or_else(|| cached.map(|c| c.ort_dylib));
        match (model, ort_dylib) {
            (Some(model), Some(ort_dylib)) => Ok(SileroPaths { model, ort_dylib }),
            _ => Err(SileroError::NotConfigured),
        }
    }
}

/// The setup cache: [`CACHE_ENV`], else `$HOME/.cache/switchboard`.
pub fn cache_dir() -> Option<PathBuf> {
    switchboard::cache::cache_dir()
}

/// How to load the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SileroOptions {
    /// ONNX sessions in the pool shared by all streams (default: the number of CPUs, at most
    /// 8). Each holds a copy of the model (a few MB).
    pub sessions: usize,
    /// Check the files against [`MODEL_SHA256`] and [`ORT_DYLIB_SHA256`] (default `true`).
    /// Turn it off only to run another build of the model or of ONNX Runtime.
    pub verify_checksums: bool,
}

impl Default for SileroOptions {
    fn default() -> Self {
        SileroOptions {
            sessions: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .clamp(1, 8),
            verify_checksums: true,
        }
    }
}

/// The Silero VAD model, shared by all streams of a process. Implements
/// [`VadModel`]: 512-sample windows at 16 kHz, 256 at 8 kHz.
pub struct SileroVad {
    inner: Arc<Inner>,
}

struct Inner {
    sessions: Vec<Mutex<Session>>,
    next_slot: AtomicUsize,
    model_path: PathBuf,
}

impl fmt::Debug for SileroVad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SileroVad")
            .field("model", &self.inner.model_path)
            .field("sessions", &self.inner.sessions.len())
            .finish()
    }
}

/// The process's ONNX Runtime environment and the library it came from. ONNX Runtime allows
/// one environment per process, so every load shares it.
static ORT: Mutex<Option<(PathBuf, ort::environment::Environment)>> = Mutex::new(None);

/// The process-wide ONNX Runtime environment, loading the library at `dylib` on first use.
/// Other crates of the process that use `ort` must take their environment from here, since
/// ONNX Runtime allows only one. Fails if a different library was loaded before.
pub fn ort_environment(dylib: &Path) -> Result<ort::environment::Environment, SileroError> {
    let mut slot = lock(&ORT);
    let requested = dylib.canonicalize().unwrap_or_else(|_| dylib.to_path_buf());
    if let Some((loaded, env)) = slot.as_ref() {
        return if *loaded == requested {
            Ok(env.clone())
        } else {
            Err(SileroError::AlreadyLoaded {
                loaded: loaded.clone(),
                requested,
            })
        };
    }
    let runtime_error = |message: String| SileroError::Runtime {
        path: dylib.to_path_buf(),
        message,
    };
    let env = ort::init_from(&requested)
        .map_err(|e| runtime_error(e.to_string()))?
        .with_name("switchboard")
        .with_telemetry(false)
        .build()
        .map_err(|e| runtime_error(e.to_string()))?;
    *slot = Some((requested, env.clone()));
    Ok(env)
}

impl SileroVad {
    /// Loads the model at `model_path` with the ONNX Runtime library at `ort_dylib_path`,
    /// after checking that both exist and have the pinned SHA-256 sums.
    pub fn load(
        model_path: impl AsRef<Path>,
        ort_dylib_path: impl AsRef<Path>,
    ) -> Result<Arc<SileroVad>, SileroError> {
        Self::load_with(model_path, ort_dylib_path, SileroOptions::default())
    }

    /// [`load`](Self::load) with options.
    pub fn load_with(
        model_path: impl AsRef<Path>,
        ort_dylib_path: impl AsRef<Path>,
        options: SileroOptions,
    ) -> Result<Arc<SileroVad>, SileroError> {
        let model_path = model_path.as_ref();
        let dylib = ort_dylib_path.as_ref();
        let checksums = options.verify_checksums;
        check_file(
            "Silero VAD model",
            model_path,
            MODEL_ENV,
            checksums.then_some(MODEL_SHA256),
        )?;
        check_file(
            "ONNX Runtime library",
            dylib,
            ORT_DYLIB_ENV,
            checksums.then_some(ORT_DYLIB_SHA256),
        )?;
        let env = ort_environment(dylib)?;
        let model_error = |message: String| SileroError::Model {
            path: model_path.to_path_buf(),
            message,
        };
        let mut sessions = Vec::new();
        for _ in 0..options.sessions.max(1) {
            let session = build_session(&env, model_path).map_err(model_error)?;
            check_io(&session).map_err(model_error)?;
            sessions.push(Mutex::new(session));
        }
        tracing::debug!(model = %model_path.display(), sessions = sessions.len(), "loaded Silero VAD");
        Ok(Arc::new(SileroVad {
            inner: Arc::new(Inner {
                sessions,
                next_slot: AtomicUsize::new(0),
                model_path: model_path.to_path_buf(),
            }),
        }))
    }

    /// Loads from the paths of [`SileroPaths::from_env`]: the environment variables
    /// `SWITCHBOARD_SILERO_MODEL` and `ORT_DYLIB_PATH`, else the setup cache.
    pub fn from_env() -> Result<Arc<SileroVad>, SileroError> {
        let paths = SileroPaths::from_env()?;
        Self::load(paths.model, paths.ort_dylib)
    }

    /// A [`ModelVad`] over this model: the shareable `Vad` sessions open streams from.
    pub fn vad(self: &Arc<Self>, options: VadOptions) -> Result<ModelVad, VadError> {
        ModelVad::new(self.clone(), options)
    }

    /// The model file.
    pub fn model_path(&self) -> &Path {
        &self.inner.model_path
    }

    /// Fresh per-stream state at 16,000 or 8,000 Hz, for [`predict`](SileroState::predict)
    /// and [`predict_batch`](Self::predict_batch).
    pub fn new_stream_state(&self, sample_rate: u32) -> Result<SileroState, SileroError> {
        let (window, context) = match sample_rate {
            16_000 => (512, 64),
            8_000 => (256, 32),
            other => {
                return Err(SileroError::InvalidInput(format!(
                    "Silero runs at 16000 or 8000 Hz, not {other}"
                )));
            }
        };
        let slot = self.inner.next_slot.fetch_add(1, Ordering::Relaxed) % self.inner.sessions.len();
        Ok(SileroState {
            inner: self.inner.clone(),
            sample_rate,
            window,
            context,
            input: vec![0.0; context + window],
            state: vec![0.0; STATE_LEN],
            slot,
        })
    }

    /// Scores one window for each of several streams in a single inference call (batch
    /// dimension = number of streams), which amortises ONNX Runtime's per-call overhead when
    /// many sessions run in one process. All states must have the same sample rate and each
    /// window the matching size. Returns one probability per stream, in order.
    pub fn predict_batch(
        &self,
        states: &mut [&mut SileroState],
        windows: &[&[f32]],
    ) -> Result<Vec<f32>, SileroError> {
        let batch = states.len();
        if batch == 0 {
            return Ok(Vec::new());
        }
        if windows.len() != batch {
            return Err(SileroError::InvalidInput(format!(
                "{batch} states but {} windows",
                windows.len()
            )));
        }
        let (rate, window, context) = (states[0].sample_rate, states[0].window, states[0].context);
        let frame = context + window;
        let mut input = Vec::with_capacity(batch * frame);
        let mut state = vec![0.0f32; STATE_LEN * batch];
        for (b, (s, w)) in states.iter_mut().zip(windows).enumerate() {
            if s.sample_rate != rate || w.len() != window {
                return Err(SileroError::InvalidInput(format!(
                    "batch item {b}: {} samples at {} Hz, expected {window} at {rate} Hz",
                    w.len(),
                    s.sample_rate
                )));
            }
            copy_finite(&mut s.input[context..], w);
            input.extend_from_slice(&s.input);
            for layer in 0..2 {
                let dst = layer * batch * 128 + b * 128;
                state[dst..dst + 128].copy_from_slice(&s.state[layer * 128..(layer + 1) * 128]);
            }
        }
        let mut probabilities = vec![0.0f32; batch];
        let mut new_state = vec![0.0f32; STATE_LEN * batch];
        let result = {
            let mut session = self.inner.session(states[0].slot);
            run(
                &mut session,
                &input,
                (batch, frame),
                &state,
                i64::from(rate),
                &mut probabilities,
                &mut new_state,
            )
        };
        if let Err(e) = result {
            for s in states.iter_mut() {
                s.reset_state();
            }
            return Err(e);
        }
        for (b, s) in states.iter_mut().enumerate() {
            for layer in 0..2 {
                let src = layer * batch * 128 + b * 128;
                s.state[layer * 128..(layer + 1) * 128].copy_from_slice(&new_state[src..src + 128]);
            }
            s.keep_context();
        }
        Ok(probabilities)
    }
}

impl Inner {
    /// A session of the pool: the stream's own slot if free, else any free one, else wait
    /// for the stream's slot.
    fn session(&self, slot: usize) -> MutexGuard<'_, Session> {
        let n = self.sessions.len();
        for i in 0..n {
            if let Ok(guard) = self.sessions[(slot + i) % n].try_lock() {
                return guard;
            }
        }
        lock(&self.sessions[slot % n])
    }
}

impl VadModel for SileroVad {
    fn name(&self) -> &str {
        "silero"
    }

    fn supports_sample_rate(&self, sample_rate: u32) -> bool {
        matches!(sample_rate, 16_000 | 8_000)
    }

    fn window_size(&self, sample_rate: u32) -> usize {
        if sample_rate == 8_000 { 256 } else { 512 }
    }

    fn new_state(&self, sample_rate: u32) -> Box<dyn VadModelState> {
        // `ModelVad` only asks for supported rates; fall back to 16 kHz otherwise.
        let state = self
            .new_stream_state(sample_rate)
            .or_else(|_| self.new_stream_state(16_000));
        match state {
            Ok(state) => Box::new(state),
            Err(e) => Box::new(FailedState(e.to_string())),
        }
    }
}

/// A state that reports why it could not be created (unreachable for supported rates).
struct FailedState(String);

impl VadModelState for FailedState {
    fn predict(&mut self, _window: &[f32]) -> Result<f32, VadError> {
        Err(SileroError::InvalidInput(self.0.clone()).into())
    }

    fn reset(&mut self) {}
}

/// One stream's Silero state: the recurrent state tensor and the context samples carried
/// from the previous window.
pub struct SileroState {
    inner: Arc<Inner>,
    sample_rate: u32,
    window: usize,
    context: usize,
    /// Context samples followed by the current window.
    input: Vec<f32>,
    state: Vec<f32>,
    slot: usize,
}

impl fmt::Debug for SileroState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SileroState")
            .field("sample_rate", &self.sample_rate)
            .field("window", &self.window)
            .finish()
    }
}

impl SileroState {
    /// Samples per window (512 at 16 kHz, 256 at 8 kHz).
    pub fn window_size(&self) -> usize {
        self.window
    }

    /// Scores one window of mono samples in `[-1, 1]`. A NaN or out-of-range output is an
    /// error, and the recurrent state is reset so the stream recovers.
    pub fn predict(&mut self, window: &[f32]) -> Result<f32, SileroError> {
        if window.len() != self.window {
            return Err(SileroError::InvalidInput(format!(
                "expected {} samples, got {}",
                self.window,
                window.len()
            )));
        }
        copy_finite(&mut self.input[self.context..], window);
        let mut probability = [0.0f32];
        let mut new_state = [0.0f32; STATE_LEN];
        let result = {
            let mut session = self.inner.session(self.slot);
            run(
                &mut session,
                &self.input,
                (1, self.context + self.window),
                &self.state,
                i64::from(self.sample_rate),
                &mut probability,
                &mut new_state,
            )
        };
        match result {
            Ok(()) => {
                self.state.copy_from_slice(&new_state);
                self.keep_context();
                Ok(probability[0])
            }
            Err(e) => {
                self.reset_state();
                Err(e)
            }
        }
    }

    /// Keeps the last `context` samples of the input for the next window.
    fn keep_context(&mut self) {
        let len = self.input.len();
        self.input.copy_within(len - self.context.., 0);
    }

    fn reset_state(&mut self) {
        self.input.fill(0.0);
        self.state.fill(0.0);
    }
}

impl VadModelState for SileroState {
    fn predict(&mut self, window: &[f32]) -> Result<f32, VadError> {
        SileroState::predict(self, window).map_err(VadError::from)
    }

    fn reset(&mut self) {
        self.reset_state();
    }
}

/// Runs the model on `input` (`[batch, frame]`) and `state` (`[2, batch, 128]`), writing one
/// probability per batch item and the new state. Rejects NaN and out-of-range outputs.
fn run(
    session: &mut Session,
    input: &[f32],
    (batch, frame): (usize, usize),
    state: &[f32],
    sample_rate: i64,
    probabilities: &mut [f32],
    new_state: &mut [f32],
) -> Result<(), SileroError> {
    let inference = |e: ort::Error| SileroError::Inference(e.to_string());
    let sr = [sample_rate];
    let input = TensorRef::from_array_view(([batch, frame], input)).map_err(inference)?;
    let state = TensorRef::from_array_view(([2, batch, 128], state)).map_err(inference)?;
    let sr = TensorRef::from_array_view(((), &sr[..])).map_err(inference)?;
    let outputs = session
        .run(ort::inputs!["input" => input, "state" => state, "sr" => sr])
        .map_err(inference)?;
    let output = outputs
        .get("output")
        .ok_or_else(|| SileroError::InvalidOutput("no `output` tensor".into()))?;
    let (_, values) = output
        .try_extract_tensor::<f32>()
        .map_err(|e| SileroError::InvalidOutput(e.to_string()))?;
    check_probabilities(values, batch)?;
    probabilities.copy_from_slice(values);
    let next = outputs
        .get("stateN")
        .ok_or_else(|| SileroError::InvalidOutput("no `stateN` tensor".into()))?;
    let (_, values) = next
        .try_extract_tensor::<f32>()
        .map_err(|e| SileroError::InvalidOutput(e.to_string()))?;
    check_state(values, new_state.len())?;
    new_state.copy_from_slice(values);
    Ok(())
}

/// Copies samples, replacing NaN and infinities (which no audio source produces) by silence.
fn copy_finite(dst: &mut [f32], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = if s.is_finite() { s } else { 0.0 };
    }
}

/// Rejects a probability tensor of the wrong size or with values outside `[0, 1]` (NaN).
fn check_probabilities(values: &[f32], batch: usize) -> Result<(), SileroError> {
    if values.len() != batch {
        return Err(SileroError::InvalidOutput(format!(
            "{} probabilities for a batch of {batch}",
            values.len()
        )));
    }
    if let Some(bad) = values.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(SileroError::InvalidOutput(format!(
            "probability {bad} is not in [0, 1]"
        )));
    }
    Ok(())
}

/// Rejects a state tensor of the wrong size or holding NaN or infinities.
fn check_state(values: &[f32], len: usize) -> Result<(), SileroError> {
    if values.len() != len {
        return Err(SileroError::InvalidOutput(format!(
            "state of {} values, expected {len}",
            values.len()
        )));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(SileroError::InvalidOutput(
            "the new state holds NaN or infinity".into(),
        ));
    }
    Ok(())
}

/// One single-threaded session (inference runs on the calling thread; sessions are many,
/// cores are few).
fn build_session(env: &ort::environment::Environment, model: &Path) -> Result<Session, String> {
    let text = |e: ort::Error<_>| e.to_string();
    Session::builder(env)
        .map_err(|e| e.to_string())?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(text)?
        .with_intra_threads(1)
        .map_err(text)?
        .with_inter_threads(1)
        .map_err(text)?
        .with_intra_op_spinning(false)
        .map_err(text)?
        .commit_from_file(model)
        .map_err(|e| e.to_string())
}

/// Checks that the model has Silero's inputs and outputs.
fn check_io(session: &Session) -> Result<(), String> {
    let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    for name in ["input", "state", "sr"] {
        if !inputs.contains(&name) {
            return Err(format!(
                "not a Silero VAD v5/v6 model: no `{name}` input (inputs: {inputs:?})"
            ));
        }
    }
    for name in ["output", "stateN"] {
        if !outputs.contains(&name) {
            return Err(format!(
                "not a Silero VAD v5/v6 model: no `{name}` output (outputs: {outputs:?})"
            ));
        }
    }
    Ok(())
}

/// Checks that `path` is a file and, when `sha256` is given, that it has this sum.
fn check_file(
    what: &'static str,
    path: &Path,
    env: &'static str,
    sha256: Option<&str>,
) -> Result<(), SileroError> {
    if !path.is_file() {
        return Err(SileroError::MissingFile {
            what,
            path: path.to_path_buf(),
            env,
        });
    }
    let Some(expected) = sha256 else {
        return Ok(());
    };
    // Hash each file once per process (35 MB of runtime library), unless it changed since.
    static VERIFIED: Mutex<Vec<(PathBuf, u64, Option<std::time::SystemTime>)>> =
        Mutex::new(Vec::new());
    let stamp = std::fs::metadata(path)
        .map(|m| (m.len(), m.modified().ok()))
        .map_err(|source| SileroError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let key = (path.to_path_buf(), stamp.0, stamp.1);
    if lock(&VERIFIED).contains(&key) {
        return Ok(());
    }
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(SileroError::Checksum {
            what,
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    lock(&VERIFIED).push(key);
    Ok(())
}

/// The SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, SileroError> {
    let io_error = |source| SileroError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep using it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_outputs_are_rejected() {
        assert!(check_probabilities(&[0.0, 0.5, 1.0], 3).is_ok());
        for bad in [f32::NAN, -0.01, 1.01, f32::INFINITY, f32::NEG_INFINITY] {
            let err = check_probabilities(&[0.5, bad], 2).unwrap_err();
            assert!(matches!(err, SileroError::InvalidOutput(_)), "{bad}");
            assert!(err.to_string().contains("not in [0, 1]"), "{err}");
        }
        assert!(check_probabilities(&[0.5], 2).is_err());
        assert!(check_state(&[0.0; 256], 256).is_ok());
        assert!(check_state(&[0.0; 255], 256).is_err());
        let mut state = [0.0f32; 256];
        state[17] = f32::NAN;
        assert!(check_state(&state, 256).is_err());
        // Converted for the VAD layer, it is a model error naming the cause.
        let err: VadError =
            SileroError::InvalidOutput("probability NaN is not in [0, 1]".into()).into();
        assert!(matches!(err, VadError::Model(_)));
        assert!(err.to_string().contains("NaN"));
    }

    #[test]
    fn non_finite_samples_become_silence() {
        let mut dst = [1.0f32; 4];
        copy_finite(&mut dst, &[0.5, f32::NAN, f32::INFINITY, -0.25]);
        assert_eq!(dst, [0.5, 0.0, 0.0, -0.25]);
    }
}
