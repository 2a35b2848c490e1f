//! The speech/silence hysteresis, in samples of the model's rate.

use super::VadOptions;
use crate::voice::audio::samples_in;

/// A speech boundary decided by [`SpeechStateMachine::update`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Boundary {
    /// Speech started at sample `start`.
    Start { start: u64, probability: f32 },
    /// Speech that started at `start` ended at sample `end`.
    End {
        start: u64,
        end: u64,
        probability: f32,
    },
}

/// Hysteresis on window probabilities: a window is speech if its probability reaches the
/// activation threshold (or, while speaking, stays at or above the deactivation threshold).
/// Speaking starts after `min_speech` samples of consecutive speech windows and ends after
/// `min_silence` samples of consecutive non-speech windows.
#[derive(Debug, Clone)]
pub(crate) struct SpeechStateMachine {
    activation: f32,
    deactivation: f32,
    min_speech: u64,
    min_silence: u64,
    speaking: bool,
    /// Start of the current run of speech windows (while not speaking) or of the speech.
    run_start: u64,
    /// Length of the current run of speech windows while not speaking.
    speech_run: u64,
    /// Length of the current run of non-speech windows while speaking.
    silence_run: u64,
    /// End of the last speech window.
    last_speech_end: u64,
}

impl SpeechStateMachine {
    /// A machine for options the caller has validated.
    pub(crate) fn new(options: &VadOptions) -> Self {
        SpeechStateMachine {
            activation: options.activation_threshold,
            deactivation: options.effective_deactivation_threshold(),
            min_speech: samples_in(options.min_speech_duration, options.sample_rate),
            min_silence: samples_in(options.min_silence_duration, options.sample_rate),
            speaking: false,
            run_start: 0,
            speech_run: 0,
            silence_run: 0,
            last_speech_end: 0,
        }
    }

    pub(crate) fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Start of the current speech (valid while speaking).
    pub(crate) fn speech_start(&self) -> u64 {
        self.run_start
    }

    /// Feeds one window `[start, start + len)` with its probability.
    pub(crate) fn update(&mut self, start: u64, len: u64, probability: f32) -> Option<Boundary> {
        let end = start + len;
        let threshold = if self.speaking {
            self.deactivation
        } else {
            self.activation
        };
        if probability >= threshold {
            self.silence_run = 0;
            self.last_speech_end = end;
            if !self.speaking {
                if self.speech_run == 0 {
                    self.run_start = start;
                }
                self.speech_run += len;
                if self.speech_run >= self.min_speech {
                    self.speaking = true;
                    self.speech_run = 0;
                    return Some(Boundary::Start {
                        start: self.run_start,
                        probability,
                    });
                }
            }
            None
        } else if self.speaking {
            self.silence_run += len;
            if self.silence_run >= self.min_silence {
                self.speaking = false;
                self.silence_run = 0;
                return Some(Boundary::End {
                    start: self.run_start,
                    end: self.last_speech_end,
                    probability,
                });
            }
            None
        } else {
            self.speech_run = 0;
            None
        }
    }

    /// Ends the input: closes open speech at its last speech window, then resets.
    pub(crate) fn finish(&mut self, probability: f32) -> Option<Boundary> {
        let boundary = self.speaking.then_some(Boundary::End {
            start: self.run_start,
            end: self.last_speech_end,
            probability,
        });
        self.reset();
        boundary
    }

    pub(crate) fn reset(&mut self) {
        self.speaking = false;
        self.run_start = 0;
        self.speech_run = 0;
        self.silence_run = 0;
        self.last_speech_end = 0;
    }
}
