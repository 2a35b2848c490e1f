//! Expectations over a [`RunResult`]: a cursor that walks the run's events in order, random
//! access to any event or range, and typed checks on one event.
//!
//! Every check returns `Result<_, ExpectationError>`. The error's message says what was expected
//! and lists every event of the run with the failing one marked, so a test written with `?` (or
//! `.unwrap()`) fails with the whole story.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::json;
//! use switchboard::chat::Role;
//! use switchboard::testing::{ScriptedLlm, ScriptedReply};
//! use switchboard::tools::FunctionTool;
//! use switchboard::{Agent, AgentSession, RunContext};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct DayArgs { day: String }
//!
//! struct Desk;
//! impl Agent for Desk {
//!     fn instructions(&self) -> String { "You answer questions about opening hours.".into() }
//!     fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
//!         vec![FunctionTool::new("hours", "Opening hours of a day.", |_ctx: RunContext, a: DayArgs| async move {
//!             format!("Open 9 to 5 on {}.", a.day)
//!         })]
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let llm = Arc::new(
//!     ScriptedLlm::new()
//!         .on("open on monday?", ScriptedReply::tool("hours", json!({"day": "monday"})))
//!         .on("after:hours", ScriptedReply::echo_tool_output()),
//! );
//! let session = AgentSession::builder().llm(llm).build();
//! session.start(Desk).await.unwrap();
//! let result = session.run("open on monday?").await.unwrap();
//!
//! let mut expect = result.expect();
//! expect.next_event()?.is_function_call("hours")?.with_args(json!({"day": "monday"}))?;
//! expect.next_event()?.is_function_call_output("Open 9 to 5 on monday.")?.is_error(false)?;
//! expect.next_event()?.is_message(Role::Assistant)?.text_contains("9 to 5")?;
//! expect.no_more_events()?;
//! # Ok::<(), switchboard::testing::ExpectationError>(())
//! # }).unwrap();
//! ```

use std::any::TypeId;
use std::fmt;
use std::ops::{Bound, RangeBounds};

use serde_json::Value;

use super::judge::{AsLlm, VerdictCache, judge_intent};
use crate::chat::{AgentHandoff, ChatMessage, FunctionCall, FunctionCallOutput, Role};
use crate::session::{RunEvent, RunResult};

/// The kind of a [`RunEvent`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunEventKind {
    /// [`RunEvent::Message`]
    Message,
    /// [`RunEvent::FunctionCall`]
    FunctionCall,
    /// [`RunEvent::FunctionCallOutput`]
    FunctionCallOutput,
    /// [`RunEvent::AgentHandoff`]
    AgentHandoff,
}

impl RunEventKind {
    /// The kind of `event`.
    pub fn of(event: &RunEvent) -> Self {
        match event {
            RunEvent::Message(_) => RunEventKind::Message,
            RunEvent::FunctionCall(_) => RunEventKind::FunctionCall,
            RunEvent::FunctionCallOutput(_) => RunEventKind::FunctionCallOutput,
            RunEvent::AgentHandoff { .. } => RunEventKind::AgentHandoff,
        }
    }

    /// The kind's short name, as [`RunEvent::kind_name`] spells it.
    pub fn name(self) -> &'static str {
        match self {
            RunEventKind::Message => "message",
            RunEventKind::FunctionCall => "function_call",
            RunEventKind::FunctionCallOutput => "function_call_output",
            RunEventKind::AgentHandoff => "agent_handoff",
        }
    }
}

/// `noun` with its indefinite article: "a message", "an agent_handoff".
fn a(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

impl fmt::Display for RunEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed expectation: what was expected, and every event of the run with the failing
/// position marked (`>>>`).
///
/// `Debug` prints the same text as `Display`, so `.unwrap()` and tests returning `Result` show
/// the readable listing.
#[derive(Clone, PartialEq, Eq)]
pub struct ExpectationError {
    message: String,
    position: Option<usize>,
    events: String,
}

impl ExpectationError {
    /// An error about `result`, marking event `position` when given.
    pub fn new(result: &RunResult, position: Option<usize>, message: impl Into<String>) -> Self {
        ExpectationError {
            message: message.into(),
            position,
            events: result.describe(position),
        }
    }

    /// What was expected and what was found, without the listing.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The index of the event the failure is about, if it is about one.
    pub fn position(&self) -> Option<usize> {
        self.position
    }

    /// The listing of every event of the run, the failing one marked with `>>>`.
    pub fn events(&self) -> &str {
        &self.events
    }
}

impl fmt::Display for ExpectationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\nevents of the run:\n{}", self.message, self.events)
    }
}

