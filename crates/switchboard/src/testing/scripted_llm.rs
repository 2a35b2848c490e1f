use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use futures::stream;
use serde_json::Value;

use crate::chat::{ChatItem, Role};
use crate::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, LlmStream, ToolCallDelta, Usage,
};

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptedReply {
    /// Text, streamed one word per chunk.
    Text(String),
    /// Tool calls (name, JSON arguments), each sent as one chunk, optionally after some text.
    ToolCalls {
        /// Text before the calls (may be empty).
        text: String,
        /// The calls: tool name and raw arguments text.
        calls: Vec<(String, String)>,
    },
    /// Raw chunks, sent as they are (for malformed or interleaved streams).
    Chunks(Vec<ChatChunk>),
    /// Chunks, then an error (a stream cut mid-answer).
    ChunksThenError(Vec<ChatChunk>, LlmError),
    /// The request fails.
    Error(LlmError),
    /// A reply computed from the request (e.g. echoing a tool output).
    Dynamic(Responder),
}

/// A function that computes a [`ScriptedReply`] from the request.
#[derive(Clone)]
pub struct Responder(std::sync::Arc<dyn Fn(&ChatRequest) -> ScriptedReply + Send + Sync>);

impl Responder {
    /// Wraps a function.
    pub fn new(f: impl Fn(&ChatRequest) -> ScriptedReply + Send + Sync + 'static) -> Self {
        Responder(std::sync::Arc::new(f))
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder(..)")
    }
}

impl PartialEq for Responder {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl ScriptedReply {
    /// A text answer.
    pub fn text(text: impl Into<String>) -> Self {
        ScriptedReply::Text(text.into())
    }

    /// A reply computed from the request.
    pub fn dynamic(f: impl Fn(&ChatRequest) -> ScriptedReply + Send + Sync + 'static) -> Self {
        ScriptedReply::Dynamic(Responder::new(f))
    }

    /// A text reply that repeats the output of the last tool call (handy after a tool step).
    pub fn echo_tool_output() -> Self {
        Self::dynamic(|request| match request.context.last() {
            Some(ChatItem::FunctionCallOutput(o)) => ScriptedReply::Text(o.output.clone()),
            _ => ScriptedReply::Text(String::new()),
        })
    }

    /// One tool call with JSON arguments.
    pub fn tool(name: impl Into<String>, arguments: Value) -> Self {
        ScriptedReply::ToolCalls {
            text: String::new(),
            calls: vec![(name.into(), arguments.to_string())],
        }
    }
}

#[derive(Default)]
struct Script {
    keyed: Vec<(String, VecDeque<ScriptedReply>)>,
    ordered: VecDeque<ScriptedReply>,
    otherwise: Option<ScriptedReply>,
}

/// A deterministic [`Llm`] for tests: it answers from a script, in virtual time.
///
/// Replies are chosen by the request's last context item when a key matches (see
/// [`ScriptedLlm::key_of`]), otherwise taken in order from the queue. Every request is recorded,
/// with the tools offered and the tool choice, for assertions.
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use switchboard::testing::{ScriptedLlm, ScriptedReply};
///
/// let llm = Arc::new(
///     ScriptedLlm::new()
///         .on("what are your hours", ScriptedReply::tool("get_hours", json!({})))
///         .on("after:get_hours", ScriptedReply::text("We open at nine."))
///         .reply_text("Hello!"),
/// );
/// assert_eq!(llm.requests().len(), 0);
/// ```
pub struct ScriptedLlm {
    script: Mutex<Script>,
    requests: Mutex<Vec<ChatRequest>>,
    time_to_first_token: Duration,
    chunk_interval: Duration,
    model: String,
    /// Minimum similarity for a near-miss user key (see [`ScriptedLlm::with_fuzzy_keys`]).
    fuzzy: Option<f32>,
}

impl Default for ScriptedLlm {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedLlm {
    /// An empty script: every request fails until replies are added.
    pub fn new() -> Self {
        ScriptedLlm {
            script: Mutex::new(Script::default()),
            requests: Mutex::new(Vec::new()),
            time_to_first_token: Duration::ZERO,
            chunk_interval: Duration::ZERO,
            model: "scripted".to_owned(),
            fuzzy: None,
        }
    }

    /// Queues a reply used in order when no key matches.
    pub fn reply(self, reply: ScriptedReply) -> Self {
        lock(&self.script).ordered.push_back(reply);
        self
    }

    /// Queues a text reply.
    pub fn reply_text(self, text: impl Into<String>) -> Self {
        self.reply(ScriptedReply::Text(text.into()))
    }

    /// Queues a tool-call reply.
    pub fn reply_tool(self, name: impl Into<String>, arguments: Value) -> Self {
        self.reply(ScriptedReply::tool(name, arguments))
    }

