//! Audio frames, fixed-size chunking, resampling and WAV files.
//!
//! Audio moves through the framework as [`AudioFrame`]s: interleaved signed 16-bit PCM with a
//! sample rate and a channel count, cheap to clone (the samples are shared). Constructors
//! validate their input and return an [`AudioError`] instead of panicking, so frames from a
//! network peer or a file can be built without checks of their own.
//!
//! ```
//! use std::time::Duration;
//! use switchboard::voice::audio::{AudioFrame, FrameChunker, Resampler};
//!
//! // 25 ms of 44.1 kHz stereo, from a device that delivers odd sizes.
//! let input = AudioFrame::new(vec![100i16; 1102 * 2], 44_100, 2).unwrap();
//! let mono = input.to_mono();
//! let mut resampler = Resampler::new(44_100, 16_000, 1).unwrap();
//! let mut chunker = FrameChunker::new(16_000, 1, Duration::from_millis(10)).unwrap();
//! let mut frames = chunker.push(&resampler.process(&mono).unwrap()).unwrap();
//! frames.extend(chunker.push(&resampler.flush().unwrap()).unwrap());
//! assert!(frames.iter().all(|f| f.samples_per_channel() == 160));
//! ```

mod chunker;
mod frame;
mod resample;
mod wav;

pub use chunker::FrameChunker;
pub use frame::{AudioFrame, MAX_CHANNELS, MAX_SAMPLE_RATE, duration_of, samples_in};
pub use resample::Resampler;
pub use wav::{
    OnTruncated, WavAudio, WavSampleFormat, decode_wav, encode_wav, read_wav, read_wav_from,
    write_wav,
};

use std::path::PathBuf;
use std::time::Duration;

/// What can go wrong with audio: invalid parameters, mismatched formats, unreadable files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// A sample rate of zero or above [`MAX_SAMPLE_RATE`].
    #[error("invalid sample rate {0} Hz (supported: 1 to {MAX_SAMPLE_RATE} Hz)")]
    InvalidSampleRate(u32),
    /// A channel count of zero or above [`MAX_CHANNELS`].
    #[error("invalid channel count {0} (supported: 1 to {MAX_CHANNELS})")]
    InvalidChannels(u16),
    /// Interleaved samples whose count is not a multiple of the channel count.
    #[error("{len} interleaved samples do not make whole frames of {channels} channels")]
    PartialFrame {
        /// Number of samples given.
        len: usize,
        /// Channel count.
        channels: u16,
    },
    /// A frame whose rate or channel count differs from what the consumer was set up for.
    #[error(
        "audio format mismatch: got {got_rate} Hz x {got_channels} ch, expected {expected_rate} Hz x {expected_channels} ch"
    )]
    FormatMismatch {
        /// The frame's sample rate.
        got_rate: u32,
        /// The frame's channel count.
        got_channels: u16,
        /// The expected sample rate.
        expected_rate: u32,
        /// The expected channel count.
        expected_channels: u16,
    },
    /// A frame duration that rounds to zero samples or is unreasonably long.
    #[error("invalid frame duration {duration:?} at {sample_rate} Hz")]
    InvalidFrameDuration {
        /// The requested duration.
        duration: Duration,
        /// The sample rate.
        sample_rate: u32,
    },
    /// The resampler could not be built or failed while processing.
    #[error("resampler ({from} Hz -> {to} Hz): {message}")]
    Resample {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
        /// What failed.
        message: String,
    },
    /// A file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A well-formed WAV file in a format this reader does not handle (e.g. ADPCM, 64-bit float).
    #[error("{name}: unsupported WAV format: {reason}")]
    UnsupportedWav {
        /// The file's name (or `<reader>`).
        name: String,
        /// Why.
        reason: String,
    },
    /// Data that is not a valid WAV file.
    #[error("{name}: not a valid WAV file: {reason}")]
    CorruptWav {
        /// The file's name (or `<reader>`).
        name: String,
        /// Why.
        reason: String,
    },
    /// A WAV file that ends before the length its header declares.
    #[error(
        "{name}: truncated WAV file: the header declares {declared} samples but only {read} could be read"
    )]
    TruncatedWav {
        /// The file's name (or `<reader>`).
        name: String,
        /// Samples (all channels) the header declares.
        declared: u64,
        /// Samples (all channels) actually present.
        read: u64,
    },
}

/// Converts one 16-bit sample to `f32` in `[-1, 1)`.
#[inline]
pub(crate) fn i16_to_f32(sample: i16) -> f32 {
    f32::from(sample) / 32_768.0
}

/// Converts one `f32` sample (nominally in `[-1, 1]`) to 16-bit, clamping out-of-range values
/// and mapping NaN to 0.
#[inline]
pub(crate) fn f32_to_i16(sample: f32) -> i16 {
    // `as` saturates and maps NaN to 0.
    (sample * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

#[cfg(test)]
mod tests;
