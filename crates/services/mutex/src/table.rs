//! The lock table: holders, FIFO waiters, expiry and the token counter, as a plain
//! struct without I/O.
//!
//! Every method takes the time (`now`, ms since the Unix epoch) as an argument and
//! returns what happened: grants to answer and the [`Write`]s that must be durable
//! before any of those grants is answered. The service applies the writes through the
//! coordinator; this module never waits for anything.
//!
//! Invariants (checked by the unit tests):
//! - a mutex has at most `limit` holders; a waiter exists only while it is full;
//! - waiters are granted first in, first out;
//! - every token is greater than every token granted before it (by this table and,
//!   through [`Table::restore`], by the earlier activities whose state it restored);
//! - a mutex with no holders and no waiters is forgotten (its memory is freed).

use crate::error::MutexError;
use mware_config::CriticalSections;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Identifies a queued waiter (unique within one table).
pub type WaiterId = u64;

/// A holder as shown by the API and stored in the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HolderView {
    /// Owner named by the acquirer (e.g. a call id).
    pub owner: String,
    /// Fencing token: grows with every grant.
    pub token: u64,
    /// When the grant lapses unless renewed, ms since the Unix epoch.
    pub expires_at_ms: u64,
    /// When it was granted, ms since the Unix epoch.
    pub granted_at_ms: u64,
}

/// A waiter as shown by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WaiterView {
    /// Owner named by the acquirer.
    pub owner: String,
    /// TTL it asked for.
    pub ttl_ms: u64,
    /// Since when it waits, ms since the Unix epoch.
    pub since_ms: u64,
}

/// One mutex as shown by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MutexView {
    /// Mutex name.
    pub name: String,
    /// Most holders at once (1: a mutex; more: a counting semaphore).
    pub limit: u32,
    /// Current holders, oldest grant first.
    pub holders: Vec<HolderView>,
    /// Waiters in the order they will be granted.
    pub waiters: Vec<WaiterView>,
}

/// A grant to answer once its writes are durable.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// Domain.
    pub domain: String,
    /// Mutex name.
    pub name: String,
    /// Mutex limit.
    pub limit: u32,
    /// The new (or renewed) holder.
    pub holder: HolderView,
    /// The queued waiter this grant answers; `None` when granted on the spot.
    pub waiter: Option<WaiterId>,
    /// How long the waiter waited, ms.
    pub waited_ms: u64,
}

/// A change of durable state.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Store a holder (new grant or renewal).
    Put {
        /// Domain.
        domain: String,
        /// Mutex name.
        name: String,
        /// Mutex limit.
        limit: u32,
        /// The holder.
        holder: HolderView,
    },
    /// Forget a holder (release or expiry).
    Delete {
        /// Domain.
        domain: String,
        /// Mutex name.
        name: String,
        /// Its token.
        token: u64,
    },
}

/// What an operation did: writes to make durable, then grants to answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Effects {
    /// Writes, in order.
    pub writes: Vec<Write>,
    /// Grants that may be answered once `writes` are durable.
    pub grants: Vec<Grant>,
    /// Holders that lapsed (expiry sweep only): `(domain, name, holder)`.
    pub expired: Vec<(String, String, HolderView)>,
    /// The token counter after the operation (the next token to hand out).
    pub next_token: u64,
}

/// The result of an acquire that did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Acquired {
    /// Granted now (or renewed: the owner already held it); answer after the writes.
    Now(Effects),
    /// Queued; a later release or expiry grants it, or the caller cancels it.
    Queued(WaiterId),
}

/// An acquire request, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AcquireReq {
    /// Owner.
    pub owner: String,
    /// Grant lifetime, ms.
    pub ttl_ms: u64,
    /// Whether to queue when busy (`wait_ms > 0`).
    pub wait: bool,
    /// Limit (1 for a mutex).
    pub limit: u32,
}

#[derive(Debug, Clone)]
struct Waiter {
    id: WaiterId,
    owner: String,
    ttl_ms: u64,
    since_ms: u64,
}

