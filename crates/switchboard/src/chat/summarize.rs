//! Summarising a conversation through an [`Llm`].

use serde_json::Value;

use super::{ChatContent, ChatContext, ChatItem, ChatMessage, Role};
use crate::llm::{ChatRequest, Llm, LlmError, ToolChoice, collect};

/// Opening tag of a summary message's text.
pub const SUMMARY_OPEN: &str = "<chat_history_summary>";
/// Closing tag of a summary message's text.
pub const SUMMARY_CLOSE: &str = "</chat_history_summary>";

const DEFAULT_PROMPT: &str = "Summarize the conversation below for the assistant who will \
continue it. Keep every fact the user gave (names, dates, numbers, choices), every decision and \
every result of a tool. Write plain prose, at most a few sentences, no preamble.";

/// How [`ChatContext::summarize`] works.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummarizeOptions {
    /// How many of the most recent user turns (a user message and all that follows it) stay
    /// verbatim. Zero summarises everything.
    pub keep_last_turns: usize,
    /// Replaces the default summarisation prompt.
    pub prompt: Option<String>,
}

/// Why summarising failed. The context is left unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SummaryError {
    /// The model request failed.
    #[error("the summary request failed: {0}")]
    Llm(#[from] LlmError),
    /// The model answered with no text.
    #[error("the model returned an empty summary")]
    Empty,
}

fn summarisable(item: &ChatItem) -> bool {
    match item {
        ChatItem::Message(m) => matches!(m.role, Role::User | Role::Assistant) && !m.is_summary(),
        ChatItem::FunctionCall(_) | ChatItem::FunctionCallOutput(_) => true,
        ChatItem::AgentHandoff(_) | ChatItem::AgentConfigUpdate(_) => false,
    }
}

impl ChatContext {
    /// Replaces the older part of the conversation with one assistant message holding a summary
    /// (its text wrapped in [`SUMMARY_OPEN`]/[`SUMMARY_CLOSE`], `extra.is_summary = true`).
    ///
    /// User and assistant messages and tool items before the last `keep_last_turns` user turns
    /// are summarised; instructions, handoffs, config updates and earlier summaries stay. On
    /// error the context is unchanged. Returns the number of items replaced.
    pub async fn summarize(
        &mut self,
        llm: &dyn Llm,
        options: &SummarizeOptions,
    ) -> Result<usize, SummaryError> {
        // Index of the first item kept verbatim.
        let keep_from = if options.keep_last_turns == 0 {
            self.items.len()
        } else {
            let user_positions: Vec<usize> = self
                .items
                .iter()
                .enumerate()
                .filter(|(_, i)| matches!(i, ChatItem::Message(m) if m.role == Role::User))
                .map(|(index, _)| index)
                .collect();
            match user_positions.len().checked_sub(options.keep_last_turns) {
                Some(first) => user_positions.get(first).copied().unwrap_or(0),
                None => 0,
            }
        };
        let to_summarise: Vec<usize> = (0..keep_from)
            .filter(|&i| summarisable(&self.items[i]))
            .collect();
        let Some(&last) = to_summarise.last() else {
            return Ok(0);
        };

        let mut transcript = String::new();
        for &index in &to_summarise {
            match &self.items[index] {
                ChatItem::Message(m) => {
                    transcript.push_str(&format!("{}: {}\n", m.role.as_str(), m.text()));
                }
                ChatItem::FunctionCall(c) => {
                    transcript.push_str(&format!("tool call {}({})\n", c.name, c.arguments));
                }
                ChatItem::FunctionCallOutput(o) => {
                    let kind = if o.is_error {
                        "tool error"
                    } else {
                        "tool result"
                    };
                    transcript.push_str(&format!("{kind} {}: {}\n", o.name, o.output));
                }
                _ => {}
            }
        }

        let mut request_ctx = ChatContext::new();
        request_ctx.add_message(
            Role::System,
            options.prompt.as_deref().unwrap_or(DEFAULT_PROMPT),
        );
        request_ctx.add_message(Role::User, transcript);
        let request = ChatRequest::new(request_ctx).with_tool_choice(ToolChoice::None);
        let response = collect(llm.chat(request)).await?;
        let summary = response.text.trim();
        if summary.is_empty() {
            return Err(SummaryError::Empty);
        }

        let created_at = self.items[last].created_at();
        let mut message = ChatMessage::new(Role::Assistant, "");
        message.content = vec![ChatContent::Text(format!(
            "{SUMMARY_OPEN}{summary}{SUMMARY_CLOSE}"
        ))];
        message.extra.insert("is_summary".into(), Value::Bool(true));
        message.created_at = created_at;

        let replaced = to_summarise.len();
        let mut index = 0;
        self.items.retain(|_| {
            let keep = to_summarise.binary_search(&index).is_err();
            index += 1;
            keep
        });
        self.insert(message);
        Ok(replaced)
    }
}
