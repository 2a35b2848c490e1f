//! [`GetNameTask`]: collects the caller's name (first, middle and/or last).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::common::{
    Capture, CaptureOptions, InvalidInput, capture_builders, confirm_tool, decline_tool,
    is_placeholder,
};
use crate::session::{Agent, AgentContext, AgentTask, RunContext};
use crate::tools::FunctionTool;

/// What [`GetNameTask`] collects. Parts that were not asked for are kept when the caller gave
/// them anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetNameResult {
    /// The first (given) name.
    pub first_name: Option<String>,
    /// The middle name(s).
    pub middle_name: Option<String>,
    /// The last (family) name.
    pub last_name: Option<String>,
}

impl GetNameResult {
    /// The parts that are present, separated by spaces (`"Jane Q Doe"`).
    pub fn full_name(&self) -> String {
        [&self.first_name, &self.middle_name, &self.last_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for GetNameResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full_name())
    }
}

/// Which parts of a name are required. At least one always is: a value with none set acts as
/// "first name only".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameParts {
    /// The first name is required.
    pub first: bool,
    /// The middle name is required.
    pub middle: bool,
    /// The last name is required.
    pub last: bool,
}

impl Default for NameParts {
    fn default() -> Self {
        NameParts::FIRST
    }
}

impl NameParts {
    /// The first name only (the default).
    pub const FIRST: NameParts = NameParts {
        first: true,
        middle: false,
        last: false,
    };
    /// First and last name.
    pub const FIRST_LAST: NameParts = NameParts {
        first: true,
        middle: false,
        last: true,
    };
    /// First, middle and last name.
    pub const FULL: NameParts = NameParts {
        first: true,
        middle: true,
        last: true,
    };

    /// These parts, or the first name when none is set.
    pub fn effective(self) -> NameParts {
        if self.first || self.middle || self.last {
            self
        } else {
            NameParts::FIRST
        }
    }

    /// "first name", "first and last name", ...
    pub fn describe(self) -> String {
        let p = self.effective();
        let names: Vec<&str> = [(p.first, "first"), (p.middle, "middle"), (p.last, "last")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| n)
            .collect();
        match names.as_slice() {
            [one] => format!("{one} name"),
            [a, b] => format!("{a} and {b} name"),
            _ => "first, middle and last name".to_owned(),
        }
    }
}

/// Asks the caller for their name.
///
/// Options: [`GetNameTask::with_parts`] (which parts are required; default the first name
/// only), [`GetNameTask::verify_spelling`] (the read-back asks the caller to check the
/// spelling), plus the common ones. Tools: `update_name(first_name, middle_name, last_name)`
/// (checked with [`validate_name`]), `confirm_name()` (only when confirmation is required),
/// `decline_name_capture(reason)`. Output: [`GetNameResult`].
///
/// When a name was given earlier in the conversation the model is told to ask the caller to
/// confirm it rather than ask afresh.
///
/// ```
/// use switchboard::workflows::{GetNameTask, NameParts};
/// let task = GetNameTask::default().with_parts(NameParts::FIRST_LAST);
/// assert_eq!(task.prompt(), "Ask the caller for their first and last name.");
/// // let name = ctx.run_task(task).await?;  // GetNameResult
/// ```
pub struct GetNameTask {
    parts: NameParts,
    verify_spelling: bool,
    options: CaptureOptions,
    capture: Arc<Capture<GetNameResult>>,
    /// Adds the shared tools of the credit-card collection.
    pub(crate) card_tools: bool,
}

impl Default for GetNameTask {
    fn default() -> Self {
        GetNameTask {
            parts: NameParts::FIRST,
            verify_spelling: false,
            options: CaptureOptions::default(),
            capture: Arc::new(Capture::new("name", "update_name", "confirm_name")),
            card_tools: false,
        }
    }
}

/// A copy with the same options and no captured value.
impl Clone for GetNameTask {
    fn clone(&self) -> Self {
        GetNameTask {
            parts: self.parts,
            verify_spelling: self.verify_spelling,
            options: self.options.clone(),
            capture: self.capture.fresh(),
            card_tools: self.card_tools,
        }
    }
}

capture_builders!(GetNameTask);

impl GetNameTask {
    /// A task asking for the first name only (same as `default()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Which parts are required (at least one is; none set means the first name).
    pub fn with_parts(mut self, parts: NameParts) -> Self {
        self.parts = parts.effective();
        self
    }

    /// Whether the read-back asks the caller to check the spelling (default false).
    pub fn verify_spelling(mut self, verify: bool) -> Self {
        self.verify_spelling = verify;
        self
    }

    /// The required parts.
    pub fn parts(&self) -> NameParts {
        self.parts
    }

