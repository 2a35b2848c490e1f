//! Errors of loading a Piper voice.

use std::path::PathBuf;

use switchboard::voice::tts::TtsError;
use switchboard_silero::SileroError;

use crate::espeak::DEBIAN_PACKAGE;

pub(crate) const FIX: &str = "run scripts/setup.sh (or `switchboard setup`)";

/// What can go wrong while loading a Piper voice. Synthesis errors are
/// [`TtsError`]s in the audio stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PiperError {
    /// Neither the environment variables nor a home directory say where the files are.
    #[error(
        "cannot locate the Piper voice files: set {model} and {ort}, or {cache} (or HOME), then {FIX}",
        model = crate::MODEL_ENV,
        ort = crate::ORT_DYLIB_ENV,
        cache = crate::CACHE_ENV
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
        "{what} at {} has SHA-256 {actual}, expected {expected}: the file is corrupt or another version; delete it and {FIX} (to load another voice, set PiperOptions::verify_checksums to false)",
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
    /// The voice config (`*.onnx.json`) is not valid JSON or lacks what Piper needs.
    #[error("invalid Piper voice config {}: {message}; {FIX} to restore it", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// ONNX Runtime could not be loaded (see the message for the library and the fix).
    #[error(transparent)]
    Runtime(#[from] SileroError),
    /// The ONNX model could not be loaded, or is not a Piper voice.
    #[error("cannot load the Piper model {}: {message}; {FIX} to restore it", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The `espeak-ng` program (Piper's phonemiser) cannot be run.
    #[error(
        "cannot run `{}`: {message}; install the Debian package `{DEBIAN_PACKAGE}` (apt-get install {DEBIAN_PACKAGE}) or {FIX}",
        program.display()
    )]
    EspeakMissing {
        /// The program that was tried.
        program: PathBuf,
        /// What failed.
        message: String,
    },
    /// `espeak-ng` runs but rejected the voice's settings (e.g. an unknown espeak voice).
    #[error("espeak-ng failed for the voice's language `{voice}`: {message}")]
    Espeak {
        /// The espeak voice of the config.
        voice: String,
        /// What espeak-ng said.
        message: String,
    },
}

impl From<PiperError> for TtsError {
    fn from(error: PiperError) -> Self {
        TtsError::Model(error.to_string())
    }
}
