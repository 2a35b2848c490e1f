use std::fmt;
use std::time::Duration;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Indexing, SincInterpolationParameters, WindowFunction,
};

use super::frame::validate_format;
use super::{AudioError, AudioFrame, duration_of, f32_to_i16};

/// Input chunk the resampler works on, as a fraction of a second (20 ms).
const CHUNK_PER_SECOND: u32 = 50;
/// Above this smallest FFT block (in input samples, as a fraction of a second: 100 ms) the
/// rates have too small a common divisor for the FFT resampler to stream with low latency, and
/// an asynchronous sinc resampler is used instead.
const MAX_FFT_BLOCK_PER_SECOND: u32 = 10;

/// A streaming sample-rate converter (any rate to any rate, any channel count) over
/// [rubato](https://docs.rs/rubato).
///
/// Push audio of any size with [`process`](Self::process); output comes out as soon as whole
/// internal chunks (20 ms) are available. The resampler's startup delay is removed, so output
/// sample `n` corresponds to input time `n / output_rate` (to within one input sample):
/// timestamps computed from output sample counts are in input time. [`flush`](Self::flush) at the end of the input returns the
/// rest, so that the total output is `ceil(input_len * output_rate / input_rate)` samples.
/// Equal rates pass the audio through untouched.
///
/// Rates with a usable common divisor (8, 11.025, 16, 22.05, 24, 32, 44.1, 48 kHz...) use
/// rubato's FFT resampler; unusual pairs (e.g. 44,101 Hz) use its asynchronous sinc resampler.
///
/// ```
/// use switchboard::voice::audio::{AudioFrame, Resampler};
///
/// let mut resampler = Resampler::new(48_000, 16_000, 2).unwrap();
/// let input = AudioFrame::new(vec![0i16; 4_800 * 2], 48_000, 2).unwrap(); // 100 ms
/// let mut out = resampler.process(&input).unwrap().samples_per_channel();
/// out += resampler.flush().unwrap().samples_per_channel();
/// assert_eq!(out, 1_600);
/// ```
pub struct Resampler {
    input_rate: u32,
    output_rate: u32,
    channels: u16,
    inner: Option<Inner>,
    scratch_in: Vec<f32>,
    scratch_out: Vec<f32>,
}

struct Inner {
    resampler: Box<dyn rubato::Resampler<f32>>,
    /// Interleaved input not consumed yet.
    pending: Vec<f32>,
    /// Output of one call, interleaved.
    out_buf: Vec<f32>,
    /// Output frames still to drop (the startup delay).
    to_trim: usize,
    /// Input frames received since the last reset.
    total_in: u64,
    /// Output frames returned since the last reset.
    total_out: u64,
}

impl Resampler {
    /// A resampler from `input_rate` to `output_rate` for interleaved audio of `channels`
    /// channels. Fails if a rate or the channel count is out of range.
    pub fn new(input_rate: u32, output_rate: u32, channels: u16) -> Result<Self, AudioError> {
        validate_format(input_rate, channels)?;
        validate_format(output_rate, channels)?;
        let inner = if input_rate == output_rate {
            None
        } else {
            Some(Inner::new(input_rate, output_rate, channels)?)
        };
        Ok(Resampler {
            input_rate,
            output_rate,
            channels,
            inner,
            scratch_in: Vec::new(),
            scratch_out: Vec::new(),
        })
    }

