//! [`GetDobTask`]: collects a date of birth (and optionally a time of birth).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::common::{
    Capture, CaptureOptions, InvalidInput, capture_builders, confirm_tool, decline_tool, lock,
};
use super::date::{CalendarDate, TimeOfDay};
use crate::session::{Agent, AgentContext, AgentTask, RunContext};
use crate::tools::{FunctionTool, ToolError};

/// What [`GetDobTask`] collects. Serialises as
/// `{"date_of_birth": "1985-03-14", "time_of_birth": "08:30"}` (`null` time when not asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetDobResult {
    /// The date of birth.
    pub date_of_birth: CalendarDate,
    /// The time of birth, when the task was built with [`GetDobTask::include_time`].
    pub time_of_birth: Option<TimeOfDay>,
}

/// Asks the caller for their date of birth.
///
/// Tools: `update_dob(year, month, day)` (checked with [`parse_date_of_birth`]: a two-digit
/// year is 20xx up to the current two-digit year and 19xx above it; dates that do not exist or
/// lie in the future are refused), `update_time(hour, minute)` (only with
/// [`GetDobTask::include_time`]), `confirm_dob()` (only when confirmation is required),
/// `decline_dob_capture(reason)`. Output: [`GetDobResult`].
///
/// "Today" comes from the system clock (UTC) unless set with [`GetDobTask::with_today`].
///
/// ```
/// use switchboard::workflows::GetDobTask;
/// use switchboard::workflows::date::CalendarDate;
/// let task = GetDobTask::default()
///     .include_time(true)
///     .with_today(CalendarDate::new(2026, 6, 1).unwrap());
/// assert_eq!(task.prompt(), "Ask the caller for their date and time of birth.");
/// // let dob = ctx.run_task(task).await?.date_of_birth;
/// ```
pub struct GetDobTask {
    include_time: bool,
    today: Option<CalendarDate>,
    options: CaptureOptions,
    capture: Arc<Capture<GetDobResult>>,
    draft: Arc<Mutex<Draft>>,
}

#[derive(Default)]
struct Draft {
    date: Option<CalendarDate>,
    time: Option<TimeOfDay>,
}

impl Default for GetDobTask {
    fn default() -> Self {
        GetDobTask {
            include_time: false,
            today: None,
            options: CaptureOptions::default(),
            capture: Arc::new(Capture::new("date of birth", "update_dob", "confirm_dob")),
            draft: Arc::default(),
        }
    }
}

/// A copy with the same options and nothing captured.
impl Clone for GetDobTask {
    fn clone(&self) -> Self {
        GetDobTask {
            include_time: self.include_time,
            today: self.today,
            options: self.options.clone(),
            capture: self.capture.fresh(),
            draft: Arc::default(),
        }
    }
}

capture_builders!(GetDobTask);

impl GetDobTask {
    /// A task asking for the date only (same as `default()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Also asks for the time of birth, with an `update_time(hour, minute)` tool (default
    /// false). The task then completes once it has both.
    pub fn include_time(mut self, include: bool) -> Self {
        self.include_time = include;
        self
    }

    /// The date taken as today for the two-digit-year rule and the future check (default: the
    /// system clock's UTC date when the value is checked).
    pub fn with_today(mut self, today: CalendarDate) -> Self {
        self.today = Some(today);
        self
    }

    /// The one-off instruction `on_enter` gives the model (scripted models key on it).
    pub fn prompt(&self) -> String {
        self.options.prompt_or(if self.include_time {
            "Ask the caller for their date and time of birth.".to_owned()
        } else {
            "Ask the caller for their date of birth.".to_owned()
        })
    }

    fn today(&self) -> CalendarDate {
        self.today.unwrap_or_else(CalendarDate::today)
    }

