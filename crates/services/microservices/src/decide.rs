//! The pure restart decision: how a process ended, its recent restarts and its policy →
//! restart after a pause, or give up (shown `failed`), or leave it stopped; the
//! [`Decision`]'s `Display` is the reason in words. Tested without starting anything.

use crate::section::{Process, Restart};
use backon::{BackoffBuilder, ExponentialBuilder};
use std::fmt;
use std::time::Duration;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl Exit {
    /// True for an exit with 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited with {c}"),
            Exit::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(*s).map(|s| s.as_str()).unwrap_or("?");
                write!(f, "ended by signal {s} ({name})")
            }
        }
    }
}

/// What the decision looks at.
#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    /// The process's policy.
    pub policy: &'a Process,
    /// How it ended this time.
    pub exit: Exit,
    /// When it was restarted before (ms since the epoch), oldest first.
    pub restarts_ms: &'a [u64],
    /// Now, ms since the epoch.
    pub now_ms: u64,
}

/// What to do with a process that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after `after`.
    Restart {
        /// The pause.
        after: Duration,
        /// Restarts within the window, this one included.
        attempt: u32,
        /// Why, in words.
        reason: String,
    },
    /// Give up: shown `failed` until an operator starts it.
    GiveUp {
        /// Why, in words.
        reason: String,
    },
    /// Leave it stopped (its policy does not restart after this exit).
    Leave {
        /// Why, in words.
        reason: String,
    },
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Restart { reason, .. } | Decision::GiveUp { reason } | Decision::Leave { reason } => f.write_str(reason),
        }
    }
}

/// The pause before restart number `attempt` (1-based): `backoff_ms` doubled per
/// attempt, capped at `backoff_max_ms` (backon's exponential steps, no jitter, so the
/// decision stays pure).
pub fn pause(policy: &Process, attempt: u32) -> Duration {
    let steps = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(policy.backoff_ms))
        .with_max_delay(Duration::from_millis(policy.backoff_max_ms.max(policy.backoff_ms)))
        .with_factor(2.0)
        .without_max_times();
    steps.build().nth(attempt.saturating_sub(1) as usize).unwrap_or(Duration::from_millis(policy.backoff_max_ms))
}

/// Decides what happens to a process that ended.
pub fn decide(s: &Snapshot) -> Decision {
    let p = s.policy;
    let wants = match p.restart {
        Restart::Always => true,
        Restart::OnFailure => !s.exit.success(),
        Restart::Never => false,
    };
    if !wants {
        let policy = match p.restart {
            Restart::Never => "never",
            _ => "on-failure",
        };
        return Decision::Leave { reason: format!("{} {}; restart policy {policy}: left stopped", p.name, s.exit) };
    }
    let window_ms = p.restart_window_s * 1000;
    let recent = s.restarts_ms.iter().filter(|t| s.now_ms.saturating_sub(**t) < window_ms).count() as u32;
    if recent >= p.max_restarts {
        return Decision::GiveUp {
            reason: format!(
                "{} {}; already restarted {recent} time(s) in the last {} s (max_restarts {}): failed, left stopped until an operator starts it",
                p.name, s.exit, p.restart_window_s, p.max_restarts
            ),
        };
    }
    let attempt = recent + 1;
    let after = pause(p, attempt);
    Decision::Restart {
        after,
        attempt,
        reason: format!(
            "{} {}; restart {attempt} of at most {} in {} s, after {} ms",
            p.name,
            s.exit,
            p.max_restarts,
            p.restart_window_s,
            after.as_millis()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(restart: Restart) -> Process {
        serde_json::from_value(serde_json::json!({"name": "p", "argv": ["/bin/true"], "restart": match restart {
            Restart::Always => "always", Restart::OnFailure => "on-failure", Restart::Never => "never" },
            "backoff_ms": 100, "backoff_max_ms": 1000, "max_restarts": 3, "restart_window_s": 10}))
        .unwrap()
    }

    #[test]
    fn backs_off_doubling_up_to_the_cap_then_gives_up() {
        let p = policy(Restart::Always);
        let now = 100_000;
        let mut restarts = vec![];
        let mut pauses = vec![];
        loop {
            match decide(&Snapshot { policy: &p, exit: Exit::Code(1), restarts_ms: &restarts, now_ms: now }) {
                Decision::Restart { after, attempt, reason } => {
                    assert!(reason.contains("exited with 1"), "{reason}");
                    assert_eq!(attempt as usize, restarts.len() + 1);
                    pauses.push(after.as_millis());
                    restarts.push(now - 1);
                }
                Decision::GiveUp { reason } => {
                    assert!(reason.contains("already restarted 3 time(s) in the last 10 s"), "{reason}");
                    break;
                }
                d => panic!("{d}"),
            }
        }
        assert_eq!(pauses, vec![100, 200, 400]);
        let p = Process { max_restarts: 10, ..p };
        assert_eq!(pause(&p, 8).as_millis(), 1000, "capped");
    }

    #[test]
    fn restarts_outside_the_window_do_not_count() {
        let p = policy(Restart::Always);
        let old = [1_000, 2_000, 3_000];
        let d = decide(&Snapshot { policy: &p, exit: Exit::Signal(9), restarts_ms: &old, now_ms: 60_000 });
        assert!(matches!(d, Decision::Restart { attempt: 1, .. }), "{d}");
        assert!(d.to_string().contains("ended by signal 9 (SIGKILL)"), "{d}");
    }

    #[test]
    fn policies_on_failure_and_never() {
        let p = policy(Restart::OnFailure);
        let ok = decide(&Snapshot { policy: &p, exit: Exit::Code(0), restarts_ms: &[], now_ms: 1 });
        assert_eq!(ok, Decision::Leave { reason: "p exited with 0; restart policy on-failure: left stopped".into() });
        assert!(matches!(decide(&Snapshot { policy: &p, exit: Exit::Code(2), restarts_ms: &[], now_ms: 1 }), Decision::Restart { .. }));
        let p = policy(Restart::Never);
        assert!(matches!(decide(&Snapshot { policy: &p, exit: Exit::Code(2), restarts_ms: &[], now_ms: 1 }), Decision::Leave { .. }));
    }
}
