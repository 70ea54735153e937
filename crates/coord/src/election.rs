//! The election rules, shared by every backend: a pure [`decide`] over an
//! [`ElectionSnapshot`] that returns an [`ElectionDecision`] whose `Display` is
//! the reason in words. Acting on a decision is in `member.rs`.
//!
//! Rules, in the order they are checked:
//! 1. An active member whose lease renewal has not been confirmed for
//!    `ttl - step_down_margin` steps down, before the lease can lapse.
//! 2. An active member that no longer holds the leader key steps down.
//! 3. An active member asked to switch over (or whose lower-order peer has been
//!    live for `failback_after_s`) turns passive first and releases the key
//!    `step_down_margin` later, so its services are stopped before anyone else
//!    can be elected.
//! 4. When the leader key is free, the live member of rank r waits
//!    `r * rank_wait` before trying; a switchover target has rank 0 and the
//!    member that handed over is ranked last.

use crate::api::{CoordError, Epoch};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A live member as the election sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Instance name.
    pub instance: String,
    /// Order in the group (lowest first).
    pub order: i64,
    /// Since when its current lease exists, ms since the Unix epoch.
    pub since_ms: u64,
}

/// The leader key as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenLeader {
    /// Instance named by the key.
    pub instance: String,
    /// Its epoch.
    pub epoch: Epoch,
    /// Whether the key is held with our own lease.
    pub mine: bool,
}

/// A stored switchover request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchoverRequest {
    /// Target, or `None` for the next live member in order after `from`.
    pub to: Option<String>,
    /// The leader when the request was made.
    pub from: String,
    /// When it was made, ms since the Unix epoch.
    pub at_ms: u64,
}

/// What the coordinator showed in one cycle.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct View {
    /// The leader key, if present.
    pub leader: Option<SeenLeader>,
    /// Live members (any order).
    pub members: Vec<Candidate>,
    /// A pending switchover request.
    pub switchover: Option<SwitchoverRequest>,
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct ElectionSnapshot {
    /// Our instance name.
    pub me: String,
    /// Our order.
    pub my_order: i64,
    /// Wall clock, ms since the Unix epoch.
    pub now_ms: u64,
    /// `Some(epoch)` while we are active.
    pub active: Option<Epoch>,
    /// Time since the sending of the last renewal that was confirmed; `None` without a lease.
    pub lease_age_ms: Option<u64>,
    /// Lease time to live.
    pub ttl_ms: u64,
    /// Step-down margin.
    pub margin_ms: u64,
    /// Wait per rank.
    pub rank_wait_ms: u64,
    /// Failback delay, if failback is on.
    pub failback_after_ms: Option<u64>,
    /// What the coordinator showed this cycle; `None` when it did not answer.
    pub view: Option<View>,
    /// For how long we have seen the leader key free.
    pub free_for_ms: Option<u64>,
    /// For how long we have been handing over (passive, key still ours).
    pub handing_over_ms: Option<u64>,
}

/// What to do this cycle. `Display` gives the reason.
#[derive(Debug, Clone, PartialEq)]
pub enum ElectionDecision {
    /// Turn passive now.
    StepDown {
        /// Why.
        reason: String,
    },
    /// Turn passive now and release the key once services had time to stop.
    BeginHandover {
        /// The member expected to take over.
        to: String,
        /// Why.
        reason: String,
    },
    /// Release the leader key we hold (handover).
    Release {
        /// The epoch of the key to release.
        epoch: Epoch,
        /// Why.
        reason: String,
    },
    /// Try to create the leader key.
    Campaign {
        /// Why.
        reason: String,
    },
    /// The leader key is still ours: become active again with its epoch.
    Resume {
        /// The key's epoch.
        epoch: Epoch,
        /// Why.
        reason: String,
    },
    /// Delete a switchover request that cannot be served.
    ClearSwitchover {
        /// Why.
        reason: String,
    },
    /// Nothing changes.
    Stay {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for ElectionDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ElectionDecision::*;
        let r = match self {
            StepDown { reason } | BeginHandover { reason, .. } | Release { reason, .. } => reason,
            Campaign { reason } | Resume { reason, .. } | ClearSwitchover { reason } | Stay { reason } => reason,
        };
        f.write_str(r)
    }
}

/// Live members in failover order (order, then name), with `me` included if missing.
fn ordered(s: &ElectionSnapshot, v: &View) -> Vec<Candidate> {
    let mut m = v.members.clone();
    if !m.iter().any(|c| c.instance == s.me) {
        m.push(Candidate { instance: s.me.clone(), order: s.my_order, since_ms: s.now_ms });
    }
    m.sort_by(|a, b| (a.order, &a.instance).cmp(&(b.order, &b.instance)));
    m
}

