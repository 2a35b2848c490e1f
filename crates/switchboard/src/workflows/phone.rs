//! [`GetPhoneNumberTask`]: collects a phone number, digits or spoken ("five five five").

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::common::{
    Capture, CaptureOptions, InvalidInput, capture_builders, confirm_tool, decline_tool,
    read_digits, spaced,
};
use crate::session::{Agent, AgentContext, AgentTask, RunContext};
use crate::tools::FunctionTool;

/// What [`GetPhoneNumberTask`] collects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetPhoneNumberResult {
    /// Digits only, with a leading `+` when the caller gave a country code: `+15551234567`.
    pub phone_number: String,
}

/// Asks the caller for their phone number.
///
/// Tools: `update_phone_number(phone_number)` (checked with [`normalize_phone_number`]),
/// `confirm_phone_number()` (only when confirmation is required),
/// `decline_phone_number_capture(reason)`. Output: [`GetPhoneNumberResult`].
///
/// ```
/// use switchboard::workflows::GetPhoneNumberTask;
/// let task = GetPhoneNumberTask::default().require_confirmation(true);
/// assert_eq!(task.prompt(), "Ask the caller for their phone number.");
/// // let phone = ctx.run_task(task).await?.phone_number;
/// ```
pub struct GetPhoneNumberTask {
    options: CaptureOptions,
    capture: Arc<Capture<GetPhoneNumberResult>>,
}

impl Default for GetPhoneNumberTask {
    fn default() -> Self {
        GetPhoneNumberTask {
            options: CaptureOptions::default(),
            capture: Arc::new(Capture::new(
                "phone number",
                "update_phone_number",
                "confirm_phone_number",
            )),
        }
    }
}

/// A copy with the same options and no captured value.
impl Clone for GetPhoneNumberTask {
    fn clone(&self) -> Self {
        GetPhoneNumberTask {
            options: self.options.clone(),
            capture: self.capture.fresh(),
        }
    }
}

capture_builders!(GetPhoneNumberTask);

impl GetPhoneNumberTask {
    /// A task with the default options (same as `default()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The one-off instruction `on_enter` gives the model (scripted models key on it).
    pub fn prompt(&self) -> String {
        self.options
            .prompt_or("Ask the caller for their phone number.".to_owned())
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct PhoneArgs {
    /// The phone number as the caller said it: digits ("555 123 4567", "+44 20 7946 0958") or
    /// words ("five five five, one two three ...").
    phone_number: String,
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for GetPhoneNumberTask {
    fn instructions(&self) -> String {
        let mut task = String::from(
            "Your only job now is to get the caller's phone number. Call \
             `update_phone_number` with the number as soon as they give it; include the country \
             code if they say one. If the tool says the number is not valid, tell the caller \
             and ask again. If the caller cannot or will not give a number, call \
             `decline_phone_number_capture`.",
        );
        if self.options.confirmation_required() {
            task.push_str(
                " After recording it, read the number back digit by digit and call \
                 `confirm_phone_number` only once the caller says it is right; if they correct \
                 it, call `update_phone_number` again.",
            );
        }
        self.options.instructions.compose(&task)
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<U>> {
        let this = self.clone();
        let mut tools = vec![
            FunctionTool::new(
                "update_phone_number",
                "Record the caller's phone number (call again if they correct it).",
                move |ctx: RunContext<U>, args: PhoneArgs| {
                    let this = this.clone();
                    async move {
                        let phone = normalize_phone_number(&args.phone_number)?;
                        let read_back = format!(
                            "The phone number is now {phone}. Read it back digit by digit ({}) \
                             and ask the caller to confirm it. Do not call \
                             `confirm_phone_number` until they do.",
                            spaced(&phone)
                        );
                        let result = GetPhoneNumberResult {
                            phone_number: phone.clone(),
                        };
                        this.capture
                            .record(
                                &ctx,
                                result,
                                phone,
                                this.options.confirmation_required(),
                                read_back,
                            )
                            .await
                    }
                },
            )
            .with_flags(self.options.update_flags()),
            decline_tool("decline_phone_number_capture", "phone number"),
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

impl<U: Send + 'static> AgentTask<U> for GetPhoneNumberTask {
    type Output = GetPhoneNumberResult;
}

/// True for `^\+?[1-9]\d{6,14}$`: an optional `+`, then 7 to 15 digits, the first not 0.
///
/// ```
/// use switchboard::workflows::phone::is_valid_phone_number;
/// assert!(is_valid_phone_number("+15551234567"));
/// assert!(!is_valid_phone_number("0201234567"));
/// ```
pub fn is_valid_phone_number(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    let bytes = digits.as_bytes();
    (7..=15).contains(&bytes.len())
        && bytes.iter().all(u8::is_ascii_digit)
        && bytes.first().is_some_and(|b| *b != b'0')
}

/// Turns a phone number as a caller gave it into `+?digits` and validates it: spaces, dashes,
/// dots and parentheses are dropped; spoken digits ("five", "oh", "double seven") and "plus"
/// are read; the result must match `^\+?[1-9]\d{6,14}$` ([`is_valid_phone_number`]).
///
/// ```
/// use switchboard::workflows::phone::normalize_phone_number;
/// assert_eq!(normalize_phone_number("(555) 123-4567").unwrap(), "5551234567");
/// assert_eq!(normalize_phone_number("plus one five five five 123 4567").unwrap(), "+15551234567");
/// assert!(normalize_phone_number("555 12").is_err());
/// ```
pub fn normalize_phone_number(input: &str) -> Result<String, InvalidInput> {
    let read = read_digits(input, |word| matches!(word, "plus" | "+").then_some('+')).map_err(
        |token| {
            InvalidInput::new(format!(
                "\"{}\" is not a phone number: \"{token}\" is not a digit. Ask the caller to say \
             the number again.",
                input.trim()
            ))
        },
    )?;
    if read.is_empty() {
        return Err(InvalidInput::new(
            "No phone number was given. Ask the caller for it.",
        ));
    }
    if read.rfind('+').is_some_and(|i| i > 0) {
        return Err(InvalidInput::new(format!(
            "\"{}\" is not a phone number: a + can only come first, before the country code.",
            input.trim()
        )));
    }
    if !is_valid_phone_number(&read) {
        let digits = read.trim_start_matches('+');
        let why = if digits.starts_with('0') {
            "it must not start with 0 (leave out the trunk 0, or give the country code with +)"
                .to_owned()
        } else {
            format!(
                "it has {} digits; a phone number has 7 to 15 digits",
                digits.len()
            )
        };
        return Err(InvalidInput::new(format!(
            "\"{}\" is not a valid phone number: {why}. Ask the caller to say it again.",
            input.trim()
        )));
    }
    Ok(read)
}
