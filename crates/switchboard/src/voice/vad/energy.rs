use super::{VadError, VadModel, VadModelState};

/// A dependency-free [`VadModel`] scoring windows by their level above an adaptive noise
/// floor. A fallback for CI and for clean audio where no neural model is available; it cannot
/// tell speech from other loud sounds (music, door slams), which Silero can.
///
/// The probability of a window is a logistic function of its RMS level in dBFS:
/// `1 / (1 + exp(-(level - threshold) / slope_db))`, where `threshold` is
/// `max(noise_floor + margin_db, min_level_dbfs)`. The noise floor follows quiet windows down
/// at once and rises slowly (`floor_rise_db_per_s`), so steady background noise is learned
/// within seconds while speech does not raise it much. A window at the threshold scores 0.5,
/// the default activation threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyVadModel {
    /// Window length in milliseconds (32: the same windows as Silero).
    pub window_ms: u32,
    /// Level above the noise floor at which a window scores 0.5.
    pub margin_db: f32,
    /// The threshold is never below this level (quiet rooms, digital silence).
    pub min_level_dbfs: f32,
    /// Width of the logistic: the level difference from 0.5 to about 0.73.
    pub slope_db: f32,
    /// How fast the noise floor rises during loud audio.
    pub floor_rise_db_per_s: f32,
    /// The noise floor at the start of a stream.
    pub initial_floor_dbfs: f32,
}

impl Default for EnergyVadModel {
    fn default() -> Self {
        EnergyVadModel {
            window_ms: 32,
            margin_db: 15.0,
            min_level_dbfs: -50.0,
            slope_db: 2.0,
            floor_rise_db_per_s: 5.0,
            initial_floor_dbfs: -70.0,
        }
    }
}

/// Levels are clamped to this floor (digital silence).
const SILENCE_DBFS: f32 = -100.0;

impl VadModel for EnergyVadModel {
    fn name(&self) -> &str {
        "energy"
    }

    fn supports_sample_rate(&self, sample_rate: u32) -> bool {
        (1_000..=crate::voice::audio::MAX_SAMPLE_RATE).contains(&sample_rate)
    }

    fn window_size(&self, sample_rate: u32) -> usize {
        (u64::from(sample_rate) * u64::from(self.window_ms.max(1)) / 1_000).max(1) as usize
    }

    fn new_state(&self, sample_rate: u32) -> Box<dyn VadModelState> {
        let window = self.window_size(sample_rate);
        Box::new(EnergyState {
            model: self.clone(),
            window,
            rise_per_window: self.floor_rise_db_per_s * window as f32 / sample_rate.max(1) as f32,
            floor: self.initial_floor_dbfs,
        })
    }
}

struct EnergyState {
    model: EnergyVadModel,
    window: usize,
    rise_per_window: f32,
    floor: f32,
}

impl VadModelState for EnergyState {
    fn predict(&mut self, window: &[f32]) -> Result<f32, VadError> {
        if window.len() != self.window {
            return Err(VadError::WindowSize {
                expected: self.window,
                got: window.len(),
            });
        }
        let energy: f64 = window
            .iter()
            .map(|&s| {
                let s = if s.is_finite() { f64::from(s) } else { 0.0 };
                s * s
            })
            .sum::<f64>()
            / window.len() as f64;
        let level = if energy > 0.0 {
            (10.0 * energy.log10()) as f32
        } else {
            SILENCE_DBFS
        }
        .max(SILENCE_DBFS);
        if level < self.floor {
            self.floor = level;
        } else {
            self.floor = (self.floor + self.rise_per_window).min(level);
        }
        let m = &self.model;
        let threshold = (self.floor + m.margin_db).max(m.min_level_dbfs);
        let x = (level - threshold) / m.slope_db.max(0.01);
        Ok(1.0 / (1.0 + (-x).exp()))
    }

    fn reset(&mut self) {
        self.floor = self.model.initial_floor_dbfs;
    }
}
