//! JSON schemas for tool arguments, derived with `schemars` from Rust types.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The JSON schema of `T` as a tool's `parameters` object: draft 2020-12, subschemas inlined,
/// doc comments as descriptions, no `$schema` or top-level `title`.
///
/// ```
/// #[derive(schemars::JsonSchema, serde::Deserialize)]
/// struct Args {
///     /// The city to look up.
///     city: String,
///     /// Number of days, 1 to 7.
///     #[schemars(range(min = 1, max = 7))]
///     days: Option<u8>,
/// }
/// let schema = switchboard::tools::parameters_schema::<Args>();
/// assert_eq!(schema["required"], serde_json::json!(["city"]));
/// assert_eq!(schema["properties"]["city"]["description"], "The city to look up.");
/// ```
pub fn parameters_schema<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Value::Object(map) = &mut value {
        map.remove("$schema");
        map.remove("title");
        // A tool without parameters still needs an (empty) properties object.
        if map.get("type") == Some(&json!("object")) && !map.contains_key("properties") {
            map.insert("properties".into(), Value::Object(Map::new()));
        }
        // schemars writes `null` for unit structs' properties; normalise.
        if map.get("type") == Some(&json!("null")) {
            *map = Map::from_iter([
                ("type".to_owned(), json!("object")),
                ("properties".to_owned(), json!({})),
            ]);
        }
    }
    value
}

/// The OpenAI strict-mode form of a parameters schema: every object lists all its properties
/// in `required` and forbids additional ones; properties that were optional become nullable (a
/// `null` argument then means "use the default"); `format` and `default` are removed, since
/// strict mode rejects them.
pub fn strict_schema(schema: &Value) -> Value {
    let mut out = schema.clone();
    make_strict(&mut out);
    out
}

