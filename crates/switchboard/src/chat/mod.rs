//! The conversation model: [`ChatContext`] and its items.
//!
//! A context is an ordered list of [`ChatItem`]s: messages, function calls, function call
//! outputs, agent handoffs and agent configuration updates. Every item has a stable id and a
//! [`Timestamp`]; the list is always sorted by timestamp, and an item inserted with a timestamp
//! equal to existing ones goes after them (stable insertion).
//!
//! ```
//! use switchboard::chat::{ChatContext, Role};
//!
//! let mut ctx = ChatContext::new();
//! ctx.add_message(Role::System, "You are the front desk of a clinic.");
//! ctx.add_message(Role::User, "Hi, I'd like to book an appointment.");
//! assert_eq!(ctx.len(), 2);
//! let json = serde_json::to_string(&ctx).unwrap();
//! let back: ChatContext = serde_json::from_str(&json).unwrap();
//! assert_eq!(back, ctx);
//! ```

mod items;
mod provider;
mod summarize;

pub use items::{
    AgentConfigUpdate, AgentHandoff, AudioContent, ChatContent, ChatItem, ChatMessage,
    FunctionCall, FunctionCallOutput, ImageContent, ItemKind, Role, new_id,
};
pub use provider::{ProviderMessage, provider_messages};
pub use summarize::{SUMMARY_CLOSE, SUMMARY_OPEN, SummarizeOptions, SummaryError};

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// The id of the system message that holds an agent's instructions inside its context.
pub const INSTRUCTIONS_ID: &str = "instructions";

/// An ordered conversation: messages, tool calls and outputs, handoffs and config updates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatContext {
    items: Vec<ChatItem>,
}

/// Which items [`ChatContext::copy`] keeps. The default keeps everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CopyOptions {
    /// Drop system and developer messages (the instructions).
    pub exclude_instructions: bool,
    /// Drop function calls and their outputs.
    pub exclude_function_calls: bool,
    /// Drop agent handoff items.
    pub exclude_handoffs: bool,
    /// Drop agent configuration updates.
    pub exclude_config_updates: bool,
    /// Drop messages whose content is empty (no text, image or audio).
    pub exclude_empty_messages: bool,
    /// When set, keep only function calls and outputs of these tools.
    pub tools: Option<Vec<String>>,
}

/// What [`ChatContext::merge`] brings over from the other context.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOptions {
    /// Skip system and developer messages of the other context (default true).
    pub exclude_instructions: bool,
    /// Skip function calls and outputs of the other context (default false).
    pub exclude_function_calls: bool,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            exclude_instructions: true,
            exclude_function_calls: false,
        }
    }
}

impl ChatContext {
    /// An empty context.
    pub fn new() -> Self {
        ChatContext::default()
    }

    /// A context holding `items`, sorted by timestamp (stable for equal timestamps).
    pub fn from_items(items: impl IntoIterator<Item = ChatItem>) -> Self {
        let mut items: Vec<ChatItem> = items.into_iter().collect();
        items.sort_by_key(ChatItem::created_at);
        ChatContext { items }
    }

    /// The items, oldest first.
    pub fn items(&self) -> &[ChatItem] {
        &self.items
    }

    /// Consumes the context and returns its items, oldest first.
    pub fn into_items(self) -> Vec<ChatItem> {
        self.items
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the context holds no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Iterates over the items, oldest first.
    pub fn iter(&self) -> std::slice::Iter<'_, ChatItem> {
        self.items.iter()
    }

    /// The most recent item.
    pub fn last(&self) -> Option<&ChatItem> {
        self.items.last()
    }

    /// Inserts an item at its place in time order, after any item with the same timestamp.
    /// Returns the index it was inserted at.
    pub fn insert(&mut self, item: impl Into<ChatItem>) -> usize {
        let item = item.into();
        let at = item.created_at();
        // Fast path: most items are the newest.
        let index = if self.items.last().is_none_or(|last| last.created_at() <= at) {
            self.items.len()
        } else {
            self.items
                .partition_point(|existing| existing.created_at() <= at)
        };
        self.items.insert(index, item);
        index
    }

    /// Appends a new text message created now, and returns it (shared with the context).
    pub fn add_message(&mut self, role: Role, text: impl Into<String>) -> Arc<ChatMessage> {
        let message = Arc::new(ChatMessage::new(role, text));
        self.insert(ChatItem::Message(message.clone()));
        message
    }

    /// The item with this id.
    pub fn get(&self, id: &str) -> Option<&ChatItem> {
        self.items.iter().find(|item| item.id() == id)
    }

