//! The lock table: holders, FIFO waiters, expiry and the token counter, as a plain
//! struct without I/O.
//!
//! Every method takes the time (`now`, ms since the Unix epoch) as an argument and
//! returns what happened ([`Effects`]): the [`Write`]s to make durable and the grants
//! to answer. The service applies the writes through the coordinator; this module
//! never waits for anything.
//!
//! Durability rules the service follows (and the reason for each):
//! - a grant on the spot is answered only once its `Put` is durable;
//! - a waiter gets its token when it joins the line, and its line record (`Queue`) is
//!   written at once, while it waits. A waiter granted after its line record is durable
//!   (`Grant::ready`) is answered at once, with no write on the hand-over path: if the
//!   instance fails before the grant itself is durable, the next one restores the line
//!   record as an *unconfirmed* holder, which blocks the mutex like a holder would;
//! - a release may be answered before its `Delete` is durable: if it is lost, the next
//!   activity keeps the released holder until its ttl (blocking, never double-granting).
//!
//! Invariants (checked by the unit tests):
//! - a mutex grants only while it has fewer than `limit` holders (restored unconfirmed
//!   holders may make it more: it then grants nobody until enough of them are gone);
//!   a waiter exists only while it is full;
//! - waiters are granted first in, first out;
//! - per mutex, every token is greater than every token granted before it (by this
//!   table and, through [`Table::restore`], by the earlier activities it restored);
//! - a mutex with no holders and no waiters is forgotten (its memory is freed).

use crate::error::MutexError;
use crate::section::CriticalSections;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

pub use crate::views::*;

#[derive(Debug, Clone)]
struct Waiter {
    id: WaiterId,
    owner: String,
    ttl_ms: u64,
    since_ms: u64,
    /// Handed out when it joined the line.
    token: u64,
    /// Its line record is durable.
    durable: bool,
}

#[derive(Debug, Clone)]
struct MutexState {
    limit: u32,
    holders: Vec<HolderView>,
    waiters: VecDeque<Waiter>,
}

/// Every holder by expiry and by token.
#[derive(Debug, Default)]
struct Index {
    /// `(expires_at_ms, token)` of every holder.
    expiries: BTreeSet<(u64, u64)>,
    /// token → (domain, name) of every holder.
    by_token: HashMap<u64, (String, String)>,
}

impl Index {
    fn add(&mut self, domain: &str, name: &str, h: &HolderView) {
        self.expiries.insert((h.expires_at_ms, h.token));
        self.by_token.insert(h.token, (domain.to_string(), name.to_string()));
    }

    fn remove(&mut self, h: &HolderView) {
        self.expiries.remove(&(h.expires_at_ms, h.token));
        self.by_token.remove(&h.token);
    }

    fn moved(&mut self, token: u64, from: u64, to: u64) {
        self.expiries.remove(&(from, token));
        self.expiries.insert((to, token));
    }
}

/// The lock table of one group's active instance.
#[derive(Debug)]
pub struct Table {
    limits: CriticalSections,
    domains: HashMap<String, BTreeMap<String, MutexState>>,
    next_token: u64,
    next_waiter: WaiterId,
    index: Index,
    /// Waiters in line over all mutexes.
    waiting: usize,
}

fn put(domain: &str, name: &str, limit: u32, holder: &HolderView) -> Write {
    Write::Put { domain: domain.into(), name: name.into(), limit, holder: holder.clone() }
}

fn delete(domain: &str, name: &str, token: u64) -> Write {
    Write::Delete { domain: domain.into(), name: name.into(), token }
}

impl Table {
    /// An empty table handing out tokens from 1.
    pub fn new(limits: CriticalSections) -> Self {
        Table { limits, domains: HashMap::new(), next_token: 1, next_waiter: 1, index: Index::default(), waiting: 0 }
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
        self.index.by_token.len()
    }

    /// Number of waiters in line over all mutexes.
    pub fn waiter_count(&self) -> usize {
        self.waiting
    }