    /// The input sample rate.
    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }

    /// The output sample rate.
    pub fn output_rate(&self) -> u32 {
        self.output_rate
    }

    /// The channel count.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Whether the rates are equal and audio passes through untouched.
    pub fn is_passthrough(&self) -> bool {
        self.inner.is_none()
    }

    /// The longest a sample waits inside the resampler before it comes out (buffering of one
    /// input chunk plus the filter delay). Zero for a pass-through.
    pub fn latency(&self) -> Duration {
        match &self.inner {
            None => Duration::ZERO,
            Some(inner) => {
                duration_of(inner.resampler.input_frames_max() as u64, self.input_rate)
                    + duration_of(inner.resampler.output_delay() as u64, self.output_rate)
            }
        }
    }

    /// Resamples a frame, which must have the input rate and the channel count. The result may
    /// be empty (the input is buffered until a whole chunk is available).
    pub fn process(&mut self, frame: &AudioFrame) -> Result<AudioFrame, AudioError> {
        frame.expect_format(self.input_rate, self.channels)?;
        if self.inner.is_none() {
            return Ok(frame.clone());
        }
        let mut input = std::mem::take(&mut self.scratch_in);
        let mut output = std::mem::take(&mut self.scratch_out);
        input.clear();
        output.clear();
        frame.to_f32_into(&mut input);
        let result = self.process_f32(&input, &mut output);
        let frame = result.map(|()| self.to_frame(&output));
        self.scratch_in = input;
        self.scratch_out = output;
        frame
    }

    /// Resamples interleaved `f32` samples, appending the output to `out`. `input.len()` must
    /// be a multiple of the channel count.
    pub fn process_f32(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), AudioError> {
        let channels = usize::from(self.channels);
        if !input.len().is_multiple_of(channels) {
            return Err(AudioError::PartialFrame {
                len: input.len(),
                channels: self.channels,
            });
        }
        match &mut self.inner {
            None => {
                out.extend_from_slice(input);
                Ok(())
            }
            Some(inner) => inner
                .process(input, channels, out)
                .map_err(|message| self.error(message)),
        }
    }

    /// Ends the input: returns the remaining output, then resets for a new stream.
    pub fn flush(&mut self) -> Result<AudioFrame, AudioError> {
        let mut output = std::mem::take(&mut self.scratch_out);
        output.clear();
        let result = self.flush_f32(&mut output);
        let frame = result.map(|()| self.to_frame(&output));
        self.scratch_out = output;
        frame
    }

    /// Ends the input: appends the remaining output (interleaved `f32`) to `out`, then resets
    /// for a new stream.
    pub fn flush_f32(&mut self, out: &mut Vec<f32>) -> Result<(), AudioError> {
        let (input_rate, output_rate) = (self.input_rate, self.output_rate);
        let channels = usize::from(self.channels);
        match &mut self.inner {
            None => Ok(()),
            Some(inner) => {
                let result = inner.flush(channels, input_rate, output_rate, out);
                inner.reset();
                result.map_err(|message| self.error(message))
            }
        }
    }

    /// Drops buffered audio and starts a new stream.
    pub fn reset(&mut self) {
        if let Some(inner) = &mut self.inner {
            inner.reset();
        }
    }

    fn to_frame(&self, interleaved: &[f32]) -> AudioFrame {
        let data: Vec<i16> = interleaved.iter().map(|&s| f32_to_i16(s)).collect();
        AudioFrame::from_parts(data.into(), self.output_rate, self.channels)
    }

    fn error(&self, message: String) -> AudioError {
        AudioError::Resample {
            from: self.input_rate,
            to: self.output_rate,
            message,
        }
    }
}

impl fmt::Debug for Resampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resampler")
            .field("input_rate", &self.input_rate)
            .field("output_rate", &self.output_rate)
            .field("channels", &self.channels)
            .field("passthrough", &self.inner.is_none())
            .finish()
    }
}

impl Inner {
    fn new(input_rate: u32, output_rate: u32, channels: u16) -> Result<Self, AudioError> {
        let error = |message: String| AudioError::Resample {
            from: input_rate,
            to: output_rate,
            message,
        };
        let chunk = (input_rate / CHUNK_PER_SECOND).max(1) as usize;
        let gcd = gcd(input_rate, output_rate);
        let min_block = input_rate / gcd;
        let resampler: Box<dyn rubato::Resampler<f32>> =
            if min_block <= (input_rate / MAX_FFT_BLOCK_PER_SECOND).max(1) {
                let sub_chunks = smooth_sub_chunks(chunk, min_block, output_rate / gcd);
                Box::new(
                    Fft::<f32>::new_custom(
                        input_rate as usize,
                        output_rate as usize,
                        chunk,
                        sub_chunks,
                        usize::from(channels),
                        WindowFunction::BlackmanHarris2,
                        FixedSync::Input,
                    )
                    .map_err(|e| error(e.to_string()))?,
                )
            } else {
                let parameters = SincInterpolationParameters::default();
                Box::new(
                    Async::<f32>::new_sinc(
                        f64::from(output_rate) / f64::from(input_rate),
                        1.0,
                        &parameters,
                        chunk,
                        usize::from(channels),
                        FixedAsync::Input,
                    )
                    .map_err(|e| error(e.to_string()))?,
                )
            };
        let out_len = resampler.output_frames_max() * usize::from(channels);
        let to_trim = resampler.output_delay();
        Ok(Inner {
            resampler,
            pending: Vec::new(),
            out_buf: vec![0.0; out_len],
            to_trim,
            total_in: 0,
            total_out: 0,
        })
    }

