//! Tests of schema generation, strict schemas, argument decoding and tool outputs.
//!
//! Calling a tool needs a running session (for its `RunContext`), so the decoding path that
//! `FunctionTool::new` installs is tested through `decode_arguments` directly.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use super::*;

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Dinner,
    Lunch,
}

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct When {
    /// ISO date.
    date: String,
    #[schemars(range(min = 0, max = 23))]
    hour: u8,
}

/// Book a table.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct BookArgs {
    /// Guest name.
    #[schemars(length(min = 2, max = 10))]
    name: String,
    #[schemars(range(min = 1, max = 8))]
    party_size: u8,
    notes: Option<String>,
    when: When,
    #[schemars(length(min = 1, max = 3))]
    tags: Vec<String>,
    kind: Kind,
}

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct Filter {
    #[serde(default)]
    city: Option<String>,
    #[schemars(range(min = 1, max = 5))]
    min_rating: Option<u8>,
}

fn ten() -> u32 {
    10
}

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct SearchArgs {
    query: String,
    #[serde(default = "ten")]
    limit: u32,
    #[serde(default)]
    exact: bool,
    #[serde(default)]
    filter: Option<Filter>,
    kind: Option<Kind>,
}

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct UnitArgs;

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct EmptyArgs {}

/// An object literal as an argument map.
fn args(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test arguments must be an object, got {other}"),
    }
}

fn valid_book() -> Value {
    json!({
        "name": "Ada",
        "party_size": 4,
        "notes": "window seat",
        "when": {"date": "2026-09-01", "hour": 19},
        "tags": ["birthday"],
        "kind": "dinner",
    })
}

/// Decodes `value` (after applying `edit`) as `BookArgs` with its derived schema.
fn decode_book(edit: impl FnOnce(&mut Value)) -> Result<BookArgs, String> {
    let mut value = valid_book();
    edit(&mut value);
    decode_arguments::<BookArgs>(&parameters_schema::<BookArgs>(), args(value))
}

// ----- parameters_schema -----

#[test]
fn parameters_schema_of_a_nested_struct() {
    assert_eq!(
        parameters_schema::<BookArgs>(),
        json!({
            "type": "object",
            "description": "Book a table.",
            "properties": {
                "name": {
                    "description": "Guest name.",
                    "type": "string",
                    "minLength": 2,
                    "maxLength": 10
                },
                "party_size": {
                    "type": "integer",
                    "format": "uint8",
                    "minimum": 1,
                    "maximum": 8
                },
                "notes": {"type": ["string", "null"]},
                "when": {
                    "type": "object",
                    "properties": {
                        "date": {"description": "ISO date.", "type": "string"},
                        "hour": {
                            "type": "integer",
                            "format": "uint8",
                            "minimum": 0,
                            "maximum": 23
                        }
                    },
                    "required": ["date", "hour"]
                },
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "maxItems": 3
                },
                "kind": {"type": "string", "enum": ["dinner", "lunch"]}
            },
            // Declaration order; the `Option` field is not required.
            "required": ["name", "party_size", "when", "tags", "kind"]
        })
    );
}

#[test]
fn parameters_schema_has_no_schema_or_title_keys() {
    let schema = parameters_schema::<SearchArgs>();
    let map = schema.as_object().expect("an object schema");
    assert!(!map.contains_key("$schema"));
    assert!(!map.contains_key("title"));
    assert!(!map.contains_key("$defs"), "subschemas are inlined");
    assert_eq!(schema["required"], json!(["query"]));
    assert_eq!(schema["properties"]["limit"]["default"], json!(10));
    assert_eq!(schema["properties"]["exact"]["default"], json!(false));
}

#[test]
fn parameters_schema_of_no_arguments_is_an_empty_object() {
    let empty = json!({"type": "object", "properties": {}});
    assert_eq!(parameters_schema::<()>(), empty);
    assert_eq!(parameters_schema::<UnitArgs>(), empty);
    assert_eq!(parameters_schema::<EmptyArgs>(), empty);
    // No `required` key at all.
    assert_eq!(parameters_schema::<()>().get("required"), None);
}

