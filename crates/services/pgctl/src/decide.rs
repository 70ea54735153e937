//! The pure decision of one controller cycle: from what was observed about the two
//! servers of a group (a [`Snapshot`]) to at most one action on at most one server
//! (a [`Decision`]), whose `Display` is the reason in words.
//!
//! Rules (seed + safety):
//! - exactly one master is kept; with two masters, the one that was master last keeps
//!   the role and the other is rebuilt from it (the first in the list on a fresh state);
//! - with no reachable master, a standby is promoted only after `promote_after`, only if
//!   the referee answers (when one is set) and only if its lag is within the limit;
//! - a server is rebuilt only from a reachable master, and never when it is the only
//!   reachable server; one action per cycle;
//! - a promotion touches the signal file only when the standby watches exactly that path,
//!   and runs `pg_ctl promote` otherwise ([`crate::trigger`]).
//! - nothing is done to a server whose SSH host key is refused (not pinned, or not the
//!   pinned one): the action is held back with the refusal as the reason.

use crate::trigger::{PromoteMethod, TriggerFile};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// The role a server was observed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Observed {
    /// Answered and is not in recovery.
    Master,
    /// Answered and is in recovery.
    Standby,
    /// Did not answer.
    Unreachable,
}

/// What one cycle saw of one server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerObs {
    /// Label (`pg_host:pg_port`), used in reasons.
    pub name: String,
    /// Role seen.
    pub role: Observed,
    /// How long it has been unreachable (zero when reachable).
    #[serde(skip)]
    pub unreachable_for: Duration,
    /// Timeline, when reachable.
    pub timeline: Option<u32>,
    /// Master: current WAL LSN; standby: last replayed LSN.
    pub lsn: Option<u64>,
    /// Standby: last received LSN.
    pub receive_lsn: Option<u64>,
    /// The configured `pg_signal_filepath`, if any.
    pub signal_file: Option<String>,
    /// The trigger file the server reported watching (standbys only).
    pub trigger_file: TriggerFile,
}

/// Everything one decision needs.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The two servers, in config order.
    pub servers: [ServerObs; 2],
    /// Index of the server that was master last (persisted), if known.
    pub last_master: Option<usize>,
    /// How long no reachable master has been seen.
    pub no_master_for: Duration,
    /// Seconds to wait before promoting.
    pub promote_after: Duration,
    /// Referee result: `None` when no referee is configured.
    pub referee_ok: Option<bool>,
    /// Highest master LSN seen while it was reachable (for the lag check).
    pub last_master_lsn: Option<u64>,
    /// Maximum lag (bytes) a standby may have to be promoted.
    pub max_lag: Option<u64>,
    /// A rebuild recorded as started but not finished (by this or a former instance).
    pub pending_rebuild: Option<usize>,
    /// `rejoin: rewind`: a returning master is rejoined with pg_rewind (basebackup if that fails).
    pub rewind: bool,
    /// Per server, why its SSH host key is refused (`None`: accepted or not known yet).
    pub ssh_refused: [Option<String>; 2],
}

