//! The scheduler's pure decision: given the time, the task's schedule and what is known
//! of its runs, what to do now. [`Decision`]'s `Display` is the reason in words. Tests
//! drive it with a fake clock (plain milliseconds); nothing here touches the world.
//!
//! Rules:
//! - A slot is a time the cron expression names. `last_slot_ms` is the last slot dealt
//!   with (run, skipped, queued or recorded as missed); only later slots are due.
//! - Of the slots due now, the latest runs if it is at most [`GRACE_MS`] late; every
//!   other one is *missed*: recorded once as a stretch (count, first, last) and never
//!   replayed, so an outage does not end in a burst of runs.
//! - While a run is in progress, a due slot follows the task's overlap policy: `skip`
//!   records it as skipped, `kill` ends the running one and starts the new one, `queue`
//!   lets it wait for the running one (one slot waits at most; a second is skipped).
//! - A queued slot starts as soon as nothing runs.

use crate::section::Overlap;
use chrono::{Local, TimeZone};
use std::fmt;

/// How late a slot may start and still run; later than that it is missed.
pub const GRACE_MS: u64 = 5_000;
/// Most due slots counted one by one (a per-second schedule after a long outage).
const COUNT_CAP: u64 = 100_000;

/// A parsed schedule, evaluated in the server's local time.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    text: String,
}

impl Schedule {
    /// Parses a cron expression (5 fields, or 6 with seconds first).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        Ok(Schedule { cron: crate::section::schedule(text)?, text: text.to_string() })
    }

    /// The first slot strictly after `ms` (ms since the Unix epoch), if any.
    pub fn next_after(&self, ms: u64) -> Option<u64> {
        let t = Local.timestamp_millis_opt(ms as i64).single()?;
        let next = self.cron.find_next_occurrence(&t, false).ok()?;
        u64::try_from(next.timestamp_millis()).ok()
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// A run in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Running {
    /// Its run id.
    pub id: u64,
    /// When it started, ms since the Unix epoch.
    pub started_ms: u64,
}

/// What the scheduler knows when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// Now, ms since the Unix epoch.
    pub now_ms: u64,
    /// The last slot dealt with.
    pub last_slot_ms: u64,
    /// The run in progress, if any.
    pub running: Option<Running>,
    /// A slot waiting for the running one to end (overlap `queue`).
    pub queued_ms: Option<u64>,
    /// The task's overlap policy.
    pub overlap: Overlap,
}

/// Slots that passed while nobody could run them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missed {
    /// How many (at least, past [`COUNT_CAP`]).
    pub count: u64,
    /// The first one.
    pub first_ms: u64,
    /// The last one.
    pub last_ms: u64,
}

/// What to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing is due; the next slot is at `until_ms` (`None`: the schedule names no
    /// later time).
    Wait {
        /// The next slot.
        until_ms: Option<u64>,
    },
    /// Start a run for `slot_ms`.
    Run {
        /// The slot.
        slot_ms: u64,
        /// Slots missed before it.
        missed: Option<Missed>,
        /// True when the slot waited in the queue.
        queued: bool,
    },
    /// Record `slot_ms` as skipped: run `running` is still in progress.
    Skip {
        /// The slot.
        slot_ms: u64,
        /// The run in progress.
        running: u64,
        /// Slots missed before it.
        missed: Option<Missed>,
        /// True when a queued slot already waits (overlap `queue`).
        queue_full: bool,
    },
    /// End run `running`, then start a run for `slot_ms` (overlap `kill`).
    KillAndRun {
        /// The slot.
        slot_ms: u64,
        /// The run to end.
        running: u64,
        /// Slots missed before it.
        missed: Option<Missed>,
    },
    /// Let `slot_ms` wait for run `running` to end (overlap `queue`).
    Queue {
        /// The slot.
        slot_ms: u64,
        /// The run in progress.
        running: u64,
        /// Slots missed before it.
        missed: Option<Missed>,
    },
    /// Every due slot is too late: record them as missed, run none.
    Missed(Missed),
}

impl Decision {
    /// The missed stretch this decision records, if any.
    pub fn missed(&self) -> Option<Missed> {
        match *self {
            Decision::Run { missed, .. }
            | Decision::Skip { missed, .. }
            | Decision::KillAndRun { missed, .. }
            | Decision::Queue { missed, .. } => missed,
            Decision::Missed(m) => Some(m),
            Decision::Wait { .. } => None,
        }
    }
}