// ----- strict_schema -----

#[test]
fn strict_schema_of_derived_args() {
    assert_eq!(
        strict_schema(&parameters_schema::<SearchArgs>()),
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "exact": {"type": ["boolean", "null"]},
                "filter": {
                    "type": ["object", "null"],
                    "additionalProperties": false,
                    "properties": {
                        "city": {"type": ["string", "null"]},
                        "min_rating": {
                            "type": ["integer", "null"],
                            "minimum": 1,
                            "maximum": 5
                        }
                    },
                    "required": ["city", "min_rating"]
                },
                "kind": {"type": ["string", "null"], "enum": ["dinner", "lunch", null]},
                "limit": {"type": ["integer", "null"], "minimum": 0},
                "query": {"type": "string"}
            },
            "required": ["exact", "filter", "kind", "limit", "query"]
        })
    );
}

#[test]
fn strict_schema_keeps_required_properties_non_nullable() {
    let strict = strict_schema(&parameters_schema::<BookArgs>());
    assert_eq!(
        strict["required"],
        json!(["kind", "name", "notes", "party_size", "tags", "when"])
    );
    assert_eq!(strict["properties"]["name"]["type"], json!("string"));
    assert_eq!(
        strict["properties"]["kind"]["enum"],
        json!(["dinner", "lunch"])
    );
    assert_eq!(
        strict["properties"]["notes"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(strict["properties"]["when"]["type"], json!("object"));
    assert_eq!(
        strict["properties"]["when"]["additionalProperties"],
        json!(false)
    );
    assert_eq!(
        strict["properties"]["when"]["required"],
        json!(["date", "hour"])
    );
    // `format` is stripped everywhere, bounds are kept.
    assert_eq!(
        strict["properties"]["party_size"],
        json!({"type": "integer", "minimum": 1, "maximum": 8})
    );
    assert_eq!(
        strict["properties"]["when"]["properties"]["hour"],
        json!({"type": "integer", "minimum": 0, "maximum": 23})
    );
}

#[test]
fn strict_schema_nullability_forms() {
    let schema = json!({
        "type": "object",
        "properties": {
            "plain": {"type": "string", "format": "date", "default": "2026-01-01"},
            "already": {"type": ["integer", "null"]},
            "multi": {"type": ["integer", "string"]},
            "choice": {"type": "string", "enum": ["a", "b"]},
            "union": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "union_null": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "reference": {"$ref": "#/$defs/Thing"},
            "null_only": {"type": "null"},
            "needed": {"type": "string", "format": "email"}
        },
        "required": ["needed"],
        "$defs": {
            "Thing": {
                "type": "object",
                "properties": {"x": {"type": "integer", "default": 3}}
            }
        }
    });
    assert_eq!(
        strict_schema(&schema),
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "plain": {"type": ["string", "null"]},
                "already": {"type": ["integer", "null"]},
                "multi": {"type": ["integer", "string", "null"]},
                "choice": {"type": ["string", "null"], "enum": ["a", "b", null]},
                "union": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
                "union_null": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                "reference": {"anyOf": [{"$ref": "#/$defs/Thing"}, {"type": "null"}]},
                "null_only": {"type": "null"},
                "needed": {"type": "string"}
            },
            "required": [
                "already", "choice", "multi", "needed", "null_only", "plain", "reference",
                "union", "union_null"
            ],
            "$defs": {
                "Thing": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {"x": {"type": ["integer", "null"]}},
                    "required": ["x"]
                }
            }
        })
    );
}

