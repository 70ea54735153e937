//! The schedule as a pure decision: `decide(now, schedule, history)` says whether a run
//! starts now or when to look again, and why, in words. It touches nothing; the service
//! acts on it.
//!
//! Rules (seed: `hours_interval`, `weekdays`; issue 14):
//! - `now` is the server's local time. A window `[from, to]` opens at `from`:00 and
//!   closes at the end of hour `to` (`[20, 3]`: 20:00 to 03:59:59), wrapping past
//!   midnight when `to < from`. It belongs to the day it opens on: its weekday (1 =
//!   Monday) must be in `weekdays`, and the hours after midnight still count for it.
//! - One complete run per window: a window whose run is done waits for the next one.
//! - After a failed run, the next try comes no sooner than [`RETRY_AFTER_MIN`] minutes
//!   later, while the same window is still open; else in the next window.
//! - A run cut short by a failover is not a failure of the backup: the next active
//!   instance cleans it up and the schedule runs it again at once.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use std::fmt;

/// Minutes between a failed run and the next try (the seed's "20 minutes at the earliest").
pub const RETRY_AFTER_MIN: i64 = 20;

/// When runs may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// First hour of the window (0..=23).
    pub from: u32,
    /// Last hour of the window (0..=23); below `from`: the window wraps past midnight.
    pub to: u32,
    /// Days a window may open, 1 = Monday .. 7 = Sunday.
    pub weekdays: Vec<u32>,
}

/// What the schedule needs to know of past runs (kept in the coordinator).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The window (by the day it opened) whose scheduled run completed last.
    pub done_day: Option<NaiveDate>,
    /// Local time of the last failed run, if the last run failed.
    pub failed_at: Option<NaiveDateTime>,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start a run for the window opened on `day`.
    Run {
        /// The window's day.
        day: NaiveDate,
        /// Why, in words.
        why: String,
    },
    /// Nothing to do before `at` (local time).
    WaitUntil {
        /// When to look again at the latest.
        at: NaiveDateTime,
        /// Why, in words.
        why: String,
    },
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Run { why, .. } | Decision::WaitUntil { why, .. } => f.write_str(why),
        }
    }
}

fn hm(t: NaiveDateTime) -> String {
    t.format("%a %Y-%m-%d %H:%M").to_string()
}

impl Schedule {
    fn hours(&self) -> i64 {
        i64::from((self.to + 24 - self.from) % 24 + 1)
    }
    /// When the window of `day` opens.
    pub fn opens(&self, day: NaiveDate) -> NaiveDateTime {
        day.and_time(NaiveTime::from_hms_opt(self.from.min(23), 0, 0).unwrap_or(NaiveTime::MIN))
    }
    /// When the window of `day` closes (the first instant outside it).
    pub fn closes(&self, day: NaiveDate) -> NaiveDateTime {
        self.opens(day) + Duration::hours(self.hours())
    }
    fn runs_on(&self, day: NaiveDate) -> bool {
        self.weekdays.contains(&day.weekday().number_from_monday())
    }
    /// The day of the open window `now` is in, if any (whatever its weekday).
    fn window_of(&self, now: NaiveDateTime) -> Option<NaiveDate> {
        [now.date(), now.date().pred_opt()?].into_iter().find(|d| self.opens(*d) <= now && now < self.closes(*d))
    }
    /// The first window opening after `after`, on a listed weekday, other than `skip`'s.
    fn next_opening(&self, after: NaiveDateTime, skip: Option<NaiveDate>) -> Option<NaiveDateTime> {
        (0..=8)
            .map(|i| after.date() + Duration::days(i))
            .find(|d| self.runs_on(*d) && Some(*d) != skip && self.opens(*d) > after)
            .map(|d| self.opens(d))
    }
    fn describe(&self) -> String {
        format!("{:02}:00-{:02}:59", self.from, self.to)
    }
}