    /// Loads what an earlier activity saved, every holder as *unconfirmed* (its release
    /// may have been answered and lost; its owner asking again drops it). Holders
    /// already lapsed at `now` are dropped (deletes). A waiter's line record becomes an
    /// unconfirmed holder lapsing at `now + its ttl` (it may have been granted just
    /// before the failover, at the latest now), written back as such. The counter never goes below `next_token` nor
    /// below any restored token + 1.
    pub fn restore(&mut self, next_token: u64, saved: Vec<SavedHolder>, now: u64) -> Effects {
        let mut fx = Effects::default();
        self.next_token = self.next_token.max(next_token);
        for s in saved {
            let SavedHolder { domain, name, limit, mut holder, queued_ttl_ms } = s;
            self.next_token = self.next_token.max(holder.token + 1);
            // Its release may have been answered and lost: nobody knows until its
            // owner releases, renews or asks again.
            holder.unconfirmed = true;
            if let Some(ttl) = queued_ttl_ms {
                holder.expires_at_ms = now + ttl;
                holder.granted_at_ms = 0;
                fx.writes.push(put(&domain, &name, limit, &holder));
            } else if holder.expires_at_ms <= now {
                fx.writes.push(delete(&domain, &name, holder.token));
                fx.expired.push((domain, name, holder));
                continue;
            }
            let m = self.domains.entry(domain.clone()).or_default().entry(name.clone()).or_insert(MutexState {
                limit,
                holders: vec![],
                waiters: VecDeque::new(),
            });
            self.index.add(&domain, &name, &holder);
            m.holders.push(holder);
        }
        for names in self.domains.values_mut() {
            for m in names.values_mut() {
                m.holders.sort_by_key(|h| h.token);
            }
        }
        fx.next_token = self.next_token;
        fx
    }

    /// Forgets an unconfirmed holder of `owner` on `domain/name`: an owner that asks
    /// for the mutex again is not inside it (it gets a new token, never its old one
    /// again). Waiters get the room it leaves.
    pub fn drop_unconfirmed(&mut self, domain: &str, name: &str, owner: &str, now: u64) -> Effects {
        let mut fx = Effects::default();
        let token = self
            .domains
            .get(domain)
            .and_then(|d| d.get(name))
            .and_then(|m| m.holders.iter().find(|h| h.owner == owner && h.unconfirmed))
            .map(|h| h.token);
        if let Some(token) = token {
            self.remove_holder(domain, name, token, &mut fx);
            self.promote(domain, name, now, &mut fx);
            self.forget_if_empty(domain, name);
        }
        fx.next_token = self.next_token;
        fx
    }

    /// Tries to acquire `domain/name`.
    pub fn acquire(&mut self, domain: &str, name: &str, req: AcquireReq, now: u64) -> Result<Acquired, MutexError> {
        let known = self.domains.get(domain).is_some_and(|d| d.contains_key(name));
        if !known {
            if !self.domains.contains_key(domain) && self.domains.len() >= self.limits.max_domains {
                return Err(MutexError::TooManyDomains { max: self.limits.max_domains });
            }
            let count = self.domains.get(domain).map_or(0, |d| d.len());
            if count >= self.limits.max_mutexes_per_domain {
                return Err(MutexError::TooManyMutexes { domain: domain.to_string(), max: self.limits.max_mutexes_per_domain });
            }
        }
        let max_waiters = self.limits.max_waiters_per_mutex;
        let m = self.domains.entry(domain.to_string()).or_default().entry(name.to_string()).or_insert(MutexState {
            limit: req.limit,
            holders: vec![],
            waiters: VecDeque::new(),
        });
        if m.limit != req.limit {
            return Err(MutexError::LimitMismatch { name: name.to_string(), existing: m.limit, requested: req.limit });
        }
        // Idempotent for its owner: a retried acquire gets the grant it already has, renewed.
        if let Some(h) = m.holders.iter_mut().find(|h| h.owner == req.owner && !h.unconfirmed) {
            let old = h.expires_at_ms;
            h.expires_at_ms = now + req.ttl_ms;
            let (h, limit) = (h.clone(), m.limit);
            self.index.moved(h.token, old, h.expires_at_ms);
            return Ok(Acquired::Now(self.effects_of_grant(domain, name, limit, h)));
        }
        let token = self.next_token;
        if m.holders.len() < m.limit as usize && m.waiters.is_empty() {
            let h = HolderView { owner: req.owner, token, expires_at_ms: now + req.ttl_ms, granted_at_ms: now, unconfirmed: false };
            self.next_token += 1;
            m.holders.push(h.clone());
            let limit = m.limit;
            self.index.add(domain, name, &h);
            return Ok(Acquired::Now(self.effects_of_grant(domain, name, limit, h)));
        }
        let mut fx = Effects::default();
        if !req.wait {
            let err = MutexError::Busy { name: name.to_string(), limit: m.limit, holders: m.holders.clone() };
            return Err(err);
        }
        if m.waiters.len() >= max_waiters {
            return Err(MutexError::TooManyWaiters { name: name.to_string(), max: max_waiters });
        }
        let id = self.next_waiter;
        self.next_waiter += 1;
        self.next_token += 1;
        fx.writes.push(Write::Queue {
            domain: domain.into(),
            name: name.into(),
            limit: m.limit,
            owner: req.owner.clone(),
            token,
            ttl_ms: req.ttl_ms,
        });
        fx.queued.push(Queued { domain: domain.into(), name: name.into(), id, ahead: m.waiters.len() });
        m.waiters.push_back(Waiter { id, owner: req.owner, ttl_ms: req.ttl_ms, since_ms: now, token, durable: false });
        self.waiting += 1;
        fx.next_token = self.next_token;
        Ok(Acquired::Queued(id, fx))
    }

