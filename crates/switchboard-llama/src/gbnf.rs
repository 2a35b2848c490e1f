//! JSON schema → GBNF (llama.cpp's grammar format), for constrained tool calls and JSON answers.
//!
//! [`tool_call_grammar`] builds the grammar of one tool call, `{"name": "<tool>", "arguments":
//! {...}}`, where the arguments follow the named tool's schema; [`schema_grammar`] builds the
//! grammar of one JSON value following a schema. Both produce text for
//! `LlamaSampler::grammar(model, text, "root")`.
//!
//! Supported schema subset (what `switchboard::tools::parameters_schema` and strict schemas
//! produce, and a little more):
//! - `type`: `object`, `string`, `integer`, `number`, `boolean`, `null`, `array`, or a list of
//!   them (`["string", "null"]` for nullable values); `nullable: true` (OpenAPI style);
//! - `properties` with `required`: required properties come first, then optional ones, each in
//!   the schema's key order (serde_json's, i.e. alphabetical); optional ones may be left out;
//! - `additionalProperties`: `false` or absent means no other property is generated; a schema
//!   (or `true`) allows further `"key": value` members after the known ones;
//! - `enum` and `const` (any JSON values), `anyOf` / `oneOf` (alternatives; `oneOf`'s
//!   exclusivity is not enforced), `allOf` of object schemas (merged) or of a single schema;
//! - `items` (one schema), `prefixItems` (tuples), `minItems` / `maxItems`;
//! - `minLength` / `maxLength` of strings (counted in characters);
//! - local `$ref`s to `#/$defs/...` or `#/definitions/...`, recursion included;
//! - `{}` / `true` / a schema without any of the above: any JSON value.
//!
//! Not enforced (the generated grammar is wider than the schema): numeric `minimum` /
//! `maximum` / `multipleOf` (except that `minimum >= 0` forbids a minus sign), string `pattern`
//! and `format`, `uniqueItems`, `oneOf` exclusivity. The tool-call arguments are still checked
//! by the session against the real schema.
//!
//! Whitespace: at most one space is allowed between JSON tokens, and no newline, so a small
//! model cannot wander off into unbounded whitespace, and a call stays on one line.
//!
//! ```
//! use serde_json::json;
//! use switchboard_llama::gbnf::schema_grammar;
//!
//! let gbnf = schema_grammar(&json!({
//!     "type": "object",
//!     "properties": {"city": {"type": "string"}},
//!     "required": ["city"],
//!     "additionalProperties": false
//! }))
//! .unwrap();
//! assert!(gbnf.starts_with("root ::= "));
//! assert!(gbnf.contains(r#""\"city\"""#));
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Most nested schema levels the converter follows (guards against hostile schemas).
const MAX_DEPTH: usize = 64;

/// Why a schema could not be turned into a grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrammarError {
    /// The schema uses something the converter cannot express, or is invalid.
    #[error("cannot build a grammar for the schema at {path}: {message}")]
    Unsupported {
        /// JSON pointer-like path of the offending sub-schema (`#/properties/city`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A tool call grammar was asked for without any tool.
    #[error("no tools to build a tool-call grammar for")]
    NoTools,
}

/// One tool as the grammar sees it: its name and the JSON schema of its arguments.
#[derive(Debug, Clone, Copy)]
pub struct ToolSchema<'a> {
    /// The tool's name, written as the call's `name`.
    pub name: &'a str,
    /// The JSON schema of the `arguments` object.
    pub parameters: &'a Value,
}

/// The grammar of one JSON value following `schema` (root rule `root`).
///
/// # Errors
/// [`GrammarError::Unsupported`] when the schema is invalid or uses an unsupported construct.
pub fn schema_grammar(schema: &Value) -> Result<String, GrammarError> {
    let mut builder = Builder::new(schema);
    let expr = builder.visit(schema, "value-root", "#", 0)?;
    Ok(builder.finish(&expr))
}

