use std::time::Duration;

use super::frame::validate_format;
use super::{AudioError, AudioFrame, samples_in};

/// Cuts audio of arbitrary sizes into frames of a fixed size (e.g. 10, 20 or 32 ms), keeping
/// the remainder for the next push.
///
/// ```
/// use std::time::Duration;
/// use switchboard::voice::audio::{AudioFrame, FrameChunker};
///
/// let mut chunker = FrameChunker::new(16_000, 1, Duration::from_millis(20)).unwrap();
/// let frames = chunker.push(&AudioFrame::new(vec![0i16; 700], 16_000, 1).unwrap()).unwrap();
/// assert_eq!(frames.len(), 2); // 2 x 320 samples, 60 kept
/// assert_eq!(chunker.pending_samples_per_channel(), 60);
/// let rest = chunker.flush_padded().unwrap();
/// assert_eq!(rest.samples_per_channel(), 320);
/// ```
#[derive(Debug, Clone)]
pub struct FrameChunker {
    sample_rate: u32,
    channels: u16,
    samples_per_channel: usize,
    pending: Vec<i16>,
}

impl FrameChunker {
    /// A chunker producing frames of `frame_duration` (rounded to whole samples: 32 ms at
    /// 22,050 Hz is 706 samples). Fails if the format is invalid or the duration rounds to zero
    /// samples or exceeds 10 s.
    pub fn new(
        sample_rate: u32,
        channels: u16,
        frame_duration: Duration,
    ) -> Result<Self, AudioError> {
        validate_format(sample_rate, channels)?;
        let samples = samples_in(frame_duration, sample_rate);
        if samples == 0 || frame_duration > Duration::from_secs(10) {
            return Err(AudioError::InvalidFrameDuration {
                duration: frame_duration,
                sample_rate,
            });
        }
        Self::with_samples(sample_rate, channels, samples as usize)
    }

    /// A chunker producing frames of exactly `samples_per_channel` sample frames (e.g. 512 for
    /// Silero at 16 kHz).
    pub fn with_samples(
        sample_rate: u32,
        channels: u16,
        samples_per_channel: usize,
    ) -> Result<Self, AudioError> {
        validate_format(sample_rate, channels)?;
        if samples_per_channel == 0 || samples_per_channel > 10 * sample_rate as usize {
            return Err(AudioError::InvalidFrameDuration {
                duration: super::duration_of(samples_per_channel as u64, sample_rate),
                sample_rate,
            });
        }
        Ok(FrameChunker {
            sample_rate,
            channels,
            samples_per_channel,
            pending: Vec::new(),
        })
    }

    /// Sample frames per produced frame.
    pub fn samples_per_channel(&self) -> usize {
        self.samples_per_channel
    }

    /// Duration of a produced frame.
    pub fn frame_duration(&self) -> Duration {
        super::duration_of(self.samples_per_channel as u64, self.sample_rate)
    }

    /// Sample frames waiting for the next full frame.
    pub fn pending_samples_per_channel(&self) -> usize {
        self.pending.len() / usize::from(self.channels)
    }

    /// Adds a frame and returns every full frame now available. The frame must have the
    /// chunker's rate and channel count.
    pub fn push(&mut self, frame: &AudioFrame) -> Result<Vec<AudioFrame>, AudioError> {
        frame.expect_format(self.sample_rate, self.channels)?;
        Ok(self.push_interleaved(frame.data()))
    }

    /// Adds raw interleaved samples of the chunker's format and returns every full frame now
    /// available. Any length is accepted: a sample frame split across two calls is joined.
    pub fn push_interleaved(&mut self, samples: &[i16]) -> Vec<AudioFrame> {
        let frame_len = self.samples_per_channel * usize::from(self.channels);
        let mut out = Vec::new();
        let mut rest = samples;
        if !self.pending.is_empty() {
            let need = frame_len - self.pending.len();
            if rest.len() < need {
                self.pending.extend_from_slice(rest);
                return out;
            }
            self.pending.extend_from_slice(&rest[..need]);
            rest = &rest[need..];
            let full = std::mem::take(&mut self.pending);
            out.push(self.frame(full));
        }
        let mut chunks = rest.chunks_exact(frame_len);
        for chunk in &mut chunks {
            out.push(self.frame(chunk.to_vec()));
        }
        self.pending.extend_from_slice(chunks.remainder());
        out
    }

    /// Returns what is left (shorter than a full frame; whole sample frames only), or `None`
    /// when nothing is pending. A trailing partial sample frame is dropped.
    pub fn flush(&mut self) -> Option<AudioFrame> {
        let channels = usize::from(self.channels);
        let whole = self.pending.len() / channels * channels;
        self.pending.truncate(whole);
        if self.pending.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.pending);
        Some(self.frame(data))
    }

    /// Like [`flush`](Self::flush), but pads the remainder with silence to a full frame.
    pub fn flush_padded(&mut self) -> Option<AudioFrame> {
        let frame_len = self.samples_per_channel * usize::from(self.channels);
        let channels = usize::from(self.channels);
        let whole = self.pending.len() / channels * channels;
        self.pending.truncate(whole);
        if self.pending.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.pending);
        data.resize(frame_len, 0);
        Some(self.frame(data))
    }

    /// Drops anything pending.
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    fn frame(&self, data: Vec<i16>) -> AudioFrame {
        // The format was validated at construction and `data` holds whole sample frames.
        AudioFrame::from_parts(data.into(), self.sample_rate, self.channels)
    }
}
