//! Local Whisper speech-to-text for Switchboard: whisper.cpp (through
//! [`whisper-rs`](https://docs.rs/whisper-rs)) behind [`switchboard::voice::stt::Stt`].
//!
//! The model is OpenAI's Whisper **base** (multilingual, MIT). The package registries ship it
//! only in CTranslate2 (faster-whisper) format, so this crate carries a converter,
//! [`convert_ct2_to_ggml`], that writes whisper.cpp's ggml file from the CTranslate2
//! `model.bin` and the mel filters and vocabulary of the `openai-whisper` package.
//! `scripts/setup.sh` installs the inputs into `${SWITCHBOARD_CACHE:-~/.cache/switchboard}`;
//! the first [`WhisperStt::load`] converts them (about 1 s) into
//! `whisper-base-ggml/ggml-base.bin` and later loads reuse that file.
//!
//! [`WhisperStt`] is loaded once per process and shared by all sessions (`Arc<dyn Stt>`).
//! Each [`recognize`](switchboard::voice::stt::Stt::recognize) resamples the utterance to 16 kHz mono and runs one
//! greedy decoding on a blocking thread, with the encoder window fitted to the clip (a 3 s
//! utterance costs about 0.5 s of CPU on one thread instead of 4 s for the full 30 s window).
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard::voice::audio::read_wav;
//! use switchboard::voice::stt::{RecognizeOptions, Stt};
//! use switchboard_whisper::WhisperStt;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let whisper = WhisperStt::from_env()?; // converts the model on first use
//! let stt: Arc<dyn Stt> = whisper.clone();
//! let audio = read_wav("utterance.wav")?; // any rate and channel count
//! let speech = stt.recognize(audio, &RecognizeOptions::language("en")).await?;
//! println!("{}", speech.text);
//!
//! // Blocking, for command-line use:
//! let text = whisper.transcribe(&read_wav("utterance.wav")?)?;
//! # let _ = text;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod convert;
mod ct2;
mod ggml;
mod npy;
mod stt;
mod tiktoken;

use std::path::{Path, PathBuf};

pub use convert::{ConvertReport, ModelHparams, convert_ct2_to_ggml};
pub use stt::{WhisperOptions, WhisperStt};

/// Environment variable naming the directory of the CTranslate2 model (`model.bin`).
pub const CT2_DIR_ENV: &str = "SWITCHBOARD_WHISPER_CT2_DIR";
/// Environment variable naming the directory of the openai-whisper assets
/// (`mel_filters.npz`, `multilingual.tiktoken`, `gpt2.tiktoken`).
pub const ASSETS_ENV: &str = "SWITCHBOARD_WHISPER_ASSETS";
/// Environment variable naming the whisper.cpp ggml model (the conversion's output, or any
/// ggml Whisper model to use instead).
pub const GGML_ENV: &str = "SWITCHBOARD_WHISPER_GGML";
/// Environment variable setting the number of inference threads (default 1).
pub const THREADS_ENV: &str = "SWITCHBOARD_WHISPER_THREADS";
/// Environment variable naming the setup cache (default `$HOME/.cache/switchboard`).
pub const CACHE_ENV: &str = switchboard::cache::CACHE_ENV;

/// Where `scripts/setup.sh` puts the CTranslate2 model, relative to the cache.
pub const CT2_DIR_IN_CACHE: &str = "whisper-base-ct2";
/// Where `scripts/setup.sh` puts the openai-whisper assets, relative to the cache.
pub const ASSETS_IN_CACHE: &str = "openai-whisper-assets";
/// Where the converted model goes, relative to the cache.
pub const GGML_IN_CACHE: &str = "whisper-base-ggml/ggml-base.bin";

/// The CTranslate2 weights file inside the model directory.
pub const CT2_MODEL_FILE: &str = "model.bin";
/// The mel filter bank inside the assets directory.
pub const MEL_FILTERS_FILE: &str = "mel_filters.npz";
/// The multilingual vocabulary inside the assets directory.
pub const MULTILINGUAL_VOCAB_FILE: &str = "multilingual.tiktoken";
/// The English-only vocabulary inside the assets directory.
pub const GPT2_VOCAB_FILE: &str = "gpt2.tiktoken";

const FIX: &str = "run `switchboard setup` or scripts/setup.sh";