impl fmt::Debug for ExpectationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ExpectationError {}

/// Which agent a handoff must go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentMatch {
    /// An agent of this Rust type.
    Type {
        /// The type.
        id: TypeId,
        /// Its name, for messages.
        name: &'static str,
    },
    /// An agent with this id ([`Agent::id`](crate::Agent::id)).
    Id(String),
}

impl AgentMatch {
    /// An agent of type `A`.
    pub fn of<A: 'static>() -> Self {
        AgentMatch::Type {
            id: TypeId::of::<A>(),
            name: std::any::type_name::<A>(),
        }
    }
}

/// A description of an event, for [`RunExpect::skip_next_event_if`],
/// [`RunExpect::next_matching`], [`EventRange::contains`] and [`EventAssert::matches`]. `None`
/// fields match anything.
///
/// ```
/// use serde_json::json;
/// use switchboard::chat::Role;
/// use switchboard::testing::{EventMatcher, RunEventKind};
///
/// let any_reply = EventMatcher::message(Role::Assistant);
/// let booking = EventMatcher::function_call("book", json!({"day": "monday"}));
/// let any_output: EventMatcher = RunEventKind::FunctionCallOutput.into();
/// assert_eq!(booking.to_string(), r#"function_call `book` with args {"day":"monday"}"#);
/// # let _ = (any_reply, any_output);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum EventMatcher {
    /// Any event.
    Any,
    /// A message.
    Message {
        /// Its role.
        role: Option<Role>,
        /// A substring of its text.
        contains: Option<String>,
    },
    /// A tool call.
    FunctionCall {
        /// The tool's name.
        name: Option<String>,
        /// A subset of the decoded arguments (see [`json_subset`]).
        args: Option<Value>,
    },
    /// A tool call's output.
    FunctionCallOutput {
        /// The exact output.
        output: Option<String>,
        /// A substring of the output.
        contains: Option<String>,
        /// Whether it reports an error.
        is_error: Option<bool>,
    },
    /// A handoff.
    AgentHandoff {
        /// The new agent.
        agent: Option<AgentMatch>,
    },
}

impl EventMatcher {
    /// Any event.
    pub fn any() -> Self {
        EventMatcher::Any
    }

    /// A message with this role.
    pub fn message(role: Role) -> Self {
        EventMatcher::Message {
            role: Some(role),
            contains: None,
        }
    }

    /// A call of tool `name` whose arguments contain `args` (pass `None` for any arguments).
    pub fn function_call(name: impl Into<String>, args: impl Into<Option<Value>>) -> Self {
        EventMatcher::FunctionCall {
            name: Some(name.into()),
            args: args.into(),
        }
    }

    /// A tool output equal to `output`, with this error flag when given.
    pub fn function_call_output(
        output: impl Into<String>,
        is_error: impl Into<Option<bool>>,
    ) -> Self {
        EventMatcher::FunctionCallOutput {
            output: Some(output.into()),
            contains: None,
            is_error: is_error.into(),
        }
    }

