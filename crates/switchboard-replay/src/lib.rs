//! A local HTTP/1.1 server for provider tests: it replays recorded Server-Sent-Events streams,
//! records the requests it received and injects faults (refused connections, error statuses,
//! streams cut or stalled mid-answer, error bodies).
//!
//! It is a minimal responder on a tokio [`TcpListener`] bound to `127.0.0.1:0`: light to build
//! and in full control of the bytes on the wire, which the fault cases need.
//!
//! ```
//! use switchboard_replay::{Reply, ReplayServer};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let server = ReplayServer::start([
//!     Reply::json(429, serde_json::json!({"error": {"message": "slow down"}})).header("retry-after", "1"),
//!     Reply::sse("data: {\"hello\":1}\n\ndata: [DONE]\n\n"),
//! ])
//! .await;
//! // Point a client at `server.url()`, then inspect what it sent:
//! assert_eq!(server.requests().len(), 0);
//! # });
//! ```

#![warn(missing_docs)]

pub mod testkit;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target: path and query, e.g. `/v1/chat/completions?api-version=1`.
    pub path: String,
    /// The headers, names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What happens after the scripted events were sent (or instead of answering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The body completes normally.
    Complete,
    /// After this many events the connection is dropped without finishing the body.
    CutAfter(usize),
    /// After this many events nothing more is sent, but the connection stays open until the
    /// server is dropped.
    StallAfter(usize),
    /// The connection is closed before any response byte is written.
    Refuse,
}

/// One scripted answer. Each request takes the next reply of the script.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    streaming: bool,
    ending: Ending,
    fragment: Option<usize>,
    event_delay: Duration,
}