    /// Marks the line record of waiter `id` durable; `false` when it is no longer queued.
    pub fn mark_durable(&mut self, domain: &str, name: &str, id: WaiterId) -> bool {
        let Some(m) = self.domains.get_mut(domain).and_then(|d| d.get_mut(name)) else { return false };
        match m.waiters.iter_mut().find(|w| w.id == id) {
            Some(w) => {
                w.durable = true;
                true
            }
            None => false,
        }
    }

    /// Removes a queued waiter (its wait ran out or its client left) and deletes its
    /// line record. `None` when it is no longer queued: it was granted already.
    pub fn cancel_wait(&mut self, domain: &str, name: &str, id: WaiterId) -> Option<Effects> {
        let m = self.domains.get_mut(domain).and_then(|d| d.get_mut(name))?;
        let i = m.waiters.iter().position(|w| w.id == id)?;
        let w = m.waiters.remove(i).expect("position");
        self.waiting -= 1;
        let mut fx = Effects { writes: vec![delete(domain, name, w.token)], ..Default::default() };
        self.forget_if_empty(domain, name);
        fx.next_token = self.next_token;
        Some(fx)
    }

    /// Releases the grant `token` held by `owner`, and grants waiters in order.
    pub fn release(&mut self, domain: &str, name: &str, owner: &str, token: u64, now: u64) -> Result<Effects, MutexError> {
        self.check_holder(domain, name, owner, token)?;
        self.evict(domain, name, token, now).map(|(fx, _)| fx)
    }

    /// Removes the grant `token` whoever holds it (an operator's eviction, e.g. of a
    /// holder whose call script died with a long ttl, and a release once its owner is
    /// checked); the next waiters are granted. Returns the removed holder with the effects.
    pub fn evict(&mut self, domain: &str, name: &str, token: u64, now: u64) -> Result<(Effects, HolderView), MutexError> {
        let mut fx = Effects::default();
        let h = self.remove_holder(domain, name, token, &mut fx).ok_or_else(|| MutexError::NotHeld { name: name.to_string(), token })?;
        self.promote(domain, name, now, &mut fx);
        self.forget_if_empty(domain, name);
        fx.next_token = self.next_token;
        Ok((fx, h))
    }

    /// Extends the grant `token` held by `owner` to `now + ttl_ms` (and confirms an
    /// unconfirmed one: its owner says it holds it).
    pub fn renew(&mut self, domain: &str, name: &str, owner: &str, token: u64, ttl_ms: u64, now: u64) -> Result<Effects, MutexError> {
        self.check_holder(domain, name, owner, token)?;
        let m = self.domains.get_mut(domain).and_then(|d| d.get_mut(name)).expect("checked");
        let h = m.holders.iter_mut().find(|h| h.token == token).expect("checked");
        let old = h.expires_at_ms;
        h.expires_at_ms = now + ttl_ms;
        h.unconfirmed = false;
        let (h, limit) = (h.clone(), m.limit);
        self.index.moved(token, old, h.expires_at_ms);
        Ok(self.effects_of_grant(domain, name, limit, h))
    }

    /// A grant (new or renewed) answered once its `Put` is durable.
    fn effects_of_grant(&self, domain: &str, name: &str, limit: u32, holder: HolderView) -> Effects {
        Effects {
            writes: vec![put(domain, name, limit, &holder)],
            grants: vec![Grant { domain: domain.into(), name: name.into(), limit, holder, waiter: None, waited_ms: 0, ready: false }],
            next_token: self.next_token,
            ..Default::default()
        }
    }

