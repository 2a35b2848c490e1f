//! [`GetEmailTask`]: collects an email address, understanding spoken forms
//! ("john dot smith at example dot com", spelled letters, "underscore", "dash").

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::common::{
    Capture, CaptureOptions, InvalidInput, capture_builders, confirm_tool, decline_tool, spaced,
};
use crate::session::{Agent, AgentContext, AgentTask, RunContext};
use crate::tools::FunctionTool;

/// What [`GetEmailTask`] collects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetEmailResult {
    /// The address, normalised (lower case, spoken forms resolved), e.g. `jane.doe@example.com`.
    pub email_address: String,
}

/// Asks the caller for their email address.
///
/// Tools: `update_email_address(email)` (normalises spoken forms with
/// [`normalize_email_address`], then validates), `confirm_email_address()` (only when
/// confirmation is required), `decline_email_capture(reason)`. Output: [`GetEmailResult`].
///
/// ```
/// use switchboard::workflows::{GetEmailTask, WorkflowInstructions};
/// use switchboard::{AgentTask, Agent};
///
/// let task = GetEmailTask::default()
///     .require_confirmation(true)
///     .with_instructions(WorkflowInstructions::new().with_persona("You are Riley."));
/// assert_eq!(task.prompt(), "Ask the caller for their email address.");
/// // In a tool of the calling agent:
/// // let email = ctx.run_task(task).await?.email_address;
/// # fn is_task<T: AgentTask>(_: &T) {}
/// # is_task(&task);
/// ```
pub struct GetEmailTask {
    options: CaptureOptions,
    capture: Arc<Capture<GetEmailResult>>,
}

impl Default for GetEmailTask {
    fn default() -> Self {
        GetEmailTask {
            options: CaptureOptions::default(),
            capture: Arc::new(Capture::new(
                "email address",
                "update_email_address",
                "confirm_email_address",
            )),
        }
    }
}

/// A copy with the same options and no captured value.
impl Clone for GetEmailTask {
    fn clone(&self) -> Self {
        GetEmailTask {
            options: self.options.clone(),
            capture: self.capture.fresh(),
        }
    }
}

capture_builders!(GetEmailTask);