/// Whether to run now, or when to look again; with the reason in words.
pub fn decide(now: NaiveDateTime, s: &Schedule, h: &History) -> Decision {
    let next = |skip: Option<NaiveDate>, why: String| match s.next_opening(now, skip) {
        Some(at) => Decision::WaitUntil { why: format!("{why}; next window opens {}", hm(at)), at },
        None => {
            Decision::WaitUntil { at: now + Duration::days(1), why: format!("{why}; no weekday is configured, so no window ever opens") }
        }
    };
    let Some(day) = s.window_of(now).filter(|d| s.runs_on(*d)) else {
        return next(None, format!("outside the backup window ({} on weekdays {:?})", s.describe(), s.weekdays));
    };
    let window = format!("the window opened {} ({})", hm(s.opens(day)), s.describe());
    if h.done_day == Some(day) {
        return next(Some(day), format!("the backup of {window} is done"));
    }
    if let Some(f) = h.failed_at.filter(|f| s.window_of(*f) == Some(day) && *f <= now) {
        let retry = f + Duration::minutes(RETRY_AFTER_MIN);
        if now < retry {
            if retry < s.closes(day) {
                return Decision::WaitUntil {
                    at: retry,
                    why: format!(
                        "the last run failed at {}; retrying no sooner than {RETRY_AFTER_MIN} min later, at {} ({window})",
                        hm(f),
                        hm(retry)
                    ),
                };
            }
            return next(Some(day), format!("the last run failed at {} and {window} closes before {RETRY_AFTER_MIN} min pass", hm(f)));
        }
        return Decision::Run {
            day,
            why: format!("retrying: the last run failed at {}, {RETRY_AFTER_MIN} min ago or more, and {window} is still open", hm(f)),
        };
    }
    Decision::Run { day, why: format!("{window} is open and its backup is not done") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }
    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// (now, schedule, history, expected: `Ok(window day)` = run, `Err(wait until)`, words of the reason).
    type Case<'a> = (&'a str, &'a Schedule, History, Result<&'a str, &'a str>, &'a str);

    /// 2026-12-01 is a Tuesday (weekday 2).
    #[test]
    fn the_schedule_table() {
        let seed = Schedule { from: 20, to: 3, weekdays: vec![2, 4, 7] };
        let day = Schedule { from: 9, to: 17, weekdays: (1..=7).collect() };
        let none = History::default();
        let done_tue = History { done_day: Some(d("2026-12-01")), failed_at: None };
        let failed = |at: &str| History { done_day: None, failed_at: Some(t(at)) };
        let cases: Vec<Case> = vec![
            ("2026-12-01 19:59", &seed, none.clone(), Err("2026-12-01 20:00"), "outside the backup window"),
            ("2026-12-01 20:00", &seed, none.clone(), Ok("2026-12-01"), "is open and its backup is not done"),
            // Past midnight the window still belongs to Tuesday (Wednesday is not listed).
            ("2026-12-02 01:30", &seed, none.clone(), Ok("2026-12-01"), "opened Tue 2026-12-01 20:00"),
            ("2026-12-02 03:59", &seed, none.clone(), Ok("2026-12-01"), "is open"),
            ("2026-12-02 04:00", &seed, none.clone(), Err("2026-12-03 20:00"), "outside"),
            // Wednesday evening: not a listed weekday; Thursday is.
            ("2026-12-02 21:00", &seed, none.clone(), Err("2026-12-03 20:00"), "outside"),
            // Thursday 01:00 is in Wednesday's (unlisted) window: no run.
            ("2026-12-03 01:00", &seed, none.clone(), Err("2026-12-03 20:00"), "outside"),
            // One run per window: done on Tuesday, still Tuesday's window after midnight.
            ("2026-12-01 23:00", &seed, done_tue.clone(), Err("2026-12-03 20:00"), "is done"),
            ("2026-12-02 02:00", &seed, done_tue.clone(), Err("2026-12-03 20:00"), "is done"),
            // Thursday's window is another one.
            ("2026-12-03 20:30", &seed, done_tue.clone(), Ok("2026-12-03"), "is open"),
            // Retry no sooner than 20 min after a failure, while the window is open.
            ("2026-12-01 21:10", &seed, failed("2026-12-01 21:00"), Err("2026-12-01 21:20"), "no sooner than 20 min later"),
            ("2026-12-01 21:20", &seed, failed("2026-12-01 21:00"), Ok("2026-12-01"), "retrying"),
            ("2026-12-02 00:05", &seed, failed("2026-12-01 23:50"), Err("2026-12-02 00:10"), "retrying no sooner"),
            // The window closes before 20 minutes pass: next window.
            ("2026-12-02 03:50", &seed, failed("2026-12-02 03:45"), Err("2026-12-03 20:00"), "closes before 20 min pass"),
            // A failure in an earlier window does not hold this one back.
            ("2026-12-03 20:01", &seed, failed("2026-12-03 03:00"), Ok("2026-12-03"), "is open"),
            ("2026-12-03 20:01", &seed, failed("2026-12-01 21:00"), Ok("2026-12-03"), "is open"),
            // A day window, every day.
            ("2026-12-01 08:00", &day, none.clone(), Err("2026-12-01 09:00"), "outside"),
            ("2026-12-01 17:59", &day, none.clone(), Ok("2026-12-01"), "is open"),
            ("2026-12-01 18:00", &day, none.clone(), Err("2026-12-02 09:00"), "outside"),
            ("2026-12-01 12:00", &day, done_tue.clone(), Err("2026-12-02 09:00"), "is done"),
            // Sunday (7) of the seed's list.
            ("2026-12-06 22:00", &seed, done_tue.clone(), Ok("2026-12-06"), "is open"),
        ];
        for (now, s, h, expect, words) in cases {
            let got = decide(t(now), s, &h);
            match (&got, expect) {
                (Decision::Run { day, .. }, Ok(want)) => {
                    assert_eq!(*day, d(want), "at {now}: {got}")
                }
                (Decision::WaitUntil { at, .. }, Err(want)) => {
                    assert_eq!(*at, t(want), "at {now}: {got}")
                }
                _ => panic!("at {now}: expected {expect:?}, found {got:?}"),
            }
            assert!(got.to_string().contains(words), "at {now}: expected the reason to say {words:?}, found {got}");
        }
    }

    #[test]
    fn a_whole_day_window_and_no_weekdays() {
        let all = Schedule { from: 0, to: 23, weekdays: (1..=7).collect() };
        assert!(matches!(decide(t("2026-12-01 00:00"), &all, &History::default()), Decision::Run { .. }));
        assert!(matches!(decide(t("2026-12-01 23:59"), &all, &History::default()), Decision::Run { .. }));
        let done = History { done_day: Some(d("2026-12-01")), failed_at: None };
        assert_eq!(
            decide(t("2026-12-01 23:59"), &all, &done),
            Decision::WaitUntil { at: t("2026-12-02 00:00"), why: decide(t("2026-12-01 23:59"), &all, &done).to_string() }
        );
        let never = Schedule { from: 0, to: 23, weekdays: vec![] };
        assert!(decide(t("2026-12-01 10:00"), &never, &History::default()).to_string().contains("no weekday is configured"));
    }
}