    /// The one-off instruction `on_enter` gives the model (scripted models key on it).
    pub fn prompt(&self) -> String {
        self.options.prompt_or(format!(
            "Ask the caller for their {}.",
            self.parts.describe()
        ))
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct NameArgs {
    /// The first (given) name, if the caller gave it.
    #[serde(default)]
    first_name: Option<String>,
    /// The middle name(s), if the caller gave them.
    #[serde(default)]
    middle_name: Option<String>,
    /// The last (family) name, if the caller gave it.
    #[serde(default)]
    last_name: Option<String>,
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for GetNameTask {
    fn instructions(&self) -> String {
        let mut task = format!(
            "Your only job now is to get the caller's {parts}. If they already gave it earlier in \
             the conversation, ask them to confirm it instead of asking again. Call \
             `update_name` with the parts they gave; leave out parts they did not give, never \
             invent them. If the tool says something is missing or wrong, ask for that part.",
            parts = self.parts.describe()
        );
        if !self.card_tools {
            task.push_str(
                " If the caller cannot or will not give their name, call `decline_name_capture`.",
            );
        }
        if self.options.confirmation_required() {
            task.push_str(
                " After recording it, read the name back and call `confirm_name` only once the \
                 caller says it is right; if they correct it, call `update_name` again.",
            );
        }
        if self.card_tools {
            task.push_str(super::credit_card::CARD_TOOLS_INSTRUCTIONS);
        }
        self.options.instructions.compose(&task)
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<U>> {
        let this = self.clone();
        let mut tools = vec![
            FunctionTool::new(
                "update_name",
                "Record the caller's name (call again if they correct it).",
                move |ctx: RunContext<U>, args: NameArgs| {
                    let this = this.clone();
                    async move {
                        let name = validate_name(
                            args.first_name.as_deref(),
                            args.middle_name.as_deref(),
                            args.last_name.as_deref(),
                            this.parts,
                        )?;
                        let full = name.full_name();
                        let spelling = if this.verify_spelling {
                            " letter by letter, asking the caller to check the spelling,"
                        } else {
                            ""
                        };
                        let read_back = format!(
                            "The name is now {full}. Read it back{spelling} and ask the caller to \
                             confirm it. Do not call `confirm_name` until they do."
                        );
                        this.capture
                            .record(
                                &ctx,
                                name,
                                full,
                                this.options.confirmation_required(),
                                read_back,
                            )
                            .await
                    }
                },
            )
            .with_flags(self.options.update_flags()),
        ];
        if !self.card_tools {
            tools.push(decline_tool("decline_name_capture", "name"));
        }
        if self.options.confirmation_required() {
            tools.push(confirm_tool(self.capture.clone()));
        }
        if self.card_tools {
            tools.extend(super::credit_card::card_tools());
        }
        tools
    }

    async fn on_enter(&self, ctx: AgentContext<U>) -> crate::Result<()> {
        ctx.session().generate_reply(self.prompt()).await?;
        Ok(())
    }
}

impl<U: Send + 'static> AgentTask<U> for GetNameTask {
    type Output = GetNameResult;
}

/// Cleans one part of a name: trims and collapses spaces; `None` when it is empty or a
/// placeholder ("null", "unknown", "n/a", ...). A part must contain a letter and may otherwise
/// hold only letters, spaces, hyphens, apostrophes and periods.
///
/// ```
/// use switchboard::workflows::name::normalize_name_part;
/// assert_eq!(normalize_name_part("  Mary   Ann ").unwrap().as_deref(), Some("Mary Ann"));
/// assert_eq!(normalize_name_part("unknown").unwrap(), None);
/// assert!(normalize_name_part("1234").is_err());
/// ```
pub fn normalize_name_part(value: &str) -> Result<Option<String>, InvalidInput> {
    if is_placeholder(value) {
        return Ok(None);
    }
    let collapsed = value.split_whitespace().collect::<Vec<_>>().join(" ");
    if !collapsed.chars().any(char::is_alphabetic) {
        return Err(InvalidInput::new(format!(
            "\"{collapsed}\" is not a name: it has no letters."
        )));
    }
    if let Some(c) = collapsed.chars().find(|c| {
        !(c.is_alphabetic()
            || matches!(c, ' ' | '-' | '\'' | '’' | '.')
            || ('\u{300}'..='\u{36f}').contains(c))
    }) {
        return Err(InvalidInput::new(format!(
            "\"{collapsed}\" does not look like a name: it contains {c:?}. Names have only \
             letters, spaces, hyphens, apostrophes and periods."
        )));
    }
    if collapsed.chars().count() > 100 {
        return Err(InvalidInput::new(
            "That name is too long (over 100 characters).",
        ));
    }
    Ok(Some(collapsed))
}

/// Checks a name given in parts against the required `parts` (see [`normalize_name_part`]).
/// Missing required parts give an "Incomplete name: …" error naming them.
///
/// ```
/// use switchboard::workflows::name::validate_name;
/// use switchboard::workflows::NameParts;
/// let name = validate_name(Some("Jane"), None, Some("Doe"), NameParts::FIRST_LAST).unwrap();
/// assert_eq!(name.full_name(), "Jane Doe");
/// let error = validate_name(Some("Jane"), None, Some("null"), NameParts::FIRST_LAST).unwrap_err();
/// assert!(error.to_string().starts_with("Incomplete name: the last name is missing"));
/// ```
pub fn validate_name(
    first: Option<&str>,
    middle: Option<&str>,
    last: Option<&str>,
    parts: NameParts,
) -> Result<GetNameResult, InvalidInput> {
    let parts = parts.effective();
    let clean = |value: Option<&str>, label: &str| -> Result<Option<String>, InvalidInput> {
        match value {
            None => Ok(None),
            Some(v) => normalize_name_part(v)
                .map_err(|e| InvalidInput::new(format!("Invalid {label} name: {e}"))),
        }
    };
    let result = GetNameResult {
        first_name: clean(first, "first")?,
        middle_name: clean(middle, "middle")?,
        last_name: clean(last, "last")?,
    };
    let missing: Vec<&str> = [
        (parts.first && result.first_name.is_none(), "first"),
        (parts.middle && result.middle_name.is_none(), "middle"),
        (parts.last && result.last_name.is_none(), "last"),
    ]
    .into_iter()
    .filter(|(m, _)| *m)
    .map(|(_, n)| n)
    .collect();
    match missing.as_slice() {
        [] => Ok(result),
        [one] => Err(InvalidInput::new(format!(
            "Incomplete name: the {one} name is missing. Ask the caller for it."
        ))),
        many => Err(InvalidInput::new(format!(
            "Incomplete name: the {} names are missing. Ask the caller for them.",
            many.join(" and ")
        ))),
    }
}