/// The outcome of one cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    /// One master, the other a standby (or absent): nothing to do.
    Healthy {
        /// Master index.
        master: usize,
        /// Whether the other server answers as a standby.
        standby_ok: bool,
        /// Name of the master.
        master_name: String,
        /// Name of the other server.
        other_name: String,
    },
    /// Record `master` as the group's master (the only master seen differs from the record).
    Record {
        /// Master index.
        master: usize,
        /// Its name.
        name: String,
    },
    /// Promote `target`.
    Promote {
        /// Server to promote.
        target: usize,
        /// Its name.
        name: String,
        /// The unreachable (or absent) former master's name.
        former: String,
        /// How long no master was seen, seconds.
        waited_s: u64,
        /// Whether a referee answered (false: none configured).
        referee: bool,
        /// How: `pg_ctl promote`, or the signal file when the standby watches it.
        method: PromoteMethod,
    },
    /// Turn `target` into a standby of `master`: stop it, then pg_rewind it (when `rewind`)
    /// or move its data away and take a basebackup; configure it as a standby and start it.
    Rebuild {
        /// Server to rebuild.
        target: usize,
        /// Its name.
        name: String,
        /// Master to copy from.
        master: usize,
        /// Master's name.
        master_name: String,
        /// Why.
        why: String,
        /// Try pg_rewind first (`rejoin: rewind` and the target still has its data).
        rewind: bool,
    },
    /// Do nothing yet, for the reason given.
    Wait {
        /// Reason in words.
        reason: String,
    },
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Healthy { standby_ok: true, master_name, other_name, .. } => {
                write!(f, "healthy: {master_name} is master and {other_name} is its standby")
            }
            Decision::Healthy { standby_ok: false, master_name, other_name, .. } => {
                write!(f, "{master_name} is the only master; {other_name} is unreachable and left alone until it comes back")
            }
            Decision::Record { name, .. } => write!(f, "recorded {name} as master: it is the only master seen"),
            Decision::Promote { name, former, waited_s, referee, method, .. } => {
                write!(f, "promote {name} because {former} was unreachable for {waited_s} s")?;
                if *referee {
                    write!(f, " and the referee answered")?;
                }
                write!(f, ", {method}")
            }
            Decision::Rebuild { name, master_name, why, rewind: false, .. } => {
                write!(f, "rebuild {name} as a standby of {master_name} because {why}")
            }
            Decision::Rebuild { name, master_name, why, rewind: true, .. } => {
                write!(f, "rewind {name} into a standby of {master_name} with pg_rewind (basebackup if that fails) because {why}")
            }
            Decision::Wait { reason } => f.write_str(reason),
        }
    }
}

/// Decides one cycle. Pure: no I/O, no clock.
pub fn decide(s: &Snapshot) -> Decision {
    let d = decide_roles(s);
    let target = match &d {
        Decision::Promote { target, .. } | Decision::Rebuild { target, .. } => *target,
        _ => return d,
    };
    match &s.ssh_refused[target] {
        Some(why) => Decision::Wait { reason: format!("{d}: held back, nothing is done to {}: {why}", s.servers[target].name) },
        None => d,
    }
}

/// What the roles call for, whatever SSH allows.
fn decide_roles(s: &Snapshot) -> Decision {
    let [a, b] = &s.servers;
    let masters: Vec<usize> = (0..2).filter(|&i| s.servers[i].role == Observed::Master).collect();
    match masters.as_slice() {
        [m] => {
            let m = *m;
            let o = 1 - m;
            if s.last_master != Some(m) {
                return Decision::Record { master: m, name: s.servers[m].name.clone() };
            }
            if s.pending_rebuild == Some(o) && s.servers[o].role == Observed::Unreachable {
                return Decision::Rebuild {
                    target: o,
                    name: s.servers[o].name.clone(),
                    master: m,
                    master_name: s.servers[m].name.clone(),
                    why: "a rebuild of it was started earlier and did not finish".into(),
                    rewind: false,
                };
            }
            Decision::Healthy {
                master: m,
                standby_ok: s.servers[o].role == Observed::Standby,
                master_name: s.servers[m].name.clone(),
                other_name: s.servers[o].name.clone(),
            }
        }
        [_, _] => {
            let keep = s.last_master.unwrap_or(0);
            let target = 1 - keep;
            let why = match s.last_master {
                Some(_) => format!("both are masters and {} was master last", s.servers[keep].name),
                None => format!("both are masters and {} is first in the list (no master recorded yet)", s.servers[keep].name),
            };
            Decision::Rebuild {
                target,
                name: s.servers[target].name.clone(),
                master: keep,
                master_name: s.servers[keep].name.clone(),
                why,
                rewind: s.rewind,
            }
        }
        _ => decide_no_master(s, a, b),
    }
}