#[derive(Debug, Clone)]
struct MutexState {
    limit: u32,
    holders: Vec<HolderView>,
    waiters: VecDeque<Waiter>,
}

/// The lock table of one group's active instance.
#[derive(Debug)]
pub struct Table {
    limits: CriticalSections,
    domains: HashMap<String, BTreeMap<String, MutexState>>,
    next_token: u64,
    next_waiter: WaiterId,
    /// `(expires_at_ms, token)` of every holder.
    expiries: BTreeSet<(u64, u64)>,
    /// token → (domain, name) of every holder.
    by_token: HashMap<u64, (String, String)>,
}

impl Table {
    /// An empty table handing out tokens from 1.
    pub fn new(limits: CriticalSections) -> Self {
        Table {
            limits,
            domains: HashMap::new(),
            next_token: 1,
            next_waiter: 1,
            expiries: BTreeSet::new(),
            by_token: HashMap::new(),
        }
    }

    /// The configured limits.
    pub fn limits(&self) -> &CriticalSections {
        &self.limits
    }

    /// Replaces the limits (config reload); they apply to the next requests.
    pub fn set_limits(&mut self, limits: CriticalSections) {
        self.limits = limits;
    }

    /// The next token to be handed out.
    pub fn next_token(&self) -> u64 {
        self.next_token
    }

    /// Number of holders over all mutexes.
    pub fn holder_count(&self) -> usize {
        self.by_token.len()
    }

    /// Loads holders saved by an earlier activity. Holders already lapsed at `now` are
    /// dropped and returned as deletes; the counter never goes below `next_token` nor
    /// below any restored token + 1.
    pub fn restore(
        &mut self,
        next_token: u64,
        holders: Vec<(String, String, u32, HolderView)>,
        now: u64,
    ) -> Effects {
        let mut fx = Effects::default();
        self.next_token = self.next_token.max(next_token);
        for (domain, name, limit, h) in holders {
            self.next_token = self.next_token.max(h.token + 1);
            if h.expires_at_ms <= now {
                fx.writes.push(Write::Delete { domain: domain.clone(), name: name.clone(), token: h.token });
                fx.expired.push((domain, name, h));
                continue;
            }
            let m = self.domains.entry(domain.clone()).or_default().entry(name.clone()).or_insert(MutexState {
                limit,
                holders: vec![],
                waiters: VecDeque::new(),
            });
            self.expiries.insert((h.expires_at_ms, h.token));
            self.by_token.insert(h.token, (domain, name));
            m.holders.push(h);
        }
        for names in self.domains.values_mut() {
            for m in names.values_mut() {
                m.holders.sort_by_key(|h| h.token);
            }
        }
        fx.next_token = self.next_token;
        fx
    }

