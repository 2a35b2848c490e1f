//! Voice building blocks: audio frames, resampling, WAV files, voice activity detection,
//! speech-to-text and text-to-speech traits, and sentence cutting for streaming speech.
//!
//! - [`audio`]: [`AudioFrame`](audio::AudioFrame) (interleaved 16-bit PCM), mixing down to
//!   mono, a [`FrameChunker`](audio::FrameChunker) that cuts arbitrary input into fixed
//!   10/20/32 ms frames, a streaming [`Resampler`](audio::Resampler) (any rate to any rate) and
//!   WAV reading and writing.
//! - [`vad`]: the object-safe [`Vad`](vad::Vad) trait with per-session
//!   [`VadStream`](vad::VadStream)s, the speech/silence state machine shared by every model,
//!   an energy-based fallback model and a scripted model for tests. Neural models (Silero) live
//!   in their own crates (`switchboard-silero`) so this crate stays free of native runtimes.
//! - [`stt`]: the [`Stt`](stt::Stt) trait (non-streaming `recognize`, optional streaming with
//!   interim results). [`tts`]: the [`Tts`](tts::Tts) trait (text to a stream of frames).
//! - [`text`]: the incremental [`SentenceTokenizer`](text::SentenceTokenizer) that feeds TTS
//!   from a streaming LLM reply, and the markdown/emoji filters applied before speaking.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use switchboard::voice::audio::AudioFrame;
//! use switchboard::voice::vad::{ModelVad, ScriptedVadModel, Vad, VadEvent, VadOptions};
//!
//! // A scripted model: 10 windows of silence, 20 of speech, 30 of silence (32 ms each).
//! let model = ScriptedVadModel::from_runs(&[(0.0, 10), (0.9, 20), (0.0, 30)]);
//! let vad = ModelVad::new(Arc::new(model), VadOptions::default()).unwrap();
//! let mut stream = vad.stream();
//! // 48 kHz stereo input is mixed down and resampled to 16 kHz inside the stream.
//! let audio = AudioFrame::silence(Duration::from_millis(1920), 48_000, 2).unwrap();
//! let mut events = stream.push(&audio).unwrap();
//! events.extend(stream.flush().unwrap());
//! let starts: Vec<_> = events.iter().filter_map(|e| match e {
//!     VadEvent::StartOfSpeech { at, .. } => Some(*at),
//!     _ => None,
//! }).collect();
//! assert_eq!(starts, vec![Duration::from_millis(320)]);
//! ```

pub mod audio;
pub mod output;
pub mod stt;
pub mod text;
pub mod tts;
pub mod vad;
