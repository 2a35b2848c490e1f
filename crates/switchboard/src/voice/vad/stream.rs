use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::machine::{Boundary, SpeechStateMachine};
use super::{Vad, VadError, VadEvent, VadModel, VadModelState, VadOptions, VadStream};
use crate::voice::audio::{AudioFrame, Resampler, duration_of, f32_to_i16, samples_in};

/// A [`Vad`] made of a [`VadModel`] and [`VadOptions`]: the model scores windows, the
/// streams do the rest (mix-down, resampling to the model's rate, windowing, the speech state
/// machine, speech audio with prefix padding).
///
/// ```
/// use std::sync::Arc;
/// use switchboard::voice::vad::{EnergyVadModel, ModelVad, Vad, VadOptions};
///
/// let vad: Arc<dyn Vad> = Arc::new(ModelVad::new(Arc::new(EnergyVadModel::default()), VadOptions::default()).unwrap());
/// let _stream = vad.stream(); // one per session
/// ```
#[derive(Clone)]
pub struct ModelVad {
    model: Arc<dyn VadModel>,
    options: VadOptions,
    window: usize,
}

impl ModelVad {
    /// Checks the options and that the model runs at `options.sample_rate`.
    pub fn new(model: Arc<dyn VadModel>, options: VadOptions) -> Result<Self, VadError> {
        options.validate()?;
        if !model.supports_sample_rate(options.sample_rate) {
            return Err(VadError::UnsupportedSampleRate {
                model: model.name().to_string(),
                sample_rate: options.sample_rate,
            });
        }
        let window = model.window_size(options.sample_rate);
        if window == 0 || window > options.sample_rate as usize * 10 {
            return Err(VadError::InvalidOptions(format!(
                "the {} model reports a window of {window} samples at {} Hz",
                model.name(),
                options.sample_rate
            )));
        }
        Ok(ModelVad {
            model,
            options,
            window,
        })
    }

    /// The shared model.
    pub fn model(&self) -> &Arc<dyn VadModel> {
        &self.model
    }

    /// Samples per model window at the model's rate.
    pub fn window_size(&self) -> usize {
        self.window
    }

    /// A stream with its concrete type (what [`Vad::stream`] boxes).
    pub fn model_stream(&self) -> ModelVadStream {
        let rate = self.options.sample_rate;
        ModelVadStream {
            state: self.model.new_state(rate),
            machine: SpeechStateMachine::new(&self.options),
            rate,
            window: self.window,
            prefix: samples_in(self.options.prefix_padding, rate),
            max_speech: samples_in(self.options.max_buffered_speech, rate),
            keep_idle: samples_in(
                self.options.prefix_padding + self.options.min_speech_duration,
                rate,
            ) + self.window as u64,
            resampler: None,
            mono: Vec::new(),
            pending: Vec::new(),
            position: 0,
            audio: Vec::new(),
            audio_base: 0,
            deferred: Vec::new(),
            last_probability: 0.0,
        }
    }
}

impl fmt::Debug for ModelVad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelVad")
            .field("model", &self.model.name())
            .field("options", &self.options)
            .field("window", &self.window)
            .finish()
    }
}

impl Vad for ModelVad {
    fn name(&self) -> &str {
        self.model.name()
    }

    fn options(&self) -> &VadOptions {
        &self.options
    }

    fn stream(&self) -> Box<dyn VadStream> {
        Box::new(self.model_stream())
    }
}

/// The [`VadStream`] of a [`ModelVad`].
pub struct ModelVadStream {
    state: Box<dyn VadModelState>,
    machine: SpeechStateMachine,
    rate: u32,
    window: usize,
    /// Prefix padding, in samples.
    prefix: u64,
    /// Most speech samples kept for `EndOfSpeech::audio`.
    max_speech: u64,
    /// Samples of audio history kept while not speaking.
    keep_idle: u64,
    /// Resampler from the current input rate (mono), if it differs from the model's.
    resampler: Option<Resampler>,
    /// Scratch: the pushed frame mixed down to mono.
    mono: Vec<f32>,
    /// Model-rate samples not yet analysed.
    pending: Vec<f32>,
    /// Model-rate samples analysed (start of the next window).
    position: u64,
    /// Analysed audio kept for `EndOfSpeech::audio`, starting at sample `audio_base`.
    audio: Vec<f32>,
    audio_base: u64,
    /// Events decided before an error, returned by the next call.
    deferred: Vec<VadEvent>,
    last_probability: f32,
}

impl fmt::Debug for ModelVadStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelVadStream")
            .field("rate", &self.rate)
            .field("window", &self.window)
            .field("position", &self.position())
            .field("speaking", &self.machine.is_speaking())
            .finish()
    }
}

impl ModelVadStream {
    /// Whether the stream is inside a speech segment (after its start was reported).
    pub fn is_speaking(&self) -> bool {
        self.machine.is_speaking()
    }

    fn ingest(&mut self, frame: &AudioFrame) -> Result<(), VadError> {
        let rate = frame.sample_rate();
        if self.resampler.as_ref().map(|r| r.input_rate()) != Some(rate) {
            // First frame, or the input rate changed: drain the old resampler first.
            if let Some(mut old) = self.resampler.take() {
                old.flush_f32(&mut self.pending)?;
            }
            if rate != self.rate {
                self.resampler = Some(Resampler::new(rate, self.rate, 1)?);
            }
        }
        self.mono.clear();
        frame.mix_to_mono_f32(&mut self.mono);
        match &mut self.resampler {
            Some(resampler) => resampler.process_f32(&self.mono, &mut self.pending)?,
            None => self.pending.extend_from_slice(&self.mono),
        }
        Ok(())
    }

