//! Pure tests of the request → (system, tools JSON, text) mapping and of output parsing.
//! No model needed.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard::chat::{ChatContext, FunctionCall, FunctionCallOutput, Role};
use switchboard::llm::{ChatRequest, LlmError, ToolChoice, ToolDefinition};
use switchboard::workflows::date::CalendarDate;
use switchboard_needle::{
    DateFact, NeedleError, NeedleOptions, TextMode, parse_output, prepare_input, tools_json,
};

fn tool(name: &str, description: &str, parameters: Value) -> ToolDefinition {
    ToolDefinition {
        name: name.into(),
        description: description.into(),
        parameters,
        strict_parameters: None,
    }
}

fn book() -> ToolDefinition {
    tool(
        "book_appointment",
        "Book an appointment.",
        json!({
            "type": "object",
            "properties": {
                "time": {"type": "string", "description": "HH:MM"},
                "day": {"type": "string", "description": "Day of the week"}
            },
            "required": ["day", "time"]
        }),
    )
}

fn hours() -> ToolDefinition {
    tool(
        "get_hours",
        "Opening hours.",
        json!({"type": "object", "properties": {}}),
    )
}

fn no_date() -> NeedleOptions {
    NeedleOptions {
        date: DateFact::Off,
        ..NeedleOptions::default()
    }
}

fn conversation(items: &[(Role, &str)]) -> ChatContext {
    let mut ctx = ChatContext::new();
    for (role, text) in items {
        ctx.add_message(*role, *text);
    }
    ctx
}

fn request(items: &[(Role, &str)]) -> ChatRequest {
    ChatRequest::new(conversation(items)).with_tools([book(), hours()])
}

/// The keys of a JSON object, in the order they appear in `text` (serde_json sorts them).
fn key_order(text: &str, path: &[&str]) -> Vec<String> {
    // Walk by hand: find the object at `path` and list its top-level keys as written.
    let mut rest = text;
    for key in path {
        let needle = format!("\"{key}\":");
        let at = rest
            .find(&needle)
            .unwrap_or_else(|| panic!("no {key} in {rest}"));
        rest = &rest[at + needle.len()..];
    }
    let mut keys = Vec::new();
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut current = String::new();
    let mut expecting_key = false;
    for c in rest.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                if depth == 1 && expecting_key {
                    keys.push(std::mem::take(&mut current));
                    expecting_key = false;
                }
                continue;
            }
            if depth == 1 && expecting_key {
                current.push(c);
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => {
                depth += 1;
                if depth == 1 {
                    expecting_key = true;
                }
            }
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expecting_key = true,
            _ => {}
        }
    }
    keys
}