    /// Adds a reply for requests whose last item has this key. Several replies for one key are
    /// used in turn; the last one is then repeated.
    pub fn on(self, key: impl Into<String>, reply: ScriptedReply) -> Self {
        self.push_keyed(key.into(), reply);
        self
    }

    /// The reply used when no key matches and the queue is empty (otherwise such a request
    /// fails with a non-retryable error naming its key).
    pub fn otherwise(self, reply: ScriptedReply) -> Self {
        lock(&self.script).otherwise = Some(reply);
        self
    }

    /// Adds a reply at run time (same rules as [`ScriptedLlm::on`]).
    pub fn push_keyed(&self, key: String, reply: ScriptedReply) {
        let mut script = lock(&self.script);
        match script.keyed.iter_mut().find(|(k, _)| *k == key) {
            Some((_, replies)) => replies.push_back(reply),
            None => script.keyed.push((key, VecDeque::from([reply]))),
        }
    }

    /// Queues a reply at run time.
    pub fn push(&self, reply: ScriptedReply) {
        lock(&self.script).ordered.push_back(reply);
    }

    /// Virtual time before the first chunk.
    pub fn with_time_to_first_token(mut self, d: Duration) -> Self {
        self.time_to_first_token = d;
        self
    }

    /// Virtual time between chunks.
    pub fn with_chunk_interval(mut self, d: Duration) -> Self {
        self.chunk_interval = d;
        self
    }

    /// The model name reported.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }

    /// Matches keys loosely, for transcripts of speech: when no key equals the request's, the
    /// key with the most words in common (case, punctuation and digits normalised: "555" is
    /// "five five five") is used if at least `min_similarity` (0 to 1) of its words match.
    /// `after:`/`call:`/`handoff:` keys are always matched exactly.
    pub fn with_fuzzy_keys(mut self, min_similarity: f32) -> Self {
        self.fuzzy = Some(min_similarity.clamp(0.0, 1.0));
        self
    }

    /// The number of requests received so far.
    pub fn request_count(&self) -> usize {
        lock(&self.requests).len()
    }

    /// The key of a request: from its last item, the text of a user, system or developer message
    /// (a one-off instruction is a trailing system message), `after:<tool>` for a function call
    /// output, the text of an assistant message otherwise.
    pub fn key_of(request: &ChatRequest) -> String {
        match request.context.last() {
            Some(ChatItem::Message(m)) => match m.role {
                Role::User | Role::System | Role::Developer | Role::Assistant => m.text(),
            },
            Some(ChatItem::FunctionCallOutput(o)) => format!("after:{}", o.name),
            Some(ChatItem::FunctionCall(c)) => format!("call:{}", c.name),
            Some(ChatItem::AgentHandoff(h)) => format!("handoff:{}", h.new_agent_id),
            Some(ChatItem::AgentConfigUpdate(_)) | None => String::new(),
        }
    }

    fn next_reply(&self, key: &str) -> Option<ScriptedReply> {
        let mut script = lock(&self.script);
        let mut index = script.keyed.iter().position(|(k, _)| k == key);
        if index.is_none()
            && let Some(min) = self.fuzzy
            && !key.contains(':')
        {
            let words = normalized_words(key);
            index = script
                .keyed
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| {
                    !k.starts_with("after:")
                        && !k.starts_with("call:")
                        && !k.starts_with("handoff:")
                })
                .map(|(i, (k, _))| (i, similarity(&words, &normalized_words(k))))
                .filter(|(_, score)| *score >= min)
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i);
        }
        if let Some((_, replies)) = index.map(|i| &mut script.keyed[i]) {
            return if replies.len() > 1 {
                replies.pop_front()
            } else {
                replies.front().cloned()
            };
        }
        script
            .ordered
            .pop_front()
            .or_else(|| script.otherwise.clone())
    }
}

/// Lower-case words without punctuation, digits spelled out one by one.
fn normalized_words(text: &str) -> Vec<String> {
    const DIGITS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    let mut spaced = String::with_capacity(text.len() * 2);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(d) = c.to_digit(10) {
            spaced.push(' ');
            spaced.push_str(DIGITS[d as usize]);
            spaced.push(' ');
        } else if c.is_alphanumeric() || c == '\'' {
            spaced.extend(c.to_lowercase());
        } else if c == '@' {
            // Spoken e-mail addresses: "jane dot doe at example dot com".
            spaced.push_str(" at ");
        } else if c == '.' && chars.peek().is_some_and(|n| n.is_alphanumeric()) {
            spaced.push_str(" dot ");
        } else {
            spaced.push(' ');
        }
    }
    spaced.split_whitespace().map(str::to_owned).collect()
}