    /// Drops every holder whose time is up at `now` and grants waiters in their place.
    pub fn expire(&mut self, now: u64) -> Effects {
        let mut fx = Effects::default();
        while let Some(&(at, token)) = self.index.expiries.first() {
            if at > now {
                break;
            }
            let Some((domain, name)) = self.index.by_token.get(&token).cloned() else {
                self.index.expiries.remove(&(at, token));
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
        self.index.expiries.first().map(|(at, _)| *at)
    }

    /// One mutex.
    pub fn get(&self, domain: &str, name: &str) -> Option<MutexView> {
        self.domains.get(domain).and_then(|d| d.get(name)).map(|m| view(name, m))
    }

    /// One page of the mutexes of a domain, by name (views are made for the page only).
    pub fn list(&self, domain: &str, q: &mware_host::PageQuery) -> mware_host::Page<MutexView> {
        let Some(d) = self.domains.get(domain) else { return mware_host::Page { items: vec![], total: 0, next: None } };
        let p = q.page(d.iter(), |(n, _)| n.as_str(), |(n, _)| n.to_string());
        mware_host::Page { items: p.items.into_iter().map(|(n, m)| view(n, m)).collect(), total: p.total, next: p.next }
    }

    /// The `n` busiest mutexes over every domain: most waiters first, then most holders,
    /// then the oldest holder; one scan of the table (for the operator's console).
    pub fn busiest(&self, n: usize) -> Vec<Busy> {
        let mut all: Vec<Busy> = self
            .domains
            .iter()
            .flat_map(|(d, ms)| {
                ms.iter().map(move |(name, m)| {
                    let oldest = m.holders.iter().min_by_key(|h| h.granted_at_ms);
                    Busy {
                        domain: d.clone(),
                        name: name.clone(),
                        limit: m.limit,
                        holders: m.holders.len(),
                        waiters: m.waiters.len(),
                        oldest_owner: oldest.map(|h| h.owner.clone()),
                        oldest_token: oldest.map(|h| h.token),
                        oldest_since_ms: oldest.map(|h| h.granted_at_ms),
                    }
                })
            })
            .collect();
        all.sort_by(|a, b| (b.waiters, b.holders, a.oldest_since_ms).cmp(&(a.waiters, a.holders, b.oldest_since_ms)));
        all.truncate(n);
        all
    }

    fn check_holder(&self, domain: &str, name: &str, owner: &str, token: u64) -> Result<(), MutexError> {
        let h = self
            .domains
            .get(domain)
            .and_then(|d| d.get(name))
            .and_then(|m| m.holders.iter().find(|h| h.token == token))
            .ok_or_else(|| MutexError::NotHeld { name: name.to_string(), token })?;
        if h.owner != owner {
            return Err(MutexError::WrongOwner { name: name.to_string(), token, expected: h.owner.clone(), found: owner.to_string() });
        }
        Ok(())
    }

    fn remove_holder(&mut self, domain: &str, name: &str, token: u64, fx: &mut Effects) -> Option<HolderView> {
        let m = self.domains.get_mut(domain)?.get_mut(name)?;
        let i = m.holders.iter().position(|h| h.token == token)?;
        let h = m.holders.remove(i);
        self.index.remove(&h);
        fx.writes.push(delete(domain, name, token));
        Some(h)
    }

    /// Grants queued waiters, first in first out, while there is room.
    fn promote(&mut self, domain: &str, name: &str, now: u64, fx: &mut Effects) {
        let Some(m) = self.domains.get_mut(domain).and_then(|d| d.get_mut(name)) else { return };
        while m.holders.len() < m.limit as usize {
            let Some(w) = m.waiters.pop_front() else { break };
            self.waiting -= 1;
            let h = HolderView { owner: w.owner, token: w.token, expires_at_ms: now + w.ttl_ms, granted_at_ms: now, unconfirmed: false };
            self.index.add(domain, name, &h);
            m.holders.push(h.clone());
            fx.writes.push(put(domain, name, m.limit, &h));
            fx.grants.push(Grant {
                domain: domain.into(),
                name: name.into(),
                limit: m.limit,
                holder: h,
                waiter: Some(w.id),
                waited_ms: now.saturating_sub(w.since_ms),
                ready: w.durable,
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
            .map(|w| WaiterView { owner: w.owner.clone(), ttl_ms: w.ttl_ms, since_ms: w.since_ms, token: w.token })
            .collect(),
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