    /// A handoff to an agent of type `A`.
    pub fn agent_handoff<A: 'static>() -> Self {
        EventMatcher::AgentHandoff {
            agent: Some(AgentMatch::of::<A>()),
        }
    }

    /// A handoff to the agent with this id.
    pub fn agent_handoff_to(agent_id: impl Into<String>) -> Self {
        EventMatcher::AgentHandoff {
            agent: Some(AgentMatch::Id(agent_id.into())),
        }
    }

    /// True when `event` matches.
    pub fn matches(&self, event: &RunEvent) -> bool {
        self.mismatch(event).is_none()
    }

    /// Why `event` does not match, or `None` when it does.
    pub fn mismatch(&self, event: &RunEvent) -> Option<String> {
        let kind_mismatch = |expected: RunEventKind| {
            Some(format!(
                "expected {} event, found {}",
                a(expected.name()),
                a(event.kind_name())
            ))
        };
        match (self, event) {
            (EventMatcher::Any, _) => None,
            (EventMatcher::Message { role, contains }, RunEvent::Message(m)) => {
                if let Some(role) = role
                    && m.role != *role
                {
                    return Some(format!(
                        "expected a message from the {}, found one from the {}",
                        role.as_str(),
                        m.role.as_str()
                    ));
                }
                let text = m.text();
                match contains {
                    Some(needle) if !text.contains(needle.as_str()) => Some(format!(
                        "expected the message to contain {needle:?}, its text is {text:?}"
                    )),
                    _ => None,
                }
            }
            (EventMatcher::Message { .. }, _) => kind_mismatch(RunEventKind::Message),
            (EventMatcher::FunctionCall { name, args }, RunEvent::FunctionCall(c)) => {
                if let Some(name) = name
                    && c.name != *name
                {
                    return Some(format!(
                        "expected a call of `{name}`, found a call of `{}`",
                        c.name
                    ));
                }
                let expected = args.as_ref()?;
                let actual: Value = match serde_json::from_str(&c.arguments) {
                    Ok(v) => v,
                    Err(e) => {
                        return Some(format!(
                            "the arguments of `{}` are not valid JSON ({e}): {}",
                            c.name, c.arguments
                        ));
                    }
                };
                json_subset(expected, &actual).err().map(|why| {
                    format!(
                        "the arguments of `{}` do not contain {expected}: {why} (arguments: {})",
                        c.name, c.arguments
                    )
                })
            }
            (EventMatcher::FunctionCall { .. }, _) => kind_mismatch(RunEventKind::FunctionCall),
            (
                EventMatcher::FunctionCallOutput {
                    output,
                    contains,
                    is_error,
                },
                RunEvent::FunctionCallOutput(o),
            ) => {
                if let Some(output) = output
                    && o.output != *output
                {
                    return Some(format!(
                        "expected the output {output:?}, found {:?}",
                        o.output
                    ));
                }
                if let Some(needle) = contains
                    && !o.output.contains(needle.as_str())
                {
                    return Some(format!(
                        "expected the output to contain {needle:?}, found {:?}",
                        o.output
                    ));
                }
                match is_error {
                    Some(flag) if o.is_error != *flag => Some(format!(
                        "expected {} output, found {} output {:?}",
                        if *flag { "an error" } else { "a non-error" },
                        if o.is_error {
                            "an error"
                        } else {
                            "a non-error"
                        },
                        o.output
                    )),
                    _ => None,
                }
            }
            (EventMatcher::FunctionCallOutput { .. }, _) => {
                kind_mismatch(RunEventKind::FunctionCallOutput)
            }
            (
                EventMatcher::AgentHandoff { agent },
                RunEvent::AgentHandoff {
                    item,
                    new_agent_type,
                    new_agent_type_id,
                },
            ) => match agent {
                Some(AgentMatch::Type { id, name }) if new_agent_type_id != id => Some(format!(
                    "expected a handoff to an agent of type {name}, found a handoff to `{}` ({new_agent_type})",
                    item.new_agent_id
                )),
                Some(AgentMatch::Id(id)) if item.new_agent_id != *id => Some(format!(
                    "expected a handoff to `{id}`, found a handoff to `{}`",
                    item.new_agent_id
                )),
                _ => None,
            },
            (EventMatcher::AgentHandoff { .. }, _) => kind_mismatch(RunEventKind::AgentHandoff),
        }
    }
}

impl From<RunEventKind> for EventMatcher {
    fn from(kind: RunEventKind) -> Self {
        match kind {
            RunEventKind::Message => EventMatcher::Message {
                role: None,
                contains: None,
            },
            RunEventKind::FunctionCall => EventMatcher::FunctionCall {
                name: None,
                args: None,
            },
            RunEventKind::FunctionCallOutput => EventMatcher::FunctionCallOutput {
                output: None,
                contains: None,
                is_error: None,
            },
            RunEventKind::AgentHandoff => EventMatcher::AgentHandoff { agent: None },
        }
    }
}

