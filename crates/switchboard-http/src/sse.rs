//! A byte-level Server-Sent-Events decoder and the loop that turns a response body into
//! [`ChatChunk`]s.
//!
//! This file is identical in `switchboard-openai` and `switchboard-anthropic` (the provider
//! crates share no runtime crate).
//!
//! Lines end with `\n` or `\r\n`. Invalid UTF-8 is replaced by U+FFFD instead of failing, so a
//! stray byte in a text delta costs one character, not the answer; if it lands inside JSON
//! syntax, the event's JSON fails to parse and the parser reports a protocol error.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt, stream};
use switchboard::llm::{ChatChunk, LlmError, LlmStream};

/// Longest accepted line; a longer one is a protocol error rather than unbounded memory.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `message` when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental decoder: feed bytes as they arrive, get whole events out.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    /// Decodes `bytes`, appending complete events to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            rest = &tail[1..];
            if self.line.is_empty() {
                self.line_done(head, out);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, out);
            }
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_LINE {
            return Err(format!(
                "an event-stream line is longer than {MAX_LINE} bytes"
            ));
        }
        Ok(())
    }

    /// The body ended: an event whose data lines were complete is still dispatched (a server
    /// that omits the final blank line loses nothing); a partial last line is dropped.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        self.line.clear();
        self.dispatch(out);
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // comment / keep-alive
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(pos) => {
                let value = &line[pos + 1..];
                (&line[..pos], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {} // id, retry and unknown fields do not matter here
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            self.data.clear();
            return;
        }
        self.has_data = false;
        out.push(SseEvent {
            event: event.unwrap_or_else(|| "message".to_owned()),
            data: std::mem::take(&mut self.data),
        });
    }
}

/// What a parser wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The answer is complete: stop reading.
    Done,
}

/// Turns a provider's events into chunks.
pub trait EventParser: Send + 'static {
    /// Handles one event.
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<ChatChunk>) -> Result<Flow, LlmError>;

    /// The body ended before the parser said [`Flow::Done`].
    fn on_end(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), LlmError>;
}

type ByteStream<E> = Pin<Box<dyn Stream<Item = Result<Vec<u8>, E>> + Send>>;

struct Driver<P, E> {
    provider: String,
    body: ByteStream<E>,
    decoder: SseDecoder,
    parser: P,
    queue: VecDeque<Result<ChatChunk, LlmError>>,
    idle_timeout: Option<Duration>,
    done: bool,
}

impl<P: EventParser, E: std::fmt::Display> Driver<P, E> {
    fn fail(&mut self, error: LlmError) {
        self.queue.push_back(Err(error));
        self.done = true;
    }

    fn process(&mut self, events: Vec<SseEvent>) {
        let mut chunks = Vec::new();
        for event in &events {
            let result = self.parser.on_event(event, &mut chunks);
            self.queue.extend(chunks.drain(..).map(Ok));
            match result {
                Ok(Flow::Continue) => {}
                Ok(Flow::Done) => {
                    self.done = true;
                    return;
                }
                Err(error) => {
                    self.fail(error);
                    return;
                }
            }
        }
    }

    async fn next_bytes(&mut self) -> Result<Option<Result<Vec<u8>, E>>, Duration> {
        match self.idle_timeout {
            Some(timeout) => tokio::time::timeout(timeout, self.body.next())
                .await
                .map_err(|_| timeout),
            None => Ok(self.body.next().await),
        }
    }

    async fn step(mut self) -> Option<(Result<ChatChunk, LlmError>, Self)> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            match self.next_bytes().await {
                Ok(Some(Ok(bytes))) => {
                    let mut events = Vec::new();
                    let decoded = self.decoder.push(&bytes, &mut events);
                    self.process(events);
                    if let Err(message) = decoded
                        && !self.done
                    {
                        let provider = self.provider.clone();
                        self.fail(LlmError::Protocol { provider, message });
                    }
                }
                Ok(Some(Err(error))) => {
                    let provider = self.provider.clone();
                    tracing::warn!(provider = %provider, %error, "model stream broke");
                    self.fail(LlmError::Connection {
                        provider,
                        message: format!("the connection broke mid-answer: {error}"),
                    });
                }
                Ok(None) => {
                    let mut events = Vec::new();
                    self.decoder.finish(&mut events);
                    self.process(events);
                    if !self.done {
                        let mut chunks = Vec::new();
                        let result = self.parser.on_end(&mut chunks);
                        self.queue.extend(chunks.into_iter().map(Ok));
                        self.done = true;
                        if let Err(error) = result {
                            self.queue.push_back(Err(error));
                        }
                    }
                }
                Err(timeout) => {
                    let provider = self.provider.clone();
                    self.fail(LlmError::Timeout { provider, timeout });
                }
            }
        }
    }
}

/// Streams the chunks parsed from an SSE body. With `idle_timeout`, a wait longer than it for
/// the next bytes ends the stream with [`LlmError::Timeout`] (this needs a tokio runtime with
/// time enabled). The stream ends after the first error.
pub fn drive<S, B, E, P>(
    provider: String,
    body: S,
    parser: P,
    idle_timeout: Option<Duration>,
) -> LlmStream
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]>,
    E: std::fmt::Display + Send + 'static,
    P: EventParser,
{
    let body: ByteStream<E> = Box::pin(body.map(|r| r.map(|b| b.as_ref().to_vec())));
    let driver = Driver {
        provider,
        body,
        decoder: SseDecoder::default(),
        parser,
        queue: VecDeque::new(),
        idle_timeout,
        done: false,
    };
    stream::unfold(driver, Driver::step).boxed()
}

/// A stream that fails at once.
pub fn error_stream(error: LlmError) -> LlmStream {
    stream::iter([Err(error)]).boxed()
}

/// A stream produced by a future (connecting, then streaming).
pub fn deferred(future: impl Future<Output = LlmStream> + Send + 'static) -> LlmStream {
    stream::once(future).flatten().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for piece in pieces {
            decoder.push(piece, &mut out).unwrap();
        }
        decoder.finish(&mut out);
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn decodes_events_split_anywhere() {
        let body = "event: a\r\ndata: {\"x\":\"é\"}\r\n\r\n: keep-alive\n\ndata: 1\ndata:2\n\n";
        let expected = vec![ev("a", "{\"x\":\"é\"}"), ev("message", "1\n2")];
        assert_eq!(decode_all(&[body.as_bytes()]), expected);
        // Every split point, including inside the two-byte `é`.
        let bytes = body.as_bytes();
        for split in 0..bytes.len() {
            let (a, b) = bytes.split_at(split);
            assert_eq!(decode_all(&[a, b]), expected, "split at {split}");
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let out = decode_all(&[b"data: a\xffb\n\n"]);
        assert_eq!(out, vec![ev("message", "a\u{fffd}b")]);
    }

    #[test]
    fn last_event_without_blank_line_is_kept_partial_line_dropped() {
        assert_eq!(decode_all(&[b"data: x\n"]), vec![ev("message", "x")]);
        assert_eq!(
            decode_all(&[b"data: x\n\ndata: {\"cut"]),
            vec![ev("message", "x")]
        );
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert_eq!(decode_all(&[b"event: ping\n\n"]), vec![]);
    }

    #[test]
    fn overlong_line_is_an_error() {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        let big = vec![b'x'; MAX_LINE + 1];
        assert!(decoder.push(&big, &mut out).is_err());
    }
}
