//! [`GetCreditCardTask`]: collects payment card details through a [`TaskGroup`] of
//! [`GetCardNumberTask`], [`GetExpirationDateTask`], [`GetSecurityCodeTask`] and a
//! [`GetNameTask`] for the cardholder.
//!
//! Card numbers never appear in tool outputs, error messages, logs or `Debug` output beyond
//! their last four digits, and security codes not at all. The typed results do hold them
//! (serialising a result writes them out): handle them as the payment data they are.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::common::{
    Capture, CaptureOptions, InvalidInput, capture_builders, confirm_tool, declined_message, lock,
    read_digits,
};
use super::date::CalendarDate;
use super::name::{GetNameTask, NameParts};
use super::{TaskGroup, WorkflowInstructions};
use crate::session::{Agent, AgentContext, AgentTask, RunContext, TaskError};
use crate::tools::{FunctionTool, ToolError, ToolFlags};

/// Who issued a card, from the number's prefix (see [`CardIssuer::from_number`]). Serialises as
/// its name ("Visa", "American Express", ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CardIssuer {
    /// Prefix 4.
    Visa,
    /// Prefixes 51–55 and 2221–2720.
    Mastercard,
    /// Prefixes 34 and 37.
    #[serde(rename = "American Express")]
    AmericanExpress,
    /// Prefixes 6011, 644–649 and 65.
    Discover,
    /// Prefixes 300–305, 36, 38 and 39.
    #[serde(rename = "Diners Club")]
    DinersClub,
    /// Prefixes 3528–3589.
    #[serde(rename = "JCB")]
    Jcb,
    /// Prefix 62.
    UnionPay,
    /// Prefixes 50, 56–58, 63 and 67.
    Maestro,
    /// Any other prefix.
    Other,
}

impl CardIssuer {
    /// The issuer of a card number (digits only) from its prefix.
    ///
    /// ```
    /// use switchboard::workflows::credit_card::CardIssuer;
    /// assert_eq!(CardIssuer::from_number("4111111111111111"), CardIssuer::Visa);
    /// assert_eq!(CardIssuer::from_number("2221000000000009"), CardIssuer::Mastercard);
    /// assert_eq!(CardIssuer::from_number("378282246310005"), CardIssuer::AmericanExpress);
    /// ```
    pub fn from_number(digits: &str) -> CardIssuer {
        let prefix = |len: usize| -> Option<u32> {
            digits
                .get(..len)
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse().ok())
        };
        let within =
            |len: usize, lo: u32, hi: u32| prefix(len).is_some_and(|p| (lo..=hi).contains(&p));
        if within(2, 34, 34) || within(2, 37, 37) {
            CardIssuer::AmericanExpress
        } else if within(3, 300, 305) || within(2, 36, 36) || within(2, 38, 39) {
            CardIssuer::DinersClub
        } else if within(4, 3528, 3589) {
            CardIssuer::Jcb
        } else if within(1, 4, 4) {
            CardIssuer::Visa
        } else if within(2, 51, 55) || within(4, 2221, 2720) {
            CardIssuer::Mastercard
        } else if within(4, 6011, 6011) || within(3, 644, 649) || within(2, 65, 65) {
            CardIssuer::Discover
        } else if within(2, 62, 62) {
            CardIssuer::UnionPay
        } else if within(2, 50, 50) || within(2, 56, 58) || within(2, 63, 63) || within(2, 67, 67) {
            CardIssuer::Maestro
        } else {
            CardIssuer::Other
        }
    }

    /// The issuer's name, as spoken and serialised.
    pub fn name(&self) -> &'static str {
        match self {
            CardIssuer::Visa => "Visa",
            CardIssuer::Mastercard => "Mastercard",
            CardIssuer::AmericanExpress => "American Express",
            CardIssuer::Discover => "Discover",
            CardIssuer::DinersClub => "Diners Club",
            CardIssuer::Jcb => "JCB",
            CardIssuer::UnionPay => "UnionPay",
            CardIssuer::Maestro => "Maestro",
            CardIssuer::Other => "Other",
        }
    }

    /// The number of digits of the issuer's security codes: 4 for American Express, else 3.
    pub fn security_code_len(&self) -> usize {
        if *self == CardIssuer::AmericanExpress {
            4
        } else {
            3
        }
    }

    /// The lengths a card number of this issuer may have.
    pub fn number_lengths(&self) -> &'static [usize] {
        match self {
            CardIssuer::Visa => &[13, 16, 19],
            CardIssuer::Mastercard => &[16],
            CardIssuer::AmericanExpress => &[15],
            CardIssuer::DinersClub => &[14, 15, 16, 17, 18, 19],
            CardIssuer::Discover | CardIssuer::Jcb | CardIssuer::UnionPay => &[16, 17, 18, 19],
            CardIssuer::Maestro | CardIssuer::Other => &[13, 14, 15, 16, 17, 18, 19],
        }
    }
}

