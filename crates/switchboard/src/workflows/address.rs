//! [`GetAddressTask`]: collects a postal address.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::common::{
    Capture, CaptureOptions, InvalidInput, capture_builders, confirm_tool, decline_tool,
    is_placeholder,
};
use crate::session::{Agent, AgentContext, AgentTask, RunContext};
use crate::tools::FunctionTool;

/// What [`GetAddressTask`] collects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAddressResult {
    /// The address on one line, its parts separated by commas:
    /// `"12 Main Street, Apt 4, Springfield IL 62701, USA"`.
    pub address: String,
}

/// Asks the caller for their address.
///
/// Tools: `update_address(street_address, unit_number, locality, country)` (joined by
/// [`format_address`]), `confirm_address()` (only when confirmation is required),
/// `decline_address_capture(reason)`. Output: [`GetAddressResult`].
///
/// ```
/// use switchboard::workflows::GetAddressTask;
/// let task = GetAddressTask::default();
/// assert_eq!(task.prompt(), "Ask the caller for their address.");
/// // let address = ctx.run_task(task).await?.address;
/// ```
pub struct GetAddressTask {
    options: CaptureOptions,
    capture: Arc<Capture<GetAddressResult>>,
}

impl Default for GetAddressTask {
    fn default() -> Self {
        GetAddressTask {
            options: CaptureOptions::default(),
            capture: Arc::new(Capture::new("address", "update_address", "confirm_address")),
        }
    }
}

/// A copy with the same options and no captured value.
impl Clone for GetAddressTask {
    fn clone(&self) -> Self {
        GetAddressTask {
            options: self.options.clone(),
            capture: self.capture.fresh(),
        }
    }
}

capture_builders!(GetAddressTask);

impl GetAddressTask {
    /// A task with the default options (same as `default()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The one-off instruction `on_enter` gives the model (scripted models key on it).
    pub fn prompt(&self) -> String {
        self.options
            .prompt_or("Ask the caller for their address.".to_owned())
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct AddressArgs {
    /// The street number and name, e.g. "12 Main Street".
    street_address: String,
    /// The apartment, suite or unit, e.g. "Apt 4"; empty when there is none.
    #[serde(default)]
    unit_number: String,
    /// The city or town, with the state or region and postal code if given.
    locality: String,
    /// The country; empty when the caller did not say.
    #[serde(default)]
    country: String,
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for GetAddressTask {
    fn instructions(&self) -> String {
        let mut task = String::from(
            "Your only job now is to get the caller's postal address. When you have the street \
             address and the city or town, call `update_address`; add the unit and country if \
             the caller gives them. If the tool says something is missing, ask for it. If the \
             caller cannot or will not give an address, call `decline_address_capture`.",
        );
        if self.options.confirmation_required() {
            task.push_str(
                " After recording it, read the address back and call `confirm_address` only \
                 once the caller says it is right; if they correct it, call `update_address` \
                 again.",
            );
        }
        self.options.instructions.compose(&task)
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<U>> {
        let this = self.clone();
        let mut tools = vec![
            FunctionTool::new(
                "update_address",
                "Record the caller's address (call again if they correct it).",
                move |ctx: RunContext<U>, args: AddressArgs| {
                    let this = this.clone();
                    async move {
                        let address = format_address(
                            &args.street_address,
                            &args.unit_number,
                            &args.locality,
                            &args.country,
                        )?;
                        let read_back = format!(
                            "The address is now {address}. Read it back and ask the caller to \
                             confirm it. Do not call `confirm_address` until they do."
                        );
                        let result = GetAddressResult {
                            address: address.clone(),
                        };
                        this.capture
                            .record(
                                &ctx,
                                result,
                                address,
                                this.options.confirmation_required(),
                                read_back,
                            )
                            .await
                    }
                },
            )
            .with_flags(self.options.update_flags()),
            decline_tool("decline_address_capture", "address"),
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

impl<U: Send + 'static> AgentTask<U> for GetAddressTask {
    type Output = GetAddressResult;
}

/// Joins the non-empty parts of an address with `", "` (the reference joins with spaces;
/// commas keep the unit apart from the street when read back). Each part is trimmed, inner
/// spaces are collapsed, placeholders ("n/a", "none", ...) count as empty. The street address
/// and the locality are required and must contain a letter or digit.
///
/// ```
/// use switchboard::workflows::address::format_address;
/// assert_eq!(
///     format_address("12 Main St", "n/a", " Springfield  IL ", "USA").unwrap(),
///     "12 Main St, Springfield IL, USA"
/// );
/// assert!(format_address("12 Main St", "", "", "").is_err());
/// ```
pub fn format_address(
    street_address: &str,
    unit_number: &str,
    locality: &str,
    country: &str,
) -> Result<String, InvalidInput> {
    let clean = |part: &str| -> String {
        if is_placeholder(part) {
            String::new()
        } else {
            part.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    };
    let street = clean(street_address);
    let locality = clean(locality);
    let meaningful = |s: &str| s.chars().any(char::is_alphanumeric);
    let missing: Vec<&str> = [
        (!meaningful(&street), "street address"),
        (!meaningful(&locality), "city or town"),
    ]
    .into_iter()
    .filter(|(m, _)| *m)
    .map(|(_, n)| n)
    .collect();
    if !missing.is_empty() {
        return Err(InvalidInput::new(format!(
            "Incomplete address: the {} {} missing. Ask the caller for {}.",
            missing.join(" and the "),
            if missing.len() == 1 { "is" } else { "are" },
            if missing.len() == 1 { "it" } else { "them" },
        )));
    }
    let parts = [street, clean(unit_number), locality, clean(country)];
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if joined.chars().count() > 300 {
        return Err(InvalidInput::new(
            "That address is too long (over 300 characters).",
        ));
    }
    Ok(joined)
}