#[test]
fn strict_schema_turns_one_of_into_any_of_and_recurses_into_items() {
    let schema = json!({
        "type": "object",
        "properties": {
            "shape": {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {
                            "kind": {"type": "string", "const": "circle"},
                            "radius": {"type": "number", "format": "double"}
                        },
                        "required": ["kind"]
                    },
                    {
                        "type": "object",
                        "properties": {"kind": {"type": "string", "const": "square"}},
                        "required": ["kind"]
                    }
                ]
            },
            "points": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"x": {"type": "integer"}, "label": {"type": "string"}},
                    "required": ["x"]
                }
            }
        },
        "required": ["shape", "points"]
    });
    let strict = strict_schema(&schema);
    assert_eq!(strict["properties"]["shape"].get("oneOf"), None);
    assert_eq!(
        strict["properties"]["shape"],
        json!({
            "anyOf": [
                {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "kind": {"type": "string", "const": "circle"},
                        "radius": {"type": ["number", "null"]}
                    },
                    "required": ["kind", "radius"]
                },
                {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {"kind": {"type": "string", "const": "square"}},
                    "required": ["kind"]
                }
            ]
        })
    );
    assert_eq!(
        strict["properties"]["points"]["items"],
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {"x": {"type": "integer"}, "label": {"type": ["string", "null"]}},
            "required": ["label", "x"]
        })
    );
    // The input is not modified.
    assert!(schema["properties"]["shape"].get("oneOf").is_some());
}

#[test]
fn strict_schema_of_no_arguments() {
    assert_eq!(
        strict_schema(&parameters_schema::<()>()),
        json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false})
    );
}

// ----- decode_arguments (the path FunctionTool::new installs) -----

#[test]
fn decodes_valid_nested_arguments() {
    assert_eq!(
        decode_book(|_| {}),
        Ok(BookArgs {
            name: "Ada".into(),
            party_size: 4,
            notes: Some("window seat".into()),
            when: When {
                date: "2026-09-01".into(),
                hour: 19
            },
            tags: vec!["birthday".into()],
            kind: Kind::Dinner,
        })
    );
}

#[test]
fn missing_required_field_is_named() {
    assert_eq!(
        decode_book(|v| {
            v.as_object_mut().map(|m| m.remove("name"));
        }),
        Err("missing field `name`".to_owned())
    );
    // In strict mode a null required field is the same as a missing one.
    assert_eq!(
        decode_book(|v| v["name"] = Value::Null),
        Err("missing field `name`".to_owned())
    );
    // Missing inside a nested struct: the path names the struct.
    assert_eq!(
        decode_book(|v| {
            v["when"].as_object_mut().map(|m| m.remove("date"));
        }),
        Err("`when`: missing field `date`".to_owned())
    );
}

#[test]
fn wrong_type_names_the_field_path() {
    assert_eq!(
        decode_book(|v| v["party_size"] = json!("four")),
        Err("`party_size`: invalid type: string \"four\", expected u8".to_owned())
    );
    assert_eq!(
        decode_book(|v| v["when"]["hour"] = json!("ten")),
        Err("`when.hour`: invalid type: string \"ten\", expected u8".to_owned())
    );
    assert_eq!(
        decode_book(|v| v["tags"] = json!(["a", 2])),
        Err("`tags[1]`: invalid type: integer `2`, expected a string".to_owned())
    );
}

#[test]
fn out_of_range_numbers_name_field_and_bound() {
    assert_eq!(
        decode_book(|v| v["party_size"] = json!(9)),
        Err("`party_size` must be at most 8, got 9".to_owned())
    );
    assert_eq!(
        decode_book(|v| v["party_size"] = json!(0)),
        Err("`party_size` must be at least 1, got 0".to_owned())
    );
    // The schema bound is checked before the type's own range.
    assert_eq!(
        decode_book(|v| v["party_size"] = json!(300)),
        Err("`party_size` must be at most 8, got 300".to_owned())
    );
    assert_eq!(
        decode_book(|v| v["party_size"] = json!(-1)),
        Err("`party_size` must be at least 1, got -1".to_owned())
    );
    assert_eq!(
        decode_book(|v| v["when"]["hour"] = json!(24)),
        Err("`when.hour` must be at most 23, got 24".to_owned())
    );
    // Bounds are inclusive.
    assert!(decode_book(|v| v["party_size"] = json!(8)).is_ok());
    assert!(decode_book(|v| v["party_size"] = json!(1)).is_ok());
}