impl fmt::Display for CardIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// True when `digits` (ASCII digits only, at least two) pass the Luhn check-digit test.
///
/// ```
/// use switchboard::workflows::credit_card::luhn_valid;
/// assert!(luhn_valid("4111111111111111"));
/// assert!(!luhn_valid("4111111111111112"));
/// ```
pub fn luhn_valid(digits: &str) -> bool {
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `"4111111111111111"` → `"card ending in 1111"`: how a card number may be shown.
pub fn mask_card_number(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let last: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("card ending in {last}")
}

/// Reads a card number as a caller gave it (digits with spaces or dashes, or spoken digits)
/// and checks it: 13 to 19 digits, a length the issuer uses, and the Luhn check. Returns the
/// digits and the issuer. Error messages name at most the last four digits.
///
/// ```
/// use switchboard::workflows::credit_card::{parse_card_number, CardIssuer};
/// let (number, issuer) = parse_card_number("4111 1111 1111 1111").unwrap();
/// assert_eq!((number.as_str(), issuer), ("4111111111111111", CardIssuer::Visa));
/// let error = parse_card_number("4111 1111 1111 1112").unwrap_err();
/// assert!(error.to_string().contains("ending in 1112"));
/// assert!(!error.to_string().contains("4111"));
/// ```
pub fn parse_card_number(input: &str) -> Result<(String, CardIssuer), InvalidInput> {
    let digits = read_digits(input, |_| None).map_err(|_| {
        InvalidInput::new(
            "The card number has something in it that is not a digit. Ask the caller to read \
             the number again, digit by digit.",
        )
    })?;
    if !(13..=19).contains(&digits.len()) {
        return Err(InvalidInput::new(format!(
            "That card number has {} digits, but card numbers have 13 to 19. Ask the caller to \
             read the whole number again.",
            digits.len()
        )));
    }
    let issuer = CardIssuer::from_number(&digits);
    if !issuer.number_lengths().contains(&digits.len()) {
        return Err(InvalidInput::new(format!(
            "That looks like {} {issuer} number, but it has {} digits, which {issuer} numbers \
             never have. Ask the caller to read the number again.",
            article(issuer.name()),
            digits.len()
        )));
    }
    if !luhn_valid(&digits) {
        return Err(InvalidInput::new(format!(
            "The {} is not a valid card number (its check digit is wrong), so a digit was \
             probably misheard. Ask the caller to read the number again.",
            mask_card_number(&digits)
        )));
    }
    Ok((digits, issuer))
}

/// Checks a card's expiration date: month 1–12, a two-digit year (a four-digit year 2000–2099
/// is accepted too), not expired by `today` (a card is valid through the end of its month), and
/// at most 20 years ahead. Returns `"MM/YY"`.
///
/// ```
/// use switchboard::workflows::credit_card::parse_expiration_date;
/// use switchboard::workflows::date::CalendarDate;
/// let today = CalendarDate::new(2026, 6, 15).unwrap();
/// assert_eq!(parse_expiration_date(6, 26, today).unwrap(), "06/26");
/// assert_eq!(parse_expiration_date(1, 2030, today).unwrap(), "01/30");
/// assert!(parse_expiration_date(5, 26, today).is_err()); // expired
/// ```
pub fn parse_expiration_date(
    month: i64,
    year: i64,
    today: CalendarDate,
) -> Result<String, InvalidInput> {
    if !(1..=12).contains(&month) {
        return Err(InvalidInput::new(format!(
            "{month} is not a month; the month on a card is 01 to 12. Ask the caller for the \
             expiration date again."
        )));
    }
    let full_year = match year {
        0..=99 => 2000 + year,
        2000..=2099 => year,
        _ => {
            return Err(InvalidInput::new(format!(
                "{year} is not a card expiration year; ask for the two-digit year printed on the \
                 card."
            )));
        }
    };
    let shown = format!("{month:02}/{:02}", full_year % 100);
    let now = (i64::from(today.year()), i64::from(today.month()));
    if (full_year, month) < now {
        return Err(InvalidInput::new(format!(
            "A card expiring {shown} has expired. Ask the caller to check the date or to use \
             another card."
        )));
    }
    if full_year > now.0 + 20 {
        return Err(InvalidInput::new(format!(
            "{shown} is too far ahead for a card expiration date. Ask the caller to check it."
        )));
    }
    Ok(shown)
}

/// Checks a card security code given as digits or spoken digits: 3 or 4 digits, exactly 4 for
/// American Express and 3 for other known issuers. The code never appears in the message.
///
/// ```
/// use switchboard::workflows::credit_card::{parse_security_code, CardIssuer};
/// assert_eq!(parse_security_code("one two three", Some(CardIssuer::Visa)).unwrap(), "123");
/// assert!(parse_security_code("123", Some(CardIssuer::AmericanExpress)).is_err());
/// assert_eq!(parse_security_code("1234", None).unwrap(), "1234");
/// ```
pub fn parse_security_code(
    input: &str,
    issuer: Option<CardIssuer>,
) -> Result<String, InvalidInput> {
    let digits = read_digits(input, |_| None).map_err(|_| {
        InvalidInput::new(
            "The security code has something in it that is not a digit. Ask the caller to read \
             it again.",
        )
    })?;
    let expected = issuer
        .filter(|i| *i != CardIssuer::Other)
        .map(|i| i.security_code_len());
    let ok = match expected {
        Some(n) => digits.len() == n,
        None => (3..=4).contains(&digits.len()),
    };
    if !ok {
        let wanted = match (expected, issuer) {
            (Some(n), Some(i)) => format!("{n} digits on {} {i} card", article(i.name())),
            _ => "3 or 4 digits".to_owned(),
        };
        return Err(InvalidInput::new(format!(
            "The security code has {wanted}, but {} were given. Ask the caller to read it again \
             (it is on the back of the card, or on the front for American Express).",
            digits.len()
        )));
    }
    Ok(digits)
}

/// "a" or "an" before `word`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

/// Starts the restart error of `restart_card_collection`.
const RESTART_PREFIX: &str = "card collection restarted: ";

/// What the card steps add to their instructions.
pub(crate) const CARD_TOOLS_INSTRUCTIONS: &str = " If the caller wants to start the card \
details over, call `restart_card_collection`. If they do not want to give their card details, \
call `decline_card_capture`.";

#[derive(Deserialize, schemars::JsonSchema)]
struct ReasonArgs {
    /// Why, in a few words.
    #[serde(default)]
    reason: String,
}

/// The tools every card step shares: `decline_card_capture(reason)` fails the whole card
/// collection, `restart_card_collection(reason)` starts it over. Both hidden on enter.
pub(crate) fn card_tools<U: Send + 'static>() -> Vec<FunctionTool<U>> {
    vec![
        FunctionTool::new(
            "decline_card_capture",
            "Call when the caller does not want to give their card details, or wants to stop.",
            |ctx: RunContext<U>, args: ReasonArgs| async move {
                ctx.fail(TaskError::Failed(declined_message(
                    "card details",
                    &args.reason,
                )))
                .await?;
                Ok::<(), ToolError>(())
            },
        )
        .with_flags(ToolFlags::IGNORE_ON_ENTER),
        FunctionTool::new(
            "restart_card_collection",
            "Call when the caller wants to start giving the card details over from the card \
             number.",
            |ctx: RunContext<U>, args: ReasonArgs| async move {
                let reason = args.reason.trim();
                let reason = if reason.is_empty() {
                    "the caller asked"
                } else {
                    reason
                };
                ctx.fail(TaskError::Failed(format!("{RESTART_PREFIX}{reason}")))
                    .await?;
                Ok::<(), ToolError>(())
            },
        )
        .with_flags(ToolFlags::IGNORE_ON_ENTER),
    ]
}