impl fmt::Display for EventMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventMatcher::Any => f.write_str("any event"),
            EventMatcher::Message { role, contains } => {
                f.write_str("message")?;
                if let Some(role) = role {
                    write!(f, " from the {}", role.as_str())?;
                }
                if let Some(needle) = contains {
                    write!(f, " containing {needle:?}")?;
                }
                Ok(())
            }
            EventMatcher::FunctionCall { name, args } => {
                f.write_str("function_call")?;
                if let Some(name) = name {
                    write!(f, " `{name}`")?;
                }
                if let Some(args) = args {
                    write!(f, " with args {args}")?;
                }
                Ok(())
            }
            EventMatcher::FunctionCallOutput {
                output,
                contains,
                is_error,
            } => {
                f.write_str("function_call_output")?;
                if let Some(output) = output {
                    write!(f, " {output:?}")?;
                }
                if let Some(needle) = contains {
                    write!(f, " containing {needle:?}")?;
                }
                match is_error {
                    Some(true) => f.write_str(" (error)"),
                    Some(false) => f.write_str(" (not an error)"),
                    None => Ok(()),
                }
            }
            EventMatcher::AgentHandoff { agent } => {
                f.write_str("agent_handoff")?;
                match agent {
                    Some(AgentMatch::Type { name, .. }) => write!(f, " to {name}"),
                    Some(AgentMatch::Id(id)) => write!(f, " to `{id}`"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Checks that `expected` is a subset of `actual`: every key of an expected object is present
/// in the actual object with a matching value (recursively); arrays match element by element
/// and must have the same length; numbers compare by value (`1` matches `1.0`); everything else
/// must be equal. The error names the first path that differs.
///
/// ```
/// use serde_json::json;
/// use switchboard::testing::json_subset;
///
/// let args = json!({"day": "monday", "weeks": 2, "notes": null});
/// assert!(json_subset(&json!({"day": "monday"}), &args).is_ok());
/// assert_eq!(
///     json_subset(&json!({"day": "sunday"}), &args).unwrap_err(),
///     r#"at `day`: expected "sunday", found "monday""#
/// );
/// ```
pub fn json_subset(expected: &Value, actual: &Value) -> Result<(), String> {
    subset_at(expected, actual, &mut String::new())
}

fn subset_at(expected: &Value, actual: &Value, path: &mut String) -> Result<(), String> {
    let here = |path: &str| {
        if path.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("at `{path}`")
        }
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, e_value) in e {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let result = match a.get(key) {
                    Some(a_value) => subset_at(e_value, a_value, path),
                    None => Err(format!("{}: missing", here(path))),
                };
                path.truncate(len);
                result?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{}: expected {} elements, found {}",
                    here(path),
                    e.len(),
                    a.len()
                ));
            }
            for (i, (e_value, a_value)) in e.iter().zip(a).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let result = subset_at(e_value, a_value, path);
                path.truncate(len);
                result?;
            }
            Ok(())
        }
        (Value::Number(e), Value::Number(a)) if e == a || e.as_f64() == a.as_f64() => Ok(()),
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{}: expected {e}, found {a}", here(path))),
    }
}

impl RunResult {
    /// A cursor over this run's events, at the first one. See [`RunExpect`].
    ///
    /// Unlike the reference (one cursor cached per result), every call returns a new cursor:
    /// keep it in a variable to walk the events.
    pub fn expect(&self) -> RunExpect<'_> {
        RunExpect {
            result: self,
            cursor: 0,
        }
    }
}

/// A cursor over the events of a [`RunResult`], from [`RunResult::expect`].
///
/// `next_*` and `skip_*` move the cursor; [`at`](RunExpect::at), [`range`](RunExpect::range)
/// and the `contains_*` checks look at any event without moving it. A failed `next_*` leaves the
/// cursor where it was.
#[derive(Debug, Clone)]
pub struct RunExpect<'a> {
    result: &'a RunResult,
    cursor: usize,
}

