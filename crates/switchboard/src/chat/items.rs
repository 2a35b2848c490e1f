//! The item types of a [`ChatContext`](super::ChatContext).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Timestamp;

/// A new process-unique id with a readable prefix, e.g. `item_k3x9_1f`.
///
/// Ids are unique within a process and very likely unique across processes (they carry a tag
/// derived from the process start time), which is what id-based merging needs.
pub fn new_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PROCESS_TAG: OnceLock<String> = OnceLock::new();
    let tag = PROCESS_TAG.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut tag = String::new();
        push_base36(
            &mut tag,
            (nanos ^ u64::from(std::process::id()).rotate_left(32)) % 36u64.pow(5),
        );
        tag
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Built by hand: ids are made on every item and speech, and `format!` showed in profiles.
    let mut id = String::with_capacity(prefix.len() + tag.len() + 8);
    id.push_str(prefix);
    id.push('_');
    id.push_str(tag);
    id.push('_');
    push_base36(&mut id, n);
    id
}

fn push_base36(out: &mut String, mut n: u64) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; 13];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&b| char::from(b)));
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions from the application.
    System,
    /// Instructions from the developer (newer providers' name for system).
    Developer,
    /// The person the agent talks to.
    User,
    /// The agent.
    Assistant,
}

impl Role {
    /// True for system and developer messages, which carry instructions.
    pub fn is_instructions(self) -> bool {
        matches!(self, Role::System | Role::Developer)
    }

    /// The role's name as providers spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One part of a message's content. In JSON, text is a plain string and images and audio are
/// objects (an image has a `url`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatContent {
    /// Plain text.
    Text(String),
    /// An image.
    Image(ImageContent),
    /// Audio, usually kept only as its transcript.
    Audio(AudioContent),
}

/// An image in a message, by URL or data URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageContent {
    /// An `https:` URL or a `data:` URL.
    pub url: String,
    /// The MIME type when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// Audio in a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioContent {
    /// What was said, when transcribed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    /// Duration in seconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
}

/// A message from the system, developer, user or assistant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Stable id.
    pub id: String,
    /// Who wrote it.
    pub role: Role,
    /// Its content parts, in order.
    pub content: Vec<ChatContent>,
    /// True when an assistant message was cut short by an interruption; the content is then
    /// only what the user actually heard.
    #[serde(default, skip_serializing_if = "is_false")]
    pub interrupted: bool,
    /// Free-form metadata (e.g. `is_summary`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
    /// When it was created.
    pub created_at: Timestamp,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ChatMessage {
    /// A text message created now.
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        ChatMessage {
            id: new_id("msg"),
            role,
            content: vec![ChatContent::Text(text.into())],
            interrupted: false,
            extra: Map::new(),
            created_at: Timestamp::now(),
        }
    }

    /// The text parts (and audio transcripts) joined with newlines.
    pub fn text(&self) -> String {
        let mut parts = self.content.iter().filter_map(|c| match c {
            ChatContent::Text(t) => Some(t.as_str()),
            ChatContent::Audio(a) => a.transcript.as_deref(),
            ChatContent::Image(_) => None,
        });
        let first = parts.next().unwrap_or_default().to_owned();
        parts.fold(first, |mut acc, p| {
            acc.push('\n');
            acc.push_str(p);
            acc
        })
    }

    /// True when the message has no text, image or audio.
    pub fn is_empty(&self) -> bool {
        self.content.iter().all(|c| match c {
            ChatContent::Text(t) => t.is_empty(),
            ChatContent::Audio(a) => a.transcript.as_deref().is_none_or(str::is_empty),
            ChatContent::Image(_) => false,
        })
    }

    /// True for a summary written by [`ChatContext::summarize`](super::ChatContext::summarize).
    pub fn is_summary(&self) -> bool {
        self.extra.get("is_summary") == Some(&Value::Bool(true))
    }
}

/// A tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Stable item id.
    pub id: String,
    /// The provider's call id, which the output refers to.
    pub call_id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as a JSON string (canonical JSON once the call was dispatched).
    pub arguments: String,
    /// The id of the generation (assistant message) this call belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// When it was created (reset to dispatch time).
    pub created_at: Timestamp,
}

impl FunctionCall {
    /// A call created now.
    pub fn new(
        call_id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        FunctionCall {
            id: new_id("call"),
            call_id: call_id.into(),
            name: name.into(),
            arguments: arguments.into(),
            group_id: None,
            created_at: Timestamp::now(),
        }
    }
}

/// The output of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallOutput {
    /// Stable item id.
    pub id: String,
    /// The call this answers.
    pub call_id: String,
    /// The tool's name.
    pub name: String,
    /// The output as shown to the model.
    pub output: String,
    /// True when the output reports an error.
    #[serde(default)]
    pub is_error: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

