//! What the prebuilt collection tasks share: [`WorkflowInstructions`], the
//! update → confirm → decline pattern, the [`InvalidInput`] error of the normalisers, and the
//! spoken-form helpers.
//!
//! Every prebuilt task follows one pattern:
//!
//! 1. `on_enter` asks for the datum with a one-off instruction (the task's `prompt()`);
//! 2. an `update_*` tool validates and normalises what the caller said; a problem goes back to
//!    the model as a plain instruction it can act on (a [`ToolError`]);
//! 3. without confirmation the update completes the task and returns nothing (no extra reply);
//!    with confirmation it binds the captured value to the `confirm_*` tool and returns
//!    instructions to read the value back;
//! 4. `confirm_*` completes the task with the value the caller heard; called in the same turn
//!    as the update that captured it (the caller has not heard the read-back yet) it returns a
//!    message asking to read the value back and confirm again;
//! 5. `decline_*` (hidden from the greeting, [`ToolFlags::IGNORE_ON_ENTER`]) fails the task with
//!    [`TaskError::Failed`]`("couldn't get the …: <reason>")`.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::session::{RunContext, TaskError};
use crate::tools::{FunctionTool, ToolError, ToolFlags};

/// The persona used when [`WorkflowInstructions::persona`] is not set.
pub const DEFAULT_PERSONA: &str = "You are a voice assistant collecting one piece of \
information from the caller. Speak naturally and briefly, one question at a time, without \
lists or markdown. Stay polite; never guess a value the caller did not give.";

/// How a prebuilt task's system instructions are customised: who the agent is (`persona`,
/// replacing [`DEFAULT_PERSONA`]) and anything to add after the task's own instructions
/// (`extra`). The task's own instructions (what to collect, which tools to call) always stay.
///
/// ```
/// use switchboard::workflows::{GetEmailTask, WorkflowInstructions};
/// use switchboard::Agent;
///
/// let task = GetEmailTask::default().with_instructions(
///     WorkflowInstructions::new()
///         .with_persona("You are Riley, the receptionist of Riverside Clinic.")
///         .with_extra("The clinic only writes to the address for appointment reminders."),
/// );
/// let instructions = Agent::<()>::instructions(&task);
/// assert!(instructions.starts_with("You are Riley"));
/// assert!(instructions.contains("update_email_address"));
/// assert!(instructions.ends_with("appointment reminders."));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowInstructions {
    /// Who the agent is and how it speaks; [`DEFAULT_PERSONA`] when `None` or blank.
    pub persona: Option<String>,
    /// Added after the task's own instructions.
    pub extra: Option<String>,
}

impl WorkflowInstructions {
    /// The default persona and nothing extra.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the persona.
    pub fn with_persona(mut self, persona: impl Into<String>) -> Self {
        self.persona = Some(persona.into());
        self
    }

    /// Adds instructions after the task's own.
    pub fn with_extra(mut self, extra: impl Into<String>) -> Self {
        self.extra = Some(extra.into());
        self
    }

    /// The full instructions of a task whose own instructions are `task`: persona, task, extra,
    /// separated by blank lines.
    ///
    /// ```
    /// use switchboard::workflows::WorkflowInstructions;
    /// let text = WorkflowInstructions::new().with_persona("P.").with_extra("E.").compose("T.");
    /// assert_eq!(text, "P.\n\nT.\n\nE.");
    /// ```
    pub fn compose(&self, task: &str) -> String {
        let persona = self
            .persona
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_PERSONA);
        let mut text = format!("{persona}\n\n{}", task.trim());
        if let Some(extra) = self
            .extra
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            text.push_str("\n\n");
            text.push_str(extra);
        }
        text
    }
}

/// A value a caller gave could not be used; the message says why, in words the model can pass
/// on or act on (it never repeats a full card number).
///
/// ```
/// use switchboard::workflows::phone::normalize_phone_number;
/// let error = normalize_phone_number("12").unwrap_err();
/// assert!(error.to_string().contains("7 to 15 digits"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