impl<'a> RunExpect<'a> {
    /// The run under test.
    pub fn result(&self) -> &'a RunResult {
        self.result
    }

    /// The index of the event the cursor is at (equal to the number of events at the end).
    pub fn position(&self) -> usize {
        self.cursor
    }

    /// How many events are left after the cursor.
    pub fn remaining(&self) -> usize {
        self.result.events().len().saturating_sub(self.cursor)
    }

    fn error(&self, position: Option<usize>, message: impl Into<String>) -> ExpectationError {
        ExpectationError::new(self.result, position, message)
    }

    fn assert_at(&self, index: usize) -> EventAssert<'a> {
        EventAssert {
            result: self.result,
            index,
        }
    }

    /// The event at the cursor, whatever it is; moves past it.
    pub fn next_event(&mut self) -> Result<EventAssert<'a>, ExpectationError> {
        if self.cursor >= self.result.events().len() {
            return Err(self.error(
                None,
                format!(
                    "Expected another event, but none left (all {} events were consumed).",
                    self.result.events().len()
                ),
            ));
        }
        let event = self.assert_at(self.cursor);
        self.cursor += 1;
        Ok(event)
    }

    /// The next event of this kind, skipping events of other kinds; moves past it.
    pub fn next_event_of(
        &mut self,
        kind: RunEventKind,
    ) -> Result<EventAssert<'a>, ExpectationError> {
        self.next_matching(kind)
    }

    /// The next event that matches, skipping those that do not; moves past it.
    pub fn next_matching(
        &mut self,
        matcher: impl Into<EventMatcher>,
    ) -> Result<EventAssert<'a>, ExpectationError> {
        let matcher = matcher.into();
        let events = self.result.events();
        match (self.cursor..events.len()).find(|&i| matcher.matches(&events[i])) {
            Some(i) => {
                self.cursor = i + 1;
                Ok(self.assert_at(i))
            }
            None => Err(self.error(
                (self.cursor < events.len()).then_some(self.cursor),
                format!(
                    "Expected another {matcher} at or after event {}, but none left.",
                    self.cursor
                ),
            )),
        }
    }

    /// When the event at the cursor matches, moves past it and returns it; otherwise returns
    /// `None` and stays.
    pub fn skip_next_event_if(
        &mut self,
        matcher: impl Into<EventMatcher>,
    ) -> Option<EventAssert<'a>> {
        let matcher = matcher.into();
        let event = self.result.events().get(self.cursor)?;
        if matcher.matches(event) {
            self.cursor += 1;
            Some(self.assert_at(self.cursor - 1))
        } else {
            None
        }
    }

    /// Moves past `n` events, whatever they are; fails (without moving) when fewer are left.
    pub fn skip_next(&mut self, n: usize) -> Result<&mut Self, ExpectationError> {
        if n > self.remaining() {
            return Err(self.error(
                None,
                format!(
                    "Expected to skip {n} events from event {}, but only {} left.",
                    self.cursor,
                    self.remaining()
                ),
            ));
        }
        self.cursor += n;
        Ok(self)
    }

    /// Checks that the cursor is past the last event.
    pub fn no_more_events(&self) -> Result<(), ExpectationError> {
        if self.cursor < self.result.events().len() {
            return Err(self.error(
                Some(self.cursor),
                format!(
                    "Expected no more events, but {} left, from event {}.",
                    self.remaining(),
                    self.cursor
                ),
            ));
        }
        Ok(())
    }

    /// The event at `index`; negative indexes count from the end (`-1` is the last event).
    /// Does not move the cursor.
    pub fn at(&self, index: isize) -> Result<EventAssert<'a>, ExpectationError> {
        let len = self.result.events().len();
        let resolved = if index < 0 {
            len.checked_sub(index.unsigned_abs())
        } else {
            Some(index.unsigned_abs()).filter(|&i| i < len)
        };
        match resolved {
            Some(i) => Ok(self.assert_at(i)),
            None => Err(self.error(
                None,
                format!("Event index {index} is out of range: the run has {len} events."),
            )),
        }
    }

    /// The events in `range` (`1..3`, `2..`, `..`), for `contains_*` checks. Does not move the
    /// cursor. Fails when the range does not fit the run's events.
    pub fn range(
        &self,
        range: impl RangeBounds<usize>,
    ) -> Result<EventRange<'a>, ExpectationError> {
        let len = self.result.events().len();
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => len,
        };
        if start > end || end > len {
            return Err(self.error(
                None,
                format!("Event range {start}..{end} is out of range: the run has {len} events."),
            ));
        }
        Ok(EventRange {
            result: self.result,
            start,
            end,
        })
    }

    /// Every event of the run, for `contains_*` checks.
    pub fn all(&self) -> EventRange<'a> {
        EventRange {
            result: self.result,
            start: 0,
            end: self.result.events().len(),
        }
    }

    /// The first event of the run that matches.
    pub fn contains(
        &self,
        matcher: impl Into<EventMatcher>,
    ) -> Result<EventAssert<'a>, ExpectationError> {
        self.all().contains(matcher)
    }

    /// The first call of tool `name` whose arguments contain `args` (`None`: any arguments).
    pub fn contains_function_call(
        &self,
        name: &str,
        args: impl Into<Option<Value>>,
    ) -> Result<FunctionCallAssert<'a>, ExpectationError> {
        self.all().contains_function_call(name, args)
    }

    /// The first message with this role.
    pub fn contains_message(&self, role: Role) -> Result<MessageAssert<'a>, ExpectationError> {
        self.all().contains_message(role)
    }

    /// The first tool output equal to `output`, with this error flag when given.
    pub fn contains_function_call_output(
        &self,
        output: &str,
        is_error: impl Into<Option<bool>>,
    ) -> Result<FunctionCallOutputAssert<'a>, ExpectationError> {
        self.all().contains_function_call_output(output, is_error)
    }

    /// The first handoff to an agent of type `A`.
    pub fn contains_agent_handoff<A: 'static>(
        &self,
    ) -> Result<AgentHandoffAssert<'a>, ExpectationError> {
        self.all().contains_agent_handoff::<A>()
    }

    /// The first handoff to the agent with this id.
    pub fn contains_agent_handoff_to(
        &self,
        agent_id: &str,
    ) -> Result<AgentHandoffAssert<'a>, ExpectationError> {
        self.all().contains_agent_handoff_to(agent_id)
    }
}