#[test]
fn string_lengths_are_checked_in_characters() {
    assert_eq!(
        decode_book(|v| v["name"] = json!("A")),
        Err("`name` must be at least 2 characters long".to_owned())
    );
    assert_eq!(
        decode_book(|v| v["name"] = json!("Abcdefghijk")),
        Err("`name` must be at most 10 characters long".to_owned())
    );
    // Two characters, four bytes.
    assert_eq!(
        decode_book(|v| v["name"] = json!("Éé")).map(|a| a.name),
        Ok("Éé".into())
    );
    assert_eq!(
        decode_book(|v| v["name"] = json!("ÉÉÉÉÉÉÉÉÉÉ")).map(|a| a.name),
        Ok("ÉÉÉÉÉÉÉÉÉÉ".into())
    );
}

#[test]
fn array_item_counts_are_checked() {
    assert_eq!(
        decode_book(|v| v["tags"] = json!([])),
        Err("`tags` must have at least 1 items".to_owned())
    );
    assert_eq!(
        decode_book(|v| v["tags"] = json!(["a", "b", "c", "d"])),
        Err("`tags` must have at most 3 items".to_owned())
    );
}

#[test]
fn option_fields_accept_null_and_absence() {
    assert_eq!(
        decode_book(|v| v["notes"] = Value::Null).map(|a| a.notes),
        Ok(None)
    );
    assert_eq!(
        decode_book(|v| {
            v.as_object_mut().map(|m| m.remove("notes"));
        })
        .map(|a| a.notes),
        Ok(None)
    );
}

#[test]
fn strict_mode_nulls_mean_defaults_also_in_nested_structs() {
    let schema = parameters_schema::<SearchArgs>();
    let all_null = json!({
        "query": "pizza",
        "limit": null,
        "exact": null,
        "filter": {"city": null, "min_rating": null},
        "kind": null,
    });
    assert_eq!(
        decode_arguments::<SearchArgs>(&schema, args(all_null)),
        Ok(SearchArgs {
            query: "pizza".into(),
            limit: 10,
            exact: false,
            filter: Some(Filter {
                city: None,
                min_rating: None
            }),
            kind: None,
        })
    );
    assert_eq!(
        decode_arguments::<SearchArgs>(&schema, args(json!({"query": "x", "filter": null}))),
        Ok(SearchArgs {
            query: "x".into(),
            limit: 10,
            exact: false,
            filter: None,
            kind: None,
        })
    );
    let given = json!({
        "query": "x",
        "limit": 3,
        "exact": true,
        "filter": {"city": "Oslo", "min_rating": 4},
        "kind": "lunch",
    });
    assert_eq!(
        decode_arguments::<SearchArgs>(&schema, args(given)),
        Ok(SearchArgs {
            query: "x".into(),
            limit: 3,
            exact: true,
            filter: Some(Filter {
                city: Some("Oslo".into()),
                min_rating: Some(4)
            }),
            kind: Some(Kind::Lunch),
        })
    );
    // Bounds of a nullable nested field still apply when a value is given.
    assert_eq!(
        decode_arguments::<SearchArgs>(
            &schema,
            args(json!({"query": "x", "filter": {"min_rating": 6}}))
        ),
        Err("`filter.min_rating` must be at most 5, got 6".to_owned())
    );
}

#[test]
fn enums_accept_their_variants_only() {
    assert_eq!(
        decode_book(|v| v["kind"] = json!("lunch")).map(|a| a.kind),
        Ok(Kind::Lunch)
    );
    assert_eq!(
        decode_book(|v| v["kind"] = json!("brunch")),
        Err("`kind`: unknown variant `brunch`, expected `dinner` or `lunch`".to_owned())
    );
}

