use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{VadError, VadModel, VadModelState};

/// A [`VadModel`] that returns probabilities written by a test, one per window, whatever the
/// audio. Each stream replays the script from its start; after the script, every window gets
/// [`after`](Self::then) (0.0 unless set). Values are returned as given, so a script may
/// hold NaN or out-of-range values to test error handling.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use switchboard::voice::audio::AudioFrame;
/// use switchboard::voice::vad::{ModelVad, ScriptedVadModel, Vad, VadEvent, VadOptions};
///
/// let model = Arc::new(ScriptedVadModel::new([0.0, 0.9, 0.9, 0.9]));
/// let vad = ModelVad::new(model.clone(), VadOptions::default()).unwrap();
/// let mut stream = vad.stream();
/// let events = stream.push(&AudioFrame::silence(Duration::from_millis(128), 16_000, 1).unwrap()).unwrap();
/// // Inference, Inference, Inference (confirms the start), StartOfSpeech, Inference.
/// assert!(matches!(events[3], VadEvent::StartOfSpeech { at, .. } if at == Duration::from_millis(32)));
/// assert_eq!(model.windows_seen(), 4);
/// ```
#[derive(Debug, Clone)]
pub struct ScriptedVadModel {
    script: Arc<[f32]>,
    after: f32,
    window: usize,
    seen: Arc<AtomicU64>,
}

impl ScriptedVadModel {
    /// Plays `probabilities`, one per window of 512 samples (32 ms at 16 kHz).
    pub fn new(probabilities: impl Into<Vec<f32>>) -> Self {
        ScriptedVadModel {
            script: probabilities.into().into(),
            after: 0.0,
            window: 512,
            seen: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Plays runs of `(probability, windows)`: `[(0.0, 10), (0.9, 20)]` is 10 silent windows,
    /// then 20 speech windows.
    pub fn from_runs(runs: &[(f32, usize)]) -> Self {
        let script: Vec<f32> = runs
            .iter()
            .flat_map(|&(p, n)| std::iter::repeat_n(p, n))
            .collect();
        Self::new(script)
    }

    /// Plays a script in audio time: `[(probability, duration)]`, each run rounded to whole
    /// windows at `sample_rate`.
    pub fn from_timeline(
        runs: &[(f32, std::time::Duration)],
        sample_rate: u32,
        window: usize,
    ) -> Self {
        let window_ns = window.max(1) as u128 * 1_000_000_000 / u128::from(sample_rate.max(1));
        let runs: Vec<(f32, usize)> = runs
            .iter()
            .map(|&(p, d)| {
                (
                    p,
                    ((d.as_nanos() + window_ns / 2) / window_ns.max(1)) as usize,
                )
            })
            .collect();
        Self::from_runs(&runs).with_window_size(window)
    }

    /// Uses windows of `samples` samples instead of 512 (at least 1).
    pub fn with_window_size(mut self, samples: usize) -> Self {
        self.window = samples.max(1);
        self
    }

    /// The probability of every window after the script (default 0.0).
    pub fn then(mut self, probability: f32) -> Self {
        self.after = probability;
        self
    }

    /// Windows scored so far, over all streams.
    pub fn windows_seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }
}

impl VadModel for ScriptedVadModel {
    fn name(&self) -> &str {
        "scripted"
    }

    fn supports_sample_rate(&self, _sample_rate: u32) -> bool {
        true
    }

    fn window_size(&self, _sample_rate: u32) -> usize {
        self.window
    }

    fn new_state(&self, _sample_rate: u32) -> Box<dyn VadModelState> {
        Box::new(ScriptedState {
            model: self.clone(),
            next: 0,
        })
    }
}

struct ScriptedState {
    model: ScriptedVadModel,
    next: usize,
}

impl VadModelState for ScriptedState {
    fn predict(&mut self, window: &[f32]) -> Result<f32, VadError> {
        if window.len() != self.model.window {
            return Err(VadError::WindowSize {
                expected: self.model.window,
                got: window.len(),
            });
        }
        self.model.seen.fetch_add(1, Ordering::Relaxed);
        let p = self
            .model
            .script
            .get(self.next)
            .copied()
            .unwrap_or(self.model.after);
        self.next += 1;
        Ok(p)
    }

    fn reset(&mut self) {
        self.next = 0;
    }
}
