//! One activity of the service: the lock table behind a lock, the queue of changes to
//! the group commit writer, and the operations the HTTP layer calls.
//!
//! A change is applied to the table and queued for the writer under the same lock, so
//! the writer sees changes in the order the table made them. Nobody is answered before
//! the writer has made the change durable: handlers wait on a oneshot the writer fills.

use crate::error::MutexError;
use crate::metrics::Metrics;
use crate::table::{AcquireReq, Acquired, Effects, Grant, HolderView, MutexView, Table, WaiterId};
use mware_config::CriticalSections;
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
    /// A release.
    Release,
    /// Expiry sweep, restore cleanup, or the release of an abandoned grant.
    Internal,
}

/// A change waiting for the writer.
pub(crate) struct Pending {
    pub fx: Effects,
    pub kind: Kind,
    /// Answered once `fx.writes` are durable.
    pub done: Option<oneshot::Sender<Result<(), MutexError>>>,
}

pub(crate) struct State {
    pub table: Table,
    /// Queued waiters' reply channels.
    pub waiters: HashMap<WaiterId, oneshot::Sender<Result<Grant, MutexError>>>,
    /// Set when the activity ends; nothing is queued after.
    pub closed: Option<String>,
}

/// A running activity (cheap to share).
pub(crate) struct Active {
    state: Mutex<State>,
    tx: mpsc::UnboundedSender<Pending>,
    pub metrics: Metrics,
    /// Cancelled when the activity ends (stopped, fenced, coordinator failure).
    pub closed: CancellationToken,
}

fn not_running(reason: &str) -> MutexError {
    MutexError::NotRunning(reason.to_string())
}

/// Reply of a successful acquire or renew.
pub(crate) type Granted = HolderView;

