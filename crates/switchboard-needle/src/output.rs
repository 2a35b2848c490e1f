//! Needle's JSON answer, parsed and repaired.

use serde_json::{Map, Value};

use crate::NeedleError;
use crate::engine::truncate;

/// One tool call from Needle.
#[derive(Debug, Clone, PartialEq)]
pub struct NeedleCall {
    /// The tool's name.
    pub name: String,
    /// The arguments: a JSON object, unless the engine wrote something that could not be
    /// repaired into one (then the tool's argument check reports it as invalid).
    pub arguments: Value,
}

/// Needle's answer to one query.
///
/// The engine writes `{"type":"call","success":true,"function_calls":[…],"suppressed_calls":[…],
/// "reasoning":"…","confidence":0.79,"validation":{"ungrounded":[…],"negation":false},…}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NeedleOutput {
    /// The calls to make, in order, on offered tools only.
    pub calls: Vec<NeedleCall>,
    /// Calls the engine withheld itself (too unsure), on offered tools only.
    pub suppressed: Vec<NeedleCall>,
    /// Calls (made or suppressed) naming a tool that was not offered: dropped, kept for logs.
    pub unknown: Vec<NeedleCall>,
    /// The engine's short explanation.
    pub reasoning: String,
    /// The engine's calibrated confidence in its answer, 0–1, when reported.
    pub confidence: Option<f32>,
    /// Arguments the engine found not grounded in the query (`tool.argument`), e.g. a time it
    /// converted ("3pm" → "15:00") or made up.
    pub ungrounded: Vec<String>,
    /// Whether the engine saw a negated request ("don't book …").
    pub negation: bool,
}

/// Parses the engine's answer, keeping calls to `offered` tools only.
///
/// - Not a JSON object, or `function_calls` / `suppressed_calls` not arrays, or a call without
///   a string `name`: [`NeedleError::MalformedOutput`].
/// - `"type":"error"` or `"success":false`: [`NeedleError::Engine`] with its message.
/// - A call naming a tool that was not offered is dropped into [`NeedleOutput::unknown`]
///   (never emitted).
/// - Arguments are repaired when possible: missing or `null` become `{}`, a string holding a
///   JSON object becomes that object. Anything else is kept as it is, and the tool's argument
///   check reports it to the conversation as invalid arguments.
/// - Identical calls (same name and arguments) are kept once.
///
/// ```
/// use switchboard_needle::parse_output;
/// let raw = r#"{"type":"call","success":true,"function_calls":[{"name":"get_hours","arguments":{}}],
///               "suppressed_calls":[],"reasoning":"asks for hours","confidence":0.8}"#;
/// let output = parse_output(raw, &["get_hours"]).unwrap();
/// assert_eq!(output.calls[0].name, "get_hours");
/// assert_eq!(output.confidence, Some(0.8));
/// ```
pub fn parse_output(raw: &str, offered: &[&str]) -> Result<NeedleOutput, NeedleError> {
    let malformed = |message: &str| NeedleError::MalformedOutput {
        message: message.to_owned(),
        raw: truncate(raw),
    };
    let value: Value =
        serde_json::from_str(raw.trim()).map_err(|e| malformed(&format!("not JSON: {e}")))?;
    let Value::Object(answer) = value else {
        return Err(malformed("not a JSON object"));
    };
    let kind = answer.get("type").and_then(Value::as_str);
    let failed = answer.get("success") == Some(&Value::Bool(false));
    if kind == Some("error") || failed {
        let message = ["error", "reason", "error_code"]
            .iter()
            .filter_map(|k| answer.get(*k))
            .find_map(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .unwrap_or_else(|| "unspecified error".to_owned());
        return Err(NeedleError::Engine(message));
    }
    let mut output = NeedleOutput::default();
    for (field, keep) in [("function_calls", true), ("suppressed_calls", false)] {
        let calls = match answer.get(field) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(calls)) => calls,
            Some(_) => return Err(malformed(&format!("`{field}` is not an array"))),
        };
        for call in calls {
            let call = parse_call(call)
                .ok_or_else(|| malformed(&format!("an entry of `{field}` has no string `name`")))?;
            let list = if !offered.contains(&call.name.as_str()) {
                &mut output.unknown
            } else if keep {
                &mut output.calls
            } else {
                &mut output.suppressed
            };
            if !list.contains(&call) {
                list.push(call);
            }
        }
    }
    output.reasoning = answer
        .get("reasoning")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    output.confidence = answer
        .get("confidence")
        .and_then(Value::as_f64)
        .map(|c| c as f32);
    if let Some(Value::Object(validation)) = answer.get("validation") {
        output.ungrounded = validation
            .get("ungrounded")
            .and_then(Value::as_array)
            .map(|u| {
                u.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        output.negation = validation.get("negation") == Some(&Value::Bool(true));
    }
    Ok(output)
}

fn parse_call(call: &Value) -> Option<NeedleCall> {
    let call = call.as_object()?;
    let name = call.get("name")?.as_str()?.trim().to_owned();
    if name.is_empty() {
        return None;
    }
    let arguments = match call.get("arguments").or_else(|| call.get("parameters")) {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(object @ Value::Object(_)) => object,
            _ => Value::String(text.clone()),
        },
        Some(other) => other.clone(),
    };
    Some(NeedleCall { name, arguments })
}
