//! [`RunResult`]: what one [`AgentSession::run`](super::AgentSession::run) produced.

use std::any::TypeId;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::oneshot;

use super::speech::SpeechError;
use crate::chat::{AgentHandoff, ChatMessage, FunctionCall, FunctionCallOutput};
use crate::clock::Timestamp;

/// One thing a run produced. The user's own input message is not an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// A message (assistant replies, `say` text).
    Message(ChatMessage),
    /// A tool call.
    FunctionCall(FunctionCall),
    /// A tool call's output.
    FunctionCallOutput(FunctionCallOutput),
    /// A switch of agent.
    AgentHandoff {
        /// The handoff item.
        item: AgentHandoff,
        /// The Rust type name of the new agent.
        new_agent_type: &'static str,
        /// The type of the new agent, for [`RunEvent::is_handoff_to`].
        #[serde(skip)]
        new_agent_type_id: TypeId,
    },
}

impl RunEvent {
    /// When the underlying item was created.
    pub fn created_at(&self) -> Timestamp {
        match self {
            RunEvent::Message(m) => m.created_at,
            RunEvent::FunctionCall(c) => c.created_at,
            RunEvent::FunctionCallOutput(o) => o.created_at,
            RunEvent::AgentHandoff { item, .. } => item.created_at,
        }
    }

    /// The event's kind as a short name (`message`, `function_call`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            RunEvent::Message(_) => "message",
            RunEvent::FunctionCall(_) => "function_call",
            RunEvent::FunctionCallOutput(_) => "function_call_output",
            RunEvent::AgentHandoff { .. } => "agent_handoff",
        }
    }

    /// True for a handoff to an agent of type `A`.
    pub fn is_handoff_to<A: 'static>(&self) -> bool {
        matches!(self, RunEvent::AgentHandoff { new_agent_type_id, .. } if *new_agent_type_id == TypeId::of::<A>())
    }

    /// A one-line description, used in failure messages.
    pub fn describe(&self) -> String {
        match self {
            RunEvent::Message(m) => format!("message {}: {:?}", m.role.as_str(), m.text()),
            RunEvent::FunctionCall(c) => format!("function_call {}({})", c.name, c.arguments),
            RunEvent::FunctionCallOutput(o) => format!(
                "function_call_output {}{}: {:?}",
                o.name,
                if o.is_error { " (error)" } else { "" },
                o.output
            ),
            RunEvent::AgentHandoff { item, .. } => format!(
                "agent_handoff {} -> {}",
                item.old_agent_id.as_deref().unwrap_or("(none)"),
                item.new_agent_id
            ),
        }
    }
}

#[derive(Default)]
pub(crate) struct RunRecord {
    pub events: Mutex<Vec<RunEvent>>,
    /// The error of the last speech that finished, if it failed.
    pub last_error: Mutex<Option<SpeechError>>,
    /// What the session's root task completed with during this run (see
    /// [`AgentSession::run_with_output`](super::AgentSession::run_with_output)).
    pub final_output: Mutex<Option<super::task::TaskValue>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RunRecord {
    pub fn take_final_output(&self) -> Option<super::task::TaskValue> {
        lock(&self.final_output).take()
    }

    pub fn push(&self, event: RunEvent) {
        lock(&self.events).push(event);
    }

    pub fn speech_finished(&self, error: Option<SpeechError>) {
        *lock(&self.last_error) = error;
    }
}

/// Keeps a run open. Every watched thing (a speech, a handoff, an `on_enter`) holds a clone of
/// the run's token; when the last clone is dropped the run is complete. Successors take their
/// clone before predecessors drop theirs, so a run never completes between two steps.
pub(crate) struct RunGuard {
    pub record: Arc<RunRecord>,
    done: Mutex<Option<oneshot::Sender<()>>>,
}

pub(crate) type RunToken = Arc<RunGuard>;

impl RunGuard {
    pub fn new(record: Arc<RunRecord>) -> (RunToken, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (
            Arc::new(RunGuard {
                record,
                done: Mutex::new(Some(tx)),
            }),
            rx,
        )
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if let Some(tx) = lock(&self.done).take() {
            let _ = tx.send(());
        }
    }
}

/// The events of one run, sorted by creation time, and its outcome.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub(crate) events: Vec<RunEvent>,
}

impl RunResult {
    pub(crate) fn from_record(record: &RunRecord) -> Self {
        let mut events = lock(&record.events).clone();
        events.sort_by_key(RunEvent::created_at);
        RunResult { events }
    }

    /// The events, oldest first.
    pub fn events(&self) -> &[RunEvent] {
        &self.events
    }

    /// The text of the last assistant message, if any.
    pub fn last_reply(&self) -> Option<String> {
        self.events.iter().rev().find_map(|e| match e {
            RunEvent::Message(m) if m.role == crate::chat::Role::Assistant => Some(m.text()),
            _ => None,
        })
    }

    /// Every event, one per line, for failure messages; `mark` points at one of them.
    pub fn describe(&self, mark: Option<usize>) -> String {
        if self.events.is_empty() {
            return "  (no events)".to_owned();
        }
        self.events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let pointer = if Some(i) == mark { ">>>" } else { "   " };
                format!("{pointer} [{i}] {}", e.describe())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