fn card_step_instructions(body: &str, confirm: Option<&str>, options: &CaptureOptions) -> String {
    let mut task = body.to_owned();
    if let (true, Some(confirm)) = (options.confirmation_required(), confirm) {
        task.push(' ');
        task.push_str(confirm);
    }
    task.push_str(CARD_TOOLS_INSTRUCTIONS);
    options.instructions.compose(&task)
}

// ---------------------------------------------------------------------------------------------
// Card number

/// What [`GetCardNumberTask`] collects. `Debug` shows only the last four digits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetCardNumberResult {
    /// The card number, digits only.
    pub card_number: String,
    /// Its issuer.
    pub issuer: CardIssuer,
}

impl fmt::Debug for GetCardNumberResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetCardNumberResult")
            .field("card_number", &mask_card_number(&self.card_number))
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// Asks for a card number (one step of [`GetCreditCardTask`]; usable alone).
///
/// Tools: `update_card_number(card_number)` (checked with [`parse_card_number`]),
/// `confirm_card_number(card_number)` (only when confirmation is required: the caller repeats
/// the number and it must match), `decline_card_capture(reason)`,
/// `restart_card_collection(reason)` (both fail the task; see [`GetCreditCardTask`]). Output:
/// [`GetCardNumberResult`].
///
/// ```
/// use switchboard::workflows::GetCardNumberTask;
/// let task = GetCardNumberTask::default().require_confirmation(true);
/// assert_eq!(task.prompt(), "Ask the caller for their card number.");
/// ```
pub struct GetCardNumberTask {
    options: CaptureOptions,
    capture: Arc<Capture<GetCardNumberResult>>,
    issuer_sink: Option<Arc<Mutex<Option<CardIssuer>>>>,
}

