//! A [`ChatRequest`] as Needle's three inputs: system facts, tools JSON and the query text.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Value};
use switchboard::chat::{ChatItem, Role};
use switchboard::llm::{ChatRequest, LlmError, ToolChoice, ToolDefinition};
use switchboard::workflows::date::CalendarDate;

use crate::NeedleOptions;

/// What Needle reads as the query of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TextMode {
    /// The latest user message only. The default: Needle was trained on single requests, and
    /// on the clinic evaluation (`examples/clinic_tools.rs`) the other modes did worse.
    #[default]
    LatestUser,
    /// The latest user message, preceded by what the agent said just before it (the question
    /// being answered), as `"<agent's words> <user's words>"` when the agent spoke last.
    WithQuestion,
    /// A short transcript of the last messages, one per line as `agent: …` / `user: …`, the
    /// latest user message last. `turns` counts the messages before it.
    Transcript {
        /// Messages (agent and user) before the latest user message.
        turns: usize,
    },
}

/// The date fact given to Needle as a system fact (`date: 2026-12-05 Sat`), so it can turn
/// "next Tuesday" into a date. The engine prepares the system facts and tools once
/// (`needle_init`, 0.3–0.4 s) and again only when they change, so the fact carries the day,
/// not the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DateFact {
    /// No date fact.
    Off,
    /// Today's date (UTC, from the system clock). The default.
    #[default]
    Today,
    /// A fixed date (tests, replays).
    Fixed(CalendarDate),
}

/// The inputs of one Needle call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedleInput {
    /// The system facts (`key: value; key: value`).
    pub system: String,
    /// The tools, as a JSON array with keys in the order Needle expects.
    pub tools_json: String,
    /// The query.
    pub text: String,
    /// The names of the tools offered (the only names an answer may call).
    pub tool_names: Vec<String>,
}

/// Maps a request to Needle's inputs.
///
/// Returns `Ok(None)` when there is nothing to route: no tools offered, `ToolChoice::None`, or
/// the conversation does not end with a user message (after a tool output or a one-off
/// instruction the chat model speaks, not the router). `ToolChoice::Named` offers only that
/// tool (an error if the request does not hold it).
///
/// ```
/// use switchboard::chat::{ChatContext, Role};
/// use switchboard::llm::{ChatRequest, ToolDefinition};
/// use switchboard_needle::{DateFact, NeedleOptions, TextMode, prepare_input};
///
/// let mut ctx = ChatContext::new();
/// ctx.add_message(Role::User, "When are you open?");
/// let tool = ToolDefinition {
///     name: "get_hours".into(),
///     description: "Opening hours.".into(),
///     parameters: serde_json::json!({"type": "object", "properties": {}}),
///     strict_parameters: None,
/// };
/// let request = ChatRequest::new(ctx).with_tools([tool]);
/// let options = NeedleOptions { date: DateFact::Off, ..NeedleOptions::default() };
/// let input = prepare_input(&request, &options).unwrap().unwrap();
/// assert_eq!(input.text, "When are you open?");
/// assert_eq!(
///     input.tools_json,
///     r#"[{"name":"get_hours","description":"Opening hours.","parameters":{"type":"object","properties":{}}}]"#
/// );
/// ```
pub fn prepare_input(
    request: &ChatRequest,
    options: &NeedleOptions,
) -> Result<Option<NeedleInput>, LlmError> {
    let tools: Vec<&Arc<ToolDefinition>> = match &request.tool_choice {
        ToolChoice::None => return Ok(None),
        ToolChoice::Auto | ToolChoice::Required => request.tools.iter().collect(),
        ToolChoice::Named(name) => {
            let named: Vec<_> = request.tools.iter().filter(|t| t.name == *name).collect();
            if named.is_empty() {
                return Err(LlmError::InvalidRequest {
                    provider: crate::llm::PROVIDER.into(),
                    message: format!("tool_choice names `{name}`, which is not among the tools"),
                });
            }
            named
        }
    };
    if tools.is_empty() {
        return Ok(None);
    }
    let Some(text) = query_text(request, options.text_mode) else {
        return Ok(None);
    };
    let tool_names = tools.iter().map(|t| t.name.clone()).collect();
    Ok(Some(NeedleInput {
        system: system_facts(options),
        tools_json: tools_json(tools.iter().map(|t| &***t)),
        text,
        tool_names,
    }))
}

/// The system facts: the date fact, then [`NeedleOptions::facts`], joined with `"; "`.
fn system_facts(options: &NeedleOptions) -> String {
    let mut facts = Vec::new();
    let date = match options.date {
        DateFact::Off => None,
        DateFact::Today => Some(CalendarDate::today()),
        DateFact::Fixed(date) => Some(date),
    };
    if let Some(date) = date {
        facts.push(date_fact(date));
    }
    if let Some(extra) = options.facts.as_deref().map(str::trim)
        && !extra.is_empty()
    {
        facts.push(extra.to_owned());
    }
    facts.join("; ")
}

