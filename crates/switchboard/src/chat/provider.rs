//! The shape most LLM providers want: one assistant turn grouping its text and its tool calls,
//! followed by the tool outputs. Shared by every provider crate.

use std::collections::HashSet;

use super::{ChatContext, ChatItem, ChatMessage, FunctionCall, FunctionCallOutput, Role};

/// One message in the form providers expect.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderMessage<'a> {
    /// System or developer instructions.
    Instructions {
        /// [`Role::System`] or [`Role::Developer`].
        role: Role,
        /// The instruction text.
        text: String,
    },
    /// A user message.
    User(&'a ChatMessage),
    /// An assistant turn: its text (possibly empty) and the tool calls it made.
    Assistant {
        /// The spoken or written text.
        text: String,
        /// Tool calls made in the same generation, in order.
        tool_calls: Vec<&'a FunctionCall>,
    },
    /// The output of one tool call.
    ToolOutput(&'a FunctionCallOutput),
}

/// Formats a context for a provider.
///
/// Handoffs and config updates are dropped; an assistant message and the function calls of the
/// same generation become one assistant turn; calls without an output (still running elsewhere)
/// and outputs without a call are dropped, because providers reject both.
pub fn provider_messages(ctx: &ChatContext) -> Vec<ProviderMessage<'_>> {
    let with_output: HashSet<&str> = ctx
        .iter()
        .filter_map(|i| match i {
            ChatItem::FunctionCallOutput(o) => Some(o.call_id.as_str()),
            _ => None,
        })
        .collect();
    let with_call: HashSet<&str> = ctx
        .iter()
        .filter_map(|i| match i {
            ChatItem::FunctionCall(c) => Some(c.call_id.as_str()),
            _ => None,
        })
        .collect();

    let mut out: Vec<ProviderMessage<'_>> = Vec::new();
    // The group id of the assistant turn at the end of `out`, if it can still take calls.
    let mut open_group: Option<Option<&str>> = None;
    for item in ctx {
        match item {
            ChatItem::Message(m) => match m.role {
                Role::System | Role::Developer => {
                    open_group = None;
                    out.push(ProviderMessage::Instructions {
                        role: m.role,
                        text: m.text(),
                    });
                }
                Role::User => {
                    open_group = None;
                    out.push(ProviderMessage::User(m));
                }
                Role::Assistant => {
                    open_group = Some(Some(m.id.as_str()));
                    out.push(ProviderMessage::Assistant {
                        text: m.text(),
                        tool_calls: Vec::new(),
                    });
                }
            },
            ChatItem::FunctionCall(call) => {
                if !with_output.contains(call.call_id.as_str()) {
                    continue;
                }
                let group = call.group_id.as_deref();
                let joins_open = match open_group {
                    Some(open) => group.is_none() || open.is_none() || open == group,
                    None => false,
                };
                if let (true, Some(ProviderMessage::Assistant { tool_calls, .. })) =
                    (joins_open, out.last_mut())
                {
                    tool_calls.push(call);
                } else {
                    out.push(ProviderMessage::Assistant {
                        text: String::new(),
                        tool_calls: vec![call],
                    });
                    open_group = Some(group);
                }
            }
            ChatItem::FunctionCallOutput(output) => {
                if with_call.contains(output.call_id.as_str()) {
                    // A call of the same turn after this output starts a new assistant turn,
                    // which keeps every output after its call (valid for every provider).
                    out.push(ProviderMessage::ToolOutput(output));
                }
            }
            ChatItem::AgentHandoff(_) | ChatItem::AgentConfigUpdate(_) => {}
        }
    }
    out
}