impl GetEmailTask {
    /// A task with the default options (same as `default()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The one-off instruction `on_enter` gives the model (scripted models key on it).
    pub fn prompt(&self) -> String {
        self.options
            .prompt_or("Ask the caller for their email address.".to_owned())
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct EmailArgs {
    /// The email address as the caller said it: either written out ("jane.doe@example.com") or
    /// in the caller's words ("jane dot doe at example dot com", "j a n e").
    email: String,
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for GetEmailTask {
    fn instructions(&self) -> String {
        let mut task = String::from(
            "Your only job now is to get the caller's email address. Callers often say it \
             aloud: \"at\" means @, \"dot\" means a period, \"underscore\" means _, \"dash\" or \
             \"hyphen\" means -, and spelled letters (\"j o h n\") form one word. As soon as you \
             have an address, call `update_email_address` with it. If the tool says the address \
             is not valid, tell the caller what is wrong and ask again. If the caller cannot or \
             will not give an address, call `decline_email_capture`.",
        );
        if self.options.confirmation_required() {
            task.push_str(
                " After recording it, spell the address back and call `confirm_email_address` \
                 only once the caller says it is right; if they correct it, call \
                 `update_email_address` again.",
            );
        }
        self.options.instructions.compose(&task)
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<U>> {
        let this = self.clone();
        let mut tools = vec![
            FunctionTool::new(
                "update_email_address",
                "Record the caller's email address (call again if they correct it).",
                move |ctx: RunContext<U>, args: EmailArgs| {
                    let this = this.clone();
                    async move {
                        let email = normalize_email_address(&args.email)?;
                        let read_back = format!(
                            "The email address is now {email}. Spell it back to the caller \
                             ({}) and ask them to confirm it. Do not call \
                             `confirm_email_address` until they do.",
                            spaced(&email)
                        );
                        let result = GetEmailResult {
                            email_address: email.clone(),
                        };
                        this.capture
                            .record(
                                &ctx,
                                result,
                                email,
                                this.options.confirmation_required(),
                                read_back,
                            )
                            .await
                    }
                },
            )
            .with_flags(self.options.update_flags()),
            decline_tool("decline_email_capture", "email address"),
        ];
        if self.options.confirmation_required() {
            tools.push(confirm_tool(self.capture.clone()));
        }
        tools
    }

    async fn on_enter(&self, ctx: AgentContext<U>) -> crate::Result<()> {
        ctx.session().generate_reply(self.prompt()).await?;
        Ok(())
    }
}

impl<U: Send + 'static> AgentTask<U> for GetEmailTask {
    type Output = GetEmailResult;
}

/// Spoken words and phrases, and what they stand for in an address.
const SPOKEN: &[(&[&str], &str)] = &[
    (&["at", "sign"], "@"),
    (&["at", "symbol"], "@"),
    (&["at", "the", "rate"], "@"),
    (&["at"], "@"),
    (&["full", "stop"], "."),
    (&["dot"], "."),
    (&["period"], "."),
    (&["point"], "."),
    (&["under", "score"], "_"),
    (&["underscore"], "_"),
    (&["underline"], "_"),
    (&["dash"], "-"),
    (&["hyphen"], "-"),
    (&["minus"], "-"),
    (&["plus"], "+"),
];

/// Turns an email address as a caller gave it into its written form and validates it.
///
/// Written forms are trimmed and lower-cased (a `mailto:` prefix, surrounding `<>` or quotes and
/// a final sentence period are dropped). An input with spaces is read as speech: "at" → `@`,
/// "dot"/"period"/"point"/"full stop" → `.`, "underscore" → `_`, "dash"/"hyphen" → `-`,
/// "plus" → `+`, and everything else is glued together, so spelled letters ("j o h n") form
/// one word. The result must pass [`validate_email_address`].
///
/// ```
/// use switchboard::workflows::email::normalize_email_address;
/// assert_eq!(
///     normalize_email_address("john dot smith at example dot com").unwrap(),
///     "john.smith@example.com"
/// );
/// assert_eq!(normalize_email_address("J o h n underscore D at x dash y dot io").unwrap(), "john_d@x-y.io");
/// assert!(normalize_email_address("john at example").is_err());
/// ```
pub fn normalize_email_address(input: &str) -> Result<String, InvalidInput> {
    let mut text = input.trim().to_lowercase();
    if let Some(rest) = text.strip_prefix("mailto:") {
        text = rest.trim().to_owned();
    }
    let text = text
        .trim_matches(|c: char| matches!(c, '<' | '>' | '"' | '\'' | '`'))
        .trim()
        .trim_end_matches(['.', ',', ';', '!', '?'])
        .trim();
    let written = if text.contains(char::is_whitespace) {
        from_speech(text)
    } else {
        text.to_owned()
    };
    validate_email_address(&written)?;
    Ok(written)
}

fn from_speech(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::new();
    let mut i = 0;
    'words: while i < words.len() {
        for (phrase, symbol) in SPOKEN {
            if words[i..].starts_with(phrase) {
                out.push_str(symbol);
                i += phrase.len();
                continue 'words;
            }
        }
        out.push_str(words[i]);
        i += 1;
    }
    out
}

const LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-.";

/// Checks a written email address: one `@`; a local part of 1 to 64 letters, digits or
/// `!#$%&'*+/=?^_`{|}~-.` with no leading, trailing or doubled dot; a domain of at least two
/// dot-separated labels of 1 to 63 letters, digits or inner hyphens, ending in an alphabetic
/// top-level domain of two letters or more (or an `xn--` one); 254 characters at most.
///
/// ```
/// use switchboard::workflows::email::validate_email_address;
/// assert!(validate_email_address("jane.doe+clinic@mail.example.co.uk").is_ok());
/// assert!(validate_email_address("jane..doe@example.com").is_err());
/// assert!(validate_email_address("jane@localhost").is_err());
/// ```
pub fn validate_email_address(email: &str) -> Result<(), InvalidInput> {
    let invalid = |why: &str| {
        Err(InvalidInput::new(format!(
            "\"{email}\" is not a valid email address: {why}. Ask the caller to say it again, \
             spelling the unclear parts."
        )))
    };
    if email.is_empty() {
        return Err(InvalidInput::new(
            "The email address is empty. Ask the caller for it.",
        ));
    }
    if email.chars().count() > 254 {
        return invalid("it is too long");
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return if email.contains('@') {
            invalid("it has more than one @")
        } else {
            invalid("it has no @ (\"at\")")
        };
    };
    if local.is_empty() {
        return invalid("nothing comes before the @");
    }
    if local.len() > 64 {
        return invalid("the part before the @ is too long");
    }
    if let Some(c) = local
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !LOCAL_SPECIALS.contains(*c))
    {
        return invalid(&format!("it contains the character {c:?}"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return invalid("the dots before the @ are misplaced");
    }
    if domain.is_empty() {
        return invalid("nothing comes after the @");
    }
    if domain.len() > 253 {
        return invalid("the domain is too long");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return invalid("the domain needs a dot, like example.com");
    }
    for label in &labels {
        if label.is_empty() {
            return invalid("the dots after the @ are misplaced");
        }
        if label.len() > 63 {
            return invalid("a part of the domain is too long");
        }
        if let Some(c) = label
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
        {
            return invalid(&format!("the domain contains the character {c:?}"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return invalid("a part of the domain starts or ends with a dash");
        }
    }
    let tld = labels[labels.len() - 1];
    let tld_ok = (tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
        || (tld.starts_with("xn--") && tld.len() > 4);
    if !tld_ok {
        return invalid("it does not end in a real domain ending like .com");
    }
    Ok(())
}
