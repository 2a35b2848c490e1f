//! Tests of the schema → GBNF converter. The generated text is parsed by a small GBNF
//! recogniser written here (the subset the converter emits: literals, character classes,
//! rule references, groups, `|`, `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`), which then decides
//! whether sample outputs are in the grammar's language.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::*;

// ---------------------------------------------------------------------------------------------
// A GBNF recogniser

#[derive(Debug, Clone)]
enum Expr {
    /// A sequence of characters.
    Literal(Vec<char>),
    /// A character class: ranges, negated or not.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Rule(String),
    Seq(Vec<Expr>),
    Alt(Vec<Expr>),
    Repeat {
        inner: Box<Expr>,
        min: usize,
        max: Option<usize>,
    },
}

struct Grammar {
    rules: HashMap<String, Expr>,
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    _text: &'a str,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
            _text: text,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) {
        assert_eq!(self.peek(), Some(c), "expected {c:?} at {}", self.pos);
        self.pos += 1;
    }

    fn name(&mut self) -> String {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '-') {
            self.pos += 1;
        }
        assert!(self.pos > start, "expected a rule name at {}", self.pos);
        self.chars[start..self.pos].iter().collect()
    }

    fn escaped(&mut self) -> char {
        let c = self.chars[self.pos];
        self.pos += 1;
        if c != '\\' {
            return c;
        }
        let e = self.chars[self.pos];
        self.pos += 1;
        match e {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'x' => {
                let hex: String = self.chars[self.pos..self.pos + 2].iter().collect();
                self.pos += 2;
                char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap()
            }
            'u' => {
                let hex: String = self.chars[self.pos..self.pos + 4].iter().collect();
                self.pos += 4;
                char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap()
            }
            other => other,
        }
    }

    fn number(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.chars[start..self.pos]
            .iter()
            .collect::<String>()
            .parse()
            .unwrap()
    }

    fn alternatives(&mut self) -> Expr {
        let mut alts = vec![self.sequence()];
        loop {
            self.skip_space();
            if self.peek() == Some('|') {
                self.pos += 1;
                alts.push(self.sequence());
            } else {
                break;
            }
        }
        if alts.len() == 1 {
            alts.pop().unwrap()
        } else {
            Expr::Alt(alts)
        }
    }

    fn sequence(&mut self) -> Expr {
        let mut items = Vec::new();
        loop {
            self.skip_space();
            let atom = match self.peek() {
                None | Some('\n' | '|' | ')') => break,
                Some('"') => {
                    self.pos += 1;
                    let mut chars = Vec::new();
                    while self.peek() != Some('"') {
                        chars.push(self.escaped());
                    }
                    self.pos += 1;
                    Expr::Literal(chars)
                }
                Some('[') => {
                    self.pos += 1;
                    let negated = self.peek() == Some('^');
                    if negated {
                        self.pos += 1;
                    }
                    let mut ranges = Vec::new();
                    while self.peek() != Some(']') {
                        let lo = self.escaped();
                        let hi = if self.peek() == Some('-') && self.chars[self.pos + 1] != ']' {
                            self.pos += 1;
                            self.escaped()
                        } else {
                            lo
                        };
                        ranges.push((lo, hi));
                    }
                    self.pos += 1;
                    Expr::Class { negated, ranges }
                }
                Some('(') => {
                    self.pos += 1;
                    let inner = self.alternatives();
                    self.skip_space();
                    self.expect(')');
                    inner
                }
                Some(_) => Expr::Rule(self.name()),
            };
            let atom = match self.peek() {
                Some('*') => {
                    self.pos += 1;
                    Expr::Repeat {
                        inner: Box::new(atom),
                        min: 0,
                        max: None,
                    }
                }
                Some('+') => {
                    self.pos += 1;
                    Expr::Repeat {
                        inner: Box::new(atom),
                        min: 1,
                        max: None,
                    }
                }
                Some('?') => {
                    self.pos += 1;
                    Expr::Repeat {
                        inner: Box::new(atom),
                        min: 0,
                        max: Some(1),
                    }
                }
                Some('{') => {
                    self.pos += 1;
                    let min = self.number();
                    let max = if self.peek() == Some(',') {
                        self.pos += 1;
                        if self.peek() == Some('}') {
                            None
                        } else {
                            Some(self.number())
                        }
                    } else {
                        Some(min)
                    };
                    self.expect('}');
                    Expr::Repeat {
                        inner: Box::new(atom),
                        min,
                        max,
                    }
                }
                _ => atom,
            };
            items.push(atom);
        }
        if items.len() == 1 {
            items.pop().unwrap()
        } else {
            Expr::Seq(items)
        }
    }
}

