//! Scripted speech models for tests: [`ScriptedStt`] returns written transcripts after a
//! virtual-time delay, [`ScriptedTts`] produces audio whose length follows the text. Both
//! record what they were asked, for assertions.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::voice::audio::AudioFrame;
use crate::voice::stt::{
    RecognizeFuture, RecognizeOptions, SpeechData, SpeechEvent, Stt, SttCapabilities, SttError,
    SttInput, SttStream,
};
use crate::voice::tts::{Tts, TtsError, TtsStream};

/// One scripted recognition result.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptedTranscript {
    /// The utterance is heard as this text.
    Text(String),
    /// The recognition fails.
    Error(SttError),
}

impl<S: Into<String>> From<S> for ScriptedTranscript {
    fn from(text: S) -> Self {
        ScriptedTranscript::Text(text.into())
    }
}

#[derive(Debug, Default)]
struct SttShared {
    script: VecDeque<ScriptedTranscript>,
    /// Length of every utterance recognised (or flushed, when streaming).
    heard: Vec<Duration>,
}

/// A speech-to-text model that returns written transcripts, one per utterance, in order.
///
/// Non-streaming by default: [`recognize`](Stt::recognize) takes the next transcript and
/// returns it after [`with_delay`](ScriptedStt::with_delay) of (virtual) time. With
/// [`streaming`](ScriptedStt::streaming) it also opens streams that send the words of the
/// current transcript as [`SpeechEvent::Interim`] results while audible audio arrives (one
/// word per [`with_word_duration`](ScriptedStt::with_word_duration) of non-silent audio) and
/// the whole transcript
/// as [`SpeechEvent::Final`], then [`SpeechEvent::EndOfSpeech`], on [`SttInput::flush`] or
/// after 300 ms of silence following speech (its own endpointing).
///
/// Empty audio fails with [`SttError::BadAudio`], like a real model; a script that has run out
/// fails with [`SttError::Model`] naming the utterance.
#[derive(Debug, Clone)]
pub struct ScriptedStt {
    shared: Arc<Mutex<SttShared>>,
    delay: Duration,
    word_duration: Duration,
    streaming: bool,
}

impl ScriptedStt {
    /// Transcripts (or errors) for the utterances, in order; 100 ms recognition delay.
    pub fn new<T: Into<ScriptedTranscript>>(script: impl IntoIterator<Item = T>) -> Self {
        ScriptedStt {
            shared: Arc::new(Mutex::new(SttShared {
                script: script.into_iter().map(Into::into).collect(),
                heard: Vec::new(),
            })),
            delay: Duration::from_millis(100),
            word_duration: Duration::from_millis(300),
            streaming: false,
        }
    }

    /// Time from the end of an utterance to its transcript.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Audio per interim word when streaming (default 300 ms).
    pub fn with_word_duration(mut self, word_duration: Duration) -> Self {
        self.word_duration = word_duration.max(Duration::from_millis(1));
        self
    }

    /// Makes the model a streaming one with interim results.
    pub fn streaming(mut self) -> Self {
        self.streaming = true;
        self
    }

    /// Appends a transcript to the script.
    pub fn push(&self, transcript: impl Into<ScriptedTranscript>) {
        self.lock().script.push_back(transcript.into());
    }

    /// The length of every utterance heard so far, in order.
    pub fn heard(&self) -> Vec<Duration> {
        self.lock().heard.clone()
    }

    /// How many scripted transcripts are left.
    pub fn remaining(&self) -> usize {
        self.lock().script.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SttShared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_transcript(shared: &Mutex<SttShared>, heard: Duration) -> Result<SpeechData, SttError> {
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.heard.push(heard);
        let n = shared.heard.len();
        match shared.script.pop_front() {
            Some(ScriptedTranscript::Text(text)) => Ok(SpeechData::text(text)),
            Some(ScriptedTranscript::Error(error)) => Err(error),
            None => Err(SttError::Model(format!(
                "scripted STT has no transcript for utterance {n} ({heard:?} of audio)"
            ))),
        }
    }

    fn peek_words(&self) -> Vec<String> {
        match self.lock().script.front() {
            Some(ScriptedTranscript::Text(text)) => {
                text.split_whitespace().map(str::to_owned).collect()
            }
            _ => Vec::new(),
        }
    }
}

impl Stt for ScriptedStt {
    fn name(&self) -> &str {
        "scripted-stt"
    }

