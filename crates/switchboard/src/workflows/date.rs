//! Small calendar types for the prebuilt tasks: [`CalendarDate`] (a proleptic Gregorian date,
//! serialised as `"YYYY-MM-DD"`) and [`TimeOfDay`] (`"HH:MM"`), with the civil-date arithmetic
//! they need. No time zones: "today" is the UTC date of the system clock unless a task is given
//! another.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// True for leap years of the Gregorian calendar.
///
/// ```
/// use switchboard::workflows::date::is_leap_year;
/// assert!(is_leap_year(2024) && is_leap_year(2000));
/// assert!(!is_leap_year(1900) && !is_leap_year(2023));
/// ```
pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The number of days of `month` (1–12) in `year`; `None` for another month number.
pub fn days_in_month(year: i32, month: u32) -> Option<u32> {
    Some(match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => return None,
    })
}

/// A calendar date between the years 1 and 9999. Orders chronologically; displays and
/// serialises as `"YYYY-MM-DD"`.
///
/// ```
/// use switchboard::workflows::date::CalendarDate;
/// let date = CalendarDate::new(2024, 2, 29).unwrap();
/// assert_eq!(date.to_string(), "2024-02-29");
/// assert_eq!("2024-02-29".parse::<CalendarDate>().unwrap(), date);
/// assert!(CalendarDate::new(2023, 2, 29).is_none());
/// assert_eq!(CalendarDate::from_days_since_epoch(0).to_string(), "1970-01-01");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CalendarDate {
    year: i32,
    month: u8,
    day: u8,
}

impl CalendarDate {
    /// The date, if it exists (year 1–9999, month 1–12, day within the month).
    pub fn new(year: i32, month: u32, day: u32) -> Option<Self> {
        if !(1..=9999).contains(&year) {
            return None;
        }
        let last = days_in_month(year, month)?;
        if day == 0 || day > last {
            return None;
        }
        Some(CalendarDate {
            year,
            month: month as u8,
            day: day as u8,
        })
    }

    /// The year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The month, 1–12.
    pub fn month(&self) -> u32 {
        u32::from(self.month)
    }

    /// The day of the month, 1–31.
    pub fn day(&self) -> u32 {
        u32::from(self.day)
    }

    /// Today's date in UTC, from the system clock (1970-01-01 if the clock is before it).
    pub fn today() -> Self {
        let days = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or(0);
        Self::from_days_since_epoch(i64::try_from(days).unwrap_or(0))
    }

    /// The date `days` days after 1970-01-01 (clamped to the years 1–9999).
    pub fn from_days_since_epoch(days: i64) -> Self {
        const MIN: i64 = -719_162; // 0001-01-01
        const MAX: i64 = 2_932_896; // 9999-12-31
        let z = days.clamp(MIN, MAX) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        CalendarDate {
            year: year as i32,
            month: month as u8,
            day: day as u8,
        }
    }

    /// Days since 1970-01-01 (negative before it).
    pub fn days_since_epoch(&self) -> i64 {
        let month = i64::from(self.month);
        let year = i64::from(self.year) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date as words for reading aloud: `"March 14, 1985"`.
    pub fn spoken(&self) -> String {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let month = MONTHS
            .get(usize::from(self.month).saturating_sub(1))
            .copied()
            .unwrap_or("?");
        format!("{month} {}, {}", self.day, self.year)
    }
}

impl fmt::Display for CalendarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// `CalendarDate::from_str` was not given a `YYYY-MM-DD` date that exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a date in the form YYYY-MM-DD: {0:?}")]
pub struct ParseDateError(pub String);

impl FromStr for CalendarDate {
    type Err = ParseDateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || ParseDateError(s.to_owned());
        let mut parts = s.trim().split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(error());
        };
        let digits = |p: &str, len: usize| p.len() == len && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
            return Err(error());
        }
        let (Ok(y), Ok(m), Ok(d)) = (y.parse(), m.parse(), d.parse()) else {
            return Err(error());
        };
        CalendarDate::new(y, m, d).ok_or_else(error)
    }
}

impl Serialize for CalendarDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CalendarDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A time of day to the minute, on a 24-hour clock; displays and serialises as `"HH:MM"`.
///
/// ```
/// use switchboard::workflows::date::TimeOfDay;
/// assert_eq!(TimeOfDay::new(8, 5).unwrap().to_string(), "08:05");
/// assert!(TimeOfDay::new(24, 0).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
}

impl TimeOfDay {
    /// The time, if `hour` is 0–23 and `minute` 0–59.
    pub fn new(hour: u32, minute: u32) -> Option<Self> {
        (hour < 24 && minute < 60).then_some(TimeOfDay {
            hour: hour as u8,
            minute: minute as u8,
        })
    }

    /// The hour, 0–23.
    pub fn hour(&self) -> u32 {
        u32::from(self.hour)
    }

    /// The minute, 0–59.
    pub fn minute(&self) -> u32 {
        u32::from(self.minute)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let invalid =
            || serde::de::Error::custom(format!("not a time in the form HH:MM: {text:?}"));
        let (h, m) = text.split_once(':').ok_or_else(invalid)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(invalid());
        }
        let (Ok(h), Ok(m)) = (h.parse(), m.parse()) else {
            return Err(invalid());
        };
        TimeOfDay::new(h, m).ok_or_else(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_across_eras() {
        for days in [-719_162, -1, 0, 1, 10_956, 11_016, 19_782, 2_932_896] {
            let date = CalendarDate::from_days_since_epoch(days);
            assert_eq!(date.days_since_epoch(), days, "{date}");
        }
        assert_eq!(
            CalendarDate::from_days_since_epoch(11_016).to_string(),
            "2000-02-29"
        );
        assert_eq!(
            CalendarDate::from_days_since_epoch(-1).to_string(),
            "1969-12-31"
        );
        assert_eq!(
            CalendarDate::from_days_since_epoch(i64::MAX).to_string(),
            "9999-12-31"
        );
        // Every day of four centuries, one after another.
        let mut previous = CalendarDate::from_days_since_epoch(-146_097);
        for days in -146_096..146_097 {
            let date = CalendarDate::from_days_since_epoch(days);
            assert!(date > previous);
            assert_eq!(date.days_since_epoch(), days);
            assert!(CalendarDate::new(date.year(), date.month(), date.day()).is_some());
            previous = date;
        }
    }

    #[test]
    fn parsing_and_serde() {
        for bad in [
            "2023-02-29",
            "2023-13-01",
            "23-01-01",
            "2023-1-01",
            "",
            "2023-01-01-01",
        ] {
            assert!(bad.parse::<CalendarDate>().is_err(), "{bad}");
        }
        let date = CalendarDate::new(1985, 3, 14).unwrap();
        let json = serde_json::to_value(date).unwrap();
        assert_eq!(json, "1985-03-14");
        assert_eq!(serde_json::from_value::<CalendarDate>(json).unwrap(), date);
        let time = TimeOfDay::new(23, 59).unwrap();
        assert_eq!(serde_json::to_value(time).unwrap(), "23:59");
        assert_eq!(
            serde_json::from_value::<TimeOfDay>("07:30".into()).unwrap(),
            TimeOfDay::new(7, 30).unwrap()
        );
        assert!(serde_json::from_value::<TimeOfDay>("7:30".into()).is_err());
        assert_eq!(date.spoken(), "March 14, 1985");
    }
}