    /// Tries to acquire `domain/name`.
    pub fn acquire(&mut self, domain: &str, name: &str, req: AcquireReq, now: u64) -> Result<Acquired, MutexError> {
        let known = self.domains.get(domain).is_some_and(|d| d.contains_key(name));
        if !known {
            let count = self.domains.get(domain).map_or(0, |d| d.len());
            if count >= self.limits.max_mutexes_per_domain {
                return Err(MutexError::TooManyMutexes {
                    domain: domain.to_string(),
                    max: self.limits.max_mutexes_per_domain,
                });
            }
        }
        let max_waiters = self.limits.max_waiters_per_mutex;
        let m = self
            .domains
            .entry(domain.to_string())
            .or_default()
            .entry(name.to_string())
            .or_insert(MutexState { limit: req.limit, holders: vec![], waiters: VecDeque::new() });
        if m.limit != req.limit {
            return Err(MutexError::LimitMismatch { name: name.to_string(), existing: m.limit, requested: req.limit });
        }
        // Idempotent for its owner: a retried acquire gets the grant it already has, renewed.
        if let Some(i) = m.holders.iter().position(|h| h.owner == req.owner) {
            let old = m.holders[i].expires_at_ms;
            let h = &mut m.holders[i];
            h.expires_at_ms = now + req.ttl_ms;
            let h = h.clone();
            let limit = m.limit;
            self.expiries.remove(&(old, h.token));
            self.expiries.insert((h.expires_at_ms, h.token));
            return Ok(Acquired::Now(self.effects_of_grant(domain, name, limit, h, None, 0)));
        }
        if m.holders.len() < m.limit as usize && m.waiters.is_empty() {
            let h = HolderView {
                owner: req.owner,
                token: self.next_token,
                expires_at_ms: now + req.ttl_ms,
                granted_at_ms: now,
            };
            self.next_token += 1;
            m.holders.push(h.clone());
            let limit = m.limit;
            self.expiries.insert((h.expires_at_ms, h.token));
            self.by_token.insert(h.token, (domain.to_string(), name.to_string()));
            return Ok(Acquired::Now(self.effects_of_grant(domain, name, limit, h, None, 0)));
        }
        if !req.wait {
            let err = MutexError::Busy { name: name.to_string(), limit: m.limit, holders: m.holders.clone() };
            return Err(err);
        }
        if m.waiters.len() >= max_waiters {
            return Err(MutexError::TooManyWaiters { name: name.to_string(), max: max_waiters });
        }
        let id = self.next_waiter;
        self.next_waiter += 1;
        m.waiters.push_back(Waiter { id, owner: req.owner, ttl_ms: req.ttl_ms, since_ms: now });
        Ok(Acquired::Queued(id))
    }

    fn effects_of_grant(
        &self,
        domain: &str,
        name: &str,
        limit: u32,
        holder: HolderView,
        waiter: Option<WaiterId>,
        waited_ms: u64,
    ) -> Effects {
        Effects {
            writes: vec![Write::Put { domain: domain.into(), name: name.into(), limit, holder: holder.clone() }],
            grants: vec![Grant { domain: domain.into(), name: name.into(), limit, holder, waiter, waited_ms }],
            expired: vec![],
            next_token: self.next_token,
        }
    }

    /// Removes a queued waiter (its wait ran out or its client left). `false` when it is
    /// no longer queued: it was granted already, and that grant is on its way.
    pub fn cancel_wait(&mut self, domain: &str, name: &str, id: WaiterId) -> bool {
        let Some(m) = self.domains.get_mut(domain).and_then(|d| d.get_mut(name)) else { return false };
        let Some(i) = m.waiters.iter().position(|w| w.id == id) else { return false };
        m.waiters.remove(i);
        self.forget_if_empty(domain, name);
        true
    }

    /// Releases the grant `token` held by `owner`, and grants waiters in order.
    pub fn release(&mut self, domain: &str, name: &str, owner: &str, token: u64, now: u64) -> Result<Effects, MutexError> {
        self.check_holder(domain, name, owner, token)?;
        let mut fx = Effects::default();
        self.remove_holder(domain, name, token, &mut fx);
        self.promote(domain, name, now, &mut fx);
        self.forget_if_empty(domain, name);
        fx.next_token = self.next_token;
        Ok(fx)
    }

    /// Extends the grant `token` held by `owner` to `now + ttl_ms`.
    pub fn renew(
        &mut self,
        domain: &str,
        name: &str,
        owner: &str,
        token: u64,
        ttl_ms: u64,
        now: u64,
    ) -> Result<Effects, MutexError> {
        self.check_holder(domain, name, owner, token)?;
        let m = self.domains.get_mut(domain).and_then(|d| d.get_mut(name)).expect("checked");
        let h = m.holders.iter_mut().find(|h| h.token == token).expect("checked");
        self.expiries.remove(&(h.expires_at_ms, token));
        h.expires_at_ms = now + ttl_ms;
        self.expiries.insert((h.expires_at_ms, token));
        let (h, limit) = (h.clone(), m.limit);
        Ok(self.effects_of_grant(domain, name, limit, h, None, 0))
    }