#[test]
fn unit_arguments_accept_an_empty_object() {
    let empty = Map::new();
    assert_eq!(
        decode_arguments::<()>(&parameters_schema::<()>(), empty.clone()),
        Ok(())
    );
    assert_eq!(
        decode_arguments::<UnitArgs>(&parameters_schema::<UnitArgs>(), empty.clone()),
        Ok(UnitArgs)
    );
    assert_eq!(
        decode_arguments::<EmptyArgs>(&parameters_schema::<EmptyArgs>(), empty),
        Ok(EmptyArgs {})
    );
    // Strict-mode nulls are stripped first, so `{"x": null}` is also empty.
    assert_eq!(
        decode_arguments::<()>(&parameters_schema::<()>(), args(json!({"x": null}))),
        Ok(())
    );
}

#[test]
fn unknown_fields_are_ignored_by_default() {
    assert!(decode_book(|v| v["extra"] = json!(1)).is_ok());
}

// ----- check_bounds and strip_nulls -----

#[test]
fn check_bounds_at_top_level_names_the_arguments() {
    let schema = json!({"type": "integer", "minimum": 1});
    assert_eq!(
        schema::check_bounds(&schema, &json!(0), ""),
        Err("`arguments` must be at least 1, got 0".to_owned())
    );
    assert_eq!(schema::check_bounds(&schema, &json!(1), ""), Ok(()));
    // Not a schema object: nothing to check.
    assert_eq!(schema::check_bounds(&json!(true), &json!(0), ""), Ok(()));
}

#[test]
fn check_bounds_exclusive_and_fractional() {
    let schema = json!({
        "type": "object",
        "properties": {
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
        }
    });
    let check = |v: Value| schema::check_bounds(&schema, &json!({"ratio": v}), "");
    assert_eq!(
        check(json!(0)),
        Err("`ratio` must be more than 0, got 0".to_owned())
    );
    assert_eq!(
        check(json!(1)),
        Err("`ratio` must be less than 1, got 1".to_owned())
    );
    assert_eq!(
        check(json!(1.5)),
        Err("`ratio` must be less than 1, got 1.5".to_owned())
    );
    assert_eq!(check(json!(0.5)), Ok(()));
    // Absent properties are not checked.
    assert_eq!(schema::check_bounds(&schema, &json!({}), ""), Ok(()));
}

#[test]
fn check_bounds_paths_into_arrays_and_nested_objects() {
    let schema = json!({
        "type": "object",
        "properties": {
            "rooms": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"beds": {"type": "integer", "maximum": 4}}
                }
            },
            "names": {"type": "array", "items": {"type": "string", "maxLength": 3}}
        }
    });
    assert_eq!(
        schema::check_bounds(&schema, &json!({"rooms": [{"beds": 2}, {"beds": 5}]}), ""),
        Err("`rooms[1].beds` must be at most 4, got 5".to_owned())
    );
    assert_eq!(
        schema::check_bounds(&schema, &json!({"names": ["ann", "bobby"]}), ""),
        Err("`names[1]` must be at most 3 characters long".to_owned())
    );
    assert_eq!(
        schema::check_bounds(
            &schema,
            &json!({"rooms": [{"beds": 4}], "names": ["ann"]}),
            ""
        ),
        Ok(())
    );
}

