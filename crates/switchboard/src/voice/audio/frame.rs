use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{AudioError, f32_to_i16, i16_to_f32};

/// The highest sample rate a frame may have.
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// The most channels a frame may have.
pub const MAX_CHANNELS: u16 = 32;

/// A block of interleaved signed 16-bit PCM audio.
///
/// The samples are shared (`Arc<[i16]>`), so clones are cheap. A frame always holds whole
/// sample frames (one sample per channel); it may be empty.
#[derive(Clone, PartialEq, Eq)]
pub struct AudioFrame {
    data: Arc<[i16]>,
    sample_rate: u32,
    channels: u16,
}

impl AudioFrame {
    /// A frame from interleaved samples. Fails if the rate or channel count is out of range, or
    /// if the samples do not divide into whole frames.
    pub fn new(
        data: impl Into<Arc<[i16]>>,
        sample_rate: u32,
        channels: u16,
    ) -> Result<Self, AudioError> {
        validate_format(sample_rate, channels)?;
        let data = data.into();
        if !data.len().is_multiple_of(usize::from(channels)) {
            return Err(AudioError::PartialFrame {
                len: data.len(),
                channels,
            });
        }
        Ok(AudioFrame {
            data,
            sample_rate,
            channels,
        })
    }

    /// A frame from parts the caller has already validated (format in range, whole sample
    /// frames).
    pub(crate) fn from_parts(data: Arc<[i16]>, sample_rate: u32, channels: u16) -> Self {
        debug_assert!(validate_format(sample_rate, channels).is_ok());
        debug_assert_eq!(data.len() % usize::from(channels), 0);
        AudioFrame {
            data,
            sample_rate,
            channels,
        }
    }

    /// An empty frame of this format.
    pub fn empty(sample_rate: u32, channels: u16) -> Result<Self, AudioError> {
        Self::new(Vec::new(), sample_rate, channels)
    }

    /// `duration` of digital silence (rounded to whole samples).
    pub fn silence(
        duration: Duration,
        sample_rate: u32,
        channels: u16,
    ) -> Result<Self, AudioError> {
        validate_format(sample_rate, channels)?;
        let frames = samples_in(duration, sample_rate);
        let len = usize::try_from(frames)
            .ok()
            .and_then(|f| f.checked_mul(usize::from(channels)))
            .filter(|&len| len <= MAX_FRAME_SAMPLES)
            .ok_or(AudioError::InvalidFrameDuration {
                duration,
                sample_rate,
            })?;
        Self::new(vec![0i16; len], sample_rate, channels)
    }

    /// A frame from interleaved `f32` samples in `[-1, 1]`. Out-of-range values are clamped and
    /// NaN becomes silence.
    pub fn from_f32(samples: &[f32], sample_rate: u32, channels: u16) -> Result<Self, AudioError> {
        let data: Vec<i16> = samples.iter().map(|&s| f32_to_i16(s)).collect();
        Self::new(data, sample_rate, channels)
    }

    /// Joins frames of one format end to end. Fails if their formats differ; an empty list
    /// gives an empty frame of `sample_rate` and `channels`.
    pub fn concat(
        frames: &[AudioFrame],
        sample_rate: u32,
        channels: u16,
    ) -> Result<Self, AudioError> {
        validate_format(sample_rate, channels)?;
        let mut data = Vec::with_capacity(frames.iter().map(|f| f.data.len()).sum());
        for frame in frames {
            frame.expect_format(sample_rate, channels)?;
            data.extend_from_slice(&frame.data);
        }
        Self::new(data, sample_rate, channels)
    }

    /// The interleaved samples.
    pub fn data(&self) -> &[i16] {
        &self.data
    }

    /// The shared sample buffer.
    pub fn shared_data(&self) -> &Arc<[i16]> {
        &self.data
    }

    /// Samples per second (per channel).
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Number of interleaved channels.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Number of sample frames (samples per channel).
    pub fn samples_per_channel(&self) -> usize {
        self.data.len() / usize::from(self.channels)
    }