/// The grammar of one tool call, `{"name": "<tool>", "arguments": {...}}`, for any of `tools`
/// (root rule `root`). A single leading space is allowed.
///
/// ```
/// use serde_json::json;
/// use switchboard_llama::gbnf::{ToolSchema, tool_call_grammar};
///
/// let params = json!({"type": "object", "properties": {"city": {"type": "string"}},
///                     "required": ["city"], "additionalProperties": false});
/// let gbnf = tool_call_grammar(&[ToolSchema { name: "get_weather", parameters: &params }]).unwrap();
/// assert!(gbnf.contains(r#""\"get_weather\"""#));
/// ```
///
/// # Errors
/// [`GrammarError::NoTools`] for an empty list; [`GrammarError::Unsupported`] when a tool's
/// schema cannot be converted.
pub fn tool_call_grammar(tools: &[ToolSchema<'_>]) -> Result<String, GrammarError> {
    if tools.is_empty() {
        return Err(GrammarError::NoTools);
    }
    let mut alternatives = Vec::new();
    let mut builder = Builder::new(&Value::Null);
    for (index, tool) in tools.iter().enumerate() {
        builder.root = tool.parameters;
        let hint = format!("tool{index}-{}", sanitize(tool.name));
        let args = builder.visit(tool.parameters, &format!("{hint}-args"), "#", 0)?;
        let rule = builder.add_rule(
            &hint,
            format!(
                r#"{} ws "," ws "\"arguments\"" ws ":" ws {args}"#,
                literal(&Value::String(tool.name.to_owned()).to_string())
            ),
        );
        alternatives.push(rule);
        // `$ref`s are resolved against each tool's own schema.
        builder.refs.clear();
    }
    let call = builder.add_rule(
        "call",
        format!(
            r#""{{" ws "\"name\"" ws ":" ws ( {} ) ws "}}""#,
            alternatives.join(" | ")
        ),
    );
    Ok(builder.finish(&format!("ws {call}")))
}

/// The primitive rules a grammar may use, written once at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Prim {
    Ws,
    String,
    Char,
    Integer,
    Number,
    Boolean,
    Null,
    Value,
    Object,
    Array,
}

impl Prim {
    fn name(self) -> &'static str {
        match self {
            Prim::Ws => "ws",
            Prim::String => "string",
            Prim::Char => "char",
            Prim::Integer => "integer",
            Prim::Number => "number",
            Prim::Boolean => "boolean",
            Prim::Null => "null",
            Prim::Value => "value",
            Prim::Object => "object",
            Prim::Array => "array",
        }
    }

    fn body(self) -> &'static str {
        match self {
            Prim::Ws => r#"" "?"#,
            Prim::String => r#""\"" char* "\"""#,
            Prim::Char => r#"[^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )"#,
            Prim::Integer => r#""-"? ( "0" | [1-9] [0-9]{0,15} )"#,
            Prim::Number => {
                r#""-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?"#
            }
            Prim::Boolean => r#""true" | "false""#,
            Prim::Null => r#""null""#,
            Prim::Value => "object | array | string | number | boolean | null",
            Prim::Object => {
                r#""{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* )? ws "}""#
            }
            Prim::Array => r#""[" ws ( value ( ws "," ws value )* )? ws "]""#,
        }
    }

    /// Other primitives this one refers to.
    fn deps(self) -> &'static [Prim] {
        match self {
            Prim::String => &[Prim::Char],
            Prim::Value => &[
                Prim::Object,
                Prim::Array,
                Prim::String,
                Prim::Number,
                Prim::Boolean,
                Prim::Null,
            ],
            Prim::Object => &[Prim::Ws, Prim::String, Prim::Value],
            Prim::Array => &[Prim::Ws, Prim::Value],
            _ => &[],
        }
    }
}

struct Builder<'a> {
    /// The schema `$ref`s resolve against.
    root: &'a Value,
    rules: Vec<(String, String)>,
    used_names: BTreeSet<String>,
    prims: BTreeSet<Prim>,
    /// `$ref` target → rule name (also breaks recursion).
    refs: HashMap<String, String>,
}

impl<'a> Builder<'a> {
    fn new(root: &'a Value) -> Self {
        Builder {
            root,
            rules: Vec::new(),
            used_names: BTreeSet::new(),
            prims: BTreeSet::new(),
            refs: HashMap::new(),
        }
    }

    fn prim(&mut self, prim: Prim) -> String {
        let mut stack = vec![prim];
        while let Some(p) = stack.pop() {
            if self.prims.insert(p) {
                stack.extend_from_slice(p.deps());
            }
        }
        prim.name().to_owned()
    }