/// With no master seen: the standby a promotion would pick — the last master if it is a
/// reachable standby, else the standby with the most replayed WAL, else the first.
fn candidate(s: &Snapshot) -> Option<usize> {
    let standbys: Vec<usize> = (0..2).filter(|&i| s.servers[i].role == Observed::Standby).collect();
    if standbys.is_empty() {
        return None;
    }
    Some(if let Some(l) = s.last_master.filter(|l| standbys.contains(l)) {
        l
    } else if standbys.len() == 2 {
        if s.servers[1].lsn.unwrap_or(0) > s.servers[0].lsn.unwrap_or(0) {
            1
        } else {
            0
        }
    } else {
        standbys[0]
    })
}

/// While no master is seen and a standby waits out `promote_after`: that standby and the
/// time left. The loop uses it to prepare (an SSH session opened in advance) and to wake
/// at the deadline instead of up to a check interval after it. Pure.
pub fn promotion_pending(s: &Snapshot) -> Option<(usize, std::time::Duration)> {
    if s.servers.iter().any(|o| o.role == Observed::Master) {
        return None;
    }
    let target = candidate(s)?;
    Some((target, s.promote_after.saturating_sub(s.no_master_for)))
}

fn decide_no_master(s: &Snapshot, a: &ServerObs, b: &ServerObs) -> Decision {
    let Some(target) = candidate(s) else {
        return Decision::Wait { reason: format!("no server answers ({} and {} are unreachable); nothing can be done", a.name, b.name) };
    };
    let other = &s.servers[1 - target];
    let cand = &s.servers[target];
    let former = match s.last_master {
        Some(l) if l != target => s.servers[l].name.clone(),
        _ => format!("any master ({} is {})", other.name, role_word(other.role)),
    };
    let waited = s.no_master_for.as_secs();
    if s.no_master_for < s.promote_after {
        return Decision::Wait {
            reason: format!(
                "no master for {waited} s; {} will be promoted after {} s if {former} does not come back",
                cand.name,
                s.promote_after.as_secs()
            ),
        };
    }
    if s.referee_ok == Some(false) {
        return Decision::Wait {
            reason: format!(
                "no master for {waited} s but the referee does not answer: this side may be isolated, so {} is not promoted",
                cand.name
            ),
        };
    }
    if let Some(max) = s.max_lag {
        let replay = cand.lsn.unwrap_or(0);
        let reference = s.last_master_lsn.unwrap_or(0).max(cand.receive_lsn.unwrap_or(0));
        let lag = reference.saturating_sub(replay);
        if lag > max {
            return Decision::Wait {
                reason: format!("{} is not promoted: its lag is {lag} bytes, more than maximum_lag_on_failover_bytes {max}", cand.name),
            };
        }
    }
    Decision::Promote {
        target,
        name: cand.name.clone(),
        former,
        waited_s: waited,
        referee: s.referee_ok == Some(true),
        method: promote_method(cand),
    }
}

fn role_word(r: Observed) -> &'static str {
    match r {
        Observed::Master => "a master",
        Observed::Standby => "a standby",
        Observed::Unreachable => "unreachable",
    }
}

