//! Where the agent's voice goes: the [`AudioOutput`] trait and [`RecordingOutput`], an output
//! that keeps what was actually heard (for call recordings and tests).
//!
//! The session paces playout itself: it assumes the output plays captured audio in real time,
//! starting at once when it is idle, and tracks the playout position from its own clock. So an
//! output only has to deliver frames, drop what is queued on [`clear`](AudioOutput::clear) and,
//! optionally, pause; transcripts are synchronised with the audio without device callbacks, and
//! the same code runs in virtual time.
//!
//! ```
//! use std::time::Duration;
//! use switchboard::voice::audio::AudioFrame;
//! use switchboard::voice::output::{AudioOutput, RecordingOutput};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let output = RecordingOutput::new(16_000);
//! output.capture(&AudioFrame::new(vec![1000i16; 32_000], 16_000, 1).unwrap()); // 2 s of sound
//! tokio::time::sleep(Duration::from_millis(500)).await;
//! output.clear(); // interrupted: only the first 500 ms were heard
//! assert_eq!(output.heard(), Duration::from_millis(500));
//! # });
//! ```

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::voice::audio::{AudioFrame, Resampler, samples_in};

/// A destination for the agent's audio (a phone line, a speaker, a recording).
/// Object-safe: hold it as `Arc<dyn AudioOutput>`.
pub trait AudioOutput: Send + Sync + 'static {
    /// Queues `frame` to play after what is already queued. Must not block.
    fn capture(&self, frame: &AudioFrame);

    /// Drops queued audio that has not played yet (the agent was interrupted).
    fn clear(&self);

    /// Whether [`pause`](AudioOutput::pause) and [`resume`](AudioOutput::resume) work. False
    /// interruptions are recovered by pausing only when this is true.
    fn supports_pause(&self) -> bool {
        false
    }

    /// Holds playout; queued audio stays queued.
    fn pause(&self) {}

    /// Continues a paused playout.
    fn resume(&self) {}
}

/// An output that discards audio (text-only sessions that still want voice pacing).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullOutput;