impl Grammar {
    fn parse(text: &str) -> Grammar {
        let mut rules = HashMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (name, body) = line.split_once(" ::= ").expect("a rule line");
            let mut parser = Parser::new(body);
            let expr = parser.alternatives();
            assert_eq!(parser.pos, parser.chars.len(), "unparsed rest in {line:?}");
            assert!(
                rules.insert(name.trim().to_owned(), expr).is_none(),
                "rule {name} twice"
            );
        }
        let grammar = Grammar { rules };
        for (name, expr) in &grammar.rules {
            grammar.check_refs(name, expr);
        }
        grammar
    }

    fn check_refs(&self, rule: &str, expr: &Expr) {
        match expr {
            Expr::Rule(name) => {
                assert!(
                    self.rules.contains_key(name),
                    "{rule} refers to undefined rule {name}"
                )
            }
            Expr::Seq(items) | Expr::Alt(items) => {
                items.iter().for_each(|e| self.check_refs(rule, e))
            }
            Expr::Repeat { inner, .. } => self.check_refs(rule, inner),
            _ => {}
        }
    }

    fn accepts(&self, text: &str) -> bool {
        let input: Vec<char> = text.chars().collect();
        let mut memo = HashMap::new();
        self.ends(&Expr::Rule("root".into()), &input, 0, &mut memo)
            .contains(&input.len())
    }

    /// All positions where `expr`, starting at `pos`, can end.
    fn ends(
        &self,
        expr: &Expr,
        input: &[char],
        pos: usize,
        memo: &mut HashMap<(String, usize), BTreeSet<usize>>,
    ) -> BTreeSet<usize> {
        match expr {
            Expr::Literal(chars) => {
                if input[pos..].starts_with(chars) {
                    BTreeSet::from([pos + chars.len()])
                } else {
                    BTreeSet::new()
                }
            }
            Expr::Class { negated, ranges } => match input.get(pos) {
                Some(&c) if ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated => {
                    BTreeSet::from([pos + 1])
                }
                _ => BTreeSet::new(),
            },
            Expr::Rule(name) => {
                let key = (name.clone(), pos);
                if let Some(found) = memo.get(&key) {
                    return found.clone();
                }
                // No left recursion in generated grammars: an in-progress entry is empty.
                memo.insert(key.clone(), BTreeSet::new());
                let found = self.ends(&self.rules[name], input, pos, memo);
                memo.insert(key, found.clone());
                found
            }
            Expr::Seq(items) => {
                let mut current = BTreeSet::from([pos]);
                for item in items {
                    let mut next = BTreeSet::new();
                    for &p in &current {
                        next.extend(self.ends(item, input, p, memo));
                    }
                    current = next;
                    if current.is_empty() {
                        break;
                    }
                }
                current
            }
            Expr::Alt(alts) => alts
                .iter()
                .flat_map(|a| self.ends(a, input, pos, memo))
                .collect(),
            Expr::Repeat { inner, min, max } => {
                let mut result = BTreeSet::new();
                let mut current = BTreeSet::from([pos]);
                let mut count = 0;
                loop {
                    if count >= *min {
                        result.extend(current.iter().copied());
                    }
                    if Some(count) == *max || current.is_empty() {
                        break;
                    }
                    let mut next = BTreeSet::new();
                    for &p in &current {
                        next.extend(self.ends(inner, input, p, memo));
                    }
                    count += 1;
                    if max.is_none() && count > *min && next.is_subset(&result) {
                        break;
                    }
                    current = next;
                }
                result
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn weather_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city."},
            "days": {"type": ["integer", "null"], "format": "uint8", "minimum": 0, "maximum": 7},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
        },
        "required": ["city"],
        "additionalProperties": false
    })
}

fn booking_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "restaurant": {"type": "string"},
            "party_size": {"type": "integer", "minimum": 1},
            "time": {"type": "string"},
            "vegetarian": {"type": "boolean"},
            "budget": {"type": "number"},
            "guests": {"type": "array", "items": {"type": "string"}},
            "contact": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "phone": {"anyOf": [{"type": "string"}, {"type": "null"}]}
                },
                "required": ["name", "phone"],
                "additionalProperties": false
            }
        },
        "required": ["restaurant", "party_size", "time"],
        "additionalProperties": false
    })
}