/// The method for promoting `o`: its signal file when it watches exactly that path, else
/// `pg_ctl promote`.
pub fn promote_method(o: &ServerObs) -> PromoteMethod {
    match (&o.signal_file, &o.trigger_file) {
        (Some(sig), TriggerFile::Watched(w)) if w == sig => PromoteMethod::SignalFile(sig.clone()),
        _ => PromoteMethod::PgCtl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(name: &str, role: Observed) -> ServerObs {
        ServerObs {
            name: name.into(),
            role,
            unreachable_for: Duration::ZERO,
            timeline: Some(1),
            lsn: Some(100),
            receive_lsn: None,
            signal_file: None,
            trigger_file: TriggerFile::Unknown,
        }
    }

    fn snap(a: Observed, b: Observed, last: Option<usize>, no_master_s: u64) -> Snapshot {
        Snapshot {
            servers: [srv("db1", a), srv("db2", b)],
            last_master: last,
            no_master_for: Duration::from_secs(no_master_s),
            promote_after: Duration::from_secs(30),
            referee_ok: None,
            last_master_lsn: None,
            max_lag: None,
            pending_rebuild: None,
            rewind: false,
            ssh_refused: [None, None],
        }
    }
    use Observed::*;

    #[test]
    fn two_masters_on_fresh_state_keep_the_first() {
        let d = decide(&snap(Master, Master, None, 0));
        assert!(matches!(d, Decision::Rebuild { target: 1, master: 0, .. }), "{d}");
        assert!(d.to_string().contains("db1 is first in the list"), "{d}");
    }

    #[test]
    fn two_masters_keep_the_last_master() {
        let d = decide(&snap(Master, Master, Some(1), 0));
        assert!(matches!(d, Decision::Rebuild { target: 0, master: 1, .. }), "{d}");
        assert_eq!(d.to_string(), "rebuild db1 as a standby of db2 because both are masters and db2 was master last");
    }

    #[test]
    fn single_master_is_recorded_then_healthy() {
        assert!(matches!(decide(&snap(Standby, Master, None, 0)), Decision::Record { master: 1, .. }));
        let d = decide(&snap(Standby, Master, Some(1), 0));
        assert!(matches!(d, Decision::Healthy { master: 1, standby_ok: true, .. }), "{d}");
        let d = decide(&snap(Master, Unreachable, Some(0), 0));
        assert!(matches!(d, Decision::Healthy { master: 0, standby_ok: false, .. }), "{d}");
    }

    #[test]
    fn promotion_waits_for_promote_after() {
        let d = decide(&snap(Unreachable, Standby, Some(0), 29));
        assert!(matches!(d, Decision::Wait { .. }), "{d}");
        let d = decide(&snap(Unreachable, Standby, Some(0), 31));
        assert_eq!(d.to_string(), "promote db2 because db1 was unreachable for 31 s, with pg_ctl promote");
        assert!(matches!(d, Decision::Promote { target: 1, method: PromoteMethod::PgCtl, .. }));
    }

    #[test]
    fn a_pending_promotion_names_its_standby_and_the_time_left() {
        let p = promotion_pending(&snap(Unreachable, Standby, Some(0), 29));
        assert_eq!(p, Some((1, Duration::from_secs(1))));
        assert_eq!(promotion_pending(&snap(Unreachable, Standby, Some(0), 31)), Some((1, Duration::ZERO)));
        assert_eq!(promotion_pending(&snap(Master, Standby, Some(0), 0)), None, "a master is seen: nothing to prepare");
        assert_eq!(promotion_pending(&snap(Unreachable, Unreachable, Some(0), 40)), None, "no standby to promote");
    }

    #[test]
    fn referee_gates_promotion() {
        let mut s = snap(Unreachable, Standby, Some(0), 40);
        s.referee_ok = Some(false);
        let d = decide(&s);
        assert!(matches!(d, Decision::Wait { .. }) && d.to_string().contains("referee"), "{d}");
        s.referee_ok = Some(true);
        assert_eq!(
            decide(&s).to_string(),
            "promote db2 because db1 was unreachable for 40 s and the referee answered, with pg_ctl promote"
        );
    }

    #[test]
    fn lag_gates_promotion() {
        let mut s = snap(Unreachable, Standby, Some(0), 40);
        s.max_lag = Some(1000);
        s.last_master_lsn = Some(100 + 5000);
        let d = decide(&s);
        assert!(matches!(d, Decision::Wait { .. }) && d.to_string().contains("5000 bytes"), "{d}");
        s.last_master_lsn = Some(100 + 500);
        assert!(matches!(decide(&s), Decision::Promote { target: 1, .. }));
    }

    #[test]
    fn an_interrupted_rebuild_is_finished_only_from_a_live_master() {
        let mut s = snap(Master, Unreachable, Some(0), 0);
        s.pending_rebuild = Some(1);
        assert!(matches!(decide(&s), Decision::Rebuild { target: 1, master: 0, .. }));
        let mut s = snap(Unreachable, Standby, Some(0), 1);
        s.pending_rebuild = Some(1);
        assert!(matches!(decide(&s), Decision::Wait { .. }));
    }

    #[test]
    fn the_promotion_uses_the_signal_file_only_when_the_standby_watches_it() {
        let mut s = snap(Unreachable, Standby, Some(0), 31);
        s.servers[1].signal_file = Some("/pg/promote".into());
        s.servers[1].trigger_file = TriggerFile::Unset;
        let d = decide(&s);
        assert!(matches!(d, Decision::Promote { method: PromoteMethod::PgCtl, .. }), "{d}");
        s.servers[1].trigger_file = TriggerFile::Watched("/pg/promote".into());
        let d = decide(&s);
        assert!(matches!(&d, Decision::Promote { method: PromoteMethod::SignalFile(p), .. } if p == "/pg/promote"), "{d}");
        assert_eq!(
            d.to_string(),
            "promote db2 because db1 was unreachable for 31 s, by touching its signal file /pg/promote, which it watches"
        );
    }

    #[test]
    fn nothing_when_nobody_answers() {
        assert!(matches!(decide(&snap(Unreachable, Unreachable, Some(0), 100)), Decision::Wait { .. }));
    }

    #[test]
    fn never_rebuilds_the_only_reachable_server() {
        for (a, b) in [(Standby, Unreachable), (Unreachable, Standby), (Master, Unreachable), (Unreachable, Master)] {
            for last in [None, Some(0), Some(1)] {
                let d = decide(&snap(a, b, last, 100));
                assert!(!matches!(d, Decision::Rebuild { .. }), "{a:?} {b:?} {last:?}: {d}");
            }
        }
    }

    #[test]
    fn two_standbys_promote_the_last_master() {
        let d = decide(&snap(Standby, Standby, Some(1), 40));
        assert!(matches!(d, Decision::Promote { target: 1, .. }), "{d}");
        let mut s = snap(Standby, Standby, None, 40);
        s.servers[1].lsn = Some(500);
        assert!(matches!(decide(&s), Decision::Promote { target: 1, .. }));
    }

    #[test]
    fn rewind_only_for_a_reachable_returning_master() {
        let mut s = snap(Master, Master, Some(1), 0);
        s.rewind = true;
        let d = decide(&s);
        assert!(matches!(d, Decision::Rebuild { target: 0, master: 1, rewind: true, .. }), "{d}");
        assert!(d.to_string().starts_with("rewind db1 into a standby of db2 with pg_rewind"), "{d}");
        // An interrupted rebuild (data folder maybe moved away) is finished with a basebackup.
        let mut s = snap(Master, Unreachable, Some(0), 0);
        s.rewind = true;
        s.pending_rebuild = Some(1);
        assert!(matches!(decide(&s), Decision::Rebuild { target: 1, rewind: false, .. }));
    }

    #[test]
    fn a_refused_host_key_holds_back_the_action_on_that_server_only() {
        let refusal = "ssh host key of postgres@db2:22 does not match the pinned key";
        let mut s = snap(Unreachable, Standby, Some(0), 40);
        s.ssh_refused[1] = Some(refusal.into());
        let d = decide(&s);
        assert!(matches!(d, Decision::Wait { .. }), "{d}");
        assert_eq!(
            d.to_string(),
            format!("promote db2 because db1 was unreachable for 40 s, with pg_ctl promote: held back, nothing is done to db2: {refusal}")
        );
        let mut s = snap(Master, Master, Some(0), 0);
        s.ssh_refused[1] = Some(refusal.into());
        assert!(matches!(decide(&s), Decision::Wait { .. }), "no rebuild of db2");
        // Another server's refusal does not stand in the way.
        s.ssh_refused = [Some(refusal.into()), None];
        assert!(matches!(decide(&s), Decision::Rebuild { target: 1, .. }));
        let mut s = snap(Standby, Master, Some(1), 0);
        s.ssh_refused = [Some(refusal.into()), Some(refusal.into())];
        assert!(matches!(decide(&s), Decision::Healthy { .. }), "nothing to do needs no ssh");
    }

    #[test]
    fn a_recovered_old_master_is_rebuilt_from_the_promoted_one() {
        // db2 was promoted (and recorded before acting); db1 came back as a master.
        let d = decide(&snap(Master, Master, Some(1), 0));
        assert!(matches!(d, Decision::Rebuild { target: 0, master: 1, .. }));
    }
}
