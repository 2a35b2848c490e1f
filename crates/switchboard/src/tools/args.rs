//! Parsing and repairing the JSON arguments a model produced for a tool call.
//!
//! Models are asked to answer a tool call with a JSON object, but they do not
//! always manage it: the stream is cut off mid-object, they write Python-ish
//! JSON, or chat-template tokens leak into the text. [`parse_arguments`] first
//! parses the raw string strictly with `serde_json`; only when that fails does
//! it run a small lenient parser that applies these repairs:
//!
//! - leaked chat-template tokens are removed: any `<|...|>` token (`<|im_end|>`,
//!   `<|eot_id|>`, `<|endoftext|>`, ...), DeepSeek's `<｜...｜>` tokens, and
//!   Gemma's `<start_of_turn>`, `<end_of_turn>` and `<eos>`;
//! - a Markdown code fence around the value (```` ```json ... ``` ````) is removed;
//! - unclosed objects, arrays and strings are closed where the input ends, and a
//!   member whose value was cut off entirely (`{"a": 1, "b": `) is dropped;
//!   a cut-off number (`1.5e`) or literal (`tr`) is completed;
//! - strings and keys may use single quotes, keys may be unquoted identifiers;
//! - trailing, repeated and missing commas are tolerated, and a mismatched
//!   closing bracket (`[1, 2}`) closes the innermost open container;
//! - Python literals `True`, `False` and `None` are read as JSON ones;
//! - stray closing brackets after the value are ignored.
//!
//! Whatever the parse, the value is then normalised: `null`, an empty or
//! whitespace-only string, or input holding only template tokens becomes `{}`;
//! a JSON string holding an object (double encoding, `"{\"a\":1}"`) is unwrapped
//! once; anything else that is not an object is an error. The result carries the
//! canonical compact JSON of the object so that the conversation history always
//! holds valid JSON. Nesting is limited to [`MAX_DEPTH`] levels and input to
//! [`MAX_ARGUMENTS_BYTES`], so no input can exhaust the stack or take long.
//!
//! ```
//! use switchboard::tools::parse_arguments;
//!
//! let parsed = parse_arguments("{'city': 'Paris', 'days': 3,<|im_end|>").unwrap();
//! assert!(parsed.repaired);
//! assert_eq!(parsed.canonical, r#"{"city":"Paris","days":3}"#);
//! ```

use serde_json::{Map, Number, Value};

/// Largest raw arguments string accepted, in bytes (64 KiB). Larger input is rejected before parsing.
pub const MAX_ARGUMENTS_BYTES: usize = 64 * 1024;

/// Most objects and arrays the repairing parser lets nest. It keeps the
/// parser's recursion bounded, and matches `serde_json`'s own recursion limit
/// so that every canonical string can be parsed again.
const MAX_DEPTH: usize = 127;

/// Longest name inside a `<|...|>` token that is stripped. Bounding it keeps an
/// unrelated `<|` in the text from swallowing everything up to a distant `|>`.
const MAX_TOKEN_NAME_CHARS: usize = 64;

/// Gemma's turn markers (and end-of-sequence token), stripped like `<|...|>` tokens.
const TURN_MARKERS: [&str; 3] = ["<start_of_turn>", "<end_of_turn>", "<eos>"];

/// Why a tool call's arguments could not be turned into a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentsError {
    /// The raw string is longer than [`MAX_ARGUMENTS_BYTES`].
    #[error("the arguments are {len} bytes long, more than the limit of {limit} bytes")]
    TooLarge {
        /// Length of the raw string, in bytes.
        len: usize,
        /// The limit it exceeded ([`MAX_ARGUMENTS_BYTES`]).
        limit: usize,
    },
    /// Neither the strict parse nor the repair produced a JSON value; the
    /// message says where the repair gave up.
    #[error("the arguments are not valid JSON and could not be repaired: {0}")]
    Malformed(String),
    /// The arguments are a JSON value other than an object: `"an array"`,
    /// `"a string"`, `"a number"` or `"a boolean"`.
    #[error("the arguments must be a JSON object, not {0}")]
    NotAnObject(&'static str),
}