/// Decides what to do at `s.now_ms`.
pub fn decide(schedule: &Schedule, s: &Snapshot) -> Decision {
    if s.running.is_none() {
        if let Some(q) = s.queued_ms {
            return Decision::Run { slot_ms: q, missed: None, queued: true };
        }
    }
    // Walk the due slots: the latest is a candidate, the others are missed.
    let mut latest: Option<u64> = None;
    let mut missed: Option<Missed> = None;
    let mut at = s.last_slot_ms;
    let mut counted = 0;
    while let Some(next) = schedule.next_after(at) {
        if next > s.now_ms {
            break;
        }
        if let Some(prev) = latest {
            missed = Some(match missed {
                Some(m) => Missed { count: m.count + 1, last_ms: prev, ..m },
                None => Missed { count: 1, first_ms: prev, last_ms: prev },
            });
        }
        latest = Some(next);
        at = next;
        counted += 1;
        if counted >= COUNT_CAP {
            // Far behind: jump to the slots just before now and count no further.
            at = s.now_ms.saturating_sub(GRACE_MS + 1);
            counted = 0;
        }
    }
    let Some(slot) = latest else {
        return Decision::Wait { until_ms: schedule.next_after(s.now_ms.max(s.last_slot_ms)) };
    };
    if s.now_ms - slot > GRACE_MS {
        let m = match missed {
            Some(m) => Missed { count: m.count + 1, last_ms: slot, ..m },
            None => Missed { count: 1, first_ms: slot, last_ms: slot },
        };
        return Decision::Missed(m);
    }
    match (s.running, s.overlap) {
        (None, _) => Decision::Run { slot_ms: slot, missed, queued: false },
        (Some(r), Overlap::Skip) => Decision::Skip { slot_ms: slot, running: r.id, missed, queue_full: false },
        (Some(r), Overlap::Kill) => Decision::KillAndRun { slot_ms: slot, running: r.id, missed },
        (Some(r), Overlap::Queue) if s.queued_ms.is_some() => Decision::Skip { slot_ms: slot, running: r.id, missed, queue_full: true },
        (Some(r), Overlap::Queue) => Decision::Queue { slot_ms: slot, running: r.id, missed },
    }
}

/// What a manual run (`POST /api/v1/tasks/{name}/run`) does, by the same overlap policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manual {
    /// Start now.
    Start,
    /// Refused: run `running` is in progress (overlap `skip`, or the queue is full).
    Refuse {
        /// The run in progress.
        running: u64,
    },
    /// End run `running`, then start (overlap `kill`).
    KillAndStart {
        /// The run to end.
        running: u64,
    },
    /// Start when run `running` ends (overlap `queue`).
    Queue {
        /// The run in progress.
        running: u64,
    },
}

/// Decides a manual run.
pub fn decide_manual(running: Option<Running>, queued: bool, overlap: Overlap) -> Manual {
    match (running, overlap) {
        (None, _) => Manual::Start,
        (Some(r), Overlap::Skip) => Manual::Refuse { running: r.id },
        (Some(r), Overlap::Kill) => Manual::KillAndStart { running: r.id },
        (Some(r), Overlap::Queue) if queued => Manual::Refuse { running: r.id },
        (Some(r), Overlap::Queue) => Manual::Queue { running: r.id },
    }
}

/// `2026-11-21 03:30:00` in the server's local time.
pub fn local(ms: u64) -> String {
    Local.timestamp_millis_opt(ms as i64).single().map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| ms.to_string())
}

impl fmt::Display for Missed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 1 {
            write!(f, "the slot of {} was missed (no instance could run it in time); it is not run late", local(self.first_ms))
        } else {
            write!(
                f,
                "{} slots from {} to {} were missed (no instance could run them in time); they are not run late",
                self.count,
                local(self.first_ms),
                local(self.last_ms)
            )
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let missed = |f: &mut fmt::Formatter<'_>, m: &Option<Missed>| match m {
            Some(m) => write!(f, "; {m}"),
            None => Ok(()),
        };
        match self {
            Decision::Wait { until_ms: Some(t) } => {
                write!(f, "waiting for the next slot at {}", local(*t))
            }
            Decision::Wait { until_ms: None } => {
                write!(f, "the schedule names no later time; nothing more will run")
            }
            Decision::Run { slot_ms, missed: m, queued: true } => {
                write!(f, "running the queued slot of {} now that the previous run ended", local(*slot_ms))?;
                missed(f, m)
            }
            Decision::Run { slot_ms, missed: m, .. } => {
                write!(f, "running the slot of {}", local(*slot_ms))?;
                missed(f, m)
            }
            Decision::Skip { slot_ms, running, missed: m, queue_full } => {
                if *queue_full {
                    write!(
                        f,
                        "skipping the slot of {}: run {running} is still in progress and a slot already waits for it (overlap queue)",
                        local(*slot_ms)
                    )?;
                } else {
                    write!(f, "skipping the slot of {}: run {running} is still in progress (overlap skip)", local(*slot_ms))?;
                }
                missed(f, m)
            }
            Decision::KillAndRun { slot_ms, running, missed: m } => {
                write!(f, "ending run {running}, still in progress, to run the slot of {} (overlap kill)", local(*slot_ms))?;
                missed(f, m)
            }
            Decision::Queue { slot_ms, running, missed: m } => {
                write!(f, "the slot of {} waits for run {running} to end (overlap queue)", local(*slot_ms))?;
                missed(f, m)
            }
            Decision::Missed(m) => write!(f, "{m}"),
        }
    }
}

impl fmt::Display for Manual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Manual::Start => write!(f, "started on request"),
            Manual::Refuse { running } => write!(f, "refused: run {running} is still in progress (overlap skip, or a slot already waits)"),
            Manual::KillAndStart { running } => write!(f, "ending run {running}, then starting on request (overlap kill)"),
            Manual::Queue { running } => write!(f, "queued on request: starts when run {running} ends (overlap queue)"),
        }
    }
}