    /// The index of the item with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.items.iter().position(|item| item.id() == id)
    }

    /// Removes and returns the item with this id.
    pub fn remove(&mut self, id: &str) -> Option<ChatItem> {
        let index = self.index_of(id)?;
        Some(self.items.remove(index))
    }

    /// Replaces the item that has the same id as `item` (keeping its position), or inserts it
    /// in time order when no item has that id.
    pub fn upsert(&mut self, item: impl Into<ChatItem>) {
        let item = item.into();
        match self.index_of(item.id()) {
            Some(index) => self.items[index] = item,
            None => {
                self.insert(item);
            }
        }
    }

    /// Keeps only the items for which `keep` returns true.
    pub fn retain(&mut self, keep: impl FnMut(&ChatItem) -> bool) {
        self.items.retain(keep);
    }

    /// A filtered copy of this context.
    ///
    /// ```
    /// use switchboard::chat::{ChatContext, CopyOptions, Role};
    /// let mut ctx = ChatContext::new();
    /// ctx.add_message(Role::System, "instructions");
    /// ctx.add_message(Role::User, "hello");
    /// let copy = ctx.copy(&CopyOptions { exclude_instructions: true, ..Default::default() });
    /// assert_eq!(copy.len(), 1);
    /// ```
    pub fn copy(&self, options: &CopyOptions) -> ChatContext {
        let tools: Option<HashSet<&str>> = options
            .tools
            .as_ref()
            .map(|names| names.iter().map(String::as_str).collect());
        let items = self
            .items
            .iter()
            .filter(|item| match item {
                ChatItem::Message(m) => {
                    !(options.exclude_instructions && m.role.is_instructions()
                        || options.exclude_empty_messages && m.is_empty())
                }
                ChatItem::FunctionCall(c) => {
                    !options.exclude_function_calls
                        && tools.as_ref().is_none_or(|t| t.contains(c.name.as_str()))
                }
                ChatItem::FunctionCallOutput(o) => {
                    !options.exclude_function_calls
                        && tools.as_ref().is_none_or(|t| t.contains(o.name.as_str()))
                }
                ChatItem::AgentHandoff(_) => !options.exclude_handoffs,
                ChatItem::AgentConfigUpdate(_) => !options.exclude_config_updates,
            })
            .cloned()
            .collect();
        ChatContext { items }
    }

    /// Inserts the items of `other` that this context does not already hold (by id), in time
    /// order.
    pub fn merge(&mut self, other: &ChatContext, options: &MergeOptions) {
        let known: HashSet<String> = self.items.iter().map(|i| i.id().to_owned()).collect();
        for item in &other.items {
            if known.contains(item.id()) {
                continue;
            }
            let skip = match item {
                ChatItem::Message(m) => options.exclude_instructions && m.role.is_instructions(),
                ChatItem::FunctionCall(_) | ChatItem::FunctionCallOutput(_) => {
                    options.exclude_function_calls
                }
                _ => false,
            };
            if !skip {
                self.insert(item.clone());
            }
        }
    }

    /// Keeps the last `max_items` items.
    ///
    /// The result never starts with a function call or output, never holds an output whose call
    /// was dropped, and keeps the first system or developer message (re-inserted at the front
    /// when it fell out), so a truncated context is always valid for a provider.
    pub fn truncate(&mut self, max_items: usize) {
        if self.items.len() <= max_items {
            return;
        }
        let first_instructions = self
            .items
            .iter()
            .find(|i| matches!(i, ChatItem::Message(m) if m.role.is_instructions()))
            .cloned();
        let start = self.items.len() - max_items;
        let mut kept: Vec<ChatItem> = self.items.split_off(start);
        let leading_tool_items = kept
            .iter()
            .take_while(|i| {
                matches!(
                    i,
                    ChatItem::FunctionCall(_) | ChatItem::FunctionCallOutput(_)
                )
            })
            .count();
        kept.drain(..leading_tool_items);
        let calls: HashSet<String> = kept
            .iter()
            .filter_map(|i| match i {
                ChatItem::FunctionCall(c) => Some(c.call_id.clone()),
                _ => None,
            })
            .collect();
        kept.retain(|i| match i {
            ChatItem::FunctionCallOutput(o) => calls.contains(&o.call_id),
            _ => true,
        });
        if let Some(instructions) = first_instructions
            && !kept.iter().any(|i| i.id() == instructions.id())
        {
            kept.insert(0, instructions);
        }
        self.items = kept;
    }

    /// Writes `instructions` into the system message with id [`INSTRUCTIONS_ID`]: replaced in
    /// place when present, otherwise inserted first.
    pub fn set_instructions(&mut self, instructions: &str) {
        match self.index_of(INSTRUCTIONS_ID) {
            Some(index) => {
                if let ChatItem::Message(m) = &mut self.items[index] {
                    Arc::make_mut(m).content = vec![ChatContent::Text(instructions.to_owned())];
                }
            }
            None => {
                let created_at = self
                    .items
                    .first()
                    .map(|first| Timestamp::from_nanos(first.created_at().as_nanos() - 1))
                    .unwrap_or_else(Timestamp::now);
                let mut message = ChatMessage::new(Role::System, instructions);
                message.id = INSTRUCTIONS_ID.to_owned();
                message.created_at = created_at;
                self.items.insert(0, message.into());
            }
        }
    }

    /// The function call with this call id.
    pub fn function_call(&self, call_id: &str) -> Option<&FunctionCall> {
        self.items.iter().find_map(|i| match i {
            ChatItem::FunctionCall(c) if c.call_id == call_id => Some(&**c),
            _ => None,
        })
    }
}

impl<'a> IntoIterator for &'a ChatContext {
    type Item = &'a ChatItem;
    type IntoIter = std::slice::Iter<'a, ChatItem>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests;
