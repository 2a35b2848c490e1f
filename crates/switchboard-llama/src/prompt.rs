//! Prompt formats: the model's own chat template, or the built-in transcript for base models.
//!
//! # The transcript format (fallback)
//!
//! Base (pretrained) models, such as the default Gemma 3 270M, have no chat template and do
//! not follow instructions; they continue documents. The transcript format writes the
//! conversation as a document they can continue, one turn per line:
//!
//! ```text
//! <preamble>
//! <instructions (system/developer messages before the first turn)>
//!
//! The assistant can use these tools:            (only when tools are offered)
//! - get_weather: Gets the weather. Arguments: {"city": string, "days"?: integer or null}
//! To use a tool, the assistant writes <tool_call> and the call as JSON on one line.
//!
//! <few-shot example conversation>               (tool example when tools are offered)
//!
//! Conversation:
//! System: <later instructions>
//! User: What's the weather in Paris?
//! Assistant: <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}
//! Tool result (get_weather): {"temp_c": 21}
//! Assistant: It is 21 degrees in Paris.
//! User: Thanks!
//! Assistant:
//! ```
//!
//! Newlines inside messages become spaces, so every turn is one line and the answer ends at
//! the first newline (a stop string of this format), before the model invents the next turn.
//! When a tool call is forced (`ToolChoice::Required` or `Named`) the prompt ends with
//! `Assistant: <tool_call>` and the model only writes the JSON.

use std::fmt::Write as _;

use serde_json::Value;
use switchboard::chat::{ChatContext, ChatItem, ProviderMessage, provider_messages};
use switchboard::llm::ToolDefinition;

use crate::output::TOOL_CALL_MARKER;

/// How requests are turned into a prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PromptFormat {
    /// The model's `tokenizer.chat_template` when it has one that llama.cpp can apply, else
    /// [`PromptFormat::Transcript`].
    #[default]
    Auto,
    /// The built-in transcript for base models (see the [module docs](self)).
    Transcript,
    /// The model's chat template; an error when the model has none or llama.cpp cannot apply it.
    ModelTemplate,
}

/// The texts of the transcript format. Replace the examples with conversations that use your
/// own tools to help a small model most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptStyle {
    /// The first lines of the prompt.
    pub preamble: String,
    /// Example conversation shown when no tools are offered (may be empty).
    pub chat_example: String,
    /// Example conversation shown when tools are offered (may be empty). It should show calls
    /// written as `Assistant: <tool_call>{"name": ..., "arguments": {...}}` followed by
    /// `Tool result (name): ...` lines.
    pub tool_example: String,
}

impl Default for TranscriptStyle {
    fn default() -> Self {
        TranscriptStyle {
            preamble: "This is a conversation between a user and a helpful, friendly voice \
                       assistant. The assistant answers in one or two short sentences."
                .to_owned(),
            chat_example: "Example:\n\
                User: Hi! Who are you?\n\
                Assistant: Hi! I'm your voice assistant. How can I help you today?\n\
                User: How many days are there in a week?\n\
                Assistant: There are seven days in a week."
                .to_owned(),
            tool_example: "Example (with the example tools get_time and set_timer):\n\
                User: What time is it in Tokyo?\n\
                Assistant: <tool_call>{\"name\": \"get_time\", \"arguments\": {\"city\": \"Tokyo\"}}\n\
                Tool result (get_time): {\"time\": \"21:04\"}\n\
                Assistant: It is 9:04 pm in Tokyo.\n\
                User: Please set a timer for ten minutes.\n\
                Assistant: <tool_call>{\"name\": \"set_timer\", \"arguments\": {\"minutes\": 10}}\n\
                Tool result (set_timer): {\"ok\": true}\n\
                Assistant: Done, your ten minute timer is running.\n\
                User: Thanks! How are you?\n\
                Assistant: I'm great, thanks for asking!"
                .to_owned(),
        }
    }
}

/// Stop strings of the transcript format: every turn is one line.
pub(crate) const TRANSCRIPT_STOPS: &[&str] = &["\n"];