/// A range of a run's events, from [`RunExpect::range`] or [`RunExpect::all`].
#[derive(Debug, Clone, Copy)]
pub struct EventRange<'a> {
    result: &'a RunResult,
    start: usize,
    end: usize,
}

impl<'a> EventRange<'a> {
    /// The events of the range.
    pub fn events(&self) -> &'a [RunEvent] {
        &self.result.events()[self.start..self.end]
    }

    /// The number of events in the range.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when the range holds no event.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The first event of the range that matches.
    pub fn contains(
        &self,
        matcher: impl Into<EventMatcher>,
    ) -> Result<EventAssert<'a>, ExpectationError> {
        let matcher = matcher.into();
        match self.events().iter().position(|e| matcher.matches(e)) {
            Some(offset) => Ok(EventAssert {
                result: self.result,
                index: self.start + offset,
            }),
            None => Err(ExpectationError::new(
                self.result,
                None,
                format!(
                    "Expected {} among events {}..{}, but there is none.",
                    a(&matcher.to_string()),
                    self.start,
                    self.end
                ),
            )),
        }
    }

    /// The first call of tool `name` whose arguments contain `args` (`None`: any arguments).
    pub fn contains_function_call(
        &self,
        name: &str,
        args: impl Into<Option<Value>>,
    ) -> Result<FunctionCallAssert<'a>, ExpectationError> {
        self.contains(EventMatcher::function_call(name, args))?
            .as_function_call()
    }

    /// The first message with this role.
    pub fn contains_message(&self, role: Role) -> Result<MessageAssert<'a>, ExpectationError> {
        self.contains(EventMatcher::message(role))?.as_message()
    }

    /// The first tool output equal to `output`, with this error flag when given.
    pub fn contains_function_call_output(
        &self,
        output: &str,
        is_error: impl Into<Option<bool>>,
    ) -> Result<FunctionCallOutputAssert<'a>, ExpectationError> {
        self.contains(EventMatcher::function_call_output(output, is_error))?
            .as_function_call_output()
    }

    /// The first handoff to an agent of type `A`.
    pub fn contains_agent_handoff<A: 'static>(
        &self,
    ) -> Result<AgentHandoffAssert<'a>, ExpectationError> {
        self.contains(EventMatcher::agent_handoff::<A>())?
            .as_agent_handoff()
    }

    /// The first handoff to the agent with this id.
    pub fn contains_agent_handoff_to(
        &self,
        agent_id: &str,
    ) -> Result<AgentHandoffAssert<'a>, ExpectationError> {
        self.contains(EventMatcher::agent_handoff_to(agent_id))?
            .as_agent_handoff()
    }
}

/// One event of a run, to check. Each `is_*` check returns a typed assert on success.
#[derive(Debug, Clone, Copy)]
pub struct EventAssert<'a> {
    result: &'a RunResult,
    index: usize,
}