impl InvalidInput {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        InvalidInput(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl From<InvalidInput> for ToolError {
    fn from(e: InvalidInput) -> Self {
        ToolError::new(e.0)
    }
}

/// Options every prebuilt task has.
#[derive(Debug, Clone, Default)]
pub(crate) struct CaptureOptions {
    pub require_confirmation: Option<bool>,
    pub require_explicit_ask: bool,
    pub instructions: WorkflowInstructions,
    pub prompt: Option<String>,
}

impl CaptureOptions {
    /// Whether values are read back and confirmed. `None` means "decide by the modality of the
    /// turn" (voice: yes, text: no); sessions have no voice modality yet, so it means no.
    pub fn confirmation_required(&self) -> bool {
        self.require_confirmation.unwrap_or(false)
    }

    /// Flags of the `update_*` tool.
    pub fn update_flags(&self) -> ToolFlags {
        if self.require_explicit_ask {
            ToolFlags::IGNORE_ON_ENTER
        } else {
            ToolFlags::NONE
        }
    }

    /// The prompt given on enter: the custom one or `default`.
    pub fn prompt_or(&self, default: String) -> String {
        self.prompt
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .unwrap_or(default)
    }
}

/// The builder methods every prebuilt task has (they set `self.options`).
macro_rules! capture_builders {
    ($task:ty) => {
        impl $task {
            /// Whether the captured value is read back and confirmed before the task completes.
            /// `Some(true)`: always; `Some(false)`: never; `None` (the default): by the modality
            /// of the turn (voice turns yes, text turns no). Sessions carry no voice modality
            /// yet, so `None` currently means *not required*.
            pub fn require_confirmation(mut self, required: impl Into<Option<bool>>) -> Self {
                self.options.require_confirmation = required.into();
                self
            }

            /// Hides the `update_*` tool from the reply generated on enter, so the model must
            /// ask before it records anything (default false).
            pub fn require_explicit_ask(mut self, explicit: bool) -> Self {
                self.options.require_explicit_ask = explicit;
                self
            }

            /// Customises the persona and adds instructions.
            pub fn with_instructions(
                mut self,
                instructions: $crate::workflows::WorkflowInstructions,
            ) -> Self {
                self.options.instructions = instructions;
                self
            }

            /// Replaces the one-off instruction given to the model on enter (see `prompt`).
            pub fn with_prompt(mut self, prompt: impl Into<String>) -> Self {
                self.options.prompt = Some(prompt.into());
                self
            }
        }
    };
}
pub(crate) use capture_builders;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A value waiting for the caller's confirmation, and the turn that captured it.
struct Pending<T> {
    value: T,
    shown: String,
    speech_id: Option<String>,
}

/// The state behind one task's `update_*` / `confirm_*` pair: the captured value the confirm
/// tool is bound to. Each run of a task has its own.
pub(crate) struct Capture<T> {
    what: &'static str,
    update_tool: &'static str,
    confirm_tool: &'static str,
    pending: Mutex<Option<Pending<T>>>,
}

impl<T: Clone + Send + 'static> Capture<T> {
    pub fn new(what: &'static str, update_tool: &'static str, confirm_tool: &'static str) -> Self {
        Capture {
            what,
            update_tool,
            confirm_tool,
            pending: Mutex::new(None),
        }
    }

    /// A fresh capture with the same names (for a new run of the task).
    pub fn fresh(&self) -> Arc<Self> {
        Arc::new(Self::new(self.what, self.update_tool, self.confirm_tool))
    }

    pub fn what(&self) -> &'static str {
        self.what
    }

