//! Whole-text helpers: collect a synthesis into one frame, or write it to a WAV file.

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use switchboard::voice::audio::{AudioError, AudioFrame, write_wav};
use switchboard::voice::tts::{Tts, TtsError};

use crate::{EspeakTts, PiperTts};

/// What can go wrong in [`speak_to_wav`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpeakError {
    /// The synthesis failed.
    #[error(transparent)]
    Tts(#[from] TtsError),
    /// The WAV file could not be written.
    #[error("cannot write the WAV file: {0}")]
    Audio(#[from] AudioError),
    /// Called from inside an async runtime, where blocking is not allowed: use
    /// [`synthesize_to_frame`] there.
    #[error(
        "speak_to_wav blocks and cannot run inside an async runtime; await synthesize_to_frame instead"
    )]
    InsideRuntime,
    /// The helper's runtime could not be started.
    #[error("cannot start a runtime for the synthesis: {0}")]
    Runtime(String),
}

/// Synthesises `text` and joins the streamed frames into one frame at the engine's rate and
/// channel count. Fails with the stream's first error.
///
/// ```no_run
/// use switchboard_piper::{EspeakTts, synthesize_to_frame};
///
/// # async fn demo() -> Result<(), switchboard::voice::tts::TtsError> {
/// let audio = synthesize_to_frame(&EspeakTts::new(), "Hello.").await?;
/// assert_eq!(audio.sample_rate(), 22_050);
/// # Ok(())
/// # }
/// ```
pub async fn synthesize_to_frame(tts: &dyn Tts, text: &str) -> Result<AudioFrame, TtsError> {
    let (rate, channels) = (tts.sample_rate(), tts.channels());
    let mut stream = tts.synthesize(text);
    let mut frames = Vec::new();
    while let Some(frame) = stream.next().await {
        frames.push(frame?);
    }
    Ok(AudioFrame::concat(&frames, rate, channels)?)
}

/// Synthesises `text` and writes it to `path` as a 16-bit WAV file (what
/// `switchboard speak TEXT -o FILE.wav` does). Blocking: call it from plain synchronous code,
/// not from inside an async runtime ([`SpeakError::InsideRuntime`]). Returns the audio.
///
/// ```no_run
/// use switchboard_piper::{EspeakTts, speak_to_wav};
///
/// let audio = speak_to_wav(&EspeakTts::new(), "Your table is booked.", "booked.wav")?;
/// println!("{:?} written", audio.duration());
/// # Ok::<(), switchboard_piper::SpeakError>(())
/// ```
pub fn speak_to_wav(
    tts: &dyn Tts,
    text: &str,
    path: impl AsRef<Path>,
) -> Result<AudioFrame, SpeakError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(SpeakError::InsideRuntime);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| SpeakError::Runtime(e.to_string()))?;
    let audio = runtime.block_on(synthesize_to_frame(tts, text))?;
    write_wav(path, &audio)?;
    Ok(audio)
}

/// The best local engine available: the Piper voice of [`PiperTts::from_env`], else (with a
/// warning saying why) [`EspeakTts`].
pub fn default_tts() -> Arc<dyn Tts> {
    match PiperTts::from_env() {
        Ok(piper) => piper,
        Err(e) => {
            tracing::warn!("Piper voice unavailable, using espeak-ng instead: {e}");
            Arc::new(EspeakTts::new())
        }
    }
}