impl<'a> EventAssert<'a> {
    /// The raw event.
    pub fn event(&self) -> &'a RunEvent {
        &self.result.events()[self.index]
    }

    /// Its index in the run.
    pub fn index(&self) -> usize {
        self.index
    }

    /// An error about this event.
    pub fn error(&self, message: impl Into<String>) -> ExpectationError {
        ExpectationError::new(self.result, Some(self.index), message)
    }

    fn check(&self, matcher: &EventMatcher) -> Result<(), ExpectationError> {
        match matcher.mismatch(self.event()) {
            None => Ok(()),
            Some(why) => Err(self.error(format!(
                "Event {} is not {}: {why}.",
                self.index,
                a(&matcher.to_string())
            ))),
        }
    }

    /// Checks the event against any matcher.
    pub fn matches(self, matcher: impl Into<EventMatcher>) -> Result<Self, ExpectationError> {
        self.check(&matcher.into())?;
        Ok(self)
    }

    /// Checks that it is a message with this role.
    pub fn is_message(self, role: Role) -> Result<MessageAssert<'a>, ExpectationError> {
        self.check(&EventMatcher::message(role))?;
        self.as_message()
    }

    /// Checks that it is a call of tool `name` (any arguments; see
    /// [`FunctionCallAssert::with_args`]).
    pub fn is_function_call(self, name: &str) -> Result<FunctionCallAssert<'a>, ExpectationError> {
        self.check(&EventMatcher::function_call(name, None))?;
        self.as_function_call()
    }

    /// Checks that it is a tool output equal to `output` (see
    /// [`FunctionCallOutputAssert::is_error`]).
    pub fn is_function_call_output(
        self,
        output: &str,
    ) -> Result<FunctionCallOutputAssert<'a>, ExpectationError> {
        self.check(&EventMatcher::function_call_output(output, None))?;
        self.as_function_call_output()
    }

    /// Checks that it is a handoff to an agent of type `A`.
    pub fn is_agent_handoff<A: 'static>(self) -> Result<AgentHandoffAssert<'a>, ExpectationError> {
        self.check(&EventMatcher::agent_handoff::<A>())?;
        self.as_agent_handoff()
    }

    /// Checks that it is a handoff to the agent with this id.
    pub fn is_agent_handoff_to(
        self,
        agent_id: &str,
    ) -> Result<AgentHandoffAssert<'a>, ExpectationError> {
        self.check(&EventMatcher::agent_handoff_to(agent_id))?;
        self.as_agent_handoff()
    }

    /// Checks that it is a message, of any role.
    pub fn as_message(self) -> Result<MessageAssert<'a>, ExpectationError> {
        match self.event() {
            RunEvent::Message(message) => Ok(MessageAssert { at: self, message }),
            _ => Err(self.not_a(RunEventKind::Message)),
        }
    }

    /// Checks that it is a tool call, of any tool.
    pub fn as_function_call(self) -> Result<FunctionCallAssert<'a>, ExpectationError> {
        match self.event() {
            RunEvent::FunctionCall(call) => Ok(FunctionCallAssert { at: self, call }),
            _ => Err(self.not_a(RunEventKind::FunctionCall)),
        }
    }

    /// Checks that it is a tool output, of any tool.
    pub fn as_function_call_output(self) -> Result<FunctionCallOutputAssert<'a>, ExpectationError> {
        match self.event() {
            RunEvent::FunctionCallOutput(output) => {
                Ok(FunctionCallOutputAssert { at: self, output })
            }
            _ => Err(self.not_a(RunEventKind::FunctionCallOutput)),
        }
    }

    /// Checks that it is a handoff, to any agent.
    pub fn as_agent_handoff(self) -> Result<AgentHandoffAssert<'a>, ExpectationError> {
        match self.event() {
            RunEvent::AgentHandoff {
                item,
                new_agent_type,
                ..
            } => Ok(AgentHandoffAssert {
                at: self,
                handoff: item,
                new_agent_type,
            }),
            _ => Err(self.not_a(RunEventKind::AgentHandoff)),
        }
    }

    fn not_a(&self, kind: RunEventKind) -> ExpectationError {
        self.error(format!(
            "Event {} is not {}: it is {}.",
            self.index,
            a(kind.name()),
            a(self.event().kind_name())
        ))
    }
}

/// A message event that passed its check.
#[derive(Debug, Clone, Copy)]
pub struct MessageAssert<'a> {
    at: EventAssert<'a>,
    message: &'a ChatMessage,
}