/// The member a switchover request designates: the named live member, or the next live
/// member in order after `from` (wrapping around).
pub fn switchover_target(req: &SwitchoverRequest, live: &[Candidate]) -> Option<String> {
    match &req.to {
        Some(t) => live.iter().find(|c| &c.instance == t).map(|c| c.instance.clone()),
        None => {
            let mut l = live.to_vec();
            l.sort_by(|a, b| (a.order, &a.instance).cmp(&(b.order, &b.instance)));
            let pos = l.iter().position(|c| c.instance == req.from);
            let others: Vec<_> = match pos {
                Some(p) => l[p + 1..].iter().chain(l[..p].iter()).collect(),
                None => l.iter().collect(),
            };
            others.first().map(|c| c.instance.clone())
        }
    }
}

/// The election rules (see the module docs). Pure: no I/O, no clock.
pub fn decide(s: &ElectionSnapshot) -> ElectionDecision {
    let limit = s.ttl_ms.saturating_sub(s.margin_ms);
    let lease_ok = s.lease_age_ms.is_some_and(|a| a < limit);
    match s.active {
        Some(epoch) => decide_active(s, epoch, lease_ok),
        None => decide_passive(s, lease_ok),
    }
}

/// Rules 1-3, while active with `epoch`: step down, hand over, or stay.
fn decide_active(s: &ElectionSnapshot, epoch: Epoch, lease_ok: bool) -> ElectionDecision {
    use ElectionDecision::*;
    if !lease_ok {
        let reason = match s.lease_age_ms {
            Some(a) => format!("could not renew lease for {a} ms; stepping down before it can expire"),
            None => "lost the lease; stepping down".to_string(),
        };
        return StepDown { reason };
    }
    let age = s.lease_age_ms.unwrap_or(0);
    let Some(v) = &s.view else {
        return Stay { reason: format!("active (epoch {epoch}); coordinator did not answer, lease confirmed {age} ms ago") };
    };
    match &v.leader {
        Some(l) if l.mine && l.epoch == epoch => {}
        Some(l) => {
            return StepDown {
                reason: format!("leader key is held by {} (epoch {}), not by us (epoch {epoch}); stepping down", l.instance, l.epoch),
            }
        }
        None => return StepDown { reason: format!("leader key of epoch {epoch} is gone; stepping down") },
    }
    if let Some(req) = &v.switchover {
        return serve_switchover(s, v, req);
    }
    if let Some(handover) = s.failback_after_ms.and_then(|fb| failback(s, v, fb)) {
        return handover;
    }
    Stay { reason: format!("active (epoch {epoch}); lease confirmed {age} ms ago") }
}

/// Rule 3, a switchover asked of the active member: hand over to its target, or clear
/// a request that names ourselves or nobody live.
fn serve_switchover(s: &ElectionSnapshot, v: &View, req: &SwitchoverRequest) -> ElectionDecision {
    use ElectionDecision::*;
    match switchover_target(req, &v.members) {
        Some(t) if t != s.me => {
            BeginHandover { reason: format!("switchover requested to {t}; stopping services before releasing the leader key"), to: t }
        }
        Some(_) => ClearSwitchover { reason: "switchover request names the active instance itself; ignored".into() },
        None => ClearSwitchover {
            reason: format!(
                "switchover request to {} cannot be served: no such live member",
                req.to.as_deref().unwrap_or("the next in order")
            ),
        },
    }
}

/// Rule 3, failback: a handover to the lowest-order member before us that has been live
/// for `fb` ms, if there is one.
fn failback(s: &ElectionSnapshot, v: &View, fb: u64) -> Option<ElectionDecision> {
    let c = ordered(s, v)
        .into_iter()
        .filter(|c| c.order < s.my_order && s.now_ms.saturating_sub(c.since_ms) >= fb)
        .min_by(|a, b| (a.order, &a.instance).cmp(&(b.order, &b.instance)))?;
    Some(ElectionDecision::BeginHandover {
        reason: format!(
            "failback: {} (order {}) has been live for {} s (failback_after_s {}); handing over",
            c.instance,
            c.order,
            s.now_ms.saturating_sub(c.since_ms) / 1000,
            fb / 1000
        ),
        to: c.instance,
    })
}

