//! The edge proxies (sg): each is sent OPTIONS every `sg_check.interval_ms`; the pure
//! [`decide`] counts failures in a row and says when an sg is lost (`fail_after`), and
//! [`clean`] then removes from the registrar every contact whose Path names it
//! (`ul.dump`, then `ul.rm_contact` per contact), so calls stop ringing into dead
//! connections. Contacts through the other sg stay; when a lost sg answers again nothing
//! is restored (its phones register again).

use mware_sip::Registrar;
use serde::Serialize;
use std::fmt;
use std::net::SocketAddr;

/// What is known of one sg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SgView {
    /// Its name.
    pub name: String,
    /// `up`, `failing` (some checks failed, not yet `fail_after`), `lost` or `unknown`.
    pub state: String,
    /// Failed checks in a row.
    pub failures: u32,
    /// Since when `state` holds, ms since the Unix epoch.
    pub since_ms: u64,
    /// The last answer or failure, in words.
    pub last_answer: String,
    /// Contacts removed from the registrar when it was last lost.
    pub removed: u64,
}

/// The decision after one check of an sg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It answered (and was not lost).
    Up,
    /// It failed `n` checks in a row, fewer than `of`.
    Failing {
        /// Failures in a row.
        n: u32,
        /// `fail_after`.
        of: u32,
    },
    /// It failed `n` = `fail_after` checks in a row: remove its contacts now.
    Lost {
        /// Failures in a row.
        n: u32,
    },
    /// Still lost (its contacts were removed when it was lost).
    StillLost,
    /// It answers again after it was lost: nothing is restored.
    Back,
}

impl Decision {
    /// Whether this decision starts a new state to announce.
    pub fn changes(&self, was: &str) -> bool {
        match self {
            Decision::Up => was != "up",
            Decision::Failing { n, .. } => *n == 1,
            Decision::Lost { .. } | Decision::Back => true,
            Decision::StillLost => false,
        }
    }

    /// The state after it.
    pub fn state(&self) -> &'static str {
        match self {
            Decision::Up | Decision::Back => "up",
            Decision::Failing { .. } => "failing",
            Decision::Lost { .. } | Decision::StillLost => "lost",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Up => write!(f, "answers OPTIONS"),
            Decision::Failing { n, of } => write!(f, "failed {n} check(s) in a row, lost after {of}"),
            Decision::Lost { n } => write!(f, "lost: {n} checks failed in a row; its contacts leave the registrar"),
            Decision::StillLost => write!(f, "still lost"),
            Decision::Back => write!(f, "answers again after it was lost; nothing is restored (its phones register again)"),
        }
    }
}

/// After a check: `failures` in a row before it, whether it was lost, whether this one
/// answered, and `fail_after`.
pub fn decide(failures: u32, lost: bool, answered: bool, fail_after: u32) -> Decision {
    match (answered, lost) {
        (true, true) => Decision::Back,
        (true, false) => Decision::Up,
        (false, true) => Decision::StillLost,
        (false, false) if failures + 1 >= fail_after => Decision::Lost { n: failures + 1 },
        (false, false) => Decision::Failing { n: failures + 1, of: fail_after },
    }
}

/// Removes every contact whose Path names `via`; how many were removed.
pub async fn clean(registrar: &Registrar, via: SocketAddr, sg: &str) -> Result<u64, mware_sip::RegistrarError> {
    let mut n = 0;
    for b in registrar.dump().await? {
        let through = b.path.as_deref().is_some_and(|p| mware_sip::addr::path_addrs(p).contains(&via));
        if through && registrar.rm_contact(&b.aor, &b.contact).await? {
            tracing::info!(sg, aor = %b.aor, contact = %b.contact, "removed a contact registered through a lost sg");
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sg_is_lost_after_fail_after_failures_and_nothing_is_restored() {
        assert_eq!(decide(0, false, true, 3), Decision::Up);
        assert_eq!(decide(0, false, false, 3), Decision::Failing { n: 1, of: 3 });
        assert_eq!(decide(1, false, true, 3), Decision::Up, "a success resets the count");
        assert_eq!(decide(2, false, false, 3), Decision::Lost { n: 3 });
        assert_eq!(decide(3, true, false, 3), Decision::StillLost);
        assert_eq!(decide(3, true, true, 3), Decision::Back);
        assert_eq!(decide(0, false, false, 1), Decision::Lost { n: 1 });
        assert!(Decision::Lost { n: 3 }.to_string().contains("leave the registrar"));
        assert!(Decision::Back.to_string().contains("nothing is restored"));
        assert!(!Decision::StillLost.changes("lost") && Decision::Up.changes("failing") && !Decision::Up.changes("up"));
    }
}