/// The transcript prompt for a request. `forced_call` ends it with the tool-call marker.
pub(crate) fn transcript(
    ctx: &ChatContext,
    tools: &[std::sync::Arc<ToolDefinition>],
    style: &TranscriptStyle,
    forced_call: bool,
) -> String {
    let mut out = String::new();
    push_paragraph(&mut out, &style.preamble);
    let (instructions, rest) = leading_instructions(ctx);
    if !instructions.is_empty() {
        out.push_str(&instructions.join("\n"));
        out.push_str("\n\n");
    }
    if !tools.is_empty() {
        out.push_str(&tools_section(tools));
        out.push('\n');
        push_paragraph(&mut out, &style.tool_example);
    } else {
        push_paragraph(&mut out, &style.chat_example);
    }
    out.push_str("Conversation:\n");
    for message in provider_messages(&rest) {
        match message {
            ProviderMessage::Instructions { text, .. } => {
                let _ = writeln!(out, "System: {}", one_line(&text));
            }
            ProviderMessage::User(m) => {
                let _ = writeln!(out, "User: {}", one_line(&m.text()));
            }
            ProviderMessage::Assistant { text, tool_calls } => {
                if !text.trim().is_empty() {
                    let _ = writeln!(out, "Assistant: {}", one_line(&text));
                }
                for call in tool_calls {
                    let _ = writeln!(
                        out,
                        "Assistant: {TOOL_CALL_MARKER}{}",
                        call_json(&call.name, &call.arguments)
                    );
                }
            }
            ProviderMessage::ToolOutput(o) => {
                let _ = writeln!(out, "Tool result ({}): {}", o.name, one_line(&o.output));
            }
        }
    }
    out.push_str("Assistant:");
    if forced_call {
        out.push(' ');
        out.push_str(TOOL_CALL_MARKER);
    }
    out
}

