//! One activity of the service: the lock table behind a lock, the queue of changes to
//! the group commit writer, and the operations the HTTP layer calls.
//!
//! A change is applied to the table and queued for the writer under the same lock, so
//! the writer sees changes in the order the table made them. When each answer may go
//! out is decided in [`crate::table`]: a grant on the spot and a renewal wait until the
//! writer has made them durable; a waiter whose line record is durable is answered at
//! once when the mutex is handed to it; a release is answered at once.
//!
//! Answering without a write means the coordinator cannot refuse it, so every
//! operation first checks that this instance is surely still active
//! ([`LeaseStats::active_now`]: before its step-down deadline); after that deadline
//! it answers a retryable 503 and grants nothing.

use crate::error::MutexError;
use crate::metrics::Metrics;
use crate::section::CriticalSections;
use crate::table::{AcquireReq, Acquired, Effects, Grant, HolderView, MutexView, Queued, Table, WaiterId};
use mware_coord::LeaseStats;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// What a change is, for metrics and for a reply nobody takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An acquire granted on the spot (released again if its caller is gone).
    Acquire,
    /// A renewal.
    Renew,
    /// An operator's eviction: answered once durable.
    Evict,
    /// A release, a waiter's line record, the expiry sweep, restore cleanup, or the
    /// release of an abandoned grant: nobody waits for it.
    Internal,
}

/// A change waiting for the writer.
pub(crate) struct Pending {
    pub fx: Effects,
    pub kind: Kind,
    /// Answered once `fx.writes` are durable.
    pub done: Option<oneshot::Sender<Result<(), MutexError>>>,
    /// Somebody waits for this write (an answer, or a waiter near the head of its
    /// line whose record must be durable before it can be answered): write it now.
    pub urgent: bool,
}

type WaiterReply = oneshot::Sender<Result<Grant, MutexError>>;

pub(crate) struct State {
    pub table: Table,
    /// Queued waiters' reply channels.
    pub waiters: HashMap<WaiterId, WaiterReply>,
    /// Grants to waiters whose line record is not durable yet: answered when it is.
    pub awaiting_record: HashMap<WaiterId, Grant>,
    /// Set when the activity ends; nothing is queued after.
    pub closed: Option<String>,
}

/// A running activity (cheap to share).
pub(crate) struct Active {
    state: Mutex<State>,
    tx: mpsc::UnboundedSender<Pending>,
    lease: Arc<LeaseStats>,
    pub metrics: Metrics,
    /// Cancelled when the activity ends (stopped, fenced, coordinator failure).
    pub closed: CancellationToken,
}

fn not_running(reason: &str) -> MutexError {
    MutexError::NotRunning(reason.to_string())
}

/// A waiter with fewer waiters than this ahead of it may be handed the mutex before a
/// lazily written line record is durable, so its record is written at once.
const NEAR_HEAD: usize = 2;

const LEASE_UNSURE: &str = "this instance's lease is not confirmed (past its step-down deadline); retry: the active instance answers";

/// Reply of a successful acquire or renew.
pub(crate) type Granted = HolderView;

impl Active {
    pub fn new(table: Table, metrics: Metrics, lease: Arc<LeaseStats>) -> (Arc<Self>, mpsc::UnboundedReceiver<Pending>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = State { table, waiters: HashMap::new(), awaiting_record: HashMap::new(), closed: None };
        let a = Active { state: Mutex::new(state), tx, lease, metrics, closed: CancellationToken::new() };
        (Arc::new(a), rx)
    }

    /// The limits in force (they follow config reloads).
    pub fn limits(&self) -> CriticalSections {
        self.lock().table.limits().clone()
    }

    /// Applies new limits from a reloaded config; existing holders and waiters stay.
    pub fn set_limits(&self, limits: CriticalSections) {
        self.lock().table.set_limits(limits);
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the state for an operation: refused when the activity ended or when this
    /// instance is not surely active any more.
    fn lock_for_change(&self) -> Result<MutexGuard<'_, State>, MutexError> {
        let st = self.lock();
        if let Some(r) = &st.closed {
            return Err(not_running(r));
        }
        if !self.lease.active_now() {
            return Err(not_running(LEASE_UNSURE));
        }
        Ok(st)
    }