fn tool_grammar() -> Grammar {
    let (weather, booking) = (weather_schema(), booking_schema());
    let gbnf = tool_call_grammar(&[
        ToolSchema {
            name: "get_weather",
            parameters: &weather,
        },
        ToolSchema {
            name: "book_table",
            parameters: &booking,
        },
    ])
    .unwrap();
    Grammar::parse(&gbnf)
}

fn assert_accepts(grammar: &Grammar, text: &str) {
    assert!(grammar.accepts(text), "the grammar should accept {text}");
}

fn assert_rejects(grammar: &Grammar, text: &str) {
    assert!(!grammar.accepts(text), "the grammar should reject {text}");
}

// ---------------------------------------------------------------------------------------------
// Tool-call grammars

#[test]
fn tool_call_grammar_accepts_valid_calls() {
    let g = tool_grammar();
    for call in [
        r#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#,
        r#" {"name":"get_weather","arguments":{"city":"Paris"}}"#,
        r#"{"name": "get_weather", "arguments": {"city": "São Paulo", "days": 3}}"#,
        r#"{"name": "get_weather", "arguments": {"city": "Oslo", "days": null, "unit": "celsius"}}"#,
        r#"{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "fahrenheit"}}"#,
        r#"{"name": "get_weather", "arguments": {"city": "say \"hi\"\n\u00e9"}}"#,
        r#"{"name": "book_table", "arguments": {"party_size": 4, "restaurant": "Luigi's", "time": "19:30"}}"#,
        r#"{"name": "book_table", "arguments": {"party_size": 2, "restaurant": "A", "time": "8 pm", "budget": -12.5e2, "guests": [], "vegetarian": true}}"#,
        r#"{"name": "book_table", "arguments": {"party_size": 2, "restaurant": "A", "time": "8", "contact": {"name": "Bo", "phone": null}, "guests": ["Al", "Cy"]}}"#,
    ] {
        assert_accepts(&g, call);
    }
}

#[test]
fn tool_call_grammar_rejects_invalid_calls() {
    let g = tool_grammar();
    for call in [
        // Wrong or unknown tool name.
        r#"{"name": "get_time", "arguments": {"city": "Paris"}}"#,
        r#"{"name": "get_weather2", "arguments": {"city": "Paris"}}"#,
        // Arguments of the other tool.
        r#"{"name": "book_table", "arguments": {"city": "Paris"}}"#,
        // Missing required field.
        r#"{"name": "get_weather", "arguments": {}}"#,
        r#"{"name": "get_weather", "arguments": {"days": 3}}"#,
        r#"{"name": "book_table", "arguments": {"party_size": 4, "time": "19:30"}}"#,
        r#"{"name": "book_table", "arguments": {"party_size": 2, "restaurant": "A", "time": "8", "contact": {"name": "Bo"}}}"#,
        // Wrong types.
        r#"{"name": "get_weather", "arguments": {"city": 42}}"#,
        r#"{"name": "get_weather", "arguments": {"city": "Paris", "days": "3"}}"#,
        r#"{"name": "get_weather", "arguments": {"city": "Paris", "days": 2.5}}"#,
        r#"{"name": "get_weather", "arguments": {"city": "Paris", "days": -1}}"#,
        r#"{"name": "get_weather", "arguments": {"city": "Paris", "unit": "kelvin"}}"#,
        r#"{"name": "book_table", "arguments": {"party_size": "four", "restaurant": "A", "time": "8"}}"#,
        r#"{"name": "book_table", "arguments": {"party_size": 2, "restaurant": "A", "time": "8", "vegetarian": "yes"}}"#,
        r#"{"name": "book_table", "arguments": {"party_size": 2, "restaurant": "A", "time": "8", "guests": "Al"}}"#,
        r#"{"name": "book_table", "arguments": {"party_size": 2, "restaurant": "A", "time": "8", "guests": [1]}}"#,
        // Extra field.
        r#"{"name": "get_weather", "arguments": {"city": "Paris", "country": "FR"}}"#,
        r#"{"name": "get_weather", "arguments": {"city": "Paris"}, "extra": 1}"#,
        r#"{"name": "book_table", "arguments": {"party_size": 2, "restaurant": "A", "time": "8", "contact": {"name": "Bo", "phone": null, "x": 1}}}"#,
        // Malformed JSON, unescaped control character, newline whitespace, trailing text.
        r#"{"name": "get_weather", "arguments": {"city": "Paris"}"#,
        "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par\nis\"}}",
        "{\"name\": \"get_weather\",\n\"arguments\": {\"city\": \"Paris\"}}",
        r#"{"name": "get_weather", "arguments": {"city": "Paris"}} ok"#,
        r#"{"name": "get_weather", "arguments": {"city": 'Paris'}}"#,
        // Keys out of the grammar's order (required first, then optional, alphabetical).
        r#"{"arguments": {"city": "Paris"}, "name": "get_weather"}"#,
        r#"{"name": "get_weather", "arguments": {"unit": "celsius", "city": "Paris"}}"#,
    ] {
        assert_rejects(&g, call);
    }
}