#[test]
fn tools_json_writes_name_description_parameters_in_that_order() {
    let json = tools_json([&book(), &hours()]);
    assert!(
        json.starts_with(r#"[{"name":"book_appointment","description":"Book an appointment.","parameters":{"type":"object","properties":{"day":"#),
        "{json}"
    );
    let parsed: Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(parsed.as_array().map(Vec::len), Some(2));
    assert_eq!(parsed[1]["name"], "get_hours");
    // Every tool object: name, description, parameters.
    for chunk in json.split(r#"{"name":"#).skip(1) {
        let keys = key_order(&format!(r#"{{"name":{chunk}"#), &[]);
        assert_eq!(keys, ["name", "description", "parameters"], "{json}");
    }
}

#[test]
fn properties_follow_the_required_order_and_keywords_the_builder_order() {
    let json = tools_json([&book()]);
    assert_eq!(
        key_order(&json, &["parameters"]),
        ["type", "properties", "required"]
    );
    // `required` says day, time; serde_json alone would write day, time too, so flip it.
    let flipped = tool(
        "book",
        "Book.",
        json!({
            "required": ["time", "day"],
            "properties": {
                "day": {"description": "Day", "type": "string"},
                "time": {"description": "HH:MM", "type": "string"},
                "note": {"type": "string"}
            },
            "type": "object"
        }),
    );
    let json = tools_json([&flipped]);
    assert_eq!(
        key_order(&json, &["parameters", "properties"]),
        ["time", "day", "note"]
    );
    assert_eq!(
        key_order(&json, &["properties", "time"]),
        ["type", "description"]
    );
}

#[test]
fn nested_schemas_are_ordered_and_simplified_recursively() {
    let nested = tool(
        "order_pizza",
        "Order pizzas.",
        json!({
            "type": "object",
            "description": "Arguments of `order_pizza`.",
            "title": "OrderArgs",
            "additionalProperties": false,
            "properties": {
                "pizzas": {
                    "description": "The pizzas.",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["size", "name"],
                        "properties": {
                            "size": {"enum": ["small", "large"], "type": "string"},
                            "name": {"type": "string"},
                            "extra": {"type": ["string", "null"], "default": null, "description": "Extra topping."}
                        }
                    },
                    "minItems": 1
                },
                "count": {"type": "integer", "format": "int64", "minimum": 1},
                "when": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}], "description": "Day."}
            },
            "required": ["pizzas"]
        }),
    );
    let json = tools_json([&nested]);
    let parsed: Value = serde_json::from_str(&json).expect("valid JSON");
    let params = &parsed[0]["parameters"];
    // The arguments object has no description, title or additionalProperties.
    assert_eq!(
        key_order(&json, &["parameters"]),
        ["type", "properties", "required"]
    );
    assert_eq!(
        key_order(&json, &["parameters", "properties"]),
        ["pizzas", "count", "when"]
    );
    assert_eq!(
        key_order(&json, &["pizzas"]),
        ["type", "items", "description", "minItems"]
    );
    assert_eq!(
        key_order(&json, &["items"]),
        ["type", "properties", "required"]
    );
    assert_eq!(
        key_order(&json, &["items", "properties"]),
        ["size", "name", "extra"]
    );
    assert_eq!(key_order(&json, &["size"]), ["type", "enum"]);
    // Optional values are plain; numeric formats and defaults are gone; string formats stay.
    let item = &params["properties"]["pizzas"]["items"]["properties"];
    assert_eq!(
        item["extra"],
        json!({"type": "string", "description": "Extra topping."})
    );
    assert_eq!(
        params["properties"]["count"],
        json!({"type": "integer", "minimum": 1})
    );
    assert_eq!(
        params["properties"]["when"],
        json!({"type": "string", "description": "Day.", "format": "date"})
    );
    assert_eq!(
        key_order(&json, &["when"]),
        ["type", "description", "format"]
    );
}

#[test]
fn the_latest_user_message_is_the_text() {
    let req = request(&[
        (Role::System, "You are a clinic."),
        (Role::User, "hello"),
        (Role::Assistant, "Hi! How can I help?"),
        (Role::User, "  When are you open?  "),
    ]);
    let options = NeedleOptions {
        text_mode: TextMode::LatestUser,
        ..no_date()
    };
    let input = prepare_input(&req, &options).unwrap().unwrap();
    assert_eq!(input.text, "When are you open?");
    assert_eq!(input.system, "");
    assert_eq!(input.tool_names, ["book_appointment", "get_hours"]);
    assert_eq!(input.tools_json, tools_json([&book(), &hours()]));
}

#[test]
fn the_question_mode_prefixes_what_the_agent_just_said() {
    let req = request(&[
        (Role::User, "hello"),
        (Role::Assistant, "Hi!"),
        (Role::Assistant, "Shall I book Tuesday?"),
        (Role::User, "yes please"),
    ]);
    let options = NeedleOptions {
        text_mode: TextMode::WithQuestion,
        ..no_date()
    };
    let input = prepare_input(&req, &options).unwrap().unwrap();
    assert_eq!(input.text, "Hi! Shall I book Tuesday? yes please");
    // Without an agent turn in between, the text is the user's alone.
    let req = request(&[(Role::User, "first"), (Role::User, "second")]);
    let input = prepare_input(&req, &options).unwrap().unwrap();
    assert_eq!(input.text, "second");
}