    /// Applies what a table operation did (call with the state lock held: order
    /// matters): answers waiters' grants that may go out now, parks the others until
    /// their line record is durable, and queues the writes (with `done`, if any, to
    /// be answered once they are durable). Grants nobody takes are released.
    fn apply(&self, st: &mut State, mut fx: Effects, kind: Kind, done: Option<oneshot::Sender<Result<(), MutexError>>>) {
        let mut abandoned = vec![];
        let mut direct = Vec::with_capacity(fx.grants.len());
        // A grant parked until its waiter's line record is durable: that record must
        // be written now (it may sit in a batch gathering company).
        let mut parked = false;
        for g in std::mem::take(&mut fx.grants) {
            match g.waiter {
                Some(id) if g.ready => abandoned.extend(self.answer_waiter(st, id, g)),
                Some(id) => {
                    parked = true;
                    self.metrics.handovers_after_record.inc();
                    st.awaiting_record.insert(id, g);
                }
                None => direct.push(g),
            }
        }
        fx.grants = direct;
        self.metrics.holders.set(st.table.holder_count() as i64);
        self.metrics.waiters.set(st.table.waiter_count() as i64);
        let urgent = done.is_some() || parked || fx.queued.iter().any(|q| q.ahead < NEAR_HEAD);
        if !fx.writes.is_empty() || done.is_some() || parked {
            if let Err(mpsc::error::SendError(p)) = self.tx.send(Pending { fx, kind, done, urgent }) {
                if let Some(d) = p.done {
                    let _ = d.send(Err(not_running("the writer stopped")));
                }
            }
        }
        self.release_locked(st, abandoned);
    }

    /// Sends a grant to its waiter; the grant back when the waiter is gone.
    fn answer_waiter(&self, st: &mut State, id: WaiterId, g: Grant) -> Option<Grant> {
        let waited = g.waited_ms;
        let tx = st.waiters.remove(&id)?;
        match tx.send(Ok(g)) {
            Ok(()) => {
                self.metrics.grants.inc();
                self.metrics.wait_seconds.observe(waited as f64 / 1000.0);
                None
            }
            Err(Ok(g)) => Some(g),
            Err(Err(_)) => None,
        }
    }

    fn release_locked(&self, st: &mut State, grants: Vec<Grant>) {
        let now = mware_coord::now_ms();
        for g in grants {
            tracing::debug!(
                domain = g.domain,
                name = g.name,
                token = g.holder.token,
                "caller left before its grant was answered; releasing it"
            );
            if let Ok(fx) = st.table.release(&g.domain, &g.name, &g.holder.owner, g.holder.token, now) {
                self.apply(st, fx, Kind::Internal, None);
            }
        }
    }

    /// Ends the activity: every waiting caller gets a retryable 503.
    pub fn close(&self, reason: &str) {
        let mut st = self.lock();
        if st.closed.is_none() {
            st.closed = Some(reason.to_string());
        }
        st.awaiting_record.clear();
        for (_, tx) in st.waiters.drain() {
            let _ = tx.send(Err(not_running(reason)));
        }
        drop(st);
        self.closed.cancel();
    }

    fn closed_error(&self) -> MutexError {
        not_running(self.lock().closed.as_deref().unwrap_or("the activity ended"))
    }

    async fn durable(&self, rx: oneshot::Receiver<Result<(), MutexError>>) -> Result<(), MutexError> {
        tokio::select! {
            biased;
            r = rx => r.unwrap_or_else(|_| Err(self.closed_error())),
            _ = self.closed.cancelled() => Err(self.closed_error()),
        }
    }

