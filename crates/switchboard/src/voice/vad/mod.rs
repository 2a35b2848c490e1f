//! Voice activity detection: the object-safe [`Vad`] trait, per-session [`VadStream`]s and the
//! speech/silence state machine every model shares.
//!
//! A [`Vad`] is shared by all sessions (`Arc<dyn Vad>`); each session opens its own
//! [`VadStream`] with [`Vad::stream`], pushes its audio frames into it and gets
//! [`VadEvent`]s back. Timestamps are **audio time**: the position in the stream's audio,
//! counted in samples from the first pushed frame, never the wall clock, so results are the
//! same however fast audio arrives.
//!
//! The model and the decisions are separate. A [`VadModel`] only turns a window of 16 kHz
//! mono audio into a speech probability (Silero: 512 samples, 32 ms). [`ModelVad`] wraps any
//! model with the stream machinery: mixing down to mono, resampling to the model's rate,
//! cutting windows, and the hysteresis state machine configured by [`VadOptions`]
//! (activation/deactivation thresholds, minimum speech and silence durations, prefix padding).
//! That machinery is tested here with [`ScriptedVadModel`], whose probabilities are written
//! by the test. [`EnergyVadModel`] is a dependency-free fallback model; Silero lives in the
//! `switchboard-silero` crate.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use switchboard::voice::audio::AudioFrame;
//! use switchboard::voice::vad::{ModelVad, ScriptedVadModel, Vad, VadEvent, VadOptions};
//!
//! // 5 silent windows, 10 speech windows, then silence (each window is 32 ms at 16 kHz).
//! let model = ScriptedVadModel::from_runs(&[(0.1, 5), (0.9, 10), (0.05, 40)]);
//! let vad = ModelVad::new(Arc::new(model), VadOptions::default()).unwrap();
//! let mut stream = vad.stream();
//! let events = stream.push(&AudioFrame::silence(Duration::from_secs(2), 16_000, 1).unwrap()).unwrap();
//! let boundaries: Vec<String> = events.iter().filter_map(|e| match e {
//!     VadEvent::StartOfSpeech { at, .. } => Some(format!("start {at:?}")),
//!     VadEvent::EndOfSpeech { at, speech_duration, .. } => Some(format!("end {at:?} after {speech_duration:?}")),
//!     _ => None,
//! }).collect();
//! assert_eq!(boundaries, ["start 160ms", "end 480ms after 320ms"]);
//! ```

mod energy;
mod machine;
mod scripted;
mod stream;

pub use energy::EnergyVadModel;
pub use scripted::ScriptedVadModel;
pub use stream::{ModelVad, ModelVadStream};

use std::time::Duration;

use crate::voice::audio::{AudioError, AudioFrame};

/// A voice activity detector shared by many sessions. Object-safe: hold it as `Arc<dyn Vad>`.
pub trait Vad: Send + Sync + 'static {
    /// A short name for logs and metrics, e.g. `silero`.
    fn name(&self) -> &str;

    /// The options the detector's streams use.
    fn options(&self) -> &VadOptions;

    /// Opens a stream for one session. Streams are independent: each keeps its own model
    /// state, audio position and speech state.
    fn stream(&self) -> Box<dyn VadStream>;
}

/// One session's detection state. Push audio frames in order; events come back as soon as
/// the audio that decides them has been pushed.
pub trait VadStream: Send {
    /// Pushes a frame (any sample rate and channel count; it is mixed down and resampled to
    /// the model's rate, and the format may change between frames). Returns the events the
    /// new audio decided, in audio-time order. An empty frame is a no-op.
    ///
    /// On error (bad audio, a model failure, a probability that is NaN or outside `[0, 1]`),
    /// the window that failed is skipped; events decided before it are returned by the next
    /// call, and the stream stays usable.
    fn push(&mut self, frame: &AudioFrame) -> Result<Vec<VadEvent>, VadError>;

