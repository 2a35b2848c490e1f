//! Shared helpers of the tests that run the real model: the setup check and a small JSON
//! schema validator for generated tool arguments.

#![allow(dead_code)]

#[path = "../../../../tests-support/setup.rs"]
mod setup;

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

/// The GGUF model, installed by `scripts/setup.sh` if it is not.
pub fn ensure_setup() -> PathBuf {
    static SETUP: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    setup::ensure_installed(&SETUP, "GGUF model", || {
        let path = switchboard_llama::model_path_from_env().map_err(|e| e.to_string())?;
        setup::file(&path)?;
        Ok(path)
    })
}

/// Checks `value` against the subset of JSON schema tool parameters use; returns the first
/// violation.
pub fn validate(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(map) = schema.as_object() else {
        return Ok(());
    };
    if let Some(Value::Array(options)) = map.get("enum")
        && !options.contains(value)
    {
        return Err(format!("{path}: {value} is not one of {options:?}"));
    }
    if let Some(Value::Array(subs)) = map.get("anyOf") {
        return if subs.iter().any(|s| validate(s, value, path).is_ok()) {
            Ok(())
        } else {
            Err(format!("{path}: {value} matches no anyOf branch"))
        };
    }
    let types: Vec<&str> = match map.get("type") {
        Some(Value::String(t)) => vec![t],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    let type_ok = types.iter().any(|t| match *t {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    });
    if !type_ok {
        return Err(format!("{path}: {value} is not of type {types:?}"));
    }
    if let (Some(min), Some(n)) = (map.get("minimum").and_then(Value::as_f64), value.as_f64())
        && n < min
    {
        return Err(format!("{path}: {n} is below the minimum {min}"));
    }
    if let Value::Object(object) = value {
        let properties = map.get("properties").and_then(Value::as_object);
        for name in map
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                return Err(format!("{path}: required property {name:?} is missing"));
            }
        }
        for (name, v) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(s) => validate(s, v, &format!("{path}/{name}"))?,
                None if map.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{path}: unexpected property {name:?}"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, map.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(item_schema, item, &format!("{path}/{i}"))?;
        }
    }
    Ok(())
}