impl<'a> MessageAssert<'a> {
    /// The raw event.
    pub fn event(&self) -> &'a RunEvent {
        self.at.event()
    }

    /// The message.
    pub fn message(&self) -> &'a ChatMessage {
        self.message
    }

    /// The message's text.
    pub fn text(&self) -> String {
        self.message.text()
    }

    /// Checks that the text contains `needle`.
    pub fn text_contains(self, needle: &str) -> Result<Self, ExpectationError> {
        let text = self.message.text();
        if text.contains(needle) {
            Ok(self)
        } else {
            Err(self.at.error(format!(
                "Message {} does not contain {needle:?}: its text is {text:?}.",
                self.at.index
            )))
        }
    }

    /// Asks `llm` whether the message fulfils `intent` (a plain-language description of what it
    /// should do). The judge must answer by calling `check_intent(success, reason)`; anything
    /// unclear counts as a failure. Fails on an empty message or intent, a model error, a
    /// missing or malformed verdict, and a negative verdict (with the model's reason).
    pub async fn judge(
        self,
        llm: &(impl AsLlm + ?Sized),
        intent: &str,
    ) -> Result<Self, ExpectationError> {
        self.judge_inner(llm.as_llm(), intent, None).await
    }

    /// [`judge`](MessageAssert::judge) with a verdict cache: a verdict already given for the
    /// same model, intent and message is read from `cache` instead of asking the model again.
    pub async fn judge_cached(
        self,
        llm: &(impl AsLlm + ?Sized),
        intent: &str,
        cache: &VerdictCache,
    ) -> Result<Self, ExpectationError> {
        self.judge_inner(llm.as_llm(), intent, Some(cache)).await
    }

    async fn judge_inner(
        self,
        llm: &dyn crate::llm::Llm,
        intent: &str,
        cache: Option<&VerdictCache>,
    ) -> Result<Self, ExpectationError> {
        match judge_intent(llm, &self.message.text(), intent, cache).await {
            Ok(_) => Ok(self),
            Err(error) => Err(self.at.error(format!(
                "Judgement of message {} against the intent {intent:?} failed: {error}",
                self.at.index
            ))),
        }
    }
}

/// A tool-call event that passed its check.
#[derive(Debug, Clone, Copy)]
pub struct FunctionCallAssert<'a> {
    at: EventAssert<'a>,
    call: &'a FunctionCall,
}

impl<'a> FunctionCallAssert<'a> {
    /// The raw event.
    pub fn event(&self) -> &'a RunEvent {
        self.at.event()
    }

    /// The call.
    pub fn call(&self) -> &'a FunctionCall {
        self.call
    }

    /// The decoded arguments (`Value::Null` when they are not valid JSON).
    pub fn args(&self) -> Value {
        serde_json::from_str(&self.call.arguments).unwrap_or(Value::Null)
    }

    /// Checks that the decoded arguments contain `args` (see [`json_subset`]).
    pub fn with_args(self, args: Value) -> Result<Self, ExpectationError> {
        self.at
            .check(&EventMatcher::function_call(self.call.name.clone(), args))?;
        Ok(self)
    }
}

/// A tool-output event that passed its check.
#[derive(Debug, Clone, Copy)]
pub struct FunctionCallOutputAssert<'a> {
    at: EventAssert<'a>,
    output: &'a FunctionCallOutput,
}

impl<'a> FunctionCallOutputAssert<'a> {
    /// The raw event.
    pub fn event(&self) -> &'a RunEvent {
        self.at.event()
    }

    /// The output item.
    pub fn output(&self) -> &'a FunctionCallOutput {
        self.output
    }

    /// Checks whether the output reports an error.
    pub fn is_error(self, is_error: bool) -> Result<Self, ExpectationError> {
        self.at.check(&EventMatcher::FunctionCallOutput {
            output: None,
            contains: None,
            is_error: Some(is_error),
        })?;
        Ok(self)
    }
}

/// A handoff event that passed its check.
#[derive(Debug, Clone, Copy)]
pub struct AgentHandoffAssert<'a> {
    at: EventAssert<'a>,
    handoff: &'a AgentHandoff,
    new_agent_type: &'static str,
}

impl<'a> AgentHandoffAssert<'a> {
    /// The raw event.
    pub fn event(&self) -> &'a RunEvent {
        self.at.event()
    }

    /// The handoff item.
    pub fn handoff(&self) -> &'a AgentHandoff {
        self.handoff
    }

    /// The Rust type name of the new agent.
    pub fn new_agent_type(&self) -> &'static str {
        self.new_agent_type
    }

    /// Checks the id of the agent that had control before.
    pub fn from_agent(self, agent_id: &str) -> Result<Self, ExpectationError> {
        match self.handoff.old_agent_id.as_deref() {
            Some(old) if old == agent_id => Ok(self),
            old => Err(self.at.error(format!(
                "Handoff {} is not from `{agent_id}`: it is from {}.",
                self.at.index,
                old.map_or_else(|| "no agent".to_owned(), |o| format!("`{o}`"))
            ))),
        }
    }
}