    pub fn confirm_tool(&self) -> &'static str {
        self.confirm_tool
    }

    /// Records a validated value from a tool. Without confirmation the task completes now and
    /// the tool has nothing to say (`None`); with it, the value is bound to the confirm tool and
    /// `read_back` is what the tool returns.
    pub async fn record<U: Send + 'static>(
        &self,
        ctx: &RunContext<U>,
        value: T,
        shown: String,
        confirm: bool,
        read_back: String,
    ) -> Result<Option<String>, ToolError> {
        if !confirm {
            *lock(&self.pending) = None;
            ctx.complete(value).await?;
            return Ok(None);
        }
        self.bind(value, shown, Some(ctx.speech_handle().id().to_owned()));
        Ok(Some(read_back))
    }

    /// Binds `value` to the confirm tool; `speech_id` is the turn that captured it (`None` when
    /// it came from outside a model turn, e.g. the keypad).
    pub fn bind(&self, value: T, shown: String, speech_id: Option<String>) {
        *lock(&self.pending) = Some(Pending {
            value,
            shown,
            speech_id,
        });
    }

    /// Forgets the bound value.
    pub fn clear(&self) {
        *lock(&self.pending) = None;
    }

    /// The confirm tool's body: completes with the bound value, unless nothing is bound or the
    /// value was captured in this very turn (the caller has not heard it yet).
    pub async fn confirm<U: Send + 'static>(&self, ctx: &RunContext<U>) -> Result<(), ToolError> {
        self.confirm_with(ctx, |_| Ok(())).await
    }

    /// [`confirm`](Capture::confirm), completing only when `check` accepts the bound value; a
    /// refused value is forgotten (it must be captured again).
    pub async fn confirm_with<U: Send + 'static>(
        &self,
        ctx: &RunContext<U>,
        check: impl FnOnce(&T) -> Result<(), ToolError>,
    ) -> Result<(), ToolError> {
        let value = {
            let pending = lock(&self.pending);
            match pending.as_ref() {
                None => {
                    return Err(ToolError::new(format!(
                        "There is no {} to confirm yet. Call `{}` with what the caller said first.",
                        self.what, self.update_tool
                    )));
                }
                Some(p) if p.speech_id.as_deref() == Some(ctx.speech_handle().id()) => {
                    return Err(ToolError::new(format!(
                        "The {what} was just changed to {shown} and the caller has not confirmed \
                         it yet. Read it back, ask the caller to confirm it, and call `{confirm}` \
                         only after they do.",
                        what = self.what,
                        shown = p.shown,
                        confirm = self.confirm_tool
                    )));
                }
                Some(p) => p.value.clone(),
            }
        };
        if let Err(refused) = check(&value) {
            self.clear();
            return Err(refused);
        }
        ctx.complete(value).await?;
        Ok(())
    }
}

/// Arguments of tools that take none.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub(crate) struct NoArgs {}

/// Arguments of the `decline_*` tools.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub(crate) struct DeclineArgs {
    /// Why the caller cannot or will not give it, in a few words.
    #[serde(default)]
    reason: String,
}

/// The message a declined task fails with.
pub(crate) fn declined_message(what: &str, reason: &str) -> String {
    let reason = reason.trim();
    let reason = if reason.is_empty() {
        "no reason given"
    } else {
        reason
    };
    format!("couldn't get the {what}: {reason}")
}

/// A `decline_*` tool: fails the task with `couldn't get the <what>: <reason>`. Hidden from
/// the reply generated on enter.
pub(crate) fn decline_tool<U: Send + 'static>(
    name: &'static str,
    what: &'static str,
) -> FunctionTool<U> {
    FunctionTool::new(
        name,
        format!(
            "Call when the caller cannot or will not give their {what}, or wants to stop. \
             Ends this step without it."
        ),
        move |ctx: RunContext<U>, args: DeclineArgs| async move {
            ctx.fail(TaskError::Failed(declined_message(what, &args.reason)))
                .await?;
            Ok::<(), ToolError>(())
        },
    )
    .with_flags(ToolFlags::IGNORE_ON_ENTER)
}

/// A `confirm_*` tool bound to `capture`. Hidden from the reply generated on enter.
pub(crate) fn confirm_tool<U: Send + 'static, T: Clone + Send + Sync + 'static>(
    capture: Arc<Capture<T>>,
) -> FunctionTool<U> {
    let description = format!(
        "Call after you read the {} back and the caller said it is right.",
        capture.what()
    );
    FunctionTool::new(
        capture.confirm_tool(),
        description,
        move |ctx: RunContext<U>, _args: NoArgs| {
            let capture = capture.clone();
            async move { capture.confirm(&ctx).await }
        },
    )
    .with_flags(ToolFlags::IGNORE_ON_ENTER)
}

/// Words models and transcribers use for "no value".
pub(crate) fn is_placeholder(value: &str) -> bool {
    let v = value
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '<' || c == '>')
        .trim()
        .to_lowercase();
    matches!(
        v.as_str(),
        "" | "null"
            | "none"
            | "nil"
            | "unknown"
            | "n/a"
            | "na"
            | "n.a."
            | "undefined"
            | "not provided"
            | "not given"
            | "not applicable"
            | "missing"
            | "empty"
            | "-"
            | "?"
    )
}