impl AudioOutput for NullOutput {
    fn capture(&self, _frame: &AudioFrame) {}
    fn clear(&self) {}
    fn supports_pause(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct Timeline {
    origin: Instant,
    /// Mono samples at `sample_rate`, placed where they were (or will be) heard.
    track: Vec<i16>,
    /// Where queued audio ends, in samples from `origin` (may be in the future).
    queued_end: usize,
    /// Set while paused: the sample position at which playout stopped.
    paused_at: Option<usize>,
    resampler: Option<(u32, u16, Resampler)>,
}

/// An [`AudioOutput`] that keeps a mono track of what the listener heard, on the session's
/// clock: audio plays from when it is captured (or after what is queued), [`clear`] cuts the
/// part not played yet, [`pause`] holds it. Frames of any rate are resampled to the track's.
///
/// [`clear`]: AudioOutput::clear
/// [`pause`]: AudioOutput::pause
#[derive(Debug)]
pub struct RecordingOutput {
    sample_rate: u32,
    timeline: Mutex<Timeline>,
}

impl RecordingOutput {
    /// A recording at `sample_rate` whose time zero is now.
    pub fn new(sample_rate: u32) -> Self {
        Self::starting_at(sample_rate, Instant::now())
    }

    /// A recording whose time zero is `origin` (to line it up with another track).
    pub fn starting_at(sample_rate: u32, origin: Instant) -> Self {
        RecordingOutput {
            sample_rate: sample_rate.max(1),
            timeline: Mutex::new(Timeline {
                origin,
                track: Vec::new(),
                queued_end: 0,
                paused_at: None,
                resampler: None,
            }),
        }
    }

    /// The track's sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timeline> {
        self.timeline.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_pos(&self, t: &Timeline) -> usize {
        samples_in(t.origin.elapsed(), self.sample_rate) as usize
    }

    /// The track up to now (audio queued for later is not included), mono.
    pub fn track(&self) -> Vec<i16> {
        let t = self.lock();
        let now = self.now_pos(&t).min(t.track.len());
        let end = t.paused_at.map_or(now, |p| p.min(now));
        t.track[..end].to_vec()
    }

    /// How much audio has been heard so far (silence between speeches excluded).
    pub fn heard(&self) -> Duration {
        let track = self.track();
        let voiced = track.iter().filter(|s| **s != 0).count();
        crate::voice::audio::duration_of(voiced as u64, self.sample_rate)
    }
}

impl AudioOutput for RecordingOutput {
    fn capture(&self, frame: &AudioFrame) {
        let mut t = self.lock();
        let mono = frame.to_mono();
        let samples: Vec<i16> = if mono.sample_rate() == self.sample_rate {
            mono.data().to_vec()
        } else {
            let rate = mono.sample_rate();
            let reuse = matches!(&t.resampler, Some((r, c, _)) if *r == rate && *c == 1);
            if !reuse {
                match Resampler::new(rate, self.sample_rate, 1) {
                    Ok(r) => t.resampler = Some((rate, 1, r)),
                    Err(error) => {
                        tracing::warn!(%error, "recording: cannot resample a frame; dropped");
                        return;
                    }
                }
            }
            let Some((_, _, resampler)) = t.resampler.as_mut() else {
                return;
            };
            match resampler.process(&mono) {
                Ok(f) => f.data().to_vec(),
                Err(error) => {
                    tracing::warn!(%error, "recording: cannot resample a frame; dropped");
                    return;
                }
            }
        };
        let now = self.now_pos(&t);
        let start = if t.paused_at.is_some() {
            t.queued_end
        } else {
            t.queued_end.max(now)
        };
        let end = start + samples.len();
        if t.track.len() < end {
            t.track.resize(end, 0);
        }
        t.track[start..end].copy_from_slice(&samples);
        t.queued_end = end;
    }

    fn clear(&self) {
        let mut t = self.lock();
        let now = self.now_pos(&t);
        let cut = t.paused_at.take().unwrap_or(now).min(t.track.len());
        t.track.truncate(cut);
        t.queued_end = cut;
    }

    fn supports_pause(&self) -> bool {
        true
    }

    fn pause(&self) {
        let mut t = self.lock();
        if t.paused_at.is_none() {
            let now = self.now_pos(&t);
            t.paused_at = Some(now.min(t.queued_end).max(now.min(t.track.len())));
        }
    }

    fn resume(&self) {
        let mut t = self.lock();
        let Some(paused) = t.paused_at.take() else {
            return;
        };
        // The unplayed rest moves to now.
        let now = self.now_pos(&t);
        if paused >= t.queued_end || now <= paused {
            return;
        }
        let rest: Vec<i16> = t.track[paused..t.queued_end].to_vec();
        t.track.truncate(paused);
        t.track.resize(now, 0);
        t.track.extend_from_slice(&rest);
        t.queued_end = t.track.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u64) -> AudioFrame {
        let n = samples_in(Duration::from_millis(ms), 16_000) as usize;
        AudioFrame::new(vec![1000i16; n], 16_000, 1).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn captured_audio_plays_after_what_is_queued() {
        let out = RecordingOutput::new(16_000);
        out.capture(&tone(300));
        out.capture(&tone(200));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(out.heard(), Duration::from_millis(400));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(out.heard(), Duration::from_millis(500));
        // Idle for a while: the next capture starts now, after a gap of silence.
        out.capture(&tone(100));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(out.track().len(), 16 * 1_500);
        assert_eq!(out.heard(), Duration::from_millis(600));
    }

    #[tokio::test(start_paused = true)]
    async fn clear_cuts_what_was_not_heard_and_pause_holds_it() {
        let out = RecordingOutput::new(16_000);
        out.capture(&tone(1000));
        tokio::time::sleep(Duration::from_millis(200)).await;
        out.pause();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            out.heard(),
            Duration::from_millis(200),
            "nothing plays while paused"
        );
        out.resume();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(out.heard(), Duration::from_millis(300));
        out.clear();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(out.heard(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn frames_of_other_rates_are_resampled() {
        let out = RecordingOutput::new(16_000);
        let n = samples_in(Duration::from_millis(500), 48_000) as usize;
        out.capture(&AudioFrame::new(vec![1000i16; n * 2], 48_000, 2).unwrap());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let heard = out.heard();
        assert!(
            heard > Duration::from_millis(450) && heard <= Duration::from_millis(500),
            "{heard:?}"
        );
    }
}