/// A tool call's arguments, decoded into a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedArguments {
    /// The decoded argument object.
    pub object: Map<String, Value>,
    /// Canonical compact JSON of `object`, to store on the function call.
    /// Keys come out in `serde_json::Map` order: sorted, since the crate does
    /// not enable serde_json's `preserve_order`.
    pub canonical: String,
    /// True when the strict parse failed and a repair was needed.
    pub repaired: bool,
}

/// Parses a tool call's raw arguments, repairing common model mistakes.
///
/// Valid JSON is parsed strictly and `repaired` is false. Otherwise a lenient
/// parser removes leaked chat-template tokens (`<|im_end|>`, any `<|...|>`,
/// `<end_of_turn>`, ...) and Markdown code fences, closes truncated objects,
/// arrays and strings, and accepts single quotes, unquoted keys, trailing
/// commas and Python's `True`/`False`/`None`; `repaired` is then true.
///
/// `null` and an empty or whitespace-only string give an empty object, and a
/// JSON string holding an object (double encoding) is unwrapped once; any
/// other value is [`ArgumentsError::NotAnObject`]. Input longer than
/// [`MAX_ARGUMENTS_BYTES`] is rejected without being looked at, and nesting
/// deeper than 127 levels (`serde_json`'s limit) is [`ArgumentsError::Malformed`].
///
/// ```
/// use switchboard::tools::{parse_arguments, ArgumentsError};
///
/// let ok = parse_arguments(r#"{"query": "weather in Oslo"}"#).unwrap();
/// assert!(!ok.repaired);
/// assert_eq!(ok.object["query"], "weather in Oslo");
///
/// // A truncated stream with a leaked end-of-turn token is repaired.
/// let fixed = parse_arguments(r#"{"query": "weather in Os<|eot_id|>"#).unwrap();
/// assert!(fixed.repaired);
/// assert_eq!(fixed.canonical, r#"{"query":"weather in Os"}"#);
///
/// assert_eq!(parse_arguments("").unwrap().canonical, "{}");
/// assert_eq!(
///     parse_arguments("[1, 2]"),
///     Err(ArgumentsError::NotAnObject("an array")),
/// );
/// ```
pub fn parse_arguments(raw: &str) -> Result<ParsedArguments, ArgumentsError> {
    if raw.len() > MAX_ARGUMENTS_BYTES {
        return Err(ArgumentsError::TooLarge {
            len: raw.len(),
            limit: MAX_ARGUMENTS_BYTES,
        });
    }
    let (object, repaired) = decode(raw, true)?;
    // Serialising a map of JSON values cannot fail, but an error is still
    // better than a panic should that ever change.
    let canonical =
        serde_json::to_string(&object).map_err(|e| ArgumentsError::Malformed(e.to_string()))?;
    Ok(ParsedArguments {
        object,
        canonical,
        repaired,
    })
}

/// Decodes `text` into an object, returning it and whether a repair was needed.
/// `unwrap_strings` allows one level of double-encoding to be undone.
fn decode(text: &str, unwrap_strings: bool) -> Result<(Map<String, Value>, bool), ArgumentsError> {
    if text.trim().is_empty() {
        return Ok((Map::new(), false));
    }
    let (value, repaired) = match serde_json::from_str::<Value>(text) {
        Ok(value) => (value, false),
        Err(_) => (repair(text).map_err(ArgumentsError::Malformed)?, true),
    };
    match value {
        Value::Object(object) => Ok((object, repaired)),
        Value::Null => Ok((Map::new(), repaired)),
        // A string that holds an object's JSON: the model encoded it twice.
        Value::String(inner) if unwrap_strings => match decode(&inner, false) {
            Ok((object, _)) => Ok((object, true)),
            Err(_) => Err(ArgumentsError::NotAnObject("a string")),
        },
        other => Err(ArgumentsError::NotAnObject(kind(&other))),
    }
}