/// Shared words over the longer word list (multisets), in `[0, 1]`.
fn similarity(a: &[String], b: &[String]) -> f32 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut rest: Vec<&String> = b.iter().collect();
    let mut shared = 0;
    for word in a {
        if let Some(i) = rest.iter().position(|w| *w == word) {
            rest.swap_remove(i);
            shared += 1;
        }
    }
    shared as f32 / a.len().max(b.len()) as f32
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn word_chunks(text: &str) -> Vec<ChatChunk> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            chunks.push(ChatChunk::Text(std::mem::take(&mut current)));
        }
    }
    if !current.is_empty() {
        chunks.push(ChatChunk::Text(current));
    }
    chunks
}

impl Llm for ScriptedLlm {
    fn provider(&self) -> &str {
        "scripted"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn chat(&self, request: ChatRequest) -> LlmStream {
        let key = Self::key_of(&request);
        let prompt_tokens = request.context.len() as u64;
        lock(&self.requests).push(request);
        let mut reply = self.next_reply(&key);
        if let Some(ScriptedReply::Dynamic(responder)) = &reply {
            let last = lock(&self.requests);
            reply = last.last().map(|request| (responder.0)(request));
        }
        let mut items: Vec<Result<ChatChunk, LlmError>> = match reply {
            None => vec![Err(LlmError::Other {
                provider: "scripted".to_owned(),
                message: format!("the script has no reply for {key:?}"),
                retryable: false,
            })],
            Some(ScriptedReply::Error(e)) => vec![Err(e)],
            Some(ScriptedReply::Dynamic(_)) => vec![Err(LlmError::Other {
                provider: "scripted".to_owned(),
                message: "a dynamic reply returned another dynamic reply".to_owned(),
                retryable: false,
            })],
            Some(ScriptedReply::Text(text)) => {
                let mut chunks: Vec<_> = word_chunks(&text).into_iter().map(Ok).collect();
                chunks.push(Ok(ChatChunk::Finish(FinishReason::Stop)));
                chunks
            }
            Some(ScriptedReply::ToolCalls { text, calls }) => {
                let mut chunks: Vec<_> = word_chunks(&text).into_iter().map(Ok).collect();
                for (index, (name, arguments)) in calls.into_iter().enumerate() {
                    chunks.push(Ok(ChatChunk::ToolCall(ToolCallDelta {
                        index,
                        id: Some(format!("call_{}", crate::chat::new_id("s"))),
                        name: Some(name),
                        arguments,
                    })));
                }
                chunks.push(Ok(ChatChunk::Finish(FinishReason::ToolCalls)));
                chunks
            }
            Some(ScriptedReply::Chunks(chunks)) => chunks.into_iter().map(Ok).collect(),
            Some(ScriptedReply::ChunksThenError(chunks, e)) => {
                let mut items: Vec<_> = chunks.into_iter().map(Ok).collect();
                items.push(Err(e));
                items
            }
        };
        if items.iter().all(Result::is_ok) {
            let completion_tokens = items.len() as u64;
            items.push(Ok(ChatChunk::Usage(Usage {
                prompt_tokens,
                cached_tokens: 0,
                completion_tokens,
            })));
        }
        let ttft = self.time_to_first_token;
        let interval = self.chunk_interval;
        if ttft.is_zero() && interval.is_zero() {
            return stream::iter(items).boxed();
        }
        stream::iter(items.into_iter().enumerate())
            .then(move |(i, item)| async move {
                let wait = if i == 0 { ttft } else { interval };
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                item
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ChatContext, ChatMessage};

    fn ask(llm: &ScriptedLlm, text: &str) -> Option<String> {
        let mut ctx = ChatContext::new();
        ctx.insert(ChatMessage::new(Role::User, text));
        match llm.next_reply(&ScriptedLlm::key_of(&ChatRequest::new(ctx))) {
            Some(ScriptedReply::Text(t)) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn fuzzy_keys_match_transcripts_of_the_scripted_lines() {
        let llm = ScriptedLlm::new()
            .on(
                "Five five five, one two three, four five six seven.",
                ScriptedReply::text("phone"),
            )
            .on(
                "The fourth of March, eighty-five.",
                ScriptedReply::text("date"),
            )
            .on("after:update_phone", ScriptedReply::text("after"))
            .with_fuzzy_keys(0.5);
        assert_eq!(ask(&llm, "555-123-4567.").as_deref(), Some("phone"));
        assert_eq!(
            ask(&llm, "The 4th of March, eighty five.").as_deref(),
            Some("date")
        );
        assert_eq!(ask(&llm, "something else entirely"), None);
        let email = ScriptedLlm::new()
            .on(
                "jane dot doe at example dot com",
                ScriptedReply::text("email"),
            )
            .with_fuzzy_keys(0.5);
        assert_eq!(ask(&email, "jane.do@example.com").as_deref(), Some("email"));
        let exact = ScriptedLlm::new().on("Jane Doe.", ScriptedReply::text("name"));
        assert_eq!(ask(&exact, "jane doe"), None, "exact unless asked");
    }
}