    /// Acquires `domain/name`, waiting up to `wait_ms` in line.
    pub async fn acquire(&self, domain: &str, name: &str, req: AcquireReq, wait_ms: u64) -> Result<Granted, MutexError> {
        enum Next {
            Durable(HolderView, oneshot::Receiver<Result<(), MutexError>>),
            Wait(WaiterId, oneshot::Receiver<Result<Grant, MutexError>>),
        }
        let now = mware_coord::now_ms();
        let next = {
            let st = &mut *self.lock_for_change()?;
            let fx = st.table.drop_unconfirmed(domain, name, &req.owner, now);
            if !fx.writes.is_empty() {
                tracing::info!(domain, name, owner = %req.owner, "owner asks again: its unconfirmed grant from before the failover is dropped");
                self.apply(st, fx, Kind::Internal, None);
            }
            match st.table.acquire(domain, name, req, now)? {
                Acquired::Now(fx) => {
                    let holder = fx.grants[0].holder.clone();
                    let (done, rx) = oneshot::channel();
                    self.apply(st, fx, Kind::Acquire, Some(done));
                    Next::Durable(holder, rx)
                }
                Acquired::Queued(id, fx) => {
                    let (tx, rx) = oneshot::channel();
                    st.waiters.insert(id, tx);
                    self.apply(st, fx, Kind::Internal, None);
                    Next::Wait(id, rx)
                }
            }
        };
        match next {
            Next::Durable(holder, rx) => {
                self.durable(rx).await?;
                Ok(holder)
            }
            Next::Wait(id, rx) => {
                self.metrics.waits.inc();
                let mut guard = WaitGuard { active: self, domain, name, id, rx: Some(rx) };
                guard.wait(wait_ms).await
            }
        }
    }

    /// Releases a grant. Answered at once: a release lost in a failover only keeps
    /// the holder until its ttl.
    pub fn release(&self, domain: &str, name: &str, owner: &str, token: u64) -> Result<(), MutexError> {
        let now = mware_coord::now_ms();
        let st = &mut *self.lock_for_change()?;
        let fx = st.table.release(domain, name, owner, token, now)?;
        self.apply(st, fx, Kind::Internal, None);
        Ok(())
    }

    /// Evicts the holder `token` whoever owns it; answered once the eviction (and any
    /// hand-over it made) is durable. Returns the evicted holder.
    pub async fn evict(&self, domain: &str, name: &str, token: u64) -> Result<HolderView, MutexError> {
        let h = self.durably(Kind::Evict, |t, now| t.evict(domain, name, token, now)).await?;
        self.metrics.evictions.inc();
        Ok(h)
    }

    /// Renews a grant.
    pub async fn renew(&self, domain: &str, name: &str, owner: &str, token: u64, ttl_ms: u64) -> Result<Granted, MutexError> {
        self.durably(Kind::Renew, |t, now| {
            let fx = t.renew(domain, name, owner, token, ttl_ms, now)?;
            let holder = fx.grants[0].holder.clone();
            Ok((fx, holder))
        })
        .await
    }

    /// Applies a table change that is answered once durable (`op` gets the table and the
    /// time now), and returns what `op` returned beside its effects.
    async fn durably<T>(&self, kind: Kind, op: impl FnOnce(&mut Table, u64) -> Result<(Effects, T), MutexError>) -> Result<T, MutexError> {
        let now = mware_coord::now_ms();
        let (out, rx) = {
            let st = &mut *self.lock_for_change()?;
            let (fx, out) = op(&mut st.table, now)?;
            let (done, rx) = oneshot::channel();
            self.apply(st, fx, kind, Some(done));
            (out, rx)
        };
        self.durable(rx).await?;
        Ok(out)
    }

    /// One mutex.
    pub fn get(&self, domain: &str, name: &str) -> Option<MutexView> {
        self.lock().table.get(domain, name)
    }

    /// The `n` busiest mutexes of the group.
    pub fn busiest(&self, n: usize) -> Vec<crate::table::Busy> {
        self.lock().table.busiest(n)
    }