/// How a non-object value is named in [`ArgumentsError::NotAnObject`].
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Object(_) => "an object",
    }
}

/// The lenient path: strips leaked tokens and code fences, then parses what is
/// left with [`Repairer`]. Returns a description of the problem on failure.
fn repair(text: &str) -> Result<Value, String> {
    let stripped = strip_template_tokens(text);
    let mut parser = Repairer {
        chars: strip_code_fence(&stripped).chars().collect(),
        pos: 0,
    };
    parser.skip_whitespace();
    if parser.peek().is_none() {
        // Nothing but tokens and fences: the model sent no arguments.
        return Ok(Value::Null);
    }
    let value = parser
        .value(0)?
        .ok_or_else(|| "the input ends before any value".to_owned())?;
    // Models sometimes close one bracket too many; anything else is suspect.
    loop {
        parser.skip_whitespace();
        match parser.peek() {
            None => return Ok(value),
            Some('}' | ']') => parser.pos += 1,
            Some(c) => return Err(format!("unexpected text {}", parser.describe(c))),
        }
    }
}

/// Removes `<|...|>` and `<｜...｜>` chat-template tokens and Gemma turn markers.
fn strip_template_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let (before, from_angle) = rest.split_at(start);
        out.push_str(before);
        let token_len = template_token_len(from_angle);
        // `<` is one byte, so both slices below fall on character boundaries.
        let skip = if token_len > 0 { token_len } else { 1 };
        if token_len == 0 {
            out.push('<');
        }
        rest = from_angle.get(skip..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// Byte length of the chat-template token `text` starts with, or 0 if none.
fn template_token_len(text: &str) -> usize {
    if let Some(marker) = TURN_MARKERS.iter().find(|m| text.starts_with(**m)) {
        return marker.len();
    }
    // `|` for most templates, the full-width `｜` for DeepSeek's.
    for bar in ['|', '｜'] {
        let Some(name) = text.strip_prefix('<').and_then(|t| t.strip_prefix(bar)) else {
            continue;
        };
        let opening_len = text.len() - name.len();
        for (i, c) in name.char_indices().take(MAX_TOKEN_NAME_CHARS + 1) {
            let rest = name.get(i..).unwrap_or_default();
            if rest.strip_prefix(bar).is_some_and(|r| r.starts_with('>')) {
                return opening_len + i + bar.len_utf8() + 1;
            }
            if c.is_whitespace() || c == '<' || c == '>' {
                break;
            }
        }
    }
    0
}

/// Removes a Markdown code fence (```` ```json ```` ... ```` ``` ````) around the
/// value, and the surrounding whitespace.
fn strip_code_fence(text: &str) -> &str {
    let mut text = text.trim();
    if let Some(rest) = text.strip_prefix("```") {
        // Drop the info string (`json`, `JSON`, ...) that follows the opening fence.
        text = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    }
    text = text.trim();
    if let Some(rest) = text.strip_suffix("```") {
        text = rest.trim_end();
    }
    text
}

/// A forgiving JSON parser over the characters of the (cleaned) input.
///
/// Each `value` call consumes at least one character or returns an error, so
/// every loop makes progress; recursion depth is bounded by [`MAX_DEPTH`].
struct Repairer {
    chars: Vec<char>,
    pos: usize,
}

impl Repairer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn skip_whitespace(&mut self) {
        // A byte-order mark is not JSON whitespace, but it is harmless here.
        while self
            .peek()
            .is_some_and(|c| c.is_whitespace() || c == '\u{feff}')
        {
            self.pos += 1;
        }
    }

    /// The characters from `start` up to the current position.
    fn text_from(&self, start: usize) -> String {
        self.chars
            .get(start..self.pos)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    /// Names character `c` at the current position, for error messages.
    fn describe(&self, c: char) -> String {
        format!("{c:?} at character {}", self.pos)
    }

    /// Parses one value. `Ok(None)` means the input ended before a value began
    /// (or in the middle of one that cannot be completed, like a lone `-`), so
    /// the caller drops the member it belonged to. `depth` counts the
    /// containers already open around it.
    fn value(&mut self, depth: usize) -> Result<Option<Value>, String> {
        self.skip_whitespace();
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        match c {
            '{' | '[' => {
                if depth >= MAX_DEPTH {
                    return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
                }
                self.pos += 1;
                if c == '{' {
                    self.object(depth + 1).map(Some)
                } else {
                    self.array(depth + 1).map(Some)
                }
            }
            '"' | '\'' => Ok(Some(Value::String(self.string(c)))),
            '-' | '+' | '.' | '0'..='9' => self.number(),
            c if c.is_alphabetic() => self.literal().map(Some),
            c => Err(format!("expected a value, found {}", self.describe(c))),
        }
    }

    /// Parses the members of an object whose `{` was just consumed.
    fn object(&mut self, depth: usize) -> Result<Value, String> {
        let mut map = Map::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                // Truncated input closes the object.
                None => break,
                // `]` is a mismatched closer; it still closes the innermost container.
                Some('}' | ']') => {
                    self.pos += 1;
                    break;
                }
                // Trailing and repeated commas are skipped, and a missing one is not required.
                Some(',') => {
                    self.pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            let key = self.key()?;
            self.skip_whitespace();
            match self.peek() {
                None => break,
                Some(':') => self.pos += 1,
                Some(c) => return Err(format!("expected ':', found {}", self.describe(c))),
            }
            match self.value(depth)? {
                Some(value) => {
                    map.insert(key, value);
                }
                None => break,
            }
        }
        Ok(Value::Object(map))
    }

    /// Parses the elements of an array whose `[` was just consumed.
    fn array(&mut self, depth: usize) -> Result<Value, String> {
        let mut items = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => break,
                Some(']' | '}') => {
                    self.pos += 1;
                    break;
                }
                Some(',') => self.pos += 1,
                Some(_) => match self.value(depth)? {
                    Some(value) => items.push(value),
                    None => break,
                },
            }
        }
        Ok(Value::Array(items))
    }

    /// Parses an object key: a quoted string or a bare identifier.
    fn key(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(quote @ ('"' | '\'')) => Ok(self.string(quote)),
            Some(c) if is_identifier_char(c) => {
                let start = self.pos;
                while self.peek().is_some_and(is_identifier_char) {
                    self.pos += 1;
                }
                Ok(self.text_from(start))
            }
            Some(c) => Err(format!("expected a key, found {}", self.describe(c))),
            None => Err("the input ends where a key was expected".to_owned()),
        }
    }

    /// Parses a string opened by `quote` (at the current position). An
    /// unterminated string ends with the input; a dangling escape is dropped.
    fn string(&mut self, quote: char) -> String {
        self.pos += 1;
        let mut out = String::new();
        while let Some(c) = self.bump() {
            if c == quote {
                break;
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            match self.bump() {
                None => break,
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some('u') => {
                    if let Some(c) = self.unicode_escape() {
                        out.push(c);
                    }
                }
                // `\"`, `\\`, `\/`, `\'`, and unknown escapes stand for the character itself.
                Some(other) => out.push(other),
            }
        }
        out
    }

    /// Decodes the rest of a `\u` escape, combining UTF-16 surrogate pairs.
    /// `None` when the input ends inside the escape; an invalid escape or an
    /// unpaired surrogate becomes U+FFFD.
    fn unicode_escape(&mut self) -> Option<char> {
        let Some(code) = self.hex4() else {
            return if self.at_end() {
                None
            } else {
                Some(char::REPLACEMENT_CHARACTER)
            };
        };
        if (0xD800..0xDC00).contains(&code) {
            // A high surrogate must be followed by `\u` and a low surrogate.
            let save = self.pos;
            if self.bump() == Some('\\')
                && self.bump() == Some('u')
                && let Some(low @ 0xDC00..0xE000) = self.hex4()
            {
                let combined = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                return Some(char::from_u32(combined).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            // Input cut off inside the pair: drop the half character.
            let truncated = self.at_end();
            self.pos = save;
            return (!truncated).then_some(char::REPLACEMENT_CHARACTER);
        }
        Some(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// Reads four hex digits, consuming only the valid ones.
    fn hex4(&mut self) -> Option<u32> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self.peek()?.to_digit(16)?;
            self.pos += 1;
            code = code * 16 + digit;
        }
        Some(code)
    }

    /// Parses a number, forgiving a leading `+`, leading zeros and a cut-off
    /// fraction or exponent (`1.`, `1e`, `1e-`).
    fn number(&mut self) -> Result<Option<Value>, String> {
        let start = self.pos;
        while matches!(self.peek(), Some('0'..='9' | '-' | '+' | '.' | 'e' | 'E')) {
            self.pos += 1;
        }
        let text = self.text_from(start);
        let trimmed = text
            .trim_start_matches('+')
            .trim_end_matches(['.', 'e', 'E', '+', '-']);
        if trimmed.is_empty() && self.at_end() {
            return Ok(None);
        }
        parse_number(trimmed)
            .map(|n| Some(Value::Number(n)))
            .ok_or_else(|| format!("{text:?} at character {start} is not a number"))
    }

    /// Parses `true`, `false` and `null` (and Python's spellings). A prefix of
    /// one of them that the input ends in is completed.
    fn literal(&mut self) -> Result<Value, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        let word = self.text_from(start);
        let truncated = |full: &str| self.at_end() && full.starts_with(word.as_str());
        match word.as_str() {
            "true" | "True" => Ok(Value::Bool(true)),
            "false" | "False" => Ok(Value::Bool(false)),
            "null" | "None" => Ok(Value::Null),
            _ if truncated("true") => Ok(Value::Bool(true)),
            _ if truncated("false") => Ok(Value::Bool(false)),
            _ if truncated("null") => Ok(Value::Null),
            _ => Err(format!("unexpected word {word:?} at character {start}")),
        }
    }
}

/// Characters allowed in an unquoted object key.
fn is_identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '$'
}