#[test]
fn the_transcript_mode_lists_the_last_turns() {
    let req = request(&[
        (Role::System, "instructions are not part of it"),
        (Role::User, "one"),
        (Role::Assistant, "two"),
        (Role::User, "three"),
        (Role::Assistant, "four"),
        (Role::User, "five"),
    ]);
    let options = NeedleOptions {
        text_mode: TextMode::Transcript { turns: 3 },
        ..no_date()
    };
    let input = prepare_input(&req, &options).unwrap().unwrap();
    assert_eq!(
        input.text,
        "agent: two\nuser: three\nagent: four\nuser: five"
    );
}

#[test]
fn the_date_fact_and_extra_facts_form_the_system_text() {
    let req = request(&[(Role::User, "book me in tomorrow")]);
    let options = NeedleOptions {
        date: DateFact::Fixed(CalendarDate::new(2026, 12, 5).unwrap()),
        facts: Some("caller: returning patient".into()),
        ..NeedleOptions::default()
    };
    let input = prepare_input(&req, &options).unwrap().unwrap();
    assert_eq!(
        input.system,
        "date: 2026-12-05 Sat; caller: returning patient"
    );
    let monday = NeedleOptions {
        date: DateFact::Fixed(CalendarDate::new(2024, 1, 1).unwrap()),
        ..NeedleOptions::default()
    };
    let input = prepare_input(&req, &monday).unwrap().unwrap();
    assert_eq!(input.system, "date: 2024-01-01 Mon");
}

#[test]
fn nothing_is_routed_without_tools_a_user_turn_or_with_tool_choice_none() {
    let options = no_date();
    // No tools.
    let bare = ChatRequest::new(conversation(&[(Role::User, "hi")]));
    assert_eq!(prepare_input(&bare, &options).unwrap(), None);
    // Tool choice None.
    let none = request(&[(Role::User, "hi")]).with_tool_choice(ToolChoice::None);
    assert_eq!(prepare_input(&none, &options).unwrap(), None);
    // A one-off instruction at the end (a task's prompt).
    let instructed = request(&[(Role::User, "hi"), (Role::System, "Ask for their name.")]);
    assert_eq!(prepare_input(&instructed, &options).unwrap(), None);
    // After a tool ran, the chat model speaks about its output.
    let mut ctx = conversation(&[(Role::User, "When are you open?")]);
    ctx.insert(FunctionCall::new("call_1", "get_hours", "{}"));
    ctx.insert(FunctionCallOutput::new(
        "call_1",
        "get_hours",
        "9 to 5",
        false,
    ));
    let after_tool = ChatRequest::new(ctx).with_tools([hours()]);
    assert_eq!(prepare_input(&after_tool, &options).unwrap(), None);
    // An empty user message.
    let empty = request(&[(Role::User, "   ")]);
    assert_eq!(prepare_input(&empty, &options).unwrap(), None);
}