    /// One page of the mutexes of a domain.
    pub fn list(&self, domain: &str, q: &mware_host::PageQuery) -> mware_host::Page<MutexView> {
        self.lock().table.list(domain, q)
    }

    /// Drops lapsed holders (and grants their waiters); returns when the next one lapses.
    pub fn sweep(&self) -> Option<u64> {
        let Ok(mut st) = self.lock_for_change() else { return None };
        let fx = st.table.expire(mware_coord::now_ms());
        self.metrics.expiries.inc_by(fx.expired.len() as u64);
        for (domain, name, h) in &fx.expired {
            tracing::info!(domain, name, owner = %h.owner, token = h.token, unconfirmed = h.unconfirmed, "holder lapsed: neither renewed nor released within its ttl");
        }
        self.apply(&mut st, fx, Kind::Internal, None);
        st.table.next_expiry()
    }

    /// Called by the writer when line records are durable: those waiters may be
    /// answered at once from now on, and those granted meanwhile are answered now.
    pub fn records_durable(&self, queued: Vec<Queued>) {
        if queued.is_empty() {
            return;
        }
        let st = &mut *self.lock();
        let mut abandoned = vec![];
        for q in queued {
            if st.table.mark_durable(&q.domain, &q.name, q.id) {
                continue;
            }
            if let Some(g) = st.awaiting_record.remove(&q.id) {
                abandoned.extend(self.answer_waiter(st, q.id, g));
            }
        }
        self.release_locked(st, abandoned);
    }

    /// Releases grants on the spot whose callers left before the answer.
    pub fn release_abandoned(&self, grants: Vec<Grant>) {
        if !grants.is_empty() {
            self.release_locked(&mut self.lock(), grants);
        }
    }
}

/// Takes a waiter out of line if its caller stops waiting before the grant.
struct WaitGuard<'a> {
    active: &'a Active,
    domain: &'a str,
    name: &'a str,
    id: WaiterId,
    /// Taken once the outcome is known.
    rx: Option<oneshot::Receiver<Result<Grant, MutexError>>>,
}

impl WaitGuard<'_> {
    async fn wait(&mut self, wait_ms: u64) -> Result<Granted, MutexError> {
        let a = self.active;
        let early = {
            let rx = self.rx.as_mut().expect("receiver");
            tokio::select! {
                r = rx => Some(r),
                _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => None,
            }
        };
        if let Some(r) = early {
            self.rx = None;
            return r.unwrap_or_else(|_| Err(a.closed_error())).map(|g| g.holder);
        }
        // Time is up: leave the line, unless the grant is already on its way.
        let busy = {
            let st = &mut *a.lock();
            match st.table.cancel_wait(self.domain, self.name, self.id) {
                Some(fx) => {
                    st.waiters.remove(&self.id);
                    a.apply(st, fx, Kind::Internal, None);
                    let view = st.table.get(self.domain, self.name);
                    Some(view.map(|m| (m.limit, m.holders)).unwrap_or((1, vec![])))
                }
                None => None,
            }
        };
        let rx = self.rx.take().expect("receiver");
        if let Some((limit, holders)) = busy {
            a.metrics.timeouts.inc();
            return Err(MutexError::Busy { name: self.name.to_string(), limit, holders });
        }
        rx.await.unwrap_or_else(|_| Err(a.closed_error())).map(|g| g.holder)
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        // The caller went away while queued: leave the line, or give back a grant that
        // reached us but not the caller. A grant still on its way finds the reply
        // channel closed and is released where it is sent.
        let a = self.active;
        let st = &mut *a.lock();
        if let Some(fx) = st.table.cancel_wait(self.domain, self.name, self.id) {
            st.waiters.remove(&self.id);
            a.apply(st, fx, Kind::Internal, None);
        } else if let Ok(Ok(g)) = rx.try_recv() {
            a.release_locked(st, vec![g]);
        }
    }
}

#[cfg(test)]
#[path = "active_tests.rs"]
mod tests;