/// The messages for a model's own chat template: `(role, content)` with roles `system`,
/// `user` and `assistant`. Tools are described in the system message; calls are written as
/// assistant text with the marker, and their outputs as user messages.
pub(crate) fn template_messages(
    ctx: &ChatContext,
    tools: &[std::sync::Arc<ToolDefinition>],
) -> Vec<(&'static str, String)> {
    let mut messages: Vec<(&'static str, String)> = Vec::new();
    let (instructions, rest) = leading_instructions(ctx);
    let mut system = instructions.join("\n");
    if !tools.is_empty() {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str(&tools_section(tools));
    }
    if !system.is_empty() {
        messages.push(("system", system));
    }
    for message in provider_messages(&rest) {
        match message {
            ProviderMessage::Instructions { text, .. } => messages.push(("system", text)),
            ProviderMessage::User(m) => messages.push(("user", m.text())),
            ProviderMessage::Assistant { text, tool_calls } => {
                let mut content = text;
                for call in tool_calls {
                    if !content.is_empty() {
                        content.push('\n');
                    }
                    content.push_str(TOOL_CALL_MARKER);
                    content.push_str(&call_json(&call.name, &call.arguments));
                }
                messages.push(("assistant", content));
            }
            ProviderMessage::ToolOutput(o) => {
                messages.push(("user", format!("Tool result ({}): {}", o.name, o.output)));
            }
        }
    }
    messages
}

/// System/developer messages before the first other item, and the context without them.
fn leading_instructions(ctx: &ChatContext) -> (Vec<String>, ChatContext) {
    let mut instructions = Vec::new();
    let mut items = ctx.items().iter().peekable();
    while let Some(ChatItem::Message(m)) = items.peek() {
        if !m.role.is_instructions() {
            break;
        }
        let text = m.text();
        if !text.trim().is_empty() {
            instructions.push(text.trim().to_owned());
        }
        items.next();
    }
    (instructions, ChatContext::from_items(items.cloned()))
}

fn push_paragraph(out: &mut String, text: &str) {
    let text = text.trim();
    if !text.is_empty() {
        out.push_str(text);
        out.push_str("\n\n");
    }
}

fn tools_section(tools: &[std::sync::Arc<ToolDefinition>]) -> String {
    let mut out = String::from("The assistant can use these tools:\n");
    for tool in tools {
        let _ = write!(out, "- {}", tool.name);
        let description = one_line(&tool.description);
        if !description.is_empty() {
            let _ = write!(out, ": {description}");
            if !description.ends_with('.') {
                out.push('.');
            }
        }
        let _ = writeln!(out, " Arguments: {}", schema_summary(&tool.parameters, 0));
    }
    let _ = writeln!(
        out,
        "To use a tool, the assistant writes {TOOL_CALL_MARKER} and the call as JSON on one line."
    );
    out
}

/// A short, readable form of a schema: `{"city": string, "days"?: integer or null}`.
pub(crate) fn schema_summary(schema: &Value, depth: usize) -> String {
    if depth > 6 {
        return "value".to_owned();
    }
    let Value::Object(map) = schema else {
        return "value".to_owned();
    };
    if let Some(Value::Array(values)) = map.get("enum") {
        return values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(value) = map.get("const") {
        return value.to_string();
    }
    for keyword in ["anyOf", "oneOf"] {
        if let Some(Value::Array(subs)) = map.get(keyword) {
            return subs
                .iter()
                .map(|s| schema_summary(s, depth + 1))
                .collect::<Vec<_>>()
                .join(" or ");
        }
    }
    let types: Vec<&str> = match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ if map.contains_key("properties") => vec!["object"],
        _ => vec![],
    };
    if types.is_empty() {
        return "value".to_owned();
    }
    types
        .iter()
        .map(|t| match *t {
            "object" => {
                let required: Vec<&str> = map
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let props = map.get("properties").and_then(Value::as_object);
                let members: Vec<String> = props
                    .into_iter()
                    .flatten()
                    .map(|(name, s)| {
                        let optional = if required.contains(&name.as_str()) {
                            ""
                        } else {
                            "?"
                        };
                        format!(
                            "{}{optional}: {}",
                            Value::String(name.clone()),
                            schema_summary(s, depth + 1)
                        )
                    })
                    .collect();
                format!("{{{}}}", members.join(", "))
            }
            "array" => match map.get("items") {
                Some(items) => format!("list of {}", schema_summary(items, depth + 1)),
                None => "list".to_owned(),
            },
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// `{"name": "...", "arguments": {...}}` on one line, with a space after `:` and `,` (the
/// form the examples use). Arguments that are not JSON are written as a string.
pub(crate) fn call_json(name: &str, arguments: &str) -> String {
    let arguments = serde_json::from_str::<Value>(arguments)
        .unwrap_or_else(|_| Value::String(arguments.to_owned()));
    let mut out = String::new();
    out.push_str("{\"name\": ");
    out.push_str(&Value::String(name.to_owned()).to_string());
    out.push_str(", \"arguments\": ");
    write_spaced(&mut out, &arguments);
    out.push('}');
    out
}

/// JSON on one line with `": "` and `", "` separators.
pub(crate) fn write_spaced(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_spaced(out, v);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_spaced(out, v);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use switchboard::chat::{FunctionCall, FunctionCallOutput, Role};

    use super::*;

    fn weather() -> Arc<ToolDefinition> {
        Arc::new(ToolDefinition {
            name: "get_weather".into(),
            description: "Gets the weather".into(),
            parameters: json!({
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": ["integer", "null"]}},
                "required": ["city"]
            }),
            strict_parameters: None,
        })
    }

    fn conversation() -> ChatContext {
        let mut ctx = ChatContext::new();
        ctx.add_message(Role::System, "You are Ada.\nBe brief.");
        ctx.add_message(Role::User, "Weather in\nParis?");
        ctx.insert(FunctionCall::new(
            "c1",
            "get_weather",
            r#"{"city":"Paris"}"#,
        ));
        ctx.insert(FunctionCallOutput::new(
            "c1",
            "get_weather",
            "{\"temp_c\":21}",
            false,
        ));
        ctx.add_message(Role::Assistant, "It is 21 degrees.");
        ctx.add_message(Role::Developer, "Now ask for feedback.");
        ctx.add_message(Role::User, "Thanks!");
        ctx
    }

    #[test]
    fn transcript_maps_every_item_kind_to_one_line() {
        let style = TranscriptStyle {
            preamble: "PREAMBLE".into(),
            chat_example: "CHAT EXAMPLE".into(),
            tool_example: "TOOL EXAMPLE".into(),
        };
        let prompt = transcript(&conversation(), &[weather()], &style, false);
        let expected = "PREAMBLE\n\n\
            You are Ada.\nBe brief.\n\n\
            The assistant can use these tools:\n\
            - get_weather: Gets the weather. Arguments: {\"city\": string, \"days\"?: integer or null}\n\
            To use a tool, the assistant writes <tool_call> and the call as JSON on one line.\n\n\
            TOOL EXAMPLE\n\n\
            Conversation:\n\
            User: Weather in Paris?\n\
            Assistant: <tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n\
            Tool result (get_weather): {\"temp_c\":21}\n\
            Assistant: It is 21 degrees.\n\
            System: Now ask for feedback.\n\
            User: Thanks!\n\
            Assistant:";
        assert_eq!(prompt, expected);
        let forced = transcript(&conversation(), &[weather()], &style, true);
        assert!(forced.ends_with("Assistant: <tool_call>"));
        let no_tools = transcript(&conversation(), &[], &style, false);
        assert!(no_tools.contains("CHAT EXAMPLE") && !no_tools.contains("TOOL EXAMPLE"));
    }

    #[test]
    fn template_messages_use_three_roles() {
        let messages = template_messages(&conversation(), &[weather()]);
        let roles: Vec<&str> = messages.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            roles,
            [
                "system",
                "user",
                "assistant",
                "user",
                "assistant",
                "system",
                "user"
            ]
        );
        assert!(
            messages[0]
                .1
                .starts_with("You are Ada.\nBe brief.\n\nThe assistant can use")
        );
        assert_eq!(
            messages[2].1,
            r#"<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}"#
        );
        assert_eq!(messages[3].1, "Tool result (get_weather): {\"temp_c\":21}");
    }

    #[test]
    fn schema_summaries_are_short() {
        let s = json!({"type": "object", "properties": {
            "unit": {"enum": ["c", "f"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "at": {"anyOf": [{"type": "string"}, {"type": "null"}]}
        }, "required": ["unit"]});
        assert_eq!(
            schema_summary(&s, 0),
            r#"{"at"?: string or null, "tags"?: list of string, "unit": "c" | "f"}"#
        );
    }
}