#[test]
fn check_bounds_any_of_picks_the_branch_of_the_value_type() {
    let schema = json!({
        "anyOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "minLength": 3},
            {"type": "null"}
        ]
    });
    let check = |v: Value| schema::check_bounds(&schema, &v, "x");
    assert_eq!(check(json!(5)), Ok(()));
    assert_eq!(check(json!("abc")), Ok(()));
    assert_eq!(check(Value::Null), Ok(()));
    assert_eq!(
        check(json!(0)),
        Err("`x` must be at least 1, got 0".to_owned())
    );
    assert_eq!(
        check(json!("ab")),
        Err("`x` must be at least 3 characters long".to_owned())
    );
    // An integer satisfies a `number` branch.
    let number = json!({"oneOf": [{"type": "number", "maximum": 2.5}, {"type": "string"}]});
    assert_eq!(schema::check_bounds(&number, &json!(2), "n"), Ok(()));
    assert_eq!(
        schema::check_bounds(&number, &json!(3), "n"),
        Err("`n` must be at most 2.5, got 3".to_owned())
    );
}

#[test]
fn strip_nulls_removes_null_members_recursively_but_keeps_array_nulls() {
    let mut value = json!({
        "a": null,
        "b": {"c": null, "d": 1},
        "e": [{"f": null, "g": false}, null, 0],
        "h": ""
    });
    schema::strip_nulls(&mut value);
    assert_eq!(
        value,
        json!({"b": {"d": 1}, "e": [{"g": false}, null, 0], "h": ""})
    );
    let mut scalar = Value::Null;
    schema::strip_nulls(&mut scalar);
    assert_eq!(scalar, Value::Null);
}

// ----- output_text -----

#[test]
fn output_text_table() {
    let cases = [
        (json!("plain text"), "plain text"),
        (json!(""), ""),
        (Value::Null, ""),
        (json!(0), "0"),
        (json!(false), "false"),
        (json!(true), "true"),
        (json!(-1.5), "-1.5"),
        (json!([1, "a", null]), r#"[1,"a",null]"#),
        (
            json!({"b": [1, 2], "a": {"c": "d"}}),
            r#"{"a":{"c":"d"},"b":[1,2]}"#,
        ),
        (json!("quote \" stays"), "quote \" stays"),
    ];
    for (value, expected) in cases {
        assert_eq!(output_text(&value), expected, "output of {value}");
    }
}

// ----- FunctionTool construction -----

async fn ok_raw(_ctx: RunContext<()>, _args: Map<String, Value>) -> &'static str {
    "ok"
}

#[test]
fn raw_tool_rejects_invalid_names() {
    for name in [
        String::new(),
        "has space".to_owned(),
        "dot.name".to_owned(),
        "naïve".to_owned(),
        "slash/name".to_owned(),
        "x".repeat(65),
    ] {
        let result = FunctionTool::<()>::raw(name.clone(), "d", json!({"type": "object"}), ok_raw);
        assert_eq!(
            result.map(|t| t.name().to_owned()),
            Err(ToolDefinitionError::InvalidName(name.clone())),
            "name {name:?}"
        );
    }
    for name in ["a", "get_weather", "Book-Table2", &"x".repeat(64)] {
        let tool = FunctionTool::<()>::raw(name, "d", json!({"type": "object"}), ok_raw);
        assert_eq!(tool.map(|t| t.name().to_owned()), Ok(name.to_owned()));
    }
    assert_eq!(
        ToolDefinitionError::InvalidName("a b".into()).to_string(),
        "invalid tool name \"a b\": use 1 to 64 letters, digits, '_' or '-'"
    );
}

#[test]
fn raw_tool_rejects_non_object_schemas() {
    for schema in [
        json!({}),
        json!({"type": "array"}),
        json!({"type": ["object", "null"]}),
        json!("object"),
        Value::Null,
    ] {
        let result = FunctionTool::<()>::raw("t", "d", schema.clone(), ok_raw);
        assert_eq!(
            result.map(|t| t.name().to_owned()),
            Err(ToolDefinitionError::NotAnObjectSchema("t".into())),
            "schema {schema}"
        );
    }
    assert_eq!(
        ToolDefinitionError::NotAnObjectSchema("t".into()).to_string(),
        "the parameters schema of `t` must be a JSON object schema with \"type\": \"object\""
    );
}