fn make_strict(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    map.remove("format");
    map.remove("default");
    map.remove("$schema");
    let is_object = map.get("type") == Some(&json!("object")) || map.contains_key("properties");
    if is_object {
        let required: Vec<String> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(Value::Object(properties)) = map.get_mut("properties") {
            for (name, property) in properties.iter_mut() {
                make_strict(property);
                if !required.contains(name) {
                    make_nullable(property);
                }
            }
            let all: Vec<Value> = properties.keys().map(|k| json!(k)).collect();
            map.insert("required".into(), Value::Array(all));
        }
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["items", "additionalItems"] {
        if let Some(sub) = map.get_mut(key) {
            make_strict(sub);
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        if let Some(Value::Array(subs)) = map.get_mut(key) {
            subs.iter_mut().for_each(make_strict);
        }
    }
    // Strict mode has no `oneOf`: discriminated unions become `anyOf`.
    if let Some(one_of) = map.remove("oneOf") {
        map.insert("anyOf".into(), one_of);
    }
    if let Some(Value::Object(defs)) = map.get_mut("$defs") {
        defs.values_mut().for_each(make_strict);
    }
}

fn make_nullable(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    let null = json!("null");
    if let Some(any_of) = map.get_mut("anyOf").and_then(Value::as_array_mut) {
        if !any_of.iter().any(|s| s.get("type") == Some(&null)) {
            any_of.push(json!({"type": "null"}));
        }
        return;
    }
    match map.get_mut("type") {
        Some(Value::String(t)) => {
            if t != "null" {
                let t = std::mem::take(t);
                map.insert("type".into(), json!([t, "null"]));
            }
        }
        Some(Value::Array(types)) => {
            if !types.contains(&null) {
                types.push(null.clone());
            }
        }
        _ => {
            let inner = std::mem::take(map);
            map.insert(
                "anyOf".into(),
                json!([Value::Object(inner), {"type": "null"}]),
            );
            return;
        }
    }
    if let Some(Value::Array(values)) = map.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

/// Checks the bounds that deserialisation does not: `minimum`/`maximum` (and exclusive forms),
/// `minLength`/`maxLength`, `minItems`/`maxItems`. Returns a message naming the field.
pub(crate) fn check_bounds(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Value::Object(s) = schema else {
        return Ok(());
    };
    if let Some(Value::Array(branches)) = s.get("anyOf").or_else(|| s.get("oneOf")) {
        // The value satisfies the union when a branch it belongs to accepts it; otherwise the
        // error of a branch it belongs to is the most telling one.
        let (mut matching_error, mut other_error) = (None, None);
        for branch in branches {
            let matches = branch_matches(branch, value);
            match check_bounds(branch, value, path) {
                Ok(()) if matches => return Ok(()),
                Ok(()) => {}
                Err(e) if matches => {
                    matching_error.get_or_insert(e);
                }
                Err(e) => {
                    other_error.get_or_insert(e);
                }
            }
        }
        return matching_error.or(other_error).map_or(Ok(()), Err);
    }
    let field = if path.is_empty() { "arguments" } else { path };
    if let Some(n) = value.as_f64() {
        let bound = |key: &str| s.get(key).and_then(Value::as_f64);
        if let Some(min) = bound("minimum")
            && n < min
        {
            return Err(format!("`{field}` must be at least {min}, got {n}"));
        }
        if let Some(max) = bound("maximum")
            && n > max
        {
            return Err(format!("`{field}` must be at most {max}, got {n}"));
        }
        if let Some(min) = bound("exclusiveMinimum")
            && n <= min
        {
            return Err(format!("`{field}` must be more than {min}, got {n}"));
        }
        if let Some(max) = bound("exclusiveMaximum")
            && n >= max
        {
            return Err(format!("`{field}` must be less than {max}, got {n}"));
        }
    }
    let count = |key: &str| s.get(key).and_then(Value::as_u64);
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if let Some(min) = count("minLength")
            && len < min
        {
            return Err(format!("`{field}` must be at least {min} characters long"));
        }
        if let Some(max) = count("maxLength")
            && len > max
        {
            return Err(format!("`{field}` must be at most {max} characters long"));
        }
    }
    if let Some(items) = value.as_array() {
        let len = items.len() as u64;
        if let Some(min) = count("minItems")
            && len < min
        {
            return Err(format!("`{field}` must have at least {min} items"));
        }
        if let Some(max) = count("maxItems")
            && len > max
        {
            return Err(format!("`{field}` must have at most {max} items"));
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                check_bounds(item_schema, item, &format!("{field}[{i}]"))?;
            }
        }
    }
    if let (Some(Value::Object(properties)), Some(object)) =
        (s.get("properties"), value.as_object())
    {
        for (name, property_schema) in properties {
            if let Some(v) = object.get(name) {
                let sub = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                check_bounds(property_schema, v, &sub)?;
            }
        }
    }
    Ok(())
}

/// Whether `value` belongs to this branch of a union: its type matches, it equals the branch's
/// `const`/`enum` if any and, for an object, it has the branch's required properties and agrees
/// with the branch's `const` properties (the tag of a serde enum variant).
fn branch_matches(schema: &Value, value: &Value) -> bool {
    if !type_matches(schema, value) {
        return false;
    }
    if schema.get("const").is_some_and(|c| c != value) {
        return false;
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(value)
    {
        return false;
    }
    let Some(object) = value.as_object() else {
        return true;
    };
    let has_required = match schema.get("required") {
        Some(Value::Array(required)) => required
            .iter()
            .filter_map(Value::as_str)
            .all(|name| object.contains_key(name)),
        _ => true,
    };
    let tags_agree = match schema.get("properties") {
        Some(Value::Object(properties)) => properties.iter().all(|(name, property)| {
            match (property.get("const"), object.get(name)) {
                (Some(tag), Some(v)) => tag == v,
                _ => true,
            }
        }),
        _ => true,
    };
    has_required && tags_agree
}

fn type_matches(schema: &Value, value: &Value) -> bool {
    let name = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let accepts = |t: &str| t == name || (t == "number" && name == "integer");
    match schema.get("type") {
        Some(Value::String(t)) => accepts(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(accepts),
        _ => true,
    }
}

/// Removes object properties whose value is `null`, recursively, so that strict-mode "null
/// means default" arguments deserialise into `Option::None` or a `#[serde(default)]` value.
pub(crate) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