/// The digit a spoken word stands for.
pub(crate) fn spoken_digit(word: &str) -> Option<char> {
    Some(match word {
        "zero" | "oh" | "o" => '0',
        "one" => '1',
        "two" => '2',
        "three" => '3',
        "four" => '4',
        "five" => '5',
        "six" => '6',
        "seven" => '7',
        "eight" => '8',
        "nine" | "niner" => '9',
        _ => return None,
    })
}

/// Reads a sequence of digits given as digits, spoken words ("five five five", "double
/// seven") or a mix, ignoring spaces, dashes, dots, commas, slashes and parentheses. `symbol`
/// maps the extra words or characters a caller may use (`plus`, `star`, ...); returns the
/// offending token when something is not a digit.
pub(crate) fn read_digits(
    input: &str,
    symbol: impl Fn(&str) -> Option<char>,
) -> Result<String, String> {
    let lowered = input.to_lowercase();
    let spaced: String = lowered
        .chars()
        .map(|c| match c {
            '-' | '.' | ',' | '(' | ')' | '/' | '_' | '–' | '—' => ' ',
            other => other,
        })
        .collect();
    let mut out = String::new();
    let mut repeat = 1usize;
    for token in spaced.split_whitespace() {
        let count = match token {
            "double" => Some(2),
            "triple" => Some(3),
            _ => None,
        };
        if let Some(count) = count {
            repeat = count;
            continue;
        }
        let chars: String = if let Some(d) = spoken_digit(token).or_else(|| symbol(token)) {
            d.to_string()
        } else if token
            .chars()
            .all(|c| c.is_ascii_digit() || symbol(c.encode_utf8(&mut [0; 4])).is_some())
        {
            token
                .chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        c
                    } else {
                        symbol(c.encode_utf8(&mut [0; 4])).unwrap_or(c)
                    }
                })
                .collect()
        } else {
            return Err(token.to_owned());
        };
        let mut chars = chars.chars();
        if let Some(first) = chars.next() {
            for _ in 0..repeat {
                out.push(first);
            }
        }
        out.extend(chars);
        repeat = 1;
    }
    if repeat > 1 {
        return Err(if repeat == 2 { "double" } else { "triple" }.to_owned());
    }
    Ok(out)
}

/// `"1234"` → `"1 2 3 4"`, for read-backs.
pub(crate) fn spaced(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 2);
    for (i, c) in value.chars().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_from_speech() {
        let none = |_: &str| None;
        let plus = |w: &str| matches!(w, "plus" | "+").then_some('+');
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("555 123 4567", Ok("5551234567")),
            ("five five five", Ok("555")),
            ("double seven oh one", Ok("7701")),
            ("triple 9", Ok("999")),
            ("(555) 123-45.67", Ok("5551234567")),
            ("555 one two", Ok("55512")),
            ("12ab", Err("12ab")),
            ("one double", Err("double")),
        ];
        for (input, expected) in cases {
            let got = read_digits(input, none);
            assert_eq!(got.as_deref().map_err(String::as_str), *expected, "{input}");
        }
        assert_eq!(read_digits("plus 1 555", plus).as_deref(), Ok("+1555"));
        assert_eq!(read_digits("+1 555", plus).as_deref(), Ok("+1555"));
    }

    #[test]
    fn placeholders() {
        for p in ["null", "N/A", " unknown ", "\"none\"", ""] {
            assert!(is_placeholder(p), "{p}");
        }
        for p in ["Ann", "Null Jr"] {
            assert!(!is_placeholder(p), "{p}");
        }
    }

    #[test]
    fn composed_instructions() {
        let text = WorkflowInstructions::new().compose("Task.");
        assert!(text.starts_with(DEFAULT_PERSONA));
        assert!(text.ends_with("Task."));
        let blank = WorkflowInstructions::new()
            .with_persona("  ")
            .with_extra(" ");
        assert_eq!(blank.compose("T"), format!("{DEFAULT_PERSONA}\n\nT"));
    }
}