    /// Ends the input: processes what is buffered, closes an open speech segment with an
    /// [`EndOfSpeech`](VadEvent::EndOfSpeech) at its last speech window, and resets the stream
    /// (the next push starts a new timeline at zero). A trailing partial window (less than
    /// one model window, 32 ms for Silero) is not analysed.
    fn flush(&mut self) -> Result<Vec<VadEvent>, VadError>;

    /// How much audio the stream has analysed since it started (or was flushed).
    fn position(&self) -> Duration;
}

/// What a [`VadStream`] reports. All times are audio time from the start of the stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum VadEvent {
    /// Speech started. Emitted once speech has lasted `min_speech_duration`; `at` is
    /// back-dated to the start of the first speech window.
    StartOfSpeech {
        /// Start of the first window whose probability reached the activation threshold.
        at: Duration,
        /// Probability of the window that confirmed the start.
        probability: f32,
    },
    /// Speech ended. Emitted once silence has lasted `min_silence_duration` (or at
    /// [`flush`](VadStream::flush)); `at` is back-dated to the end of the last speech window.
    EndOfSpeech {
        /// End of the last window whose probability stayed above the deactivation threshold.
        at: Duration,
        /// From the matching [`StartOfSpeech`](VadEvent::StartOfSpeech) to `at`.
        speech_duration: Duration,
        /// Probability of the window that confirmed the end.
        probability: f32,
        /// The speech, mono at the model's sample rate, starting `prefix_padding` before the
        /// speech start (or at the stream start) and ending at `at`. Capped at
        /// `prefix_padding + max_buffered_speech`.
        audio: AudioFrame,
    },
    /// One model inference (one per window), for metering and debugging.
    Inference {
        /// End of the analysed window.
        at: Duration,
        /// The window's speech probability.
        probability: f32,
    },
}

impl VadEvent {
    /// The event's audio time.
    pub fn at(&self) -> Duration {
        match self {
            VadEvent::StartOfSpeech { at, .. }
            | VadEvent::EndOfSpeech { at, .. }
            | VadEvent::Inference { at, .. } => *at,
        }
    }
}

/// Thresholds and durations of the speech state machine.
///
/// The defaults match LiveKit's Silero plugin: activation 0.5, deactivation 0.35 (activation
/// minus 0.15), at least 50 ms of speech to start, 550 ms of silence to end, 500 ms of audio
/// kept before the speech start, inference at 16 kHz.
#[derive(Debug, Clone, PartialEq)]
pub struct VadOptions {
    /// A window with at least this probability counts as speech while not speaking.
    pub activation_threshold: f32,
    /// While speaking, a window counts as speech as long as its probability stays at or
    /// above this. `None`: `activation_threshold - 0.15` (at least 0.01).
    pub deactivation_threshold: Option<f32>,
    /// Speech must last this long before [`VadEvent::StartOfSpeech`] is emitted.
    pub min_speech_duration: Duration,
    /// Silence must last this long before [`VadEvent::EndOfSpeech`] is emitted.
    pub min_silence_duration: Duration,
    /// Audio kept before the speech start in [`VadEvent::EndOfSpeech::audio`].
    pub prefix_padding: Duration,
    /// At most this much speech is kept in [`VadEvent::EndOfSpeech::audio`] (detection goes
    /// on beyond it).
    pub max_buffered_speech: Duration,
    /// The rate the model runs at (input is resampled to it). Silero supports 16,000 and
    /// 8,000.
    pub sample_rate: u32,
}

impl Default for VadOptions {
    fn default() -> Self {
        VadOptions {
            activation_threshold: 0.5,
            deactivation_threshold: None,
            min_speech_duration: Duration::from_millis(50),
            min_silence_duration: Duration::from_millis(550),
            prefix_padding: Duration::from_millis(500),
            max_buffered_speech: Duration::from_secs(60),
            sample_rate: 16_000,
        }
    }
}

impl VadOptions {
    /// The deactivation threshold in effect.
    pub fn effective_deactivation_threshold(&self) -> f32 {
        self.deactivation_threshold
            .unwrap_or((self.activation_threshold - 0.15).max(0.01))
    }

