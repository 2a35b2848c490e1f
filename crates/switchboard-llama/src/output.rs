//! Turning generated token pieces into text deltas and tool calls (no model needed; unit
//! tested): UTF-8 reassembly, stop strings with hold-back, the tool-call marker decision, and
//! parsing a generated call.

use serde_json::Value;

/// The text that starts a tool call in the model's answer.
pub const TOOL_CALL_MARKER: &str = "<tool_call>";

/// Joins token bytes into UTF-8 text: a character split across tokens is held until complete;
/// invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub(crate) struct Utf8Assembler {
    pending: Vec<u8>,
}

impl Utf8Assembler {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Safe: checked by from_utf8 just above.
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left at the end (an incomplete character becomes U+FFFD).
    pub(crate) fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// Streams answer text: trims leading whitespace, holds back trailing whitespace and any
/// suffix that may be the start of a stop string, and ends at the first stop string.
#[derive(Debug)]
pub(crate) struct TextFilter {
    stops: Vec<String>,
    held: String,
    started: bool,
    stopped: bool,
}

impl TextFilter {
    pub(crate) fn new(stops: Vec<String>) -> Self {
        TextFilter {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
            started: false,
            stopped: false,
        }
    }

    /// True once a stop string was seen.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// Adds text; returns what can be emitted now.
    pub(crate) fn push(&mut self, text: &str) -> String {
        if self.stopped {
            return String::new();
        }
        self.held.push_str(text);
        if let Some(at) = self.first_stop() {
            self.held.truncate(at);
            self.stopped = true;
            return self.take_final();
        }
        if !self.started {
            // Drop leading whitespace unless it could begin a stop string.
            let trimmed_len = self.held.trim_start().len();
            if trimmed_len == 0 {
                if !self.could_start_stop(&self.held) {
                    self.held.clear();
                }
                return String::new();
            }
            let lead = self.held.len() - trimmed_len;
            self.held.drain(..lead);
            self.started = true;
        }
        let keep = self.hold_back_len();
        let emit_len = self.held.len() - keep;
        let rest = self.held.split_off(emit_len);
        std::mem::replace(&mut self.held, rest)
    }

    /// The end of the answer: whatever is held, without trailing whitespace.
    pub(crate) fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        self.stopped = true;
        self.take_final()
    }

    fn take_final(&mut self) -> String {
        let mut out = std::mem::take(&mut self.held);
        if !self.started {
            out = out.trim_start().to_owned();
        }
        out.truncate(out.trim_end().len());
        out
    }

    fn first_stop(&self) -> Option<usize> {
        self.stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
    }

    fn could_start_stop(&self, text: &str) -> bool {
        self.stops.iter().any(|s| s.starts_with(text))
    }

    /// Bytes at the end of `held` that must wait: trailing whitespace, or the longest suffix
    /// that is a proper prefix of a stop string.
    fn hold_back_len(&self) -> usize {
        let whitespace = self.held.len() - self.held.trim_end().len();
        let mut stop_prefix = 0;
        for stop in &self.stops {
            for (i, _) in self.held.char_indices() {
                let suffix = &self.held[i..];
                if suffix.len() < stop.len() && stop.starts_with(suffix) {
                    stop_prefix = stop_prefix.max(suffix.len());
                    break;
                }
            }
        }
        whitespace.max(stop_prefix)
    }
}

/// Whether the answer (so far) is a tool call, text, or not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Undecided,
    Text,
    /// The answer starts with the marker; the value is the byte length of the text up to and
    /// including the marker.
    Call(usize),
}

/// Decides from the start of an answer whether the model chose to call a tool (its text,
/// after leading whitespace, starts with [`TOOL_CALL_MARKER`]).
pub(crate) fn decide(answer: &str) -> Decision {
    let trimmed = answer.trim_start();
    let lead = answer.len() - trimmed.len();
    if trimmed.starts_with(TOOL_CALL_MARKER) {
        Decision::Call(lead + TOOL_CALL_MARKER.len())
    } else if TOOL_CALL_MARKER.starts_with(trimmed) {
        Decision::Undecided
    } else {
        Decision::Text
    }
}

/// Follows a generated JSON object and says when it is complete.
#[derive(Debug, Default)]
pub(crate) struct JsonTracker {
    pub(crate) text: String,
    depth: usize,
    in_string: bool,
    escaped: bool,
    complete: bool,
}

impl JsonTracker {
    /// Adds text; true once the top-level object closed (later text is ignored).
    pub(crate) fn push(&mut self, text: &str) -> bool {
        for c in text.chars() {
            if self.complete {
                return true;
            }
            self.text.push(c);
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' {
                    self.escaped = true;
                } else if c == '"' {
                    self.in_string = false;
                }
                continue;
            }
            match c {
                '"' => self.in_string = true,
                '{' | '[' => self.depth += 1,
                '}' | ']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.complete = true;
                    }
                }
                _ => {}
            }
        }
        self.complete
    }
}

/// A tool call read from the model's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedCall {
    pub(crate) name: String,
    /// Compact JSON when the call parsed; otherwise the raw text the model wrote, which the
    /// session reports as invalid arguments.
    pub(crate) arguments: String,
    pub(crate) valid: bool,
}