    /// Reserves a unique rule name based on `hint`.
    fn reserve(&mut self, hint: &str) -> String {
        let base = sanitize(hint);
        let reserved = |n: &str| {
            matches!(
                n,
                "root"
                    | "ws"
                    | "string"
                    | "char"
                    | "integer"
                    | "number"
                    | "boolean"
                    | "null"
                    | "value"
                    | "object"
                    | "array"
            )
        };
        let mut name = base.clone();
        let mut n = 1;
        while reserved(&name) || self.used_names.contains(&name) {
            n += 1;
            name = format!("{base}-{n}");
        }
        self.used_names.insert(name.clone());
        name
    }

    fn add_rule(&mut self, hint: &str, body: String) -> String {
        let name = self.reserve(hint);
        self.rules.push((name.clone(), body));
        name
    }

    fn finish(mut self, root_expr: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "root ::= {root_expr}");
        for (name, body) in &self.rules {
            let _ = writeln!(out, "{name} ::= {body}");
        }
        // Every grammar may refer to ws (the tool-call wrapper always does).
        self.prim(Prim::Ws);
        for prim in &self.prims {
            let _ = writeln!(out, "{} ::= {}", prim.name(), prim.body());
        }
        out
    }

    fn unsupported(path: &str, message: impl Into<String>) -> GrammarError {
        GrammarError::Unsupported {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// The grammar expression for `schema` (a rule name or an inline expression).
    fn visit(
        &mut self,
        schema: &Value,
        hint: &str,
        path: &str,
        depth: usize,
    ) -> Result<String, GrammarError> {
        if depth > MAX_DEPTH {
            return Err(Self::unsupported(path, "the schema nests too deeply"));
        }
        let map = match schema {
            Value::Bool(true) => return Ok(self.prim(Prim::Value)),
            Value::Bool(false) => {
                return Err(Self::unsupported(path, "`false` allows no value"));
            }
            Value::Object(map) => map,
            _ => {
                return Err(Self::unsupported(
                    path,
                    "a schema must be an object or a boolean",
                ));
            }
        };
        let expr = self.visit_map(map, hint, path, depth)?;
        if map.get("nullable") == Some(&Value::Bool(true)) {
            let null = self.prim(Prim::Null);
            return Ok(format!("( {expr} | {null} )"));
        }
        Ok(expr)
    }

    fn visit_map(
        &mut self,
        map: &Map<String, Value>,
        hint: &str,
        path: &str,
        depth: usize,
    ) -> Result<String, GrammarError> {
        if let Some(reference) = map.get("$ref") {
            let reference = reference
                .as_str()
                .ok_or_else(|| Self::unsupported(path, "`$ref` must be a string"))?;
            return self.visit_ref(reference, path, depth);
        }
        if let Some(value) = map.get("const") {
            return Ok(literal(&value.to_string()));
        }
        if let Some(values) = map.get("enum") {
            let values = values
                .as_array()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Self::unsupported(path, "`enum` must be a non-empty array"))?;
            let alternatives: Vec<String> =
                values.iter().map(|v| literal(&v.to_string())).collect();
            return Ok(format!("( {} )", alternatives.join(" | ")));
        }
        for keyword in ["anyOf", "oneOf"] {
            if let Some(subs) = map.get(keyword) {
                let subs = subs.as_array().filter(|s| !s.is_empty()).ok_or_else(|| {
                    Self::unsupported(path, format!("`{keyword}` must be a non-empty array"))
                })?;
                let mut alternatives = Vec::new();
                for (i, sub) in subs.iter().enumerate() {
                    // Sibling keywords (e.g. a description) do not matter; a sibling `type`
                    // would need an intersection, which is not supported.
                    alternatives.push(self.visit(
                        sub,
                        &format!("{hint}-{i}"),
                        &format!("{path}/{keyword}/{i}"),
                        depth + 1,
                    )?);
                }
                return Ok(format!("( {} )", alternatives.join(" | ")));
            }
        }
        if let Some(subs) = map.get("allOf") {
            let subs = subs
                .as_array()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Self::unsupported(path, "`allOf` must be a non-empty array"))?;
            let merged = self.merge_all_of(map, subs, path)?;
            return self.visit_map(&merged, hint, path, depth + 1);
        }
        match map.get("type") {
            Some(Value::String(t)) => self.visit_type(t, map, hint, path, depth),
            Some(Value::Array(types)) => {
                if types.is_empty() {
                    return Err(Self::unsupported(path, "`type` is an empty list"));
                }
                let mut alternatives = Vec::new();
                for t in types {
                    let t = t
                        .as_str()
                        .ok_or_else(|| Self::unsupported(path, "`type` lists a non-string"))?;
                    alternatives.push(self.visit_type(t, map, hint, path, depth)?);
                }
                Ok(format!("( {} )", alternatives.join(" | ")))
            }
            Some(_) => Err(Self::unsupported(path, "`type` must be a string or a list")),
            None if map.contains_key("properties") => {
                self.visit_type("object", map, hint, path, depth)
            }
            None if map.contains_key("items") || map.contains_key("prefixItems") => {
                self.visit_type("array", map, hint, path, depth)
            }
            None => Ok(self.prim(Prim::Value)),
        }
    }

    fn merge_all_of(
        &self,
        map: &Map<String, Value>,
        subs: &[Value],
        path: &str,
    ) -> Result<Map<String, Value>, GrammarError> {
        let mut base = map.clone();
        base.remove("allOf");
        if let [only] = subs
            && base.keys().all(|k| !is_structural(k))
        {
            let mut merged = only
                .as_object()
                .cloned()
                .ok_or_else(|| Self::unsupported(path, "`allOf` holds a non-object schema"))?;
            if base.get("nullable") == Some(&Value::Bool(true)) {
                merged.insert("nullable".into(), Value::Bool(true));
            }
            return Ok(merged);
        }
        // Merge object schemas: union of properties and required lists.
        let mut properties = base
            .remove("properties")
            .and_then(|p| p.as_object().cloned())
            .unwrap_or_default();
        let mut required: Vec<Value> = base
            .remove("required")
            .and_then(|r| r.as_array().cloned())
            .unwrap_or_default();
        for (i, sub) in subs.iter().enumerate() {
            let sub_path = format!("{path}/allOf/{i}");
            let sub = match sub {
                Value::Object(m) if m.contains_key("$ref") => self.resolve(
                    m.get("$ref").and_then(Value::as_str).unwrap_or_default(),
                    &sub_path,
                )?,
                Value::Object(m) => m.clone(),
                _ => return Err(Self::unsupported(&sub_path, "not an object schema")),
            };
            let is_object = sub.get("type") == Some(&Value::String("object".into()))
                || sub.contains_key("properties");
            if !is_object {
                return Err(Self::unsupported(
                    &sub_path,
                    "`allOf` is only supported for object schemas",
                ));
            }
            if let Some(Value::Object(p)) = sub.get("properties") {
                properties.extend(p.clone());
            }
            if let Some(Value::Array(r)) = sub.get("required") {
                required.extend(r.iter().cloned());
            }
            if sub.get("additionalProperties") == Some(&Value::Bool(false)) {
                base.insert("additionalProperties".into(), Value::Bool(false));
            }
        }
        base.insert("type".into(), Value::String("object".into()));
        base.insert("properties".into(), Value::Object(properties));
        base.insert("required".into(), Value::Array(required));
        Ok(base)
    }

    fn resolve(&self, reference: &str, path: &str) -> Result<Map<String, Value>, GrammarError> {
        let pointer = reference.strip_prefix('#').ok_or_else(|| {
            Self::unsupported(
                path,
                format!("only local `$ref`s are supported, not {reference}"),
            )
        })?;
        match self.root.pointer(pointer) {
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(Value::Bool(true)) => Ok(Map::new()),
            _ => Err(Self::unsupported(
                path,
                format!("`$ref` {reference} does not point at a schema"),
            )),
        }
    }

    fn visit_ref(
        &mut self,
        reference: &str,
        path: &str,
        depth: usize,
    ) -> Result<String, GrammarError> {
        if let Some(name) = self.refs.get(reference) {
            return Ok(name.clone());
        }
        let target = self.resolve(reference, path)?;
        let hint = format!("ref-{}", reference.rsplit('/').next().unwrap_or("def"));
        let name = self.reserve(&hint);
        self.refs.insert(reference.to_owned(), name.clone());
        let expr = self.visit(&Value::Object(target), &name, reference, depth + 1)?;
        self.rules.push((name.clone(), expr));
        Ok(name)
    }

    fn visit_type(
        &mut self,
        t: &str,
        map: &Map<String, Value>,
        hint: &str,
        path: &str,
        depth: usize,
    ) -> Result<String, GrammarError> {
        match t {
            "string" => Ok(self.visit_string(map, path)?),
            "integer" => {
                let non_negative = map
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .is_some_and(|m| m >= 0.0)
                    || map
                        .get("exclusiveMinimum")
                        .and_then(Value::as_f64)
                        .is_some_and(|m| m >= -1.0);
                if non_negative {
                    Ok(r#"( "0" | [1-9] [0-9]{0,15} )"#.to_owned())
                } else {
                    Ok(self.prim(Prim::Integer))
                }
            }
            "number" => Ok(self.prim(Prim::Number)),
            "boolean" => Ok(self.prim(Prim::Boolean)),
            "null" => Ok(self.prim(Prim::Null)),
            "array" => self.visit_array(map, hint, path, depth),
            "object" => self.visit_object(map, hint, path, depth),
            other => Err(Self::unsupported(path, format!("unknown type {other:?}"))),
        }
    }

    fn visit_string(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
    ) -> Result<String, GrammarError> {
        let min = usize_keyword(map, "minLength", path)?;
        let max = usize_keyword(map, "maxLength", path)?;
        if min.is_none() && max.is_none() {
            return Ok(self.prim(Prim::String));
        }
        self.prim(Prim::String); // brings `char`
        Ok(format!(
            r#""\"" char{} "\"""#,
            repetition(min.unwrap_or(0), max, path)?
        ))
    }

    fn visit_array(
        &mut self,
        map: &Map<String, Value>,
        hint: &str,
        path: &str,
        depth: usize,
    ) -> Result<String, GrammarError> {
        let ws = self.prim(Prim::Ws);
        let mut parts = Vec::new();
        if let Some(prefix) = map.get("prefixItems") {
            let prefix = prefix
                .as_array()
                .ok_or_else(|| Self::unsupported(path, "`prefixItems` must be an array"))?;
            for (i, item) in prefix.iter().enumerate() {
                parts.push(self.visit(
                    item,
                    &format!("{hint}-{i}"),
                    &format!("{path}/prefixItems/{i}"),
                    depth + 1,
                )?);
            }
            if map.get("items") != Some(&Value::Bool(false)) && map.contains_key("items") {
                return Err(Self::unsupported(
                    path,
                    "`prefixItems` followed by more `items` is not supported",
                ));
            }
            let body = parts.join(&format!(r#" {ws} "," {ws} "#));
            return Ok(self.add_rule(hint, format!(r#""[" {ws} {body} {ws} "]""#)));
        }
        let item = match map.get("items") {
            None | Some(Value::Bool(true)) => self.prim(Prim::Value),
            Some(items) => self.visit(
                items,
                &format!("{hint}-item"),
                &format!("{path}/items"),
                depth + 1,
            )?,
        };
        let min = usize_keyword(map, "minItems", path)?.unwrap_or(0);
        let max = usize_keyword(map, "maxItems", path)?;
        if max == Some(0) {
            return Ok(format!(r#""[" {ws} "]""#));
        }
        let rest = repetition(min.saturating_sub(1), max.map(|m| m - 1), path)?;
        let list = format!(r#"{item} ( {ws} "," {ws} {item} ){rest}"#);
        let list = if min == 0 {
            format!("( {list} )?")
        } else {
            list
        };
        Ok(self.add_rule(hint, format!(r#""[" {ws} {list} {ws} "]""#)))
    }

    fn visit_object(
        &mut self,
        map: &Map<String, Value>,
        hint: &str,
        path: &str,
        depth: usize,
    ) -> Result<String, GrammarError> {
        let ws = self.prim(Prim::Ws);
        let sep = format!(r#"{ws} "," {ws}"#);
        let properties = match map.get("properties") {
            None => Map::new(),
            Some(Value::Object(p)) => p.clone(),
            Some(_) => return Err(Self::unsupported(path, "`properties` must be an object")),
        };
        let required: Vec<&str> = match map.get("required") {
            None => Vec::new(),
            Some(Value::Array(r)) => r.iter().filter_map(Value::as_str).collect(),
            Some(_) => return Err(Self::unsupported(path, "`required` must be an array")),
        };
        for name in &required {
            if !properties.contains_key(*name) {
                return Err(Self::unsupported(
                    path,
                    format!("required property {name:?} is not in `properties`"),
                ));
            }
        }
        let mut required_members = Vec::new();
        let mut optional_members = Vec::new();
        for (name, schema) in &properties {
            let value = self.visit(
                schema,
                &format!("{hint}-{name}"),
                &format!("{path}/properties/{name}"),
                depth + 1,
            )?;
            let member = format!(
                r#"{} {ws} ":" {ws} {value}"#,
                literal(&Value::String(name.clone()).to_string())
            );
            if required.contains(&name.as_str()) {
                required_members.push(member);
            } else {
                optional_members.push(member);
            }
        }
        let extra = match map.get("additionalProperties") {
            None | Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => {
                let (string, value) = (self.prim(Prim::String), self.prim(Prim::Value));
                Some(format!(r#"{string} {ws} ":" {ws} {value}"#))
            }
            Some(schema) => {
                let string = self.prim(Prim::String);
                let value = self.visit(
                    schema,
                    &format!("{hint}-extra"),
                    &format!("{path}/additionalProperties"),
                    depth + 1,
                )?;
                Some(format!(r#"{string} {ws} ":" {ws} {value}"#))
            }
        };

        let mut body = String::new();
        if !required_members.is_empty() {
            body = required_members.join(&format!(" {sep} "));
            for member in &optional_members {
                let _ = write!(body, " ( {sep} {member} )?");
            }
            if let Some(extra) = &extra {
                let _ = write!(body, " ( {sep} {extra} )*");
            }
        } else if !optional_members.is_empty() {
            // A non-empty, in-order selection of the optional members:
            // tail_i ::= member_i ( sep tail_{i+1} )? | tail_{i+1}
            let n = optional_members.len();
            let names: Vec<String> = (0..n)
                .map(|i| self.reserve(&format!("{hint}-tail{i}")))
                .collect();
            for i in (0..n).rev() {
                let rule_body = if i + 1 == n {
                    optional_members[i].clone()
                } else {
                    format!(
                        "{} ( {sep} {} )? | {}",
                        optional_members[i],
                        names[i + 1],
                        names[i + 1]
                    )
                };
                self.rules.push((names[i].clone(), rule_body));
            }
            body = match &extra {
                None => format!("( {} )?", names[0]),
                Some(extra) => format!(
                    "( {} ( {sep} {extra} )* | {extra} ( {sep} {extra} )* )?",
                    names[0]
                ),
            };
        } else if let Some(extra) = &extra {
            body = format!("( {extra} ( {sep} {extra} )* )?");
        }
        let rule_body = if body.is_empty() {
            format!(r#""{{" {ws} "}}""#)
        } else {
            format!(r#""{{" {ws} {body} {ws} "}}""#)
        };
        Ok(self.add_rule(hint, rule_body))
    }
}

fn is_structural(keyword: &str) -> bool {
    matches!(
        keyword,
        "type"
            | "properties"
            | "required"
            | "additionalProperties"
            | "items"
            | "prefixItems"
            | "enum"
            | "const"
            | "anyOf"
            | "oneOf"
            | "$ref"
    )
}

fn usize_keyword(
    map: &Map<String, Value>,
    keyword: &str,
    path: &str,
) -> Result<Option<usize>, GrammarError> {
    match map.get(keyword) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Builder::unsupported(path, format!("`{keyword}` must be a count"))),
    }
}

/// `{m,n}` style repetition suffix (`*`, `+`, `?` when they fit).
fn repetition(min: usize, max: Option<usize>, path: &str) -> Result<String, GrammarError> {
    if let Some(max) = max
        && max < min
    {
        return Err(Builder::unsupported(path, "a maximum is below its minimum"));
    }
    Ok(match (min, max) {
        (0, None) => "*".to_owned(),
        (1, None) => "+".to_owned(),
        (0, Some(1)) => "?".to_owned(),
        (m, None) => format!("{{{m},}}"),
        (m, Some(n)) if m == n => format!("{{{m}}}"),
        (m, Some(n)) => format!("{{{m},{n}}}"),
    })
}

/// A GBNF rule name made of `[a-zA-Z0-9-]` from any text.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if out.is_empty() {
        out.push('r');
    }
    out
}

/// A GBNF string literal matching `text` exactly.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