    fn capabilities(&self) -> SttCapabilities {
        SttCapabilities {
            streaming: self.streaming,
            interim_results: self.streaming,
        }
    }

    fn recognize(&self, audio: AudioFrame, _options: &RecognizeOptions) -> RecognizeFuture {
        let shared = self.shared.clone();
        let delay = self.delay;
        Box::pin(async move {
            if audio.is_empty() {
                return Err(SttError::BadAudio("the utterance has no audio".into()));
            }
            tokio::time::sleep(delay).await;
            ScriptedStt::next_transcript(&shared, audio.duration())
        })
    }

    fn stream(&self, _options: &RecognizeOptions) -> Result<SttStream, SttError> {
        if !self.streaming {
            return Err(SttError::Unsupported("streaming recognition".into()));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let input = ScriptedSttInput {
            stt: self.clone(),
            tx: Some(tx),
            audio: Duration::ZERO,
            silence: Duration::ZERO,
            words_sent: 0,
        };
        Ok(SttStream {
            input: Box::new(input),
            events: tokio_stream_from(rx).boxed(),
        })
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

struct ScriptedSttInput {
    stt: ScriptedStt,
    tx: Option<mpsc::UnboundedSender<Result<SpeechEvent, SttError>>>,
    /// Audible audio since the last flush.
    audio: Duration,
    /// Silence since the last audible frame.
    silence: Duration,
    words_sent: usize,
}

/// Silence after speech at which a streaming scripted STT finalises on its own, like the
/// endpointing of hosted recognisers.
const STREAM_ENDPOINT: Duration = Duration::from_millis(300);

impl SttInput for ScriptedSttInput {
    fn push(&mut self, frame: &AudioFrame) -> Result<(), SttError> {
        let Some(tx) = &self.tx else {
            return Err(SttError::Closed);
        };
        // Only audible frames count as speech: silence between turns sends no words.
        if frame.data().iter().any(|s| s.unsigned_abs() > 64) {
            self.audio += frame.duration();
            self.silence = Duration::ZERO;
        } else {
            self.silence += frame.duration();
            if !self.audio.is_zero() && self.silence >= STREAM_ENDPOINT {
                return self.flush();
            }
        }
        let words = self.stt.peek_words();
        let due = (self.audio.as_nanos() / self.stt.word_duration.as_nanos()) as usize;
        let due = due.min(words.len());
        if due > self.words_sent {
            self.words_sent = due;
            let _ = tx.send(Ok(SpeechEvent::Interim(SpeechData::text(
                words[..due].join(" "),
            ))));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SttError> {
        let Some(tx) = self.tx.clone() else {
            return Err(SttError::Closed);
        };
        let heard = std::mem::take(&mut self.audio);
        self.words_sent = 0;
        if heard.is_zero() {
            return Ok(());
        }
        let shared = self.stt.shared.clone();
        let delay = self.stt.delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let event = ScriptedStt::next_transcript(&shared, heard).map(SpeechEvent::Final);
            let _ = tx.send(event);
            let _ = tx.send(Ok(SpeechEvent::EndOfSpeech));
        });
        Ok(())
    }

    fn end(&mut self) {
        self.tx = None;
    }
}

#[derive(Debug, Default)]
struct TtsShared {
    requests: Vec<String>,
}

/// A text-to-speech model whose audio length follows the text: `chars / chars_per_second`
/// seconds of a quiet 200 Hz square wave, in 20 ms frames, the first one after
/// [`with_ttfb`](ScriptedTts::with_ttfb) of (virtual) time. Records every text it was asked
/// to speak. [`fail_on`](ScriptedTts::fail_on) makes texts containing a marker fail after
/// their first frame, like a model that breaks mid-sentence.
#[derive(Debug, Clone)]
pub struct ScriptedTts {
    shared: Arc<Mutex<TtsShared>>,
    sample_rate: u32,
    chars_per_second: f64,
    ttfb: Duration,
    fail_marker: Option<String>,
}

impl Default for ScriptedTts {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedTts {
    /// 16 kHz mono, 20 characters per second (50 ms per character), 50 ms to first audio.
    pub fn new() -> Self {
        ScriptedTts {
            shared: Arc::default(),
            sample_rate: 16_000,
            chars_per_second: 20.0,
            ttfb: Duration::from_millis(50),
            fail_marker: None,
        }
    }

    /// Time from the request to the first frame.
    pub fn with_ttfb(mut self, ttfb: Duration) -> Self {
        self.ttfb = ttfb;
        self
    }

    /// Speaking rate in characters per second.
    pub fn with_chars_per_second(mut self, chars_per_second: f64) -> Self {
        self.chars_per_second = chars_per_second.max(0.001);
        self
    }

    /// Output sample rate.
    pub fn with_sample_rate(mut self, sample_rate: u32) -> Self {
        self.sample_rate = sample_rate;
        self
    }

    /// Texts containing `marker` fail after their first frame.
    pub fn fail_on(mut self, marker: impl Into<String>) -> Self {
        self.fail_marker = Some(marker.into());
        self
    }

    /// Every text synthesised so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests
            .clone()
    }

    /// The audio length this model produces for `text`.
    pub fn duration_of(&self, text: &str) -> Duration {
        Duration::from_secs_f64(text.chars().count() as f64 / self.chars_per_second)
    }
}

impl Tts for ScriptedTts {
    fn name(&self) -> &str {
        "scripted-tts"
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn synthesize(&self, text: &str) -> TtsStream {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests
            .push(text.to_owned());
        let rate = self.sample_rate;
        let total = crate::voice::audio::samples_in(self.duration_of(text), rate) as usize;
        let fail = self
            .fail_marker
            .as_ref()
            .is_some_and(|m| text.contains(m.as_str()));
        let ttfb = self.ttfb;
        let frame_len = (rate / 50).max(1) as usize;
        let text_for_error = text.to_owned();
        let stream = async_stream(move |tx| async move {
            tokio::time::sleep(ttfb).await;
            let mut produced = 0usize;
            while produced < total {
                let n = frame_len.min(total - produced);
                let samples: Vec<i16> = (produced..produced + n)
                    .map(|i| {
                        // A 200 Hz square wave: never zero, so recordings can tell audio
                        // from silence sample by sample.
                        let phase = (i as f64 * 200.0 / f64::from(rate)).fract();
                        if phase < 0.5 { 2000 } else { -2000 }
                    })
                    .collect();
                produced += n;
                let frame = AudioFrame::new(samples, rate, 1).map_err(TtsError::from);
                if tx.send(frame).is_err() {
                    return;
                }
                if fail {
                    let _ = tx.send(Err(TtsError::Model(format!(
                        "scripted failure while speaking {text_for_error:?}"
                    ))));
                    return;
                }
            }
        });
        stream.boxed()
    }
}

/// A stream fed by an async producer through an unbounded channel.
fn async_stream<T, F, Fut>(producer: F) -> impl futures::Stream<Item = T> + Send
where
    T: Send + 'static,
    F: FnOnce(mpsc::UnboundedSender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let producer = producer(tx);
    // The producer runs when the stream is first polled, not before: a TTS request that is
    // never consumed costs nothing.
    let mut producer = Some(Box::pin(producer));
    let mut rx = rx;
    futures::stream::poll_fn(move |cx| {
        if let Some(p) = producer.as_mut()
            && p.as_mut().poll(cx).is_ready()
        {
            producer = None;
        }
        match rx.poll_recv(cx) {
            std::task::Poll::Ready(Some(item)) => std::task::Poll::Ready(Some(item)),
            std::task::Poll::Ready(None) => std::task::Poll::Ready(None),
            std::task::Poll::Pending if producer.is_none() => {
                // The producer finished; drain whatever is left, then end.
                match rx.try_recv() {
                    Ok(item) => std::task::Poll::Ready(Some(item)),
                    Err(_) => std::task::Poll::Ready(None),
                }
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stt_returns_transcripts_in_order_after_its_delay() {
        let stt = ScriptedStt::new(["hello", "bye"]).with_delay(Duration::from_millis(250));
        let audio = AudioFrame::silence(Duration::from_secs(1), 16_000, 1).unwrap();
        let start = tokio::time::Instant::now();
        let first = stt
            .recognize(audio.clone(), &RecognizeOptions::default())
            .await
            .unwrap();
        assert_eq!(first.text, "hello");
        assert_eq!(start.elapsed(), Duration::from_millis(250));
        assert_eq!(
            stt.recognize(audio.clone(), &RecognizeOptions::default())
                .await
                .unwrap()
                .text,
            "bye"
        );
        let err = stt
            .recognize(audio, &RecognizeOptions::default())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no transcript for utterance 3"),
            "{err}"
        );
        assert_eq!(stt.heard(), vec![Duration::from_secs(1); 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn stt_rejects_empty_audio_and_plays_scripted_errors() {
        let stt = ScriptedStt::new([ScriptedTranscript::Error(SttError::Closed), "ok".into()]);
        let empty = AudioFrame::empty(16_000, 1).unwrap();
        assert!(matches!(
            stt.recognize(empty, &RecognizeOptions::default()).await,
            Err(SttError::BadAudio(_))
        ));
        let audio = AudioFrame::silence(Duration::from_millis(100), 16_000, 1).unwrap();
        assert_eq!(
            stt.recognize(audio.clone(), &RecognizeOptions::default())
                .await,
            Err(SttError::Closed)
        );
        assert_eq!(stt.remaining(), 1);
        assert!(
            stt.stream(&RecognizeOptions::default()).is_err(),
            "not streaming unless asked"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn streaming_stt_sends_interim_words_then_the_final() {
        let stt = ScriptedStt::new(["one two three"]).streaming();
        let mut stream = stt.stream(&RecognizeOptions::default()).unwrap();
        let frame = AudioFrame::new(vec![1000i16; 1600], 16_000, 1).unwrap();
        let silence = AudioFrame::silence(Duration::from_millis(100), 16_000, 1).unwrap();
        stream.input.push(&silence).unwrap();
        for _ in 0..7 {
            stream.input.push(&frame).unwrap();
        }
        stream.input.flush().unwrap();
        stream.input.end();
        assert!(stream.input.push(&frame).is_err());
        let events: Vec<_> = stream.events.collect().await;
        let texts: Vec<String> = events
            .into_iter()
            .map(|e| match e.unwrap() {
                SpeechEvent::Interim(s) => format!("interim {}", s.text),
                SpeechEvent::Final(s) => format!("final {}", s.text),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "interim one",
                "interim one two",
                "final one two three",
                "EndOfSpeech"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tts_audio_length_follows_the_text_and_starts_after_ttfb() {
        let tts = ScriptedTts::new().with_ttfb(Duration::from_millis(80));
        let start = tokio::time::Instant::now();
        let mut stream = tts.synthesize("0123456789"); // 10 chars at 20/s = 500 ms
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(80));
        let mut total = first.duration();
        while let Some(frame) = stream.next().await {
            total += frame.unwrap().duration();
        }
        assert_eq!(total, Duration::from_millis(500));
        assert_eq!(tts.requests(), ["0123456789"]);
        assert!(tts.synthesize("").next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn tts_fails_mid_sentence_on_its_marker() {
        let tts = ScriptedTts::new().fail_on("boom");
        let items: Vec<_> = tts.synthesize("this goes boom").collect().await;
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(matches!(&items[1], Err(TtsError::Model(m)) if m.contains("boom")));
    }
}