    /// Checks the options: thresholds in `(0, 1]`, deactivation not above activation, a
    /// sample rate between 1 Hz and 384 kHz, durations of at most one hour.
    pub fn validate(&self) -> Result<(), VadError> {
        let invalid = |message: String| Err(VadError::InvalidOptions(message));
        let activation = self.activation_threshold;
        if !(activation > 0.0 && activation <= 1.0) {
            return invalid(format!(
                "activation_threshold must be in (0, 1], got {activation}"
            ));
        }
        let deactivation = self.effective_deactivation_threshold();
        if !(deactivation > 0.0 && deactivation <= activation) {
            return invalid(format!(
                "deactivation_threshold must be in (0, activation_threshold = {activation}], got {deactivation}"
            ));
        }
        if self.sample_rate == 0 || self.sample_rate > crate::voice::audio::MAX_SAMPLE_RATE {
            return invalid(format!("invalid sample_rate {}", self.sample_rate));
        }
        let hour = Duration::from_secs(3_600);
        for (name, value) in [
            ("min_speech_duration", self.min_speech_duration),
            ("min_silence_duration", self.min_silence_duration),
            ("prefix_padding", self.prefix_padding),
            ("max_buffered_speech", self.max_buffered_speech),
        ] {
            if value > hour {
                return invalid(format!("{name} must be at most one hour, got {value:?}"));
            }
        }
        Ok(())
    }
}

/// A model that scores windows of mono audio with a speech probability. Shared by all
/// streams (`Arc<dyn VadModel>`); per-stream state lives in a [`VadModelState`].
pub trait VadModel: Send + Sync + 'static {
    /// A short name, e.g. `silero`.
    fn name(&self) -> &str;

    /// Whether the model can run at this sample rate.
    fn supports_sample_rate(&self, sample_rate: u32) -> bool;

    /// Samples per window at this (supported) rate, e.g. 512 for Silero at 16 kHz.
    fn window_size(&self, sample_rate: u32) -> usize;

    /// Fresh per-stream state (recurrent state, context samples) at this (supported) rate.
    fn new_state(&self, sample_rate: u32) -> Box<dyn VadModelState>;
}

/// The per-stream half of a [`VadModel`].
pub trait VadModelState: Send {
    /// Scores one window of exactly [`VadModel::window_size`] mono samples in `[-1, 1]`,
    /// returning the speech probability. A value that is NaN or outside `[0, 1]` is rejected
    /// by the caller as [`VadError::InvalidProbability`].
    fn predict(&mut self, window: &[f32]) -> Result<f32, VadError>;

    /// Forgets everything, as if new.
    fn reset(&mut self);
}

/// Errors of voice activity detection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VadError {
    /// [`VadOptions`] that cannot work.
    #[error("invalid VAD options: {0}")]
    InvalidOptions(String),
    /// The model does not run at the requested rate.
    #[error("the {model} VAD model does not support {sample_rate} Hz")]
    UnsupportedSampleRate {
        /// The model's name.
        model: String,
        /// The requested rate.
        sample_rate: u32,
    },
    /// The audio could not be converted.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The model returned NaN, infinity or a value outside `[0, 1]`.
    #[error(
        "the VAD model returned an invalid probability {value} for the window ending at {at:?}"
    )]
    InvalidProbability {
        /// The value returned.
        value: f32,
        /// End of the window, in audio time.
        at: Duration,
    },
    /// A window of the wrong size was given to a model.
    #[error("the VAD model expects windows of {expected} samples, got {got}")]
    WindowSize {
        /// The model's window size.
        expected: usize,
        /// The size given.
        got: usize,
    },
    /// The model failed.
    #[error("VAD model error: {0}")]
    Model(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl VadError {
    /// Wraps a model's own error.
    pub fn model(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        VadError::Model(Box::new(error))
    }
}

#[cfg(test)]
mod tests;