    /// Records what is complete, or says what is still missing.
    async fn settle<U: Send + 'static>(
        &self,
        ctx: &RunContext<U>,
    ) -> Result<Option<String>, ToolError> {
        let (date, time) = {
            let draft = lock(&self.draft);
            (draft.date, draft.time)
        };
        let Some(date) = date else {
            return Ok(Some(
                "Time of birth noted. Now ask for the date of birth and call `update_dob`."
                    .to_owned(),
            ));
        };
        if self.include_time && time.is_none() {
            return Ok(Some(format!(
                "Date of birth noted as {}. Now ask for the time of birth and call \
                 `update_time`.",
                date.spoken()
            )));
        }
        let result = GetDobResult {
            date_of_birth: date,
            time_of_birth: time.filter(|_| self.include_time),
        };
        let shown = match result.time_of_birth {
            Some(t) => format!("{} at {t}", date.spoken()),
            None => date.spoken(),
        };
        let read_back = format!(
            "The date of birth is now {shown}. Read it back and ask the caller to confirm it. Do \
             not call `confirm_dob` until they do."
        );
        self.capture
            .record(
                ctx,
                result,
                shown,
                self.options.confirmation_required(),
                read_back,
            )
            .await
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct DobArgs {
    /// The year of birth: four digits, or the two digits the caller said ("eighty-five" → 85).
    year: i64,
    /// The month, 1 to 12.
    month: i64,
    /// The day of the month, 1 to 31.
    day: i64,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct TimeArgs {
    /// The hour on a 24-hour clock, 0 to 23 ("3 pm" → 15).
    hour: i64,
    /// The minute, 0 to 59.
    minute: i64,
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for GetDobTask {
    fn instructions(&self) -> String {
        let mut task = String::from(
            "Your only job now is to get the caller's date of birth. Call `update_dob` with the \
             year, month and day as soon as they give it; pass a two-digit year as the caller \
             said it. If the tool says the date is not valid, tell the caller and ask again. If \
             the caller cannot or will not give it, call `decline_dob_capture`.",
        );
        if self.include_time {
            task.push_str(
                " Also get the time of birth and record it with `update_time` (24-hour clock).",
            );
        }
        if self.options.confirmation_required() {
            task.push_str(
                " After recording it, read the date back and call `confirm_dob` only once the \
                 caller says it is right; if they correct it, record it again.",
            );
        }
        self.options.instructions.compose(&task)
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<U>> {
        let this = self.clone();
        let mut tools = vec![
            FunctionTool::new(
                "update_dob",
                "Record the caller's date of birth (call again if they correct it).",
                move |ctx: RunContext<U>, args: DobArgs| {
                    let this = this.clone();
                    async move {
                        let date =
                            parse_date_of_birth(args.year, args.month, args.day, this.today())?;
                        lock(&this.draft).date = Some(date);
                        this.settle(&ctx).await
                    }
                },
            )
            .with_flags(self.options.update_flags()),
            decline_tool("decline_dob_capture", "date of birth"),
        ];
        if self.include_time {
            let this = self.clone();
            tools.push(
                FunctionTool::new(
                    "update_time",
                    "Record the caller's time of birth (call again if they correct it).",
                    move |ctx: RunContext<U>, args: TimeArgs| {
                        let this = this.clone();
                        async move {
                            let time = parse_time_of_birth(args.hour, args.minute)?;
                            lock(&this.draft).time = Some(time);
                            this.settle(&ctx).await
                        }
                    },
                )
                .with_flags(self.options.update_flags()),
            );
        }
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

impl<U: Send + 'static> AgentTask<U> for GetDobTask {
    type Output = GetDobResult;
}

/// How far back a date of birth may be.
const MAX_AGE_YEARS: i32 = 130;

/// The full year of a year of birth as the caller said it: 0–99 is a two-digit year, in the
/// current century up to the current two-digit year and in the previous one above it (in 2026:
/// 26 → 2026, 27 → 1927); 1000 and above is taken as is; anything else is refused.
///
/// ```
/// use switchboard::workflows::dob::resolve_birth_year;
/// use switchboard::workflows::date::CalendarDate;
/// let today = CalendarDate::new(2026, 6, 1).unwrap();
/// assert_eq!(resolve_birth_year(85, today).unwrap(), 1985);
/// assert_eq!(resolve_birth_year(5, today).unwrap(), 2005);
/// assert_eq!(resolve_birth_year(1985, today).unwrap(), 1985);
/// assert!(resolve_birth_year(312, today).is_err());
/// ```
pub fn resolve_birth_year(year: i64, today: CalendarDate) -> Result<i32, InvalidInput> {
    let current = today.year();
    match year {
        0..=99 => {
            let yy = year as i32;
            let century = current - current.rem_euclid(100);
            Ok(if yy <= current.rem_euclid(100) {
                century + yy
            } else {
                century - 100 + yy
            })
        }
        1000..=9999 => Ok(year as i32),
        _ => Err(InvalidInput::new(format!(
            "{year} is not a year of birth. Ask the caller for the year again."
        ))),
    }
}

/// Checks a date of birth: the year as in [`resolve_birth_year`], a month 1–12, a day that
/// exists in that month (February 29 only in leap years), not after `today` and not more than
/// 130 years before it.
///
/// ```
/// use switchboard::workflows::dob::parse_date_of_birth;
/// use switchboard::workflows::date::CalendarDate;
/// let today = CalendarDate::new(2026, 6, 1).unwrap();
/// assert_eq!(parse_date_of_birth(85, 3, 14, today).unwrap().to_string(), "1985-03-14");
/// assert!(parse_date_of_birth(2023, 2, 29, today).is_err()); // not a leap year
/// assert!(parse_date_of_birth(2026, 6, 2, today).is_err()); // tomorrow
/// ```
pub fn parse_date_of_birth(
    year: i64,
    month: i64,
    day: i64,
    today: CalendarDate,
) -> Result<CalendarDate, InvalidInput> {
    let year = resolve_birth_year(year, today)?;
    let Some(month) = u32::try_from(month).ok().filter(|m| (1..=12).contains(m)) else {
        return Err(InvalidInput::new(format!(
            "{month} is not a month; months go from 1 to 12. Ask the caller for the month again."
        )));
    };
    let date = u32::try_from(day)
        .ok()
        .and_then(|d| CalendarDate::new(year, month, d));
    let Some(date) = date else {
        let last = super::date::days_in_month(year, month).unwrap_or(31);
        let leap = if month == 2 && last == 28 {
            format!(" ({year} is not a leap year)")
        } else {
            String::new()
        };
        return Err(InvalidInput::new(format!(
            "Day {day} does not exist in that month: it has {last} days{leap}. Ask the caller \
             for the date again."
        )));
    };
    if date > today {
        return Err(InvalidInput::new(format!(
            "{} is in the future, so it cannot be a date of birth. Ask the caller for the date \
             again.",
            date.spoken()
        )));
    }
    if year < today.year() - MAX_AGE_YEARS {
        return Err(InvalidInput::new(format!(
            "{} is more than {MAX_AGE_YEARS} years ago. Ask the caller for the year again.",
            date.spoken()
        )));
    }
    Ok(date)
}

/// Checks a time of birth: hour 0–23, minute 0–59.
///
/// ```
/// use switchboard::workflows::dob::parse_time_of_birth;
/// assert_eq!(parse_time_of_birth(15, 5).unwrap().to_string(), "15:05");
/// assert!(parse_time_of_birth(25, 0).is_err());
/// ```
pub fn parse_time_of_birth(hour: i64, minute: i64) -> Result<TimeOfDay, InvalidInput> {
    u32::try_from(hour)
        .ok()
        .zip(u32::try_from(minute).ok())
        .and_then(|(h, m)| TimeOfDay::new(h, m))
        .ok_or_else(|| {
            InvalidInput::new(format!(
                "{hour}:{minute:02} is not a time of day; use a 24-hour clock, hours 0 to 23 and \
                 minutes 0 to 59."
            ))
        })
}