/// Reads `{"name": ..., "arguments": {...}}` (also `"parameters"`), leniently when it is not
/// valid JSON: the name is then searched for, and the arguments are the raw rest.
pub(crate) fn parse_call(text: &str) -> ParsedCall {
    let text = text.trim();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text)
        && let Some(Value::String(name)) = map.get("name")
    {
        let args = map
            .get("arguments")
            .or_else(|| map.get("parameters"))
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        let (arguments, valid) = match args {
            // Some models double-encode the arguments.
            Value::String(s) => (s, true),
            other => (other.to_string(), true),
        };
        return ParsedCall {
            name: name.clone(),
            arguments,
            valid,
        };
    }
    let name = find_string_value(text, "\"name\"").unwrap_or_default();
    let arguments = text
        .find("\"arguments\"")
        .and_then(|at| {
            let rest = &text[at + "\"arguments\"".len()..];
            rest.trim_start().strip_prefix(':').map(str::trim)
        })
        .map(|rest| {
            // Drop the wrapper's closing brace if the arguments object is complete.
            let mut tracker = JsonTracker::default();
            tracker.push(rest);
            tracker.text
        })
        .unwrap_or_else(|| text.to_owned());
    ParsedCall {
        name,
        arguments,
        valid: false,
    }
}

fn find_string_value(text: &str, key: &str) -> Option<String> {
    let at = text.find(key)?;
    let rest = text[at + key.len()..].trim_start().strip_prefix(':')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(filter: &mut TextFilter, pieces: &[&str]) -> String {
        let mut out = String::new();
        for p in pieces {
            out.push_str(&filter.push(p));
        }
        out.push_str(&filter.finish());
        out
    }

    #[test]
    fn utf8_characters_split_across_tokens_are_joined() {
        let mut a = Utf8Assembler::default();
        let bytes = "é😀".as_bytes();
        assert_eq!(a.push(&bytes[..1]), "");
        assert_eq!(a.push(&bytes[1..3]), "é");
        assert_eq!(a.push(&bytes[3..5]), "");
        assert_eq!(a.push(&bytes[5..]), "😀");
        assert_eq!(a.push(&[0xFF, b'a']), "\u{FFFD}a");
        assert_eq!(a.push(&[0xE2]), "");
        assert_eq!(a.finish(), "\u{FFFD}");
    }

    #[test]
    fn text_stops_at_a_stop_string_split_across_pieces() {
        let mut f = TextFilter::new(vec!["\nUser:".into()]);
        let mut streamed = Vec::new();
        for p in [" Hello", " there.", "\n", "Us", "er: more"] {
            streamed.push(f.push(p));
        }
        assert!(f.stopped());
        assert_eq!(streamed, ["Hello", " there.", "", "", ""]);
        assert_eq!(f.finish(), "");
    }

    #[test]
    fn a_false_start_of_a_stop_string_is_released() {
        let mut f = TextFilter::new(vec!["\nUser:".into()]);
        assert_eq!(run(&mut f, &["Hi", "\n", "Use", "ful."]), "Hi\nUseful.");
    }

    #[test]
    fn leading_and_trailing_whitespace_is_trimmed() {
        let mut f = TextFilter::new(vec![]);
        assert_eq!(f.push("  "), "");
        assert_eq!(f.push(" Yes"), "Yes");
        assert_eq!(f.push(" it is. "), " it is.");
        assert_eq!(f.push(" "), "");
        assert_eq!(f.finish(), "");
    }

    #[test]
    fn a_newline_stop_at_the_very_start_gives_an_empty_answer() {
        let mut f = TextFilter::new(vec!["\n".into()]);
        assert_eq!(run(&mut f, &["\n", "User: x"]), "");
        assert!(f.stopped());
        let mut f = TextFilter::new(vec!["\n".into()]);
        assert_eq!(run(&mut f, &[" Sure.", "\nUser:"]), "Sure.");
    }

    #[test]
    fn multibyte_text_near_a_stop_prefix() {
        let mut f = TextFilter::new(vec!["éa".into()]);
        assert_eq!(run(&mut f, &["caf", "é", "!"]), "café!");
        let mut f = TextFilter::new(vec!["éa".into()]);
        assert_eq!(run(&mut f, &["caf", "é", "a"]), "caf");
    }

    #[test]
    fn the_marker_decides_between_text_and_call() {
        assert_eq!(decide(""), Decision::Undecided);
        assert_eq!(decide(" "), Decision::Undecided);
        assert_eq!(decide(" <to"), Decision::Undecided);
        assert_eq!(decide(" <tool_call>"), Decision::Call(12));
        assert_eq!(decide("<tool_call>{\"na"), Decision::Call(11));
        assert_eq!(decide(" <b>"), Decision::Text);
        assert_eq!(decide("Sure"), Decision::Text);
    }

    #[test]
    fn json_tracker_ends_at_the_closing_brace_outside_strings() {
        let mut t = JsonTracker::default();
        assert!(!t.push(r#" {"name": "a}\"{", "arguments": {"x": [1, "]"]"#));
        assert!(t.push("}} trailing"));
        assert_eq!(
            t.text,
            r#" {"name": "a}\"{", "arguments": {"x": [1, "]"]}}"#
        );
    }

    #[test]
    fn calls_parse_strictly_and_leniently() {
        let c = parse_call(r#" {"name": "get_weather", "arguments": {"city": "Paris"}}"#);
        assert_eq!(
            c,
            ParsedCall {
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
                valid: true
            }
        );
        let c = parse_call(r#"{"name": "f", "parameters": {"a": 1}}"#);
        assert_eq!((c.name.as_str(), c.arguments.as_str()), ("f", r#"{"a":1}"#));
        // Cut off by the token limit: the name is found, the arguments are the raw rest.
        let c = parse_call(r#"{"name": "get_weather", "arguments": {"city": "Par"#);
        assert!(!c.valid);
        assert_eq!(c.name, "get_weather");
        assert_eq!(c.arguments, r#"{"city": "Par"#);
        let c = parse_call("garbage");
        assert_eq!(
            (c.name.as_str(), c.arguments.as_str(), c.valid),
            ("", "garbage", false)
        );
    }
}