#[test]
fn raw_tool_keeps_its_schema_and_has_no_strict_form() {
    let parameters = json!({
        "type": "object",
        "properties": {"q": {"type": "string", "format": "uri"}},
        "required": ["q"]
    });
    let tool = FunctionTool::<()>::raw("fetch_page", "Fetch a page.", parameters.clone(), ok_raw)
        .expect("a valid raw tool");
    assert_eq!(
        tool.definition(),
        &ToolDefinition {
            name: "fetch_page".into(),
            description: "Fetch a page.".into(),
            parameters,
            strict_parameters: None,
        }
    );
    assert_eq!(tool.flags(), ToolFlags::NONE);
}

#[test]
fn typed_tool_definition_flags_and_rename() {
    let tool: FunctionTool<()> = FunctionTool::new(
        "book_table",
        "Book a table.",
        |_ctx: RunContext<()>, args: BookArgs| async move { args.name },
    );
    let parameters = parameters_schema::<BookArgs>();
    assert_eq!(
        tool.definition(),
        &ToolDefinition {
            name: "book_table".into(),
            description: "Book a table.".into(),
            strict_parameters: Some(strict_schema(&parameters)),
            parameters,
        }
    );
    assert_eq!(tool.flags(), ToolFlags::NONE);
    let flagged = tool.clone().with_flags(ToolFlags::IGNORE_ON_ENTER);
    assert!(flagged.flags().ignore_on_enter);
    assert!(!tool.flags().ignore_on_enter);
    let renamed = tool.clone().renamed("reserve");
    assert_eq!(renamed.name(), "reserve");
    assert_eq!(
        renamed.definition().parameters,
        tool.definition().parameters
    );
    assert_eq!(
        tool.name(),
        "book_table",
        "renaming a clone leaves the original"
    );
    assert!(format!("{tool:?}").contains("book_table"));
}

// ----- ToolError and outputs -----

#[test]
fn tool_error_kinds() {
    let e = ToolError::new("no slot on Monday");
    assert_eq!(e.message(), "no slot on Monday");
    assert_eq!(e.to_string(), "no slot on Monday");
    assert!(!e.is_internal());

    let internal = ToolError::internal(std::io::Error::other("db password rejected"));
    assert!(internal.is_internal());
    assert_eq!(internal.message(), "db password rejected");

    assert_eq!(ToolError::from("x"), ToolError::new("x"));
    assert_eq!(ToolError::from("y".to_owned()), ToolError::new("y"));
    assert_ne!(ToolError::new("z"), ToolError::internal("z"));
    assert_eq!(INTERNAL_ERROR_OUTPUT, "An internal error occurred");
    assert_eq!(StopResponse.to_string(), "the response was stopped");
}

fn outcome<O: IntoToolOutput<()>>(output: O) -> ToolOutcome<()> {
    output.into_outcome()
}

#[track_caller]
fn assert_value(outcome: ToolOutcome<()>, expected: Value) {
    match outcome {
        ToolOutcome::Value(v) => assert_eq!(v, expected),
        other => panic!("expected the value {expected}, got {other:?}"),
    }
}