/// Errors of converting, loading and running Whisper.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WhisperError {
    /// Neither the environment variables nor a home directory say where the files are.
    #[error(
        "cannot locate the Whisper model: set {GGML_ENV}, or {CT2_DIR_ENV} and {ASSETS_ENV}, or {CACHE_ENV} (or HOME), then {FIX}"
    )]
    NotConfigured,
    /// A file is missing.
    #[error("{what} not found at {}: {FIX} (or set {env})", path.display())]
    MissingFile {
        /// Which file.
        what: &'static str,
        /// Where it was expected.
        path: PathBuf,
        /// The variable that overrides its location.
        env: &'static str,
    },
    /// Neither the ggml model nor the CTranslate2 model to convert it from exists.
    #[error(
        "Whisper model not found: neither {} nor the CTranslate2 model to convert it from, {}, exists: {FIX} (or set {GGML_ENV} or {CT2_DIR_ENV})",
        ggml.display(),
        ct2.display()
    )]
    MissingModel {
        /// The ggml model that was looked for.
        ggml: PathBuf,
        /// The CTranslate2 `model.bin` that was looked for.
        ct2: PathBuf,
    },
    /// A file could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, `create`...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is truncated or not in the expected format.
    #[error(
        "{} is not a valid {what}: {message}; delete it and {FIX}",
        path.display()
    )]
    Corrupt {
        /// What the file should be.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A well-formed model this crate cannot use (e.g. an int8-quantized CTranslate2 model).
    #[error("{} is not supported: {message}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// whisper.cpp could not load the model or create its inference state.
    #[error("whisper.cpp cannot load {}: {message}; delete it and {FIX}", path.display())]
    Load {
        /// The ggml model.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The audio cannot be transcribed (empty, too short, not convertible to 16 kHz).
    #[error("audio rejected by Whisper: {0}")]
    BadAudio(String),
    /// A language Whisper does not know.
    #[error(
        "Whisper does not know the language `{0}` (use an ISO 639-1 code such as `en`, or `auto`)"
    )]
    UnknownLanguage(String),
    /// Inference failed.
    #[error("Whisper inference failed: {0}")]
    Inference(String),
    /// The recognition was cancelled (its future was dropped).
    #[error("Whisper inference was cancelled")]
    Cancelled,
}

impl WhisperError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        WhisperError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn corrupt(what: &'static str, path: &Path, message: impl Into<String>) -> Self {
        WhisperError::Corrupt {
            what,
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// Where the model files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhisperPaths {
    /// Directory of the CTranslate2 model (holds `model.bin`); the conversion's input.
    pub ct2_dir: PathBuf,
    /// Directory of `mel_filters.npz`, `multilingual.tiktoken` and `gpt2.tiktoken`.
    pub assets_dir: PathBuf,
    /// The whisper.cpp ggml model: loaded when present, else converted into.
    pub ggml: PathBuf,
}

impl WhisperPaths {
    /// The paths `scripts/setup.sh` and the lazy conversion use under `cache`.
    pub fn in_cache(cache: &Path) -> Self {
        WhisperPaths {
            ct2_dir: cache.join(CT2_DIR_IN_CACHE),
            assets_dir: cache.join(ASSETS_IN_CACHE),
            ggml: cache.join(GGML_IN_CACHE),
        }
    }

    /// Resolves the paths: [`CT2_DIR_ENV`], [`ASSETS_ENV`] and [`GGML_ENV`] when set, else the
    /// setup cache ([`CACHE_ENV`], default `$HOME/.cache/switchboard`). Files are not checked
    /// here.
    pub fn from_env() -> Result<Self, WhisperError> {
        let var = switchboard::cache::path_var;
        let cached = cache_dir().map(|dir| Self::in_cache(&dir));
        let ct2_dir = var(CT2_DIR_ENV).or_else(|| cached.as_ref().map(|c| c.ct2_dir.clone()));
        let assets_dir = var(ASSETS_ENV).or_else(|| cached.as_ref().map(|c| c.assets_dir.clone()));
        let ggml = var(GGML_ENV).or_else(|| cached.map(|c| c.ggml));
        match (ct2_dir, assets_dir, ggml) {
            (Some(ct2_dir), Some(assets_dir), Some(ggml)) => Ok(WhisperPaths {
                ct2_dir,
                assets_dir,
                ggml,
            }),
            _ => Err(WhisperError::NotConfigured),
        }
    }

    /// The CTranslate2 weights, `ct2_dir/model.bin`.
    pub fn ct2_model(&self) -> PathBuf {
        self.ct2_dir.join(CT2_MODEL_FILE)
    }
}

/// The setup cache: [`CACHE_ENV`], else `$HOME/.cache/switchboard`.
pub fn cache_dir() -> Option<PathBuf> {
    switchboard::cache::cache_dir()
}