impl FunctionCallOutput {
    /// An output created now.
    pub fn new(
        call_id: impl Into<String>,
        name: impl Into<String>,
        output: impl Into<String>,
        is_error: bool,
    ) -> Self {
        FunctionCallOutput {
            id: new_id("out"),
            call_id: call_id.into(),
            name: name.into(),
            output: output.into(),
            is_error,
            created_at: Timestamp::now(),
        }
    }
}

/// Control of the conversation moved from one agent to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentHandoff {
    /// Stable item id.
    pub id: String,
    /// The agent that had control (none for the session's first agent).
    #[serde(default)]
    pub old_agent_id: Option<String>,
    /// The agent that has control now.
    pub new_agent_id: String,
    /// When it happened.
    pub created_at: Timestamp,
}

impl AgentHandoff {
    /// A handoff recorded now.
    pub fn new(old_agent_id: Option<String>, new_agent_id: impl Into<String>) -> Self {
        AgentHandoff {
            id: new_id("handoff"),
            old_agent_id,
            new_agent_id: new_agent_id.into(),
            created_at: Timestamp::now(),
        }
    }
}

/// An agent's instructions or tools changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConfigUpdate {
    /// Stable item id.
    pub id: String,
    /// The agent whose configuration changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The new instructions, when they changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Tools that became available.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools_added: Vec<String>,
    /// Tools that were removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools_removed: Vec<String>,
    /// When it happened.
    pub created_at: Timestamp,
}

impl AgentConfigUpdate {
    /// An empty update recorded now.
    pub fn new(agent_id: Option<String>) -> Self {
        AgentConfigUpdate {
            id: new_id("config"),
            agent_id,
            instructions: None,
            tools_added: Vec::new(),
            tools_removed: Vec::new(),
            created_at: Timestamp::now(),
        }
    }
}

/// The kind of a [`ChatItem`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// [`ChatItem::Message`]
    Message,
    /// [`ChatItem::FunctionCall`]
    FunctionCall,
    /// [`ChatItem::FunctionCallOutput`]
    FunctionCallOutput,
    /// [`ChatItem::AgentHandoff`]
    AgentHandoff,
    /// [`ChatItem::AgentConfigUpdate`]
    AgentConfigUpdate,
}

/// One entry of a conversation.
///
/// The payloads are shared (`Arc`): copying a context, which every model request does, copies
/// pointers, not text. Read them through `Deref` as usual (`m.text()`, `c.name`); to change one
/// in place use [`Arc::make_mut`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatItem {
    /// A message.
    Message(Arc<ChatMessage>),
    /// A tool call.
    FunctionCall(Arc<FunctionCall>),
    /// A tool call's output.
    FunctionCallOutput(Arc<FunctionCallOutput>),
    /// A switch of agent.
    AgentHandoff(Arc<AgentHandoff>),
    /// A change of instructions or tools.
    AgentConfigUpdate(Arc<AgentConfigUpdate>),
}

impl ChatItem {
    /// The item's id.
    pub fn id(&self) -> &str {
        match self {
            ChatItem::Message(i) => &i.id,
            ChatItem::FunctionCall(i) => &i.id,
            ChatItem::FunctionCallOutput(i) => &i.id,
            ChatItem::AgentHandoff(i) => &i.id,
            ChatItem::AgentConfigUpdate(i) => &i.id,
        }
    }

    /// When the item was created.
    pub fn created_at(&self) -> Timestamp {
        match self {
            ChatItem::Message(i) => i.created_at,
            ChatItem::FunctionCall(i) => i.created_at,
            ChatItem::FunctionCallOutput(i) => i.created_at,
            ChatItem::AgentHandoff(i) => i.created_at,
            ChatItem::AgentConfigUpdate(i) => i.created_at,
        }
    }

    /// The item's kind.
    pub fn kind(&self) -> ItemKind {
        match self {
            ChatItem::Message(_) => ItemKind::Message,
            ChatItem::FunctionCall(_) => ItemKind::FunctionCall,
            ChatItem::FunctionCallOutput(_) => ItemKind::FunctionCallOutput,
            ChatItem::AgentHandoff(_) => ItemKind::AgentHandoff,
            ChatItem::AgentConfigUpdate(_) => ItemKind::AgentConfigUpdate,
        }
    }

    /// The message, if this is one.
    pub fn as_message(&self) -> Option<&ChatMessage> {
        match self {
            ChatItem::Message(m) => Some(m),
            _ => None,
        }
    }
}

macro_rules! impl_from_item {
    ($($variant:ident: $ty:ident),*) => {$(
        impl From<$ty> for ChatItem {
            fn from(item: $ty) -> Self {
                ChatItem::$variant(Arc::new(item))
            }
        }
        impl From<Arc<$ty>> for ChatItem {
            fn from(item: Arc<$ty>) -> Self {
                ChatItem::$variant(item)
            }
        }
    )*};
}
impl_from_item!(
    Message: ChatMessage,
    FunctionCall: FunctionCall,
    FunctionCallOutput: FunctionCallOutput,
    AgentHandoff: AgentHandoff,
    AgentConfigUpdate: AgentConfigUpdate
);
