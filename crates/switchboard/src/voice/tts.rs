//! Text-to-speech: the object-safe [`Tts`] trait and its errors.
//!
//! A [`Tts`] is shared by all sessions (`Arc<dyn Tts>`). [`Tts::synthesize`] turns one piece
//! of text (the session sends a sentence at a time, cut by
//! [`SentenceTokenizer`](crate::voice::text::SentenceTokenizer) from the streaming LLM reply)
//! into a stream of audio frames, so playout can start with the first frame. The time from the
//! call to the first frame is the model's *time to first byte* (TTFB), reported in the
//! session's metrics.
//!
//! ```
//! use futures::StreamExt;
//! use switchboard::testing::ScriptedTts;
//! use switchboard::voice::tts::Tts;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let tts = ScriptedTts::new();
//! let mut audio = tts.synthesize("Your appointment is booked.");
//! let mut total = std::time::Duration::ZERO;
//! while let Some(frame) = audio.next().await {
//!     total += frame.unwrap().duration();
//! }
//! assert!(total > std::time::Duration::ZERO);
//! # });
//! ```

use std::pin::Pin;

use futures::Stream;

use crate::voice::audio::{AudioError, AudioFrame};

/// What can go wrong in text-to-speech.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TtsError {
    /// The model failed (inference error, corrupt weights, a phonemiser that crashed).
    #[error("text-to-speech model failed: {0}")]
    Model(String),
    /// A connection to a hosted model failed or timed out.
    #[error("text-to-speech connection failed: {message}")]
    Connection {
        /// What happened (never contains credentials).
        message: String,
        /// Whether retrying may help.
        retryable: bool,
    },
    /// The model produced audio the framework cannot use.
    #[error("text-to-speech produced bad audio: {0}")]
    BadAudio(String),
}

impl TtsError {
    /// Whether retrying the same text may help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TtsError::Connection {
                retryable: true,
                ..
            }
        )
    }
}

impl From<AudioError> for TtsError {
    fn from(error: AudioError) -> Self {
        TtsError::BadAudio(error.to_string())
    }
}

/// The audio of one synthesis, in order. Frames may have any size; they all share the
/// model's [`sample_rate`](Tts::sample_rate) and channel count.
pub type TtsStream = Pin<Box<dyn Stream<Item = Result<AudioFrame, TtsError>> + Send>>;

/// A text-to-speech model shared by many sessions. Object-safe: hold it as `Arc<dyn Tts>`.
pub trait Tts: Send + Sync + 'static {
    /// A short name for logs and metrics, e.g. `piper-joe`.
    fn name(&self) -> &str;

    /// The sample rate of the frames the model produces.
    fn sample_rate(&self) -> u32;

    /// The channel count of the frames the model produces (almost always 1).
    fn channels(&self) -> u16 {
        1
    }

    /// Synthesises `text` (plain text: markdown and emoji are filtered before the session
    /// calls this). An empty text yields an empty stream. A failure mid-way ends the stream
    /// with the error after the audio produced so far.
    fn synthesize(&self, text: &str) -> TtsStream;
}
