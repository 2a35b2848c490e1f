//! Speech-to-text: the object-safe [`Stt`] trait, its transcripts and errors.
//!
//! An [`Stt`] is shared by all sessions (`Arc<dyn Stt>`). Two shapes exist:
//!
//! - **Non-streaming** models (Whisper) transcribe one finished utterance with
//!   [`Stt::recognize`]. The session cuts utterances with its VAD and sends each one when the
//!   VAD reports the end of speech, so a non-streaming model yields one
//!   [`SpeechEvent::Final`] per utterance.
//! - **Streaming** models (hosted recognisers over a WebSocket) return an [`SttStream`] from
//!   [`Stt::stream`]: audio goes in through [`SttInput::push`], interim and final transcripts
//!   come out as [`SpeechEvent`]s while the caller is still speaking.
//!
//! ```
//! use std::time::Duration;
//! use switchboard::testing::ScriptedStt;
//! use switchboard::voice::audio::AudioFrame;
//! use switchboard::voice::stt::{RecognizeOptions, Stt};
//!
//! # tokio_test_block_on(async {
//! let stt = ScriptedStt::new(["I'd like to book a cleaning"]);
//! let audio = AudioFrame::silence(Duration::from_millis(1500), 16_000, 1).unwrap();
//! let speech = stt.recognize(audio, &RecognizeOptions::default()).await.unwrap();
//! assert_eq!(speech.text, "I'd like to book a cleaning");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;

use crate::voice::audio::{AudioError, AudioFrame};

/// A transcript of (part of) an utterance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpeechData {
    /// The recognised text, trimmed.
    pub text: String,
    /// BCP-47 language code when the model reports one.
    pub language: Option<String>,
    /// Model confidence in `[0, 1]` when it reports one.
    pub confidence: Option<f32>,
    /// Start of the speech in the stream's audio time, when known.
    pub start: Option<Duration>,
    /// End of the speech in the stream's audio time, when known.
    pub end: Option<Duration>,
}

impl SpeechData {
    /// A transcript with only its text.
    pub fn text(text: impl Into<String>) -> Self {
        SpeechData {
            text: text.into().trim().to_owned(),
            ..SpeechData::default()
        }
    }
}

/// What a streaming recogniser reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SpeechEvent {
    /// The recogniser heard speech start (streaming models with their own endpointing).
    StartOfSpeech,
    /// A transcript that may still change.
    Interim(SpeechData),
    /// A transcript that will not change; the session appends it to the user's turn.
    Final(SpeechData),
    /// The recogniser decided the utterance ended (its own end-of-utterance signal, used by
    /// the `stt` turn-detection mode).
    EndOfSpeech,
    /// Audio billed so far, for usage metrics.
    Usage {
        /// Seconds of audio processed.
        audio: Duration,
    },
}

/// What can go wrong in speech-to-text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SttError {
    /// The audio cannot be transcribed (empty, wrong format, undecodable).
    #[error("audio rejected by the speech-to-text model: {0}")]
    BadAudio(String),
    /// The model failed (inference error, corrupt weights, garbage output).
    #[error("speech-to-text model failed: {0}")]
    Model(String),
    /// A connection to a hosted model failed or timed out.
    #[error("speech-to-text connection failed: {message}")]
    Connection {
        /// What happened (never contains credentials).
        message: String,
        /// Whether retrying may help.
        retryable: bool,
    },
    /// The stream closed before the input ended.
    #[error("speech-to-text stream closed unexpectedly")]
    Closed,
    /// This model does not support the requested mode (e.g. streaming).
    #[error("not supported by this speech-to-text model: {0}")]
    Unsupported(String),
}

impl SttError {
    /// Whether the session may retry or reconnect after this error.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SttError::Connection {
                retryable: true,
                ..
            } | SttError::Closed
        )
    }
}

impl From<AudioError> for SttError {
    fn from(error: AudioError) -> Self {
        SttError::BadAudio(error.to_string())
    }
}

/// Options for one recognition.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RecognizeOptions {
    /// Expected language (BCP-47, e.g. `en`); `None` lets the model detect it.
    pub language: Option<String>,
}

impl RecognizeOptions {
    /// Options with a fixed language.
    pub fn language(language: impl Into<String>) -> Self {
        RecognizeOptions {
            language: Some(language.into()),
        }
    }
}

/// What a streaming or non-streaming model can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SttCapabilities {
    /// [`Stt::stream`] is supported.
    pub streaming: bool,
    /// Streams send [`SpeechEvent::Interim`] transcripts.
    pub interim_results: bool,
}

/// The future returned by [`Stt::recognize`].
pub type RecognizeFuture = Pin<Box<dyn Future<Output = Result<SpeechData, SttError>> + Send>>;

/// The events of a streaming recognition, in order.
pub type SpeechEventStream = Pin<Box<dyn Stream<Item = Result<SpeechEvent, SttError>> + Send>>;

/// A speech-to-text model shared by many sessions. Object-safe: hold it as `Arc<dyn Stt>`.
pub trait Stt: Send + Sync + 'static {
    /// A short name for logs and metrics, e.g. `whisper-base`.
    fn name(&self) -> &str;

    /// What the model supports.
    fn capabilities(&self) -> SttCapabilities;

    /// Transcribes one finished utterance (any sample rate and channel count; models resample
    /// as they need). An empty or undecodable clip fails with [`SttError::BadAudio`].
    fn recognize(&self, audio: AudioFrame, options: &RecognizeOptions) -> RecognizeFuture;

    /// Opens a streaming recognition. The default reports [`SttError::Unsupported`]; the
    /// session then uses [`recognize`](Stt::recognize) on VAD-cut utterances.
    fn stream(&self, options: &RecognizeOptions) -> Result<SttStream, SttError> {
        let _ = options;
        Err(SttError::Unsupported("streaming recognition".into()))
    }
}

/// The audio side of a streaming recognition.
pub trait SttInput: Send {
    /// Sends audio. Fails with [`SttError::Closed`] once the stream has ended.
    fn push(&mut self, frame: &AudioFrame) -> Result<(), SttError>;

    /// Asks the model to finalise what it has heard so far (e.g. on a VAD end of speech).
    fn flush(&mut self) -> Result<(), SttError>;

    /// Ends the input; the event stream ends after the last transcript.
    fn end(&mut self);
}

/// A streaming recognition: push audio into `input`, read `events`. The two halves are
/// separate so one task can feed audio while another awaits transcripts.
pub struct SttStream {
    /// Where audio goes.
    pub input: Box<dyn SttInput>,
    /// What comes back.
    pub events: SpeechEventStream,
}

impl std::fmt::Debug for SttStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SttStream { .. }")
    }
}
