//! The pure decision of a probe's state: from its current state, its counters and the
//! result of one check, whether the state changes, with the reason in words.
//!
//! - A new probe is `unknown`; its first success makes it `ok` at once; it turns
//!   `failing` after `fail_after` consecutive failures.
//! - `ok` turns `failing` after `fail_after` consecutive failures; fewer are tolerated
//!   (flapping is not reported).
//! - `failing` turns `ok` after `recover_after` consecutive successes.

use std::fmt;

pub use mware_host::items::Health;

/// A probe's state and its counters of consecutive results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    /// Current state.
    pub health: Health,
    /// Consecutive failures so far.
    pub failures: u32,
    /// Consecutive successes so far.
    pub successes: u32,
}

impl Tracker {
    /// A probe in `health` (restored after a failover, or `unknown`), counters at zero.
    pub fn new(health: Health) -> Self {
        Tracker { health, failures: 0, successes: 0 }
    }
}

/// The result of one check: `Ok(detail)` or `Err(why)`, in words.
pub type Check = Result<String, String>;

/// What one result does to the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The state stays.
    Stay {
        /// The state.
        health: Health,
        /// Why, in words.
        reason: String,
    },
    /// The state changes.
    Become {
        /// The new state.
        health: Health,
        /// Why, in words.
        reason: String,
    },
}

impl Decision {
    /// The state after the decision.
    pub fn health(&self) -> Health {
        match self {
            Decision::Stay { health, .. } | Decision::Become { health, .. } => *health,
        }
    }
    /// The reason in words.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Stay { reason, .. } | Decision::Become { reason, .. } => reason,
        }
    }
    /// True when the state changes.
    pub fn changed(&self) -> bool {
        matches!(self, Decision::Become { .. })
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

fn times(n: u32) -> String {
    if n == 1 {
        "1 check".into()
    } else {
        format!("{n} checks")
    }
}

/// Applies one result to `t` (its counters) and decides the state.
pub fn decide(t: &mut Tracker, check: &Check, fail_after: u32, recover_after: u32) -> Decision {
    match check {
        Ok(detail) => {
            t.failures = 0;
            t.successes = t.successes.saturating_add(1);
            match t.health {
                Health::Ok => Decision::Stay { health: Health::Ok, reason: format!("ok: {detail}") },
                Health::Failing | Health::Warning if t.successes < recover_after => Decision::Stay {
                    health: t.health,
                    reason: format!("still failing: {} of {recover_after} consecutive successes needed to recover ({detail})", t.successes),
                },
                Health::Unknown => {
                    t.health = Health::Ok;
                    Decision::Become { health: Health::Ok, reason: format!("ok: first check succeeded ({detail})") }
                }
                Health::Failing | Health::Warning => {
                    t.health = Health::Ok;
                    Decision::Become {
                        health: Health::Ok,
                        reason: format!(
                            "ok again after {} in a row succeeded (recover_after {recover_after}): {detail}",
                            times(t.successes)
                        ),
                    }
                }
            }
        }
        Err(why) => {
            t.successes = 0;
            t.failures = t.failures.saturating_add(1);
            match t.health {
                Health::Failing => {
                    Decision::Stay { health: Health::Failing, reason: format!("failing for {} in a row: {why}", times(t.failures)) }
                }
                h if t.failures < fail_after => Decision::Stay {
                    health: h,
                    reason: format!(
                        "{}: {} of {fail_after} consecutive failures needed to report it failing ({why})",
                        h.as_str(),
                        t.failures
                    ),
                },
                _ => {
                    t.health = Health::Failing;
                    Decision::Become {
                        health: Health::Failing,
                        reason: format!("failing: {} in a row failed (fail_after {fail_after}): {why}", times(t.failures)),
                    }
                }
            }
        }
    }
}