impl Active {
    pub fn new(table: Table, metrics: Metrics) -> (Arc<Self>, mpsc::UnboundedReceiver<Pending>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = State { table, waiters: HashMap::new(), closed: None };
        let a = Active { state: Mutex::new(state), tx, metrics, closed: CancellationToken::new() };
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

    /// Queues a change; call with the state lock held (order matters).
    pub fn queue(&self, st: &State, fx: Effects, kind: Kind) -> Result<oneshot::Receiver<Result<(), MutexError>>, MutexError> {
        if let Some(r) = &st.closed {
            return Err(not_running(r));
        }
        self.metrics.holders.set(st.table.holder_count() as i64);
        let (done, rx) = oneshot::channel();
        self.tx.send(Pending { fx, kind, done: Some(done) }).map_err(|_| not_running("the writer stopped"))?;
        Ok(rx)
    }

    /// Queues a change nobody waits for.
    pub fn queue_internal(&self, st: &State, fx: Effects) {
        if st.closed.is_none() && !fx.writes.is_empty() {
            self.metrics.holders.set(st.table.holder_count() as i64);
            let _ = self.tx.send(Pending { fx, kind: Kind::Internal, done: None });
        }
    }

    /// Ends the activity: every waiting caller gets a retryable 503.
    pub fn close(&self, reason: &str) {
        let mut st = self.lock();
        if st.closed.is_none() {
            st.closed = Some(reason.to_string());
        }
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
            let st = &mut *self.lock();
            if let Some(r) = &st.closed {
                return Err(not_running(r));
            }
            match st.table.acquire(domain, name, req, now)? {
                Acquired::Now(fx) => {
                    let holder = fx.grants[0].holder.clone();
                    Next::Durable(holder, self.queue(st, fx, Kind::Acquire)?)
                }
                Acquired::Queued(id) => {
                    let (tx, rx) = oneshot::channel();
                    st.waiters.insert(id, tx);
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
                let mut guard = WaitGuard { active: self, domain, name, id, armed: true };
                let r = guard.wait(rx, wait_ms).await;
                guard.armed = false;
                r
            }
        }
    }

    /// Releases a grant.
    pub async fn release(&self, domain: &str, name: &str, owner: &str, token: u64) -> Result<(), MutexError> {
        let now = mware_coord::now_ms();
        let rx = {
            let st = &mut *self.lock();
            let fx = st.table.release(domain, name, owner, token, now)?;
            self.queue(st, fx, Kind::Release)?
        };
        self.durable(rx).await
    }

    /// Renews a grant.
    pub async fn renew(&self, domain: &str, name: &str, owner: &str, token: u64, ttl_ms: u64) -> Result<Granted, MutexError> {
        let now = mware_coord::now_ms();
        let (holder, rx) = {
            let st = &mut *self.lock();
            let fx = st.table.renew(domain, name, owner, token, ttl_ms, now)?;
            let holder = fx.grants[0].holder.clone();
            (holder, self.queue(st, fx, Kind::Renew)?)
        };
        self.durable(rx).await?;
        Ok(holder)
    }

    /// One mutex.
    pub fn get(&self, domain: &str, name: &str) -> Option<MutexView> {
        self.lock().table.get(domain, name)
    }

    /// Every mutex of a domain.
    pub fn list(&self, domain: &str) -> Vec<MutexView> {
        self.lock().table.list(domain)
    }

    /// Drops lapsed holders (and grants their waiters); returns when the next one lapses.
    pub fn sweep(&self) -> Option<u64> {
        let mut st = self.lock();
        let fx = st.table.expire(mware_coord::now_ms());
        self.metrics.expiries.inc_by(fx.expired.len() as u64);
        for (domain, name, h) in &fx.expired {
            tracing::info!(domain, name, owner = %h.owner, token = h.token, "holder lapsed: neither renewed nor released within its ttl");
        }
        self.queue_internal(&st, fx);
        st.table.next_expiry()
    }

    /// Releases grants whose callers left before the answer (so the next in line gets it).
    pub fn release_abandoned(&self, grants: Vec<Grant>) {
        if grants.is_empty() {
            return;
        }
        let now = mware_coord::now_ms();
        let mut st = self.lock();
        for g in grants {
            tracing::debug!(domain = g.domain, name = g.name, token = g.holder.token, "caller left before its grant was answered; releasing it");
            if let Ok(fx) = st.table.release(&g.domain, &g.name, &g.holder.owner, g.holder.token, now) {
                self.queue_internal(&st, fx);
            }
        }
    }
}

/// Takes a waiter out of line if its caller stops waiting before the grant.
struct WaitGuard<'a> {
    active: &'a Active,
    domain: &'a str,
    name: &'a str,
    id: WaiterId,
    armed: bool,
}

impl WaitGuard<'_> {
    async fn wait(&mut self, mut rx: oneshot::Receiver<Result<Grant, MutexError>>, wait_ms: u64) -> Result<Granted, MutexError> {
        let a = self.active;
        let started = std::time::Instant::now();
        tokio::select! {
            r = &mut rx => return r.unwrap_or_else(|_| Err(a.closed_error())).map(|g| g.holder),
            _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
        }
        // Time is up: leave the line, unless the grant is already on its way.
        let busy = {
            let mut st = a.lock();
            if st.table.cancel_wait(self.domain, self.name, self.id) {
                st.waiters.remove(&self.id);
                let view = st.table.get(self.domain, self.name);
                Some(view.map(|m| (m.limit, m.holders)).unwrap_or((1, vec![])))
            } else {
                None
            }
        };
        if let Some((limit, holders)) = busy {
            a.metrics.timeouts.inc();
            tracing::debug!(waited_ms = started.elapsed().as_millis() as u64, "wait ran out");
            return Err(MutexError::Busy { name: self.name.to_string(), limit, holders });
        }
        rx.await.unwrap_or_else(|_| Err(a.closed_error())).map(|g| g.holder)
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            // The caller went away while queued. If it was granted meanwhile, its reply
            // channel is dropped and the writer releases the grant.
            let mut st = self.active.lock();
            if st.table.cancel_wait(self.domain, self.name, self.id) {
                st.waiters.remove(&self.id);
            }
        }
    }
}