    fn process(
        &mut self,
        input: &[f32],
        channels: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), String> {
        self.total_in += (input.len() / channels) as u64;
        self.pending.extend_from_slice(input);
        let mut offset = 0;
        let mut result = Ok(());
        loop {
            let need = self.resampler.input_frames_next();
            if self.pending.len() / channels - offset < need {
                break;
            }
            match self.run_chunk(offset, need, None, channels, out, u64::MAX) {
                Ok(used) => offset += used,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.pending.drain(..offset * channels);
        result
    }

    fn flush(
        &mut self,
        channels: usize,
        input_rate: u32,
        output_rate: u32,
        out: &mut Vec<f32>,
    ) -> Result<(), String> {
        let expected =
            (u128::from(self.total_in) * u128::from(output_rate)).div_ceil(u128::from(input_rate));
        let expected = u64::try_from(expected).unwrap_or(u64::MAX);
        let remaining = self.pending.len() / channels;
        if remaining > 0 {
            self.run_chunk(0, remaining, Some(remaining), channels, out, expected)?;
            self.pending.clear();
        }
        // Pump silence until the delayed tail has come out.
        let mut rounds = 0;
        while self.total_out < expected {
            rounds += 1;
            if rounds > 10_000 {
                return Err("the resampler stopped producing output while flushing".into());
            }
            self.run_chunk(0, 0, Some(0), channels, out, expected)?;
        }
        Ok(())
    }

    /// Processes one chunk of `frames` input frames from `pending[offset..]` (a partial chunk
    /// when `partial` is set), appends the output (after trimming the startup delay, and at
    /// most up to `limit` total output frames) and returns the input frames consumed.
    fn run_chunk(
        &mut self,
        offset: usize,
        frames: usize,
        partial: Option<usize>,
        channels: usize,
        out: &mut Vec<f32>,
        limit: u64,
    ) -> Result<usize, String> {
        let input = InterleavedSlice::new(&self.pending[offset * channels..], channels, frames)
            .map_err(|e| e.to_string())?;
        let out_frames = self.out_buf.len() / channels;
        let mut output = InterleavedSlice::new_mut(&mut self.out_buf[..], channels, out_frames)
            .map_err(|e| e.to_string())?;
        let indexing = partial.map(|len| Indexing::new().partial_len(len));
        let (used, produced) = self
            .resampler
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| e.to_string())?;
        let skip = produced.min(self.to_trim);
        self.to_trim -= skip;
        let room = limit.saturating_sub(self.total_out);
        let keep = ((produced - skip) as u64).min(room) as usize;
        out.extend_from_slice(&self.out_buf[skip * channels..(skip + keep) * channels]);
        self.total_out += keep as u64;
        Ok(used)
    }

    fn reset(&mut self) {
        self.resampler.reset();
        self.pending.clear();
        self.to_trim = self.resampler.output_delay();
        self.total_in = 0;
        self.total_out = 0;
    }
}

/// Picks how many FFT blocks the resampler splits a chunk into, so that both FFT sizes are
/// "smooth" numbers (no prime factor above 7; FFTs of sizes like 321 = 3 x 107 are several
/// times slower) and the input block is near 256 to 512 samples. Mirrors rubato's sizing:
/// block = ceil(chunk / sub_chunks / min_in) minimal blocks.
fn smooth_sub_chunks(chunk: usize, min_in: u32, min_out: u32) -> usize {
    let (min_in, min_out) = (min_in.max(1) as usize, min_out.max(1) as usize);
    let fallback = (chunk / 256).max(1);
    let largest_prime = |mut n: usize| {
        let mut largest = 1;
        let mut p = 2;
        while p * p <= n {
            while n.is_multiple_of(p) {
                largest = p;
                n /= p;
            }
            p += 1;
        }
        largest.max(n)
    };
    (1..=(chunk / 64).max(1))
        .filter_map(|sub| {
            let blocks = (chunk / sub).div_ceil(min_in).max(1);
            let (fft_in, fft_out) = (blocks * min_in, blocks * min_out);
            let smooth = largest_prime(fft_in) <= 7 && largest_prime(fft_out) <= 7;
            let distance = if fft_in < 256 {
                256 - fft_in
            } else {
                fft_in.saturating_sub(512)
            };
            smooth.then_some((distance, sub))
        })
        .min()
        .map_or(fallback, |(_, sub)| sub)
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}