#[test]
fn optional_only_objects_accept_any_in_order_subset() {
    let schema = json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}, "c": {"type": "string"}},
        "additionalProperties": false
    });
    let g = Grammar::parse(&schema_grammar(&schema).unwrap());
    for ok in [
        "{}",
        "{ }",
        r#"{"a": 1}"#,
        r#"{"b": true}"#,
        r#"{"c": "x"}"#,
        r#"{"a": 1, "c": "x"}"#,
        r#"{"b": false, "c": "x"}"#,
        r#"{"a": 1, "b": true, "c": "x"}"#,
    ] {
        assert_accepts(&g, ok);
    }
    for bad in [
        r#"{"c": "x", "a": 1}"#,
        r#"{"a": 1,}"#,
        r#"{, "a": 1}"#,
        r#"{"a": 1, "a": 2}"#,
        r#"{"d": 1}"#,
    ] {
        assert_rejects(&g, bad);
    }
}

#[test]
fn additional_properties_schema_allows_typed_extra_members() {
    let schema = json!({
        "type": "object",
        "properties": {"id": {"type": "integer"}},
        "required": ["id"],
        "additionalProperties": {"type": "string"}
    });
    let g = Grammar::parse(&schema_grammar(&schema).unwrap());
    assert_accepts(&g, r#"{"id": 1}"#);
    assert_accepts(&g, r#"{"id": 1, "x": "y", "z": ""}"#);
    assert_rejects(&g, r#"{"id": 1, "x": 2}"#);

    let map = json!({"type": "object", "additionalProperties": {"type": "integer"}});
    let g = Grammar::parse(&schema_grammar(&map).unwrap());
    assert_accepts(&g, "{}");
    assert_accepts(&g, r#"{"a": 1, "b": 2}"#);
    assert_rejects(&g, r#"{"a": true}"#);
}

#[test]
fn strict_mode_schemas_with_nullable_optionals() {
    // What switchboard::tools::strict_schema produces for an optional field.
    let schema = json!({
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "when": {"anyOf": [{"type": "string", "enum": ["today", "tomorrow"]}, {"type": "null"}]}
        },
        "required": ["city", "when"],
        "additionalProperties": false
    });
    let g = Grammar::parse(&schema_grammar(&schema).unwrap());
    assert_accepts(&g, r#"{"city": "Rome", "when": null}"#);
    assert_accepts(&g, r#"{"city": "Rome", "when": "today"}"#);
    assert_rejects(&g, r#"{"city": "Rome", "when": "later"}"#);
    assert_rejects(&g, r#"{"city": "Rome"}"#);
}

#[test]
fn nested_arrays_of_objects_and_item_counts() {
    let schema = json!({
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": 2,
                "items": {
                    "type": "object",
                    "properties": {"sku": {"type": "string", "maxLength": 3}, "qty": {"type": "integer"}},
                    "required": ["qty", "sku"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["items"],
        "additionalProperties": false
    });
    let g = Grammar::parse(&schema_grammar(&schema).unwrap());
    assert_accepts(&g, r#"{"items": [{"qty": 1, "sku": "abc"}]}"#);
    assert_accepts(
        &g,
        r#"{"items": [{"qty": 1, "sku": ""}, {"qty": -2, "sku": "x"}]}"#,
    );
    assert_rejects(&g, r#"{"items": []}"#);
    assert_rejects(
        &g,
        r#"{"items": [{"qty": 1, "sku": "a"}, {"qty": 1, "sku": "a"}, {"qty": 1, "sku": "a"}]}"#,
    );
    assert_rejects(&g, r#"{"items": [{"qty": 1, "sku": "abcd"}]}"#);
    assert_rejects(&g, r#"{"items": [{"sku": "a"}]}"#);
}

#[test]
fn refs_consts_enums_of_any_value_and_recursion() {
    let schema = json!({
        "type": "object",
        "properties": {
            "kind": {"const": "tree"},
            "level": {"enum": [1, "two", null]},
            "root": {"$ref": "#/$defs/Node"}
        },
        "required": ["kind", "root"],
        "additionalProperties": false,
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
                },
                "required": ["label"],
                "additionalProperties": false
            }
        }
    });
    let g = Grammar::parse(&schema_grammar(&schema).unwrap());
    assert_accepts(&g, r#"{"kind": "tree", "root": {"label": "a"}}"#);
    assert_accepts(
        &g,
        r#"{"kind": "tree", "root": {"label": "a", "children": [{"label": "b", "children": []}]}, "level": "two"}"#,
    );
    assert_accepts(
        &g,
        r#"{"kind": "tree", "root": {"label": "a"}, "level": null}"#,
    );
    assert_rejects(&g, r#"{"kind": "bush", "root": {"label": "a"}}"#);
    assert_rejects(
        &g,
        r#"{"kind": "tree", "root": {"label": "a", "children": [{}]}}"#,
    );
    assert_rejects(
        &g,
        r#"{"kind": "tree", "root": {"label": "a"}, "level": 2}"#,
    );
}

#[test]
fn untyped_and_generic_schemas_accept_any_json() {
    for schema in [json!({}), json!(true), json!({"description": "anything"})] {
        let g = Grammar::parse(&schema_grammar(&schema).unwrap());
        for ok in [
            r#"{"a": [1, 2.5, "x", null, true, {"b": {}}]}"#,
            "[]",
            "\"s\"",
            "-0.5e3",
            "null",
        ] {
            assert_accepts(&g, ok);
        }
        assert_rejects(&g, "{a: 1}");
        assert_rejects(&g, "[1,]");
    }
}

#[test]
fn all_of_merges_object_schemas() {
    let schema = json!({
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"],
             "additionalProperties": false}
        ]
    });
    let g = Grammar::parse(&schema_grammar(&schema).unwrap());
    assert_accepts(&g, r#"{"a": 1, "b": "x"}"#);
    assert_rejects(&g, r#"{"a": 1}"#);
}

#[test]
fn invalid_schemas_are_errors_naming_the_place() {
    let cases = [
        (
            json!({"type": "object", "properties": {"x": {"type": "date"}}}),
            "#/properties/x",
        ),
        (
            json!({"type": "object", "properties": {"x": false}}),
            "#/properties/x",
        ),
        (json!({"enum": []}), "#"),
        (json!({"$ref": "https://example.com/s.json"}), "#"),
        (json!({"$ref": "#/$defs/Missing"}), "#"),
        (
            json!({"type": "object", "required": ["y"], "properties": {}}),
            "#",
        ),
        (
            json!({"type": "string", "minLength": 3, "maxLength": 2}),
            "#",
        ),
        (json!(42), "#"),
    ];
    for (schema, path) in cases {
        match schema_grammar(&schema) {
            Err(GrammarError::Unsupported { path: p, .. }) => assert_eq!(p, path, "{schema}"),
            other => panic!("{schema} gave {other:?}"),
        }
    }
    assert_eq!(tool_call_grammar(&[]), Err(GrammarError::NoTools));
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    let mut schema = json!({"type": "string"});
    for _ in 0..200 {
        schema = json!({"type": "array", "items": schema});
    }
    assert!(matches!(
        schema_grammar(&schema),
        Err(GrammarError::Unsupported { .. })
    ));
}

#[test]
fn rule_names_are_valid_and_unique_for_odd_tool_names() {
    let schema = json!({"type": "object", "properties": {"a b": {"type": "string"}, "a_b": {"type": "object", "properties": {"x": {"type": "integer"}}}}, "required": ["a b"]});
    let gbnf = tool_call_grammar(&[
        ToolSchema {
            name: "do_it",
            parameters: &schema,
        },
        ToolSchema {
            name: "do-it",
            parameters: &schema,
        },
        ToolSchema {
            name: "naïve \"tool\"",
            parameters: &schema,
        },
    ])
    .unwrap();
    let g = Grammar::parse(&gbnf);
    for line in gbnf.lines() {
        let name = line.split(" ::= ").next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{name}"
        );
    }
    assert_accepts(
        &g,
        r#"{"name": "do-it", "arguments": {"a b": "x", "a_b": {"x": 1}}}"#,
    );
    assert_accepts(
        &g,
        r#"{"name": "naïve \"tool\"", "arguments": {"a b": "x"}}"#,
    );
    assert_rejects(&g, r#"{"name": "do it", "arguments": {"a b": "x"}}"#);
}

#[test]
fn literals_escape_quotes_backslashes_and_controls() {
    assert_eq!(literal("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\x01""#);
}