/// While passive: finish a handover, resume a key still ours, or rule 4 on a free key.
fn decide_passive(s: &ElectionSnapshot, lease_ok: bool) -> ElectionDecision {
    use ElectionDecision::*;
    let Some(v) = &s.view else {
        return Stay { reason: "coordinator did not answer; waiting".into() };
    };
    if let (Some(h), Some(l)) = (s.handing_over_ms, &v.leader) {
        if l.mine {
            return if h >= s.margin_ms {
                Release { epoch: l.epoch, reason: format!("handing over: services had {h} ms to stop; releasing the leader key") }
            } else {
                Stay { reason: format!("handing over: giving services {} ms more to stop", s.margin_ms - h) }
            };
        }
    }
    if !lease_ok {
        return Stay { reason: "passive: waiting for our lease to be confirmed".into() };
    }
    match &v.leader {
        Some(l) if l.mine => {
            Resume { epoch: l.epoch, reason: format!("lease confirmed again and the leader key (epoch {}) is still ours", l.epoch) }
        }
        Some(l) => Stay { reason: format!("passive: {} is active (epoch {})", l.instance, l.epoch) },
        None => campaign_when_our_turn(s, v),
    }
}

/// Rule 4: on a free leader key, campaign once `rank * rank_wait` has passed.
fn campaign_when_our_turn(s: &ElectionSnapshot, v: &View) -> ElectionDecision {
    let order = campaign_order(s, v);
    let rank = order.iter().position(|c| c.instance == s.me).unwrap_or(0) as u64;
    let wait = rank * s.rank_wait_ms;
    let free = s.free_for_ms.unwrap_or(0);
    if free >= wait {
        ElectionDecision::Campaign {
            reason: format!("leader key is free; rank {rank} among {} live members, waited {free} ms", order.len()),
        }
    } else {
        ElectionDecision::Stay { reason: format!("leader key is free; rank {rank}: waiting {} ms more for members before us", wait - free) }
    }
}

/// Live members in campaign order: failover order, with a switchover's target first and
/// the member that handed over last.
fn campaign_order(s: &ElectionSnapshot, v: &View) -> Vec<Candidate> {
    let mut order = ordered(s, v);
    if let Some(req) = &v.switchover {
        let target = switchover_target(req, &v.members);
        if let Some(p) = order.iter().position(|c| c.instance == req.from) {
            let old = order.remove(p);
            order.push(old);
        }
        if let Some(p) = target.and_then(|t| order.iter().position(|c| c.instance == t)) {
            let t = order.remove(p);
            order.insert(0, t);
        }
    }
    order
}

/// Builds the request `request_switchover` stores, after checking that it can be served:
/// the group has an active instance and the target is another live member.
pub fn switchover_request(group: u32, v: &View, to: Option<String>, now_ms: u64) -> Result<SwitchoverRequest, CoordError> {
    let Some(l) = &v.leader else {
        return Err(CoordError::Invalid(format!("expected an active instance in group {group} to hand over, found none")));
    };
    let req = SwitchoverRequest { to, from: l.instance.clone(), at_ms: now_ms };
    match switchover_target(&req, &v.members) {
        Some(t) if t != l.instance => Ok(req),
        Some(t) => Err(CoordError::Invalid(format!("expected a target other than the active instance {t}, found {t}"))),
        None => Err(CoordError::Invalid(format!(
            "expected {} among the live members of group {group}, found {:?}",
            req.to.as_deref().unwrap_or("another member"),
            v.members.iter().map(|c| c.instance.as_str()).collect::<Vec<_>>()
        ))),
    }
}

/// The previous leader as last seen by a member: instance, order (if known), epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousLeader {
    /// Instance.
    pub instance: String,
    /// Its order, if it was seen among the members.
    pub order: Option<i64>,
    /// Its epoch.
    pub epoch: Epoch,
}

/// The reason recorded when `me` becomes active, in words.
pub fn takeover_reason(me: &str, prev: Option<&PreviousLeader>, view: &View) -> String {
    let switchover = view.switchover.as_ref().filter(|r| switchover_target(r, &view.members).as_deref() == Some(me));
    let Some(p) = prev.filter(|p| p.instance != me) else {
        return match switchover {
            Some(r) => format!("became active: switchover to {me} requested from {}", r.from),
            None => "became active: no leader was active; first in order among live members".into(),
        };
    };
    let who = match p.order {
        Some(o) => format!("{} (order {o})", p.instance),
        None => p.instance.clone(),
    };
    if switchover.is_some() {
        format!("took over from {who}: switchover requested")
    } else if view.members.iter().any(|c| c.instance == p.instance) {
        format!("took over from {who}: it released the leader key")
    } else {
        format!("took over from {who}: its lease ended (its process died, or it could not renew in time)")
    }
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