/// `date: 2026-12-05 Sat`.
fn date_fact(date: CalendarDate) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    // 1970-01-01 was a Thursday.
    let weekday = (date.days_since_epoch() + 3).rem_euclid(7) as usize;
    format!("date: {date} {}", DAYS[weekday])
}

/// The message items of the conversation that matter for the query: user and assistant text.
fn spoken(item: &ChatItem) -> Option<(Role, String)> {
    match item {
        ChatItem::Message(m) if matches!(m.role, Role::User | Role::Assistant) => {
            let text = m.text().trim().to_owned();
            Some((m.role, text))
        }
        _ => None,
    }
}

/// The query text, or `None` when the conversation does not end with a user message.
fn query_text(request: &ChatRequest, mode: TextMode) -> Option<String> {
    let items = request.context.items();
    // The latest item that is not bookkeeping (handoffs, config updates) must be a user message.
    let last = items.iter().rposition(|i| {
        !matches!(
            i,
            ChatItem::AgentHandoff(_) | ChatItem::AgentConfigUpdate(_)
        )
    })?;
    let user = match spoken(&items[last]) {
        Some((Role::User, text)) if !text.is_empty() => text,
        _ => return None,
    };
    // Spoken messages before it, most recent first; a tool call ends the agent's question.
    let earlier = items[..last].iter().rev().filter_map(spoken);
    match mode {
        TextMode::LatestUser => Some(user),
        TextMode::WithQuestion => {
            // The agent's words since the previous user message, if it spoke.
            let mut said: Vec<String> = Vec::new();
            for (role, text) in earlier {
                match role {
                    Role::Assistant if !text.is_empty() => said.push(text),
                    Role::Assistant => {}
                    _ => break,
                }
            }
            said.reverse();
            if said.is_empty() {
                Some(user)
            } else {
                Some(format!("{} {user}", said.join(" ")))
            }
        }
        TextMode::Transcript { turns } => {
            let mut lines: Vec<String> = earlier
                .filter(|(_, text)| !text.is_empty())
                .take(turns)
                .map(|(role, text)| format!("{}: {text}", speaker(role)))
                .collect();
            lines.reverse();
            lines.push(format!("user: {user}"));
            Some(lines.join("\n"))
        }
    }
}

fn speaker(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        _ => "agent",
    }
}

/// The tools as the JSON array Needle expects: each tool's keys in the order `name`,
/// `description`, `parameters` (the order Needle was trained on; alphabetical order makes it
/// call tools spuriously).
///
/// The parameter schemas are rewritten into the dialect of Needle's own schema builder (what it
/// was trained on), which schemars-derived schemas differ from:
/// - keywords come in the builder's order (`type`, `enum`, `items`, `description`,
///   `properties`, `required`, then constraints, then anything else alphabetically);
/// - properties come in the order of the `required` list, then the others alphabetically
///   (`serde_json` does not keep declaration order; `required` usually does);
/// - an optional value is its plain type: `"type": ["string", "null"]` becomes `"string"`, and
///   `anyOf: [X, {"type": "null"}]` becomes `X`;
/// - annotations the builder never writes are dropped: `title`, `default`, `$schema`,
///   `additionalProperties`, `examples`, a `description` on the arguments object itself, and the
///   numeric `format`s (`int64`, `double`, …); string formats such as `date` stay.
///
/// The JSON is compact; the engine re-tokenises it, so whitespace does not matter.
///
/// ```
/// use switchboard::llm::ToolDefinition;
/// use switchboard_needle::tools_json;
///
/// let tool = ToolDefinition {
///     name: "book".into(),
///     description: "Book a table.".into(),
///     parameters: serde_json::json!({
///         "type": "object",
///         "required": ["time", "party_size"],
///         "properties": {
///             "party_size": {"type": "integer", "description": "People."},
///             "time": {"description": "HH:MM", "type": "string"}
///         }
///     }),
///     strict_parameters: None,
/// };
/// assert_eq!(
///     tools_json([&tool]),
///     concat!(
///         r#"[{"name":"book","description":"Book a table.","parameters":{"type":"object","#,
///         r#""properties":{"time":{"type":"string","description":"HH:MM"},"#,
///         r#""party_size":{"type":"integer","description":"People."}},"#,
///         r#""required":["time","party_size"]}}]"#
///     )
/// );
/// ```
pub fn tools_json<'a>(tools: impl IntoIterator<Item = &'a ToolDefinition>) -> String {
    let mut out = String::from("[");
    for (i, tool) in tools.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        write_plain(&mut out, &Value::String(tool.name.clone()));
        out.push_str(",\"description\":");
        write_plain(&mut out, &Value::String(tool.description.clone()));
        out.push_str(",\"parameters\":");
        let mut parameters = tool.parameters.clone();
        if let Value::Object(map) = &mut parameters {
            map.remove("description");
        }
        write_schema(&mut out, &simplify(parameters));
        out.push('}');
    }
    out.push(']');
    out
}