#[test]
fn into_tool_output_conversions() {
    #[derive(Serialize)]
    struct Slot {
        day: &'static str,
        free: bool,
    }

    assert_value(outcome(()), Value::Null);
    assert_value(outcome("text".to_owned()), json!("text"));
    assert_value(outcome("static"), json!("static"));
    assert_value(outcome(0_i32), json!(0));
    assert_value(outcome(false), json!(false));
    assert_value(outcome(2.5_f64), json!(2.5));
    assert_value(outcome(None::<String>), Value::Null);
    assert_value(outcome(Some(7_u8)), json!(7));
    assert_value(outcome(vec![1_i64, 2]), json!([1, 2]));
    assert_value(outcome(json!({"a": 1})), json!({"a": 1}));
    assert_value(
        outcome(Json(Slot {
            day: "Monday",
            free: true,
        })),
        json!({"day": "Monday", "free": true}),
    );
    assert_value(outcome(Ok::<_, ToolError>(5_u32)), json!(5));
    assert_value(outcome(Ok::<_, ToolError>(())), Value::Null);

    match outcome(Err::<String, _>(ToolError::new("bad date"))) {
        ToolOutcome::Error(e) => assert_eq!(e, ToolError::new("bad date")),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(matches!(outcome(StopResponse), ToolOutcome::Stop));
    assert!(matches!(
        outcome(Ok::<_, ToolError>(StopResponse)),
        ToolOutcome::Stop
    ));
    match outcome(Err::<StopResponse, _>(ToolError::new("no"))) {
        ToolOutcome::Error(e) => assert_eq!(e.message(), "no"),
        other => panic!("expected an error, got {other:?}"),
    }
    // An outcome passes through unchanged.
    assert_value(outcome(ToolOutcome::<()>::Value(json!(1))), json!(1));
}

#[test]
fn unserialisable_json_output_is_an_internal_error() {
    // JSON object keys must be strings.
    let map: BTreeMap<(u8, u8), u8> = BTreeMap::from([((1, 2), 3)]);
    match outcome(Json(map)) {
        ToolOutcome::Error(e) => {
            assert!(e.is_internal());
            assert_eq!(
                e.message(),
                "the tool's output could not be serialised: key must be a string"
            );
        }
        other => panic!("expected an internal error, got {other:?}"),
    }
}

// ----- bounds inside enum variants (oneOf branches) -----

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "shape", rename_all = "snake_case")]
enum TaggedShape {
    Circle {
        #[schemars(range(max = 5))]
        radius: u32,
    },
    Square {
        #[schemars(range(max = 10))]
        side: u32,
    },
}

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum ExternalShape {
    Point,
    Circle {
        #[schemars(range(max = 5))]
        radius: u32,
    },
    Square {
        #[schemars(range(max = 10))]
        side: u32,
    },
}

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct DrawArgs {
    tagged: Option<TaggedShape>,
    external: Option<ExternalShape>,
}

fn decode_draw(value: Value) -> Result<DrawArgs, String> {
    decode_arguments::<DrawArgs>(&parameters_schema::<DrawArgs>(), args(value))
}

#[test]
fn bounds_of_the_chosen_internally_tagged_variant_are_enforced() {
    // The first variant has no bound on `side`, so only the tag tells which variant applies.
    assert_eq!(
        decode_draw(json!({"tagged": {"shape": "square", "side": 50}})),
        Err("`tagged.side` must be at most 10, got 50".to_owned())
    );
    assert_eq!(
        decode_draw(json!({"tagged": {"shape": "circle", "radius": 7}})),
        Err("`tagged.radius` must be at most 5, got 7".to_owned())
    );
    assert_eq!(
        decode_draw(json!({"tagged": {"shape": "square", "side": 7}})).map(|a| a.tagged),
        Ok(Some(TaggedShape::Square { side: 7 }))
    );
    assert_eq!(
        decode_draw(json!({"tagged": {"shape": "circle", "radius": 5}})).map(|a| a.tagged),
        Ok(Some(TaggedShape::Circle { radius: 5 }))
    );
}

#[test]
fn bounds_of_the_chosen_externally_tagged_variant_are_enforced() {
    assert_eq!(
        decode_draw(json!({"external": {"square": {"side": 11}}})),
        Err("`external.square.side` must be at most 10, got 11".to_owned())
    );
    assert_eq!(
        decode_draw(json!({"external": {"circle": {"radius": 6}}})),
        Err("`external.circle.radius` must be at most 5, got 6".to_owned())
    );
    assert_eq!(
        decode_draw(json!({"external": {"square": {"side": 10}}})).map(|a| a.external),
        Ok(Some(ExternalShape::Square { side: 10 }))
    );
    assert_eq!(
        decode_draw(json!({"external": "point"})).map(|a| a.external),
        Ok(Some(ExternalShape::Point))
    );
}