/// Parses number text the way `serde_json` does, falling back to Rust's own
/// parsers for forms JSON forbids but models write (`007`, `.5`, `1.`).
fn parse_number(text: &str) -> Option<Number> {
    if let Ok(n) = text.parse::<Number>() {
        return Some(n);
    }
    if let Ok(n) = text.parse::<i64>() {
        return Some(n.into());
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("test expectation is not an object: {other}"),
        }
    }

    #[test]
    fn repairs_table() {
        // (input, expected object, expected `repaired`); one case a line.
        #[rustfmt::skip]
        let cases: Vec<(&str, Value, bool)> = vec![
            // Valid JSON is parsed strictly and left alone.
            (r#"{"a": 1}"#, json!({"a": 1}), false),
            (" \n{\"b\": \"x\", \"a\": [true, null]}\t", json!({"a": [true, null], "b": "x"}), false),
            (r#"{"s": "\u00e9\ud83d\ude00<|x|>"}"#, json!({"s": "é😀<|x|>"}), false),
            // null and empty input mean "no arguments".
            ("null", json!({}), false),
            ("", json!({}), false),
            ("  \n\t ", json!({}), false),
            // Truncated input.
            (r#"{"a": 1"#, json!({"a": 1}), true),
            (r#"{"a": "hel"#, json!({"a": "hel"}), true),
            (r#"{"a": [1, 2"#, json!({"a": [1, 2]}), true),
            (r#"{"a": {"b": [true, {"c": nul"#, json!({"a": {"b": [true, {"c": null}]}}), true),
            (r#"{"a": 1, "b": "#, json!({"a": 1}), true),
            (r#"{"a": 1, "b""#, json!({"a": 1}), true),
            (r#"{"a": 1, "b"#, json!({"a": 1}), true),
            (r#"{"a": -"#, json!({}), true),
            (r#"{"a": 1.5e-"#, json!({"a": 1.5}), true),
            (r#"{"a": "x\"#, json!({"a": "x"}), true),
            (r#"{"a": "x\u00"#, json!({"a": "x"}), true),
            ("{", json!({}), true),
            (r#"{"a": "x\ud83d"#, json!({"a": "x"}), true),
            (r#"{"a": "x\ud83d\ude"#, json!({"a": "x"}), true),
            (r#"{'a': '\ud83d\ude00 \ud83dx \udc00 \uzz'}"#, json!({"a": "😀 \u{FFFD}x \u{FFFD} \u{FFFD}zz"}), true),
            // Single quotes, unquoted keys, Python literals.
            ("{'a': 'b'}", json!({"a": "b"}), true),
            (r#"{'it': 'isn\'t "quoted"'}"#, json!({"it": "isn't \"quoted\""}), true),
            ("{a: 1, snake_case: True, b: None, c: False}", json!({"a": 1, "snake_case": true, "b": null, "c": false}), true),
            // Commas.
            (r#"{"a": 1,}"#, json!({"a": 1}), true),
            (r#"{"a": [1, 2,], "b": 3,,}"#, json!({"a": [1, 2], "b": 3}), true),
            (r#"{"a": 1 "b": 2}"#, json!({"a": 1, "b": 2}), true),
            // Mismatched and surplus closers.
            (r#"{"a": [1, 2}"#, json!({"a": [1, 2]}), true),
            (r#"{"a": {"b": 1], "c": 2}"#, json!({"a": {"b": 1}, "c": 2}), true),
            (r#"{"a": 1}}"#, json!({"a": 1}), true),
            // Leaked chat-template tokens.
            (r#"{"a": 1}<|im_end|>"#, json!({"a": 1}), true),
            (r#"{"a": 1}<|eot_id|>"#, json!({"a": 1}), true),
            (r#"{"a": 1}<|endoftext|>"#, json!({"a": 1}), true),
            (r#"<|python_tag|>{"a": 1}<|eom_id|>"#, json!({"a": 1}), true),
            (r#"{"a": 1}<end_of_turn>"#, json!({"a": 1}), true),
            ("<start_of_turn>{\"a\": 1}\n<end_of_turn><eos>", json!({"a": 1}), true),
            (r#"{"a": 1}<｜tool▁call▁end｜><｜tool▁calls▁end｜>"#, json!({"a": 1}), true),
            (r#"{"a": "x < y", "b": "<| not a token"#, json!({"a": "x < y", "b": "<| not a token"}), true),
            ("<|im_end|>", json!({}), true),
            // Code fences.
            ("```json\n{\"a\": 1}\n```", json!({"a": 1}), true),
            ("```\n{\"a\": [1]}\n```", json!({"a": [1]}), true),
            ("```JSON {\"a\": 1}```<|im_end|>", json!({"a": 1}), true),
            ("```json\n{\"a\": 1", json!({"a": 1}), true),
            // Double encoding is unwrapped once (and repaired inside if needed).
            (r#""{\"a\":1}""#, json!({"a": 1}), true),
            (r#""{'a': 1""#, json!({"a": 1}), true),
            (r#""""#, json!({}), true),
            // Lenient numbers and a byte-order mark.
            ("{\"a\": +1, \"b\": 007, \"c\": .5, \"d\": 2.}", json!({"a": 1, "b": 7, "c": 0.5, "d": 2}), true),
            ("\u{feff}{\"a\": 1}", json!({"a": 1}), true),
        ];
        for (input, expected, repaired) in cases {
            let parsed = parse_arguments(input)
                .unwrap_or_else(|e| panic!("{input:?} should parse, got {e}"));
            assert_eq!(
                parsed.object,
                object(expected.clone()),
                "object for {input:?}"
            );
            assert_eq!(parsed.repaired, repaired, "repaired flag for {input:?}");
            assert_eq!(
                serde_json::from_str::<Value>(&parsed.canonical).ok(),
                Some(expected),
                "canonical for {input:?}"
            );
        }
    }

    #[test]
    fn errors_table() {
        let not_object = |kind| Err(ArgumentsError::NotAnObject(kind));
        assert_eq!(parse_arguments("[1,2]"), not_object("an array"));
        assert_eq!(parse_arguments("[1,2"), not_object("an array"));
        assert_eq!(parse_arguments(r#""abc""#), not_object("a string"));
        assert_eq!(parse_arguments(r#""[1]""#), not_object("a string"));
        assert_eq!(parse_arguments(r#""\"{}\"""#), not_object("a string"));
        assert_eq!(parse_arguments("42"), not_object("a number"));
        assert_eq!(parse_arguments("true"), not_object("a boolean"));
        assert_eq!(parse_arguments("'x'"), not_object("a string"));

        for garbage in [
            "}}}{{",
            "abc",
            ":",
            r#"{"a": 1} and some prose"#,
            r#"{"a" 1}"#,
            r#"{"a": }"#,
            r#"{"a": 1-2}"#,
            "{[}",
        ] {
            assert!(
                matches!(parse_arguments(garbage), Err(ArgumentsError::Malformed(_))),
                "{garbage:?} should be malformed, got {:?}",
                parse_arguments(garbage)
            );
        }
    }

    #[test]
    fn rejects_oversized_input_before_parsing() {
        let too_long = format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_ARGUMENTS_BYTES));
        assert_eq!(
            parse_arguments(&too_long),
            Err(ArgumentsError::TooLarge {
                len: too_long.len(),
                limit: MAX_ARGUMENTS_BYTES
            })
        );
        // Exactly at the limit is still accepted.
        let padding = " ".repeat(MAX_ARGUMENTS_BYTES - 2);
        let at_limit = format!("{{{padding}}}");
        assert_eq!(at_limit.len(), MAX_ARGUMENTS_BYTES);
        assert_eq!(
            parse_arguments(&at_limit).map(|p| p.canonical),
            Ok("{}".to_owned())
        );
    }

    #[test]
    fn deep_nesting_is_malformed_not_a_stack_overflow() {
        let deep_inputs = [
            "[".repeat(10_000),
            "{\"a\":".repeat(10_000),
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            format!("{{\"a\":{}", "['".repeat(10_000)),
        ];
        for input in deep_inputs {
            assert!(matches!(
                parse_arguments(&input),
                Err(ArgumentsError::Malformed(_))
            ));
        }
        // Nesting up to the limit is fine on the repair path too, and its
        // canonical form stays within serde_json's limit; one more is not.
        let at_limit = format!("{{\"a\":{}", "[".repeat(MAX_DEPTH - 1));
        let parsed = parse_arguments(&at_limit);
        assert!(parsed.as_ref().is_ok_and(|p| p.repaired));
        let canonical = parsed.map(|p| p.canonical).unwrap_or_default();
        assert!(serde_json::from_str::<Value>(&canonical).is_ok());
        assert!(matches!(
            parse_arguments(&format!("{at_limit}[")),
            Err(ArgumentsError::Malformed(_))
        ));
    }

    #[test]
    fn canonical_is_compact_with_sorted_keys() {
        let parsed = parse_arguments("{'b': 1, 'a': {'d': [1, 2], 'c': 'x'}}");
        assert_eq!(
            parsed.map(|p| p.canonical),
            Ok(r#"{"a":{"c":"x","d":[1,2]},"b":1}"#.to_owned())
        );
    }

    // ----- property tests -----

    /// Floats are multiples of 1/8 so they survive a text round trip exactly
    /// (serde_json's default float parsing is not always exact).
    fn json_leaf(text: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1_000_000i32..1_000_000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
            text.prop_map(Value::String),
        ]
    }

    fn json_object(
        text: BoxedStrategy<String>,
        depth: u32,
        size: u32,
    ) -> impl Strategy<Value = Map<String, Value>> {
        let keys = text.clone();
        let value = json_leaf(text.clone()).prop_recursive(depth, size, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(text.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        prop::collection::btree_map(keys, value, 0..6).prop_map(|m| m.into_iter().collect())
    }

    /// Arbitrary Unicode text, control characters included.
    fn any_text() -> BoxedStrategy<String> {
        any::<String>().boxed()
    }

    /// Any text but `<`, which could start a template token that the repair
    /// path strips.
    fn no_angle_text() -> BoxedStrategy<String> {
        "[^<]{0,16}".boxed()
    }

    /// Text without `<` or backticks, which the repair path may strip as
    /// template tokens or code fences.
    fn plain_text() -> BoxedStrategy<String> {
        "[^<`]{0,12}".boxed()
    }

    proptest! {
        #[test]
        fn never_panics_on_any_regex_string(s in ".*") {
            let _ = parse_arguments(&s);
        }

        #[test]
        fn never_panics_on_arbitrary_unicode(s in any::<String>()) {
            let _ = parse_arguments(&s);
        }

        #[test]
        fn never_panics_on_json_like_text(s in r#"[{}\[\]"',:0-9a-zA-Z.eE+\- \\<|>`]{0,64}"#) {
            let _ = parse_arguments(&s);
        }

        #[test]
        fn valid_objects_parse_strictly(object in json_object(any_text(), 4, 48)) {
            let text = serde_json::to_string(&object).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let parsed = parse_arguments(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(!parsed.repaired);
            prop_assert_eq!(&parsed.object, &object);
            let reparsed: Map<String, Value> = serde_json::from_str(&parsed.canonical)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(reparsed, object);
        }

        /// The repairing parser reads valid JSON exactly as serde_json does.
        #[test]
        fn repairer_agrees_with_serde_on_valid_json(object in json_object(no_angle_text(), 4, 48), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&object)
            } else {
                serde_json::to_string(&object)
            }.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(repair(&text), Ok(Value::Object(object)));
        }

        #[test]
        fn wrappers_and_trailing_tokens_are_removed(object in json_object(plain_text(), 3, 24)) {
            let text = serde_json::to_string(&object).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for wrapped in [
                format!("```json\n{text}\n```"),
                format!("{text}<|im_end|>"),
                format!("{text}\n<end_of_turn>"),
            ] {
                let parsed = parse_arguments(&wrapped).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(parsed.repaired);
                prop_assert_eq!(&parsed.object, &object);
            }
        }
    }

    proptest! {
        // Every prefix is parsed, so keep the cases and objects smaller.
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A stream cut off anywhere after the opening `{` gives an object or an
        /// error, never a panic. In fact it always gives an object, unless a
        /// string holds `<`: stripping a `<|...|>` "token" that spans several
        /// strings can leave text that no longer parses.
        #[test]
        fn every_prefix_is_an_object_or_an_error(object in json_object(any_text(), 3, 24)) {
            let text = serde_json::to_string(&object).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let may_fail = text.contains('<');
            for (end, c) in text.char_indices() {
                let prefix = text.get(..end + c.len_utf8()).unwrap_or_default();
                match parse_arguments(prefix) {
                    Ok(parsed) => prop_assert_eq!(parsed.repaired, prefix.len() < text.len()),
                    Err(ArgumentsError::Malformed(_)) if may_fail => {}
                    Err(other) => prop_assert!(false, "prefix {:?} gave {:?}", prefix, other),
                }
            }
            let full = parse_arguments(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(full.object, object);
        }
    }
}