    /// Whether the frame holds no samples.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// How long the frame plays (exact to the nanosecond, rounded down).
    pub fn duration(&self) -> Duration {
        duration_of(self.samples_per_channel() as u64, self.sample_rate)
    }

    /// The frame mixed down to one channel (the mean of the channels, rounded to nearest).
    /// A mono frame is returned as is (sharing its samples).
    pub fn to_mono(&self) -> AudioFrame {
        if self.channels == 1 {
            return self.clone();
        }
        let channels = usize::from(self.channels);
        let count = i32::from(self.channels);
        let data: Vec<i16> = self
            .data
            .chunks_exact(channels)
            .map(|frame| {
                let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
                // Round half away from zero; the mean of i16 values always fits in i16.
                let mean = (sum * 2 + sum.signum() * count) / (2 * count);
                mean.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
            })
            .collect();
        AudioFrame {
            data: data.into(),
            sample_rate: self.sample_rate,
            channels: 1,
        }
    }

    /// Appends the frame, mixed down to mono, as `f32` samples in `[-1, 1)` to `out`.
    pub fn mix_to_mono_f32(&self, out: &mut Vec<f32>) {
        let channels = usize::from(self.channels);
        if channels == 1 {
            out.extend(self.data.iter().map(|&s| i16_to_f32(s)));
            return;
        }
        let scale = 1.0 / (32_768.0 * channels as f32);
        out.extend(self.data.chunks_exact(channels).map(|frame| {
            let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
            sum as f32 * scale
        }));
    }

    /// Appends the interleaved samples as `f32` in `[-1, 1)` to `out`.
    pub fn to_f32_into(&self, out: &mut Vec<f32>) {
        out.extend(self.data.iter().map(|&s| i16_to_f32(s)));
    }

    /// Fails with [`AudioError::FormatMismatch`] unless the frame has this rate and channel
    /// count.
    pub fn expect_format(&self, sample_rate: u32, channels: u16) -> Result<(), AudioError> {
        if self.sample_rate == sample_rate && self.channels == channels {
            Ok(())
        } else {
            Err(AudioError::FormatMismatch {
                got_rate: self.sample_rate,
                got_channels: self.channels,
                expected_rate: sample_rate,
                expected_channels: channels,
            })
        }
    }
}

impl fmt::Debug for AudioFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioFrame")
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .field("samples_per_channel", &self.samples_per_channel())
            .field("duration", &self.duration())
            .finish()
    }
}

/// The most samples a generated frame ([`AudioFrame::silence`]) may hold: one hour of 48 kHz
/// stereo. Frames built from data the caller already holds have no such limit.
const MAX_FRAME_SAMPLES: usize = 48_000 * 2 * 3_600;

pub(crate) fn validate_format(sample_rate: u32, channels: u16) -> Result<(), AudioError> {
    if sample_rate == 0 || sample_rate > MAX_SAMPLE_RATE {
        return Err(AudioError::InvalidSampleRate(sample_rate));
    }
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(AudioError::InvalidChannels(channels));
    }
    Ok(())
}

/// The duration of `samples` sample frames at `sample_rate` (rounded down to the nanosecond).
/// A rate of zero gives zero.
pub fn duration_of(samples: u64, sample_rate: u32) -> Duration {
    if sample_rate == 0 {
        return Duration::ZERO;
    }
    let nanos = u128::from(samples) * 1_000_000_000 / u128::from(sample_rate);
    let secs = (nanos / 1_000_000_000).min(u128::from(u64::MAX)) as u64;
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

/// How many sample frames `duration` holds at `sample_rate`, rounded to the nearest.
pub fn samples_in(duration: Duration, sample_rate: u32) -> u64 {
    let scaled = duration.as_nanos() * u128::from(sample_rate);
    ((scaled + 500_000_000) / 1_000_000_000).min(u128::from(u64::MAX)) as u64
}