impl Default for GetCardNumberTask {
    fn default() -> Self {
        GetCardNumberTask {
            options: CaptureOptions::default(),
            capture: Arc::new(Capture::new(
                "card number",
                "update_card_number",
                "confirm_card_number",
            )),
            issuer_sink: None,
        }
    }
}

/// A copy with the same options and no captured value.
impl Clone for GetCardNumberTask {
    fn clone(&self) -> Self {
        GetCardNumberTask {
            options: self.options.clone(),
            capture: self.capture.fresh(),
            issuer_sink: self.issuer_sink.clone(),
        }
    }
}

capture_builders!(GetCardNumberTask);

impl GetCardNumberTask {
    /// A task with the default options (same as `default()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The one-off instruction `on_enter` gives the model (scripted models key on it).
    pub fn prompt(&self) -> String {
        self.options
            .prompt_or("Ask the caller for their card number.".to_owned())
    }

    fn with_issuer_sink(mut self, sink: Arc<Mutex<Option<CardIssuer>>>) -> Self {
        self.issuer_sink = Some(sink);
        self
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct CardNumberArgs {
    /// The card number as the caller read it (digits, spaces allowed).
    card_number: String,
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for GetCardNumberTask {
    fn instructions(&self) -> String {
        card_step_instructions(
            "Your only job now is to get the caller's payment card number. Call \
             `update_card_number` with it as soon as they read it. If the tool says it is not \
             valid, tell the caller and ask them to read it again. Never repeat the full number \
             aloud; refer to the card by its last four digits.",
            Some(
                "After recording it, ask the caller to repeat the full number and call \
                 `confirm_card_number` with what they repeat.",
            ),
            &self.options,
        )
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<U>> {
        let this = self.clone();
        let mut tools = vec![
            FunctionTool::new(
                "update_card_number",
                "Record the caller's card number (call again if they correct it).",
                move |ctx: RunContext<U>, args: CardNumberArgs| {
                    let this = this.clone();
                    async move {
                        let (number, issuer) = parse_card_number(&args.card_number)?;
                        if let Some(sink) = &this.issuer_sink {
                            *lock(sink) = Some(issuer);
                        }
                        let masked = mask_card_number(&number);
                        let read_back = format!(
                            "Got {} {issuer} {masked}. Ask the caller to repeat the full number \
                             to confirm it, then call `confirm_card_number` with what they \
                             repeat. Do not read the number aloud.",
                            article(issuer.name())
                        );
                        let result = GetCardNumberResult {
                            card_number: number,
                            issuer,
                        };
                        this.capture
                            .record(
                                &ctx,
                                result,
                                masked,
                                this.options.confirmation_required(),
                                read_back,
                            )
                            .await
                    }
                },
            )
            .with_flags(self.options.update_flags()),
        ];
        if self.options.confirmation_required() {
            let capture = self.capture.clone();
            tools.push(
                FunctionTool::new(
                    "confirm_card_number",
                    "Call with the card number as the caller repeated it, to confirm it.",
                    move |ctx: RunContext<U>, args: CardNumberArgs| {
                        let capture = capture.clone();
                        async move {
                            let repeated =
                                read_digits(&args.card_number, |_| None).unwrap_or_default();
                            capture
                                .confirm_with(&ctx, |pending: &GetCardNumberResult| {
                                    if pending.card_number == repeated {
                                        Ok(())
                                    } else {
                                        Err(ToolError::new(format!(
                                            "The repeated number does not match the {}. Ask \
                                             the caller for the card number again and call \
                                             `update_card_number`.",
                                            mask_card_number(&pending.card_number)
                                        )))
                                    }
                                })
                                .await
                        }
                    },
                )
                .with_flags(ToolFlags::IGNORE_ON_ENTER),
            );
        }
        tools.extend(card_tools());
        tools
    }

    async fn on_enter(&self, ctx: AgentContext<U>) -> crate::Result<()> {
        ctx.session().generate_reply(self.prompt()).await?;
        Ok(())
    }
}

impl<U: Send + 'static> AgentTask<U> for GetCardNumberTask {
    type Output = GetCardNumberResult;
}

// ---------------------------------------------------------------------------------------------
// Expiration date

/// What [`GetExpirationDateTask`] collects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetExpirationDateResult {
    /// `"MM/YY"`.
    pub expiration_date: String,
}

/// Asks for a card's expiration date (one step of [`GetCreditCardTask`]; usable alone).
///
/// Tools: `update_expiration_date(month, year)` (checked with [`parse_expiration_date`]),
/// `confirm_expiration_date()` (only when confirmation is required), `decline_card_capture`,
/// `restart_card_collection`. Output: [`GetExpirationDateResult`].
///
/// ```
/// use switchboard::workflows::GetExpirationDateTask;
/// use switchboard::workflows::date::CalendarDate;
/// let task = GetExpirationDateTask::default().with_today(CalendarDate::new(2026, 6, 1).unwrap());
/// assert_eq!(task.prompt(), "Ask the caller for the card's expiration date.");
/// ```
pub struct GetExpirationDateTask {
    today: Option<CalendarDate>,
    options: CaptureOptions,
    capture: Arc<Capture<GetExpirationDateResult>>,
}

impl Default for GetExpirationDateTask {
    fn default() -> Self {
        GetExpirationDateTask {
            today: None,
            options: CaptureOptions::default(),
            capture: Arc::new(Capture::new(
                "expiration date",
                "update_expiration_date",
                "confirm_expiration_date",
            )),
        }
    }
}

/// A copy with the same options and no captured value.
impl Clone for GetExpirationDateTask {
    fn clone(&self) -> Self {
        GetExpirationDateTask {
            today: self.today,
            options: self.options.clone(),
            capture: self.capture.fresh(),
        }
    }
}

capture_builders!(GetExpirationDateTask);

impl GetExpirationDateTask {
    /// A task with the default options (same as `default()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The date taken as today for the expiry check (default: the system clock's UTC date).
    pub fn with_today(mut self, today: CalendarDate) -> Self {
        self.today = Some(today);
        self
    }

    /// The one-off instruction `on_enter` gives the model (scripted models key on it).
    pub fn prompt(&self) -> String {
        self.options
            .prompt_or("Ask the caller for the card's expiration date.".to_owned())
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ExpirationArgs {
    /// The month printed on the card, 1 to 12.
    month: i64,
    /// The two-digit year printed on the card ("twenty-eight" → 28).
    year: i64,
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for GetExpirationDateTask {
    fn instructions(&self) -> String {
        card_step_instructions(
            "Your only job now is to get the expiration date printed on the caller's card \
             (month and two-digit year). Call `update_expiration_date` as soon as they give it. \
             If the tool says it is not valid, tell the caller and ask again.",
            Some(
                "After recording it, read the date back and call `confirm_expiration_date` only \
                 once the caller says it is right.",
            ),
            &self.options,
        )
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<U>> {
        let this = self.clone();
        let mut tools = vec![
            FunctionTool::new(
                "update_expiration_date",
                "Record the card's expiration date (call again if the caller corrects it).",
                move |ctx: RunContext<U>, args: ExpirationArgs| {
                    let this = this.clone();
                    async move {
                        let today = this.today.unwrap_or_else(CalendarDate::today);
                        let date = parse_expiration_date(args.month, args.year, today)?;
                        let read_back = format!(
                            "The expiration date is now {date}. Read it back and ask the caller \
                             to confirm it. Do not call `confirm_expiration_date` until they do."
                        );
                        let result = GetExpirationDateResult {
                            expiration_date: date.clone(),
                        };
                        this.capture
                            .record(
                                &ctx,
                                result,
                                date,
                                this.options.confirmation_required(),
                                read_back,
                            )
                            .await
                    }
                },
            )
            .with_flags(self.options.update_flags()),
        ];
        if self.options.confirmation_required() {
            tools.push(confirm_tool(self.capture.clone()));
        }
        tools.extend(card_tools());
        tools
    }

    async fn on_enter(&self, ctx: AgentContext<U>) -> crate::Result<()> {
        ctx.session().generate_reply(self.prompt()).await?;
        Ok(())
    }
}

impl<U: Send + 'static> AgentTask<U> for GetExpirationDateTask {
    type Output = GetExpirationDateResult;
}

// ---------------------------------------------------------------------------------------------
// Security code

/// What [`GetSecurityCodeTask`] collects. `Debug` hides the code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetSecurityCodeResult {
    /// The security code (CVV/CVC), digits only.
    pub security_code: String,
}

impl fmt::Debug for GetSecurityCodeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetSecurityCodeResult")
            .field("security_code", &"***")
            .finish()
    }
}

/// Asks for a card's security code (one step of [`GetCreditCardTask`]; usable alone).
///
/// Tools: `update_security_code(security_code)` (checked with [`parse_security_code`], 4 digits
/// for American Express, 3 for other known issuers, 3 or 4 when the issuer is unknown),
/// `confirm_security_code()` (only when confirmation is required), `decline_card_capture`,
/// `restart_card_collection`. Output: [`GetSecurityCodeResult`].
///
/// ```
/// use switchboard::workflows::GetSecurityCodeTask;
/// use switchboard::workflows::credit_card::CardIssuer;
/// let task = GetSecurityCodeTask::default().for_issuer(Some(CardIssuer::AmericanExpress));
/// assert_eq!(task.prompt(), "Ask the caller for the card's 4-digit security code.");
/// ```
pub struct GetSecurityCodeTask {
    issuer: Option<CardIssuer>,
    options: CaptureOptions,
    capture: Arc<Capture<GetSecurityCodeResult>>,
}

impl Default for GetSecurityCodeTask {
    fn default() -> Self {
        GetSecurityCodeTask {
            issuer: None,
            options: CaptureOptions::default(),
            capture: Arc::new(Capture::new(
                "security code",
                "update_security_code",
                "confirm_security_code",
            )),
        }
    }
}

/// A copy with the same options and no captured value.
impl Clone for GetSecurityCodeTask {
    fn clone(&self) -> Self {
        GetSecurityCodeTask {
            issuer: self.issuer,
            options: self.options.clone(),
            capture: self.capture.fresh(),
        }
    }
}

capture_builders!(GetSecurityCodeTask);

impl GetSecurityCodeTask {
    /// A task for a card of unknown issuer (same as `default()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The card's issuer, which fixes the code's length (`None`: 3 or 4 digits).
    pub fn for_issuer(mut self, issuer: Option<CardIssuer>) -> Self {
        self.issuer = issuer;
        self
    }

    /// The one-off instruction `on_enter` gives the model (scripted models key on it).
    pub fn prompt(&self) -> String {
        let length = match self.issuer {
            Some(i) if i != CardIssuer::Other => format!("{}-digit ", i.security_code_len()),
            _ => String::new(),
        };
        self.options.prompt_or(format!(
            "Ask the caller for the card's {length}security code."
        ))
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct SecurityCodeArgs {
    /// The security code as the caller read it.
    security_code: String,
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for GetSecurityCodeTask {
    fn instructions(&self) -> String {
        card_step_instructions(
            "Your only job now is to get the security code of the caller's card (three digits \
             on the back, or four on the front of an American Express card). Call \
             `update_security_code` as soon as they give it. Never repeat the code aloud.",
            Some(
                "After recording it, ask the caller to confirm they gave the code correctly and \
                 call `confirm_security_code` only once they do.",
            ),
            &self.options,
        )
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<U>> {
        let this = self.clone();
        let mut tools = vec![
            FunctionTool::new(
                "update_security_code",
                "Record the card's security code (call again if the caller corrects it).",
                move |ctx: RunContext<U>, args: SecurityCodeArgs| {
                    let this = this.clone();
                    async move {
                        let code = parse_security_code(&args.security_code, this.issuer)?;
                        let read_back = format!(
                            "A {}-digit security code was recorded. Ask the caller to confirm \
                             they gave it correctly, without reading it aloud. Do not call \
                             `confirm_security_code` until they do.",
                            code.len()
                        );
                        let result = GetSecurityCodeResult {
                            security_code: code,
                        };
                        this.capture
                            .record(
                                &ctx,
                                result,
                                "the code just given".to_owned(),
                                this.options.confirmation_required(),
                                read_back,
                            )
                            .await
                    }
                },
            )
            .with_flags(self.options.update_flags()),
        ];
        if self.options.confirmation_required() {
            tools.push(confirm_tool(self.capture.clone()));
        }
        tools.extend(card_tools());
        tools
    }

    async fn on_enter(&self, ctx: AgentContext<U>) -> crate::Result<()> {
        ctx.session().generate_reply(self.prompt()).await?;
        Ok(())
    }
}

impl<U: Send + 'static> AgentTask<U> for GetSecurityCodeTask {
    type Output = GetSecurityCodeResult;
}

// ---------------------------------------------------------------------------------------------
// The whole card

/// What [`GetCreditCardTask`] collects. `Debug` shows only the last four digits of the number
/// and hides the security code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetCreditCardResult {
    /// The cardholder's name as on the card ("Jane Q Doe").
    pub cardholder_name: String,
    /// The issuer, from the number's prefix.
    pub issuer: CardIssuer,
    /// The card number, digits only.
    pub card_number: String,
    /// The security code, digits only.
    pub security_code: String,
    /// `"MM/YY"`.
    pub expiration_date: String,
}

impl fmt::Debug for GetCreditCardResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetCreditCardResult")
            .field("cardholder_name", &self.cardholder_name)
            .field("issuer", &self.issuer)
            .field("card_number", &mask_card_number(&self.card_number))
            .field("security_code", &"***")
            .field("expiration_date", &self.expiration_date)
            .finish()
    }
}

/// Collects payment card details: runs a [`TaskGroup`] with the steps `card_number`
/// ([`GetCardNumberTask`]), `expiration_date` ([`GetExpirationDateTask`]), `security_code`
/// ([`GetSecurityCodeTask`], whose length follows the issuer; it is asked again when the caller
/// goes back to the number) and `cardholder_name` ([`GetNameTask`], first and last name
/// required, asked explicitly).
///
/// Every step has two shared tools: `decline_card_capture(reason)` fails this task with
/// `couldn't get the card details: <reason>`, and `restart_card_collection(reason)` starts the
/// whole group over from the card number (as often as the caller asks). The cardholder step's
/// own `decline_name_capture` is replaced by `decline_card_capture`. Output:
/// [`GetCreditCardResult`].
///
/// ```
/// use switchboard::workflows::GetCreditCardTask;
/// use switchboard::workflows::date::CalendarDate;
/// let task = GetCreditCardTask::default()
///     .require_confirmation(true)
///     .with_today(CalendarDate::new(2026, 6, 1).unwrap());
/// // let card = ctx.run_task(task).await?;
/// // println!("{card:?}"); // prints "card ending in 1111", never the number
/// # let _ = task;
/// ```
#[derive(Clone, Default)]
pub struct GetCreditCardTask {
    require_confirmation: Option<bool>,
    instructions: WorkflowInstructions,
    today: Option<CalendarDate>,
}

impl GetCreditCardTask {
    /// A task with the default options (same as `default()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether each step's value is confirmed (see the steps' `require_confirmation`; `None`,
    /// the default, currently means not required).
    pub fn require_confirmation(mut self, required: impl Into<Option<bool>>) -> Self {
        self.require_confirmation = required.into();
        self
    }

    /// Persona and extra instructions for every step.
    pub fn with_instructions(mut self, instructions: WorkflowInstructions) -> Self {
        self.instructions = instructions;
        self
    }

    /// The date taken as today for the expiry check (default: the system clock's UTC date).
    pub fn with_today(mut self, today: CalendarDate) -> Self {
        self.today = Some(today);
        self
    }
}

/// The typed keys of one card group.
struct CardSteps {
    number: super::StepKey<GetCardNumberResult>,
    expiration: super::StepKey<GetExpirationDateResult>,
    security_code: super::StepKey<GetSecurityCodeResult>,
    name: super::StepKey<super::GetNameResult>,
}

impl GetCreditCardTask {
    fn group<U: Send + 'static>(&self) -> (TaskGroup<U>, CardSteps) {
        let mut group = TaskGroup::new().with_summary(false);
        let confirm = self.require_confirmation;
        let instructions = self.instructions.clone();
        let issuer: Arc<Mutex<Option<CardIssuer>>> = Arc::default();

        let (sink, i) = (issuer.clone(), instructions.clone());
        let number = group.add("card_number", "the card number", move || {
            GetCardNumberTask::default()
                .require_confirmation(confirm)
                .with_instructions(i.clone())
                .with_issuer_sink(sink.clone())
        });
        let (today, i) = (self.today, instructions.clone());
        let expiration = group.add("expiration_date", "the card's expiration date", move || {
            let task = GetExpirationDateTask::default()
                .require_confirmation(confirm)
                .with_instructions(i.clone());
            match today {
                Some(today) => task.with_today(today),
                None => task,
            }
        });
        let (source, i) = (issuer, instructions.clone());
        let security_code = group.add("security_code", "the card's security code", move || {
            GetSecurityCodeTask::default()
                .for_issuer(*lock(&source))
                .require_confirmation(confirm)
                .with_instructions(i.clone())
        });
        let i = instructions;
        let name = group.add("cardholder_name", "the cardholder's name", move || {
            let mut task = GetNameTask::default()
                .with_parts(NameParts::FIRST_LAST)
                .require_explicit_ask(true)
                .require_confirmation(confirm)
                .with_instructions(i.clone())
                .with_prompt("Ask the caller for the cardholder's name as printed on the card.");
            task.card_tools = true;
            task
        });
        group.depends_on(&security_code, &number);
        (
            group,
            CardSteps {
                number,
                expiration,
                security_code,
                name,
            },
        )
    }
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for GetCreditCardTask {
    fn instructions(&self) -> String {
        self.instructions.compose(
            "You are collecting the caller's payment card details, one step at a time: card \
             number, expiration date, security code and cardholder name.",
        )
    }

    async fn on_enter(&self, ctx: AgentContext<U>) -> crate::Result<()> {
        loop {
            let (group, steps) = self.group::<U>();
            match ctx.run_task(group).await {
                Ok(results) => {
                    let card = results.get(&steps.number);
                    let expiration = results.get(&steps.expiration);
                    let code = results.get(&steps.security_code);
                    let name = results.get(&steps.name);
                    let (Some(card), Some(expiration), Some(code), Some(name)) =
                        (card, expiration, code, name)
                    else {
                        ctx.fail(TaskError::Failed(declined_message(
                            "card details",
                            "a step did not complete",
                        )))
                        .await?;
                        return Ok(());
                    };
                    let result = GetCreditCardResult {
                        cardholder_name: name.full_name(),
                        issuer: card.issuer,
                        card_number: card.card_number.clone(),
                        security_code: code.security_code.clone(),
                        expiration_date: expiration.expiration_date.clone(),
                    };
                    ctx.complete(result).await?;
                    return Ok(());
                }
                Err(TaskError::Failed(message)) if message.starts_with(RESTART_PREFIX) => {
                    tracing::debug!("card collection restarted");
                    continue;
                }
                Err(TaskError::SessionClosed | TaskError::Cancelled(_)) => return Ok(()),
                Err(error) => {
                    ctx.fail(error).await?;
                    return Ok(());
                }
            }
        }
    }
}

impl<U: Send + 'static> AgentTask<U> for GetCreditCardTask {
    type Output = GetCreditCardResult;
}