/// Annotations Needle's schema builder never writes.
const DROPPED: &[&str] = &[
    "title",
    "default",
    "$schema",
    "additionalProperties",
    "examples",
];

/// Numeric formats (schemars writes them for Rust integer and float types).
const NUMERIC_FORMATS: &[&str] = &[
    "int8", "int16", "int32", "int64", "int128", "uint", "uint8", "uint16", "uint32", "uint64",
    "uint128", "float", "double",
];

/// Rewrites a schema into Needle's dialect (see [`tools_json`]): optional types made plain,
/// annotations it never saw dropped. Applied recursively to sub-schemas.
fn simplify(schema: Value) -> Value {
    let Value::Object(mut map) = schema else {
        return match schema {
            Value::Array(items) => Value::Array(items.into_iter().map(simplify).collect()),
            other => other,
        };
    };
    // anyOf/oneOf [X, null] → X (merged over the remaining keywords, e.g. a description).
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(variants)) = map.get(key) {
            let concrete: Vec<&Value> = variants.iter().filter(|v| !is_null_schema(v)).collect();
            if concrete.len() == 1
                && concrete.len() < variants.len()
                && let Value::Object(inner) = concrete[0].clone()
            {
                map.remove(key);
                for (k, v) in inner {
                    map.entry(k).or_insert(v);
                }
            }
        }
    }
    if let Some(Value::Array(types)) = map.get("type") {
        let concrete: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if concrete.len() == 1 {
            map.insert("type".into(), concrete[0].clone());
        }
    }
    for key in DROPPED {
        map.remove(*key);
    }
    if map
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| NUMERIC_FORMATS.contains(&f))
    {
        map.remove("format");
    }
    let mut out = Map::new();
    for (key, value) in map {
        let value = match key.as_str() {
            "properties" | "$defs" | "definitions" | "patternProperties" => match value {
                Value::Object(entries) => Value::Object(
                    entries
                        .into_iter()
                        .map(|(name, schema)| (name, simplify(schema)))
                        .collect(),
                ),
                other => other,
            },
            k if SCHEMA_VALUED.contains(&k) => simplify(value),
            _ => value,
        };
        out.insert(key, value);
    }
    Value::Object(out)
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// Schema keywords in the order Needle's schema builder emits them.
const KEYWORD_ORDER: &[&str] = &[
    "type",
    "enum",
    "items",
    "description",
    "properties",
    "required",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
    "const",
    "$defs",
    "definitions",
];

/// Keywords whose value is a schema (or an array of schemas).
const SCHEMA_VALUED: &[&str] = &[
    "items",
    "additionalProperties",
    "not",
    "contains",
    "if",
    "then",
    "else",
    "propertyNames",
    "anyOf",
    "oneOf",
    "allOf",
    "prefixItems",
];

/// Keywords whose value maps names to schemas.
const SCHEMA_MAPS: &[&str] = &["$defs", "definitions", "patternProperties"];

fn rank(key: &str) -> usize {
    KEYWORD_ORDER
        .iter()
        .position(|k| *k == key)
        .unwrap_or(KEYWORD_ORDER.len())
}

fn write_schema(out: &mut String, schema: &Value) {
    match schema {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // Stable: keywords by rank, unknown ones stay alphabetical (the map's order).
            keys.sort_by_key(|k| rank(k));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_plain(out, &Value::String(key.clone()));
                out.push(':');
                let value = &map[key];
                match (key.as_str(), value) {
                    ("properties", Value::Object(props)) => {
                        write_properties(out, props, map.get("required"))
                    }
                    (k, Value::Object(defs)) if SCHEMA_MAPS.contains(&k) => {
                        write_schema_map(out, defs.iter())
                    }
                    (k, _) if SCHEMA_VALUED.contains(&k) => write_schema(out, value),
                    _ => write_plain(out, value),
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_schema(out, item);
            }
            out.push(']');
        }
        other => write_plain(out, other),
    }
}

/// Properties: those listed in `required` first, in that order, then the rest.
fn write_properties(out: &mut String, props: &Map<String, Value>, required: Option<&Value>) {
    let required: Vec<&str> = required
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut ordered: Vec<(&String, &Value)> = required
        .iter()
        .filter_map(|name| props.get_key_value(*name))
        .collect();
    ordered.extend(
        props
            .iter()
            .filter(|(k, _)| !required.contains(&k.as_str())),
    );
    write_schema_map(out, ordered.into_iter());
}

fn write_schema_map<'a>(out: &mut String, entries: impl Iterator<Item = (&'a String, &'a Value)>) {
    out.push('{');
    for (i, (name, schema)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_plain(out, &Value::String(name.clone()));
        out.push(':');
        write_schema(out, schema);
    }
    out.push('}');
}

fn write_plain(out: &mut String, value: &Value) {
    // Serialising a `Value` cannot fail; `Display` writes compact JSON.
    let _ = write!(out, "{value}");
}