    /// Runs the model over every whole window pending, appending events to `events`.
    fn analyse(&mut self, events: &mut Vec<VadEvent>) -> Result<(), VadError> {
        let mut offset = 0;
        let mut result = Ok(());
        while self.pending.len() - offset >= self.window {
            let window = &self.pending[offset..offset + self.window];
            offset += self.window;
            let start = self.position;
            let len = self.window as u64;
            self.position += len;
            let at = duration_of(self.position, self.rate);
            record_audio(
                &mut self.audio,
                &mut self.audio_base,
                &self.machine,
                (self.prefix, self.max_speech),
                start,
                window,
            );
            let probability = match self.state.predict(window) {
                Ok(p) if (0.0..=1.0).contains(&p) => p,
                Ok(value) => {
                    result = Err(VadError::InvalidProbability { value, at });
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            self.last_probability = probability;
            events.push(VadEvent::Inference { at, probability });
            match self.machine.update(start, len, probability) {
                Some(Boundary::Start { start, probability }) => {
                    events.push(VadEvent::StartOfSpeech {
                        at: duration_of(start, self.rate),
                        probability,
                    });
                }
                Some(Boundary::End {
                    start,
                    end,
                    probability,
                }) => events.push(self.end_event(start, end, probability)),
                None => {}
            }
            self.trim_audio();
        }
        self.pending.drain(..offset);
        result
    }

    fn end_event(&self, start: u64, end: u64, probability: f32) -> VadEvent {
        let speech_from = start.saturating_sub(self.prefix);
        let audio_end = self.audio_base + self.audio.len() as u64;
        let from = speech_from.max(self.audio_base).min(audio_end);
        let to = end
            .min(speech_from + self.prefix + self.max_speech)
            .min(audio_end)
            .max(from);
        let slice = &self.audio[(from - self.audio_base) as usize..(to - self.audio_base) as usize];
        let data: Vec<i16> = slice.iter().map(|&s| f32_to_i16(s)).collect();
        VadEvent::EndOfSpeech {
            at: duration_of(end, self.rate),
            speech_duration: duration_of(end - start, self.rate),
            probability,
            audio: AudioFrame::from_parts(data.into(), self.rate, 1),
        }
    }

    /// Keeps the audio history bounded: from the prefix padding before the speech start while
    /// speaking, the last `keep_idle` samples (trimmed in batches) while idle.
    fn trim_audio(&mut self) {
        let end = self.audio_base + self.audio.len() as u64;
        let keep_from = if self.machine.is_speaking() {
            self.machine.speech_start().saturating_sub(self.prefix)
        } else {
            if (self.audio.len() as u64) < 2 * self.keep_idle {
                return;
            }
            end.saturating_sub(self.keep_idle)
        };
        if keep_from > self.audio_base {
            let drop = ((keep_from - self.audio_base) as usize).min(self.audio.len());
            self.audio.drain(..drop);
            self.audio_base += drop as u64;
        }
    }

    fn reset(&mut self) {
        self.state.reset();
        self.machine.reset();
        self.resampler = None;
        self.pending.clear();
        self.position = 0;
        self.audio.clear();
        self.audio_base = 0;
        self.last_probability = 0.0;
    }
}

/// Appends a window starting at sample `start` to the audio history, unless the current
/// speech already holds `prefix + max_speech` samples; after such a cap the history restarts
/// at the first window analysed while idle.
fn record_audio(
    audio: &mut Vec<f32>,
    audio_base: &mut u64,
    machine: &SpeechStateMachine,
    (prefix, max_speech): (u64, u64),
    start: u64,
    window: &[f32],
) {
    let end = *audio_base + audio.len() as u64;
    if end != start {
        // The history stopped growing at the cap of a long speech.
        if machine.is_speaking() {
            return;
        }
        audio.clear();
        *audio_base = start;
    } else if machine.is_speaking() {
        let speech_from = machine.speech_start().saturating_sub(prefix);
        if end >= speech_from + prefix + max_speech {
            return;
        }
    }
    audio.extend_from_slice(window);
}

impl VadStream for ModelVadStream {
    fn push(&mut self, frame: &AudioFrame) -> Result<Vec<VadEvent>, VadError> {
        let mut events = std::mem::take(&mut self.deferred);
        if frame.is_empty() {
            return Ok(events);
        }
        if let Err(e) = self.ingest(frame) {
            self.deferred = events;
            return Err(e);
        }
        match self.analyse(&mut events) {
            Ok(()) => Ok(events),
            Err(e) => {
                self.deferred = events;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> Result<Vec<VadEvent>, VadError> {
        let mut events = std::mem::take(&mut self.deferred);
        if let Some(mut resampler) = self.resampler.take()
            && let Err(e) = resampler.flush_f32(&mut self.pending)
        {
            self.deferred = events;
            return Err(e.into());
        }
        if let Err(e) = self.analyse(&mut events) {
            self.deferred = events;
            return Err(e);
        }
        if let Some(Boundary::End {
            start,
            end,
            probability,
        }) = self.machine.finish(self.last_probability)
        {
            events.push(self.end_event(start, end, probability));
        }
        self.reset();
        Ok(events)
    }

    fn position(&self) -> Duration {
        duration_of(self.position, self.rate)
    }
}
