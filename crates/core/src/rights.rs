//! Data-subject requests (DESIGN §3, S34): access, copy, correction, deletion, withdrawal of
//! consent, the access log. Each request is due a number of working days after it arrives —
//! 7, or 15 for an early deletion — on a calendar that knows weekends, public holidays and
//! the weekend days that are worked instead (调休).

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Access,
    Copy,
    Correction,
    Deletion,
    WithdrawConsent,
    AccessLog,
}

impl RequestKind {
    pub const ALL: [RequestKind; 6] = [
        RequestKind::Access,
        RequestKind::Copy,
        RequestKind::Correction,
        RequestKind::Deletion,
        RequestKind::WithdrawConsent,
        RequestKind::AccessLog,
    ];

    pub fn parse(text: &str) -> Option<RequestKind> {
        RequestKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Access => "access",
            RequestKind::Copy => "copy",
            RequestKind::Correction => "correction",
            RequestKind::Deletion => "deletion",
            RequestKind::WithdrawConsent => "withdraw_consent",
            RequestKind::AccessLog => "access_log",
        }
    }

    /// Working days the archive has to answer.
    pub fn working_days(self) -> u32 {
        match self {
            RequestKind::Deletion => 15,
            _ => 7,
        }
    }
}

/// Which days are worked: Monday to Friday, except public holidays, plus the weekend days
/// declared working days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkCalendar {
    pub holidays: BTreeSet<NaiveDate>,
    pub worked_weekend_days: BTreeSet<NaiveDate>,
}

impl Default for WorkCalendar {
    /// The mainland public holidays of 2026 as the State Council announced them.
    fn default() -> Self {
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).expect("a real date");
        let span = |m, from, to| (from..=to).map(move |d| day(m, d));
        let holidays = span(1, 1, 3)
            .chain(span(2, 15, 23))
            .chain(span(4, 4, 6))
            .chain(span(5, 1, 5))
            .chain(span(6, 19, 21))
            .chain(span(9, 25, 27))
            .chain(span(10, 1, 7))
            .collect();
        let worked_weekend_days =
            [day(1, 4), day(2, 14), day(2, 28), day(5, 9), day(9, 20), day(10, 10)].into_iter().collect();
        WorkCalendar { holidays, worked_weekend_days }
    }
}

impl WorkCalendar {
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.worked_weekend_days.contains(&date) {
            return true;
        }
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&date)
    }

    /// The last day to answer a request that arrived on `submitted`: the count starts on the
    /// next working day.
    pub fn due_date(&self, kind: RequestKind, submitted: NaiveDate) -> NaiveDate {
        let mut date = submitted;
        let mut left = kind.working_days();
        while left > 0 {
            date = date.succ_opt().expect("a date before the end of time");
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        date
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    #[test]
    fn seven_working_days_skip_weekends() {
        let c = WorkCalendar::default();
        // Monday 2026-11-23 → Tuesday 12-02 (24–27, 30, 1, 2).
        assert_eq!(c.due_date(RequestKind::Access, d(11, 23)), d(12, 2));
        assert_eq!(c.due_date(RequestKind::Deletion, d(11, 23)), d(12, 14), "15 for deletion");
    }

    #[test]
    fn national_day_and_its_worked_saturday() {
        let c = WorkCalendar::default();
        assert!(!c.is_working_day(d(10, 5)), "a holiday on a Monday");
        assert!(c.is_working_day(d(10, 10)), "a worked Saturday");
        assert!(c.is_working_day(d(9, 20)), "a worked Sunday");
        // Wednesday 09-30: 10-08, 09, 10 (Sat, worked), 12, 13, 14, 15.
        assert_eq!(c.due_date(RequestKind::Copy, d(9, 30)), d(10, 15));
    }

    #[test]
    fn kinds_read_as_the_api_writes_them() {
        assert_eq!(RequestKind::parse("withdraw_consent"), Some(RequestKind::WithdrawConsent));
        assert_eq!(RequestKind::parse("access_log").map(RequestKind::as_str), Some("access_log"));
        assert_eq!(RequestKind::parse("anything"), None);
    }
}