impl Reply {
    /// A `200 text/event-stream` answer streaming `body`, one HTTP chunk per SSE event (events
    /// end with a blank line).
    pub fn sse(body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status: 200,
            headers: vec![("content-type".to_owned(), "text/event-stream".to_owned())],
            body: body.into(),
            streaming: true,
            ending: Ending::Complete,
            fragment: None,
            event_delay: Duration::ZERO,
        }
    }

    /// [`Reply::sse`] with the contents of a fixture file.
    ///
    /// # Panics
    ///
    /// When the file cannot be read: a test with a missing fixture should fail loudly.
    pub fn sse_file(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        match std::fs::read(path) {
            Ok(body) => Reply::sse(body),
            Err(error) => panic!("cannot read fixture {}: {error}", path.display()),
        }
    }

    /// A JSON answer with this status (e.g. an error body, or a `200` carrying an error).
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string().into_bytes(),
            streaming: false,
            ending: Ending::Complete,
            fragment: None,
            event_delay: Duration::ZERO,
        }
    }

    /// A plain-text answer with this status.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
            body: body.into(),
            streaming: false,
            ending: Ending::Complete,
            fragment: None,
            event_delay: Duration::ZERO,
        }
    }

    /// The connection is accepted, the request read, then the connection closed without an
    /// answer.
    pub fn refuse() -> Self {
        Reply {
            ending: Ending::Refuse,
            ..Reply::text(500, "")
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Sends only the first `events` events, then drops the connection mid-body.
    pub fn cut_after_events(mut self, events: usize) -> Self {
        self.ending = Ending::CutAfter(events);
        self
    }

    /// Sends only the first `events` events, then sends nothing more while keeping the
    /// connection open (until the server is dropped).
    pub fn stall_after_events(mut self, events: usize) -> Self {
        self.ending = Ending::StallAfter(events);
        self
    }

    /// Writes the body in pieces of at most `bytes` bytes (splitting events, lines and UTF-8
    /// sequences), each flushed on its own.
    pub fn fragmented(mut self, bytes: usize) -> Self {
        self.fragment = Some(bytes.max(1));
        self
    }

    /// Waits this long before each event.
    pub fn event_delay(mut self, delay: Duration) -> Self {
        self.event_delay = delay;
        self
    }
}

/// Splits an SSE body after each blank line (`\n\n`), keeping the separators.
fn split_events(body: &[u8]) -> Vec<&[u8]> {
    let mut events = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < body.len() {
        if body[i] == b'\n' && body[i + 1] == b'\n' {
            events.push(&body[start..i + 2]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    if start < body.len() {
        events.push(&body[start..]);
    }
    events
}

#[derive(Debug, Default)]
struct Shared {
    script: VecDeque<Reply>,
    requests: Vec<RecordedRequest>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The replay server. Dropping it stops it and closes every open connection.
#[derive(Debug)]
pub struct ReplayServer {
    url: String,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

impl ReplayServer {
    /// Starts a server on `127.0.0.1:0` answering requests with `replies`, in order. A request
    /// after the script ran out gets `500` with the body `replay script exhausted`.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start(replies: impl IntoIterator<Item = Reply>) -> ReplayServer {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(error) => panic!("cannot bind a local port: {error}"),
        };
        let url = match listener.local_addr() {
            Ok(addr) => format!("http://{addr}"),
            Err(error) => panic!("no local address: {error}"),
        };
        let shared = Arc::new(Mutex::new(Shared {
            script: replies.into_iter().collect(),
            requests: Vec::new(),
        }));
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        ReplayServer { url, shared, task }
    }

    /// The server's base URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    /// How many scripted replies are left.
    pub fn replies_left(&self) -> usize {
        lock(&self.shared).script.len()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A URL on which nothing listens: connecting to it is refused.
///
/// # Panics
///
/// When no local port can be bound.
pub fn closed_port_url() -> String {
    let listener = match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(listener) => listener,
        Err(error) => panic!("cannot bind a local port: {error}"),
    };
    let url = match listener.local_addr() {
        Ok(addr) => format!("http://{addr}"),
        Err(error) => panic!("no local address: {error}"),
    };
    drop(listener);
    url
}

async fn accept_loop(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    // Dropping the set (when the server is dropped and this task aborted) aborts every
    // connection, stalled ones included.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((socket, _)) = accepted {
                    connections.spawn(serve(socket, shared.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(mut socket: TcpStream, shared: Arc<Mutex<Shared>>) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let reply = {
        let mut shared = lock(&shared);
        shared.requests.push(request);
        shared.script.pop_front()
    };
    let reply = reply.unwrap_or_else(|| Reply::text(500, "replay script exhausted"));
    // Write errors mean the client went away: nothing to do.
    let _ = respond(&mut socket, reply).await;
}

async fn read_request(socket: &mut TcpStream) -> Option<RecordedRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(RecordedRequest {
        method,
        path,
        headers,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

async fn respond(socket: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    if reply.ending == Ending::Refuse {
        return socket.shutdown().await;
    }
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("connection: close\r\n");
    if !reply.streaming {
        head.push_str(&format!("content-length: {}\r\n\r\n", reply.body.len()));
        socket.write_all(head.as_bytes()).await?;
        socket.write_all(&reply.body).await?;
        socket.flush().await?;
        return socket.shutdown().await;
    }
    head.push_str("transfer-encoding: chunked\r\n\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.flush().await?;
    let events = split_events(&reply.body);
    let limit = match reply.ending {
        Ending::CutAfter(n) | Ending::StallAfter(n) => n.min(events.len()),
        Ending::Complete | Ending::Refuse => events.len(),
    };
    for event in &events[..limit] {
        if !reply.event_delay.is_zero() {
            tokio::time::sleep(reply.event_delay).await;
        }
        let pieces: Vec<&[u8]> = match reply.fragment {
            Some(size) => event.chunks(size).collect(),
            None => vec![event],
        };
        for piece in pieces {
            socket
                .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .await?;
            socket.write_all(piece).await?;
            socket.write_all(b"\r\n").await?;
            socket.flush().await?;
        }
    }
    match reply.ending {
        Ending::Complete | Ending::Refuse => {
            socket.write_all(b"0\r\n\r\n").await?;
            socket.flush().await?;
            socket.shutdown().await
        }
        // Dropping the socket without the last chunk: the body is cut.
        Ending::CutAfter(_) => Ok(()),
        Ending::StallAfter(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_after_blank_lines() {
        let events = split_events(b"data: 1\n\nevent: x\ndata: 2\n\ntrailing");
        assert_eq!(
            events,
            vec![
                &b"data: 1\n\n"[..],
                &b"event: x\ndata: 2\n\n"[..],
                &b"trailing"[..]
            ]
        );
    }

    async fn raw_exchange(url: &str, request: &str) -> String {
        let addr = url.trim_start_matches("http://");
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        socket.read_to_end(&mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn records_requests_and_streams_chunks() {
        let server = ReplayServer::start([Reply::sse("data: a\n\ndata: b\n\n")]).await;
        let response = raw_exchange(
            server.url(),
            "POST /v1/x?q=1 HTTP/1.1\r\nHost: h\r\nX-Test: yes\r\nContent-Length: 4\r\n\r\n{\"a\"",
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(response.contains("9\r\ndata: a\n\n\r\n9\r\ndata: b\n\n\r\n0\r\n\r\n"));
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].path, "/v1/x?q=1");
        assert_eq!(requests[0].header("x-test"), Some("yes"));
        assert_eq!(requests[0].body_text(), "{\"a\"");
        assert_eq!(server.replies_left(), 0);
    }

    #[tokio::test]
    async fn cut_stream_has_no_final_chunk() {
        let server =
            ReplayServer::start([Reply::sse("data: a\n\ndata: b\n\n").cut_after_events(1)]).await;
        let response = raw_exchange(server.url(), "GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
        assert!(response.ends_with("9\r\ndata: a\n\n\r\n"));
    }

    #[tokio::test]
    async fn exhausted_script_answers_500() {
        let server = ReplayServer::start([]).await;
        let response = raw_exchange(server.url(), "GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 500"));
        assert!(response.ends_with("replay script exhausted"));
    }

    #[tokio::test]
    async fn closed_port_refuses_connections() {
        let url = closed_port_url();
        let addr = url.trim_start_matches("http://").to_owned();
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