    /// Drops every holder whose time is up at `now` and grants waiters in their place.
    pub fn expire(&mut self, now: u64) -> Effects {
        let mut fx = Effects::default();
        while let Some(&(at, token)) = self.expiries.first() {
            if at > now {
                break;
            }
            let Some((domain, name)) = self.by_token.get(&token).cloned() else {
                self.expiries.remove(&(at, token));
                continue;
            };
            if let Some(h) = self.remove_holder(&domain, &name, token, &mut fx) {
                fx.expired.push((domain.clone(), name.clone(), h));
            }
            self.promote(&domain, &name, now, &mut fx);
            self.forget_if_empty(&domain, &name);
        }
        fx.next_token = self.next_token;
        fx
    }

    /// When the next holder lapses, if any.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiries.first().map(|(at, _)| *at)
    }

    /// One mutex.
    pub fn get(&self, domain: &str, name: &str) -> Option<MutexView> {
        self.domains.get(domain).and_then(|d| d.get(name)).map(|m| view(name, m))
    }

    /// Every mutex of a domain, by name.
    pub fn list(&self, domain: &str) -> Vec<MutexView> {
        self.domains.get(domain).map(|d| d.iter().map(|(n, m)| view(n, m)).collect()).unwrap_or_default()
    }

    fn check_holder(&self, domain: &str, name: &str, owner: &str, token: u64) -> Result<(), MutexError> {
        let h = self
            .domains
            .get(domain)
            .and_then(|d| d.get(name))
            .and_then(|m| m.holders.iter().find(|h| h.token == token))
            .ok_or_else(|| MutexError::NotHeld { name: name.to_string(), token })?;
        if h.owner != owner {
            return Err(MutexError::WrongOwner {
                name: name.to_string(),
                token,
                expected: h.owner.clone(),
                found: owner.to_string(),
            });
        }
        Ok(())
    }

    fn remove_holder(&mut self, domain: &str, name: &str, token: u64, fx: &mut Effects) -> Option<HolderView> {
        let m = self.domains.get_mut(domain)?.get_mut(name)?;
        let i = m.holders.iter().position(|h| h.token == token)?;
        let h = m.holders.remove(i);
        self.expiries.remove(&(h.expires_at_ms, token));
        self.by_token.remove(&token);
        fx.writes.push(Write::Delete { domain: domain.into(), name: name.into(), token });
        Some(h)
    }

    /// Grants queued waiters, first in first out, while there is room.
    fn promote(&mut self, domain: &str, name: &str, now: u64, fx: &mut Effects) {
        let Some(m) = self.domains.get_mut(domain).and_then(|d| d.get_mut(name)) else { return };
        while m.holders.len() < m.limit as usize {
            let Some(w) = m.waiters.pop_front() else { break };
            let h = HolderView {
                owner: w.owner,
                token: self.next_token,
                expires_at_ms: now + w.ttl_ms,
                granted_at_ms: now,
            };
            self.next_token += 1;
            self.expiries.insert((h.expires_at_ms, h.token));
            self.by_token.insert(h.token, (domain.to_string(), name.to_string()));
            m.holders.push(h.clone());
            fx.writes.push(Write::Put { domain: domain.into(), name: name.into(), limit: m.limit, holder: h.clone() });
            fx.grants.push(Grant {
                domain: domain.into(),
                name: name.into(),
                limit: m.limit,
                holder: h,
                waiter: Some(w.id),
                waited_ms: now.saturating_sub(w.since_ms),
            });
        }
    }

    fn forget_if_empty(&mut self, domain: &str, name: &str) {
        let Some(d) = self.domains.get_mut(domain) else { return };
        if d.get(name).is_some_and(|m| m.holders.is_empty() && m.waiters.is_empty()) {
            d.remove(name);
        }
        if d.is_empty() {
            self.domains.remove(domain);
        }
    }
}

fn view(name: &str, m: &MutexState) -> MutexView {
    MutexView {
        name: name.to_string(),
        limit: m.limit,
        holders: m.holders.clone(),
        waiters: m
            .waiters
            .iter()
            .map(|w| WaiterView { owner: w.owner.clone(), ttl_ms: w.ttl_ms, since_ms: w.since_ms })
            .collect(),
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