#[test]
fn a_named_tool_choice_offers_only_that_tool() {
    let options = no_date();
    let named =
        request(&[(Role::User, "hi")]).with_tool_choice(ToolChoice::Named("get_hours".into()));
    let input = prepare_input(&named, &options).unwrap().unwrap();
    assert_eq!(input.tool_names, ["get_hours"]);
    assert_eq!(input.tools_json, tools_json([&hours()]));
    let unknown = request(&[(Role::User, "hi")]).with_tool_choice(ToolChoice::Named("nope".into()));
    let error = prepare_input(&unknown, &options).unwrap_err();
    assert!(
        matches!(error, LlmError::InvalidRequest { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("nope"), "{error}");
}

#[test]
fn shared_definitions_map_like_owned_ones() {
    let shared: Vec<Arc<ToolDefinition>> = vec![Arc::new(book())];
    let req = ChatRequest::new(conversation(&[(Role::User, "hi")])).with_tools(shared);
    let input = prepare_input(&req, &no_date()).unwrap().unwrap();
    assert_eq!(input.tools_json, tools_json([&book()]));
}

const OFFERED: &[&str] = &["book_appointment", "get_hours"];

#[test]
fn a_valid_answer_parses() {
    let raw = r#"{"type":"call","success":true,"error":null,"error_code":null,"reason":null,
        "function_calls":[{"name":"book_appointment","arguments":{"day":"Tuesday","time":"15:00"}}],
        "suppressed_calls":[{"name":"get_hours","arguments":{}}],
        "reasoning":"Tuesday, 3pm -> 15:00.","confidence":0.8336,"prefill_tps":86.1,
        "validation":{"ungrounded":["book_appointment.time"],"negation":false}}"#;
    let output = parse_output(raw, OFFERED).unwrap();
    assert_eq!(output.calls.len(), 1);
    assert_eq!(output.calls[0].name, "book_appointment");
    assert_eq!(
        output.calls[0].arguments,
        json!({"day": "Tuesday", "time": "15:00"})
    );
    assert_eq!(output.suppressed[0].name, "get_hours");
    assert!((output.confidence.unwrap() - 0.8336).abs() < 1e-6);
    assert_eq!(output.reasoning, "Tuesday, 3pm -> 15:00.");
    assert_eq!(output.ungrounded, ["book_appointment.time"]);
    assert!(!output.negation);
}

#[test]
fn an_empty_call_list_is_no_call() {
    let raw = r#"{"type":"call","success":true,"function_calls":[],"suppressed_calls":[],"reasoning":"No weather tool available.","confidence":0.86}"#;
    let output = parse_output(raw, OFFERED).unwrap();
    assert!(output.calls.is_empty() && output.suppressed.is_empty() && output.unknown.is_empty());
    // Missing lists are empty lists too.
    let output = parse_output(r#"{"type":"call"}"#, OFFERED).unwrap();
    assert!(output.calls.is_empty());
    assert_eq!(output.confidence, None);
}

#[test]
fn malformed_answers_are_errors_not_panics() {
    for raw in [
        "",
        "not json",
        r#"{"type":"call","function_calls":[{"name":"get_hours""#,
        "[1, 2]",
        r#"{"function_calls": {"name": "get_hours"}}"#,
        r#"{"function_calls": [{"arguments": {}}]}"#,
        r#"{"function_calls": [{"name": 7}]}"#,
        r#"{"function_calls": ["get_hours"]}"#,
    ] {
        match parse_output(raw, OFFERED) {
            Err(NeedleError::MalformedOutput { message, .. }) => assert!(!message.is_empty()),
            other => panic!("{raw:?} gave {other:?}"),
        }
    }
}

#[test]
fn engine_errors_are_reported_with_their_message() {
    let error = parse_output(
        r#"{"type":"error","error":"needle_init not called"}"#,
        OFFERED,
    )
    .unwrap_err();
    assert!(
        matches!(&error, NeedleError::Engine(m) if m == "needle_init not called"),
        "{error:?}"
    );
    let error = parse_output(
        r#"{"type":"call","success":false,"error":null,"reason":"tool call truncated: token budget exhausted"}"#,
        OFFERED,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("token budget exhausted"),
        "{error}"
    );
}

#[test]
fn calls_to_tools_not_offered_are_dropped() {
    let raw = r#"{"type":"call","function_calls":[{"name":"get_weather","arguments":{"city":"Lagos"}},{"name":"get_hours","arguments":{}}]}"#;
    let output = parse_output(raw, OFFERED).unwrap();
    assert_eq!(output.calls.len(), 1);
    assert_eq!(output.calls[0].name, "get_hours");
    assert_eq!(output.unknown.len(), 1);
    assert_eq!(output.unknown[0].name, "get_weather");
}

#[test]
fn arguments_are_repaired_when_possible() {
    let raw = r#"{"type":"call","function_calls":[
        {"name":"get_hours"},
        {"name":"get_hours","arguments":null},
        {"name":"book_appointment","arguments":"{\"day\":\"Monday\",\"time\":\"09:00\"}"},
        {"name":"book_appointment","arguments":"Monday at nine"},
        {"name":"book_appointment","arguments":[1,2]}
    ]}"#;
    let output = parse_output(raw, OFFERED).unwrap();
    let args: Vec<&Value> = output.calls.iter().map(|c| &c.arguments).collect();
    // The two argument-less get_hours calls are one call.
    assert_eq!(
        args,
        [
            &json!({}),
            &json!({"day": "Monday", "time": "09:00"}),
            &json!("Monday at nine"),
            &json!([1, 2]),
        ]
    );
}
