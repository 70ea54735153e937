//! The membership loop shared by the backends: renews the lease, reads the group,
//! asks [`election::decide`](crate::election::decide) what to do, and acts through the
//! [`Backend`] operations of the coordinator at hand.
//!
//! Timing: the loop wakes every [`TICK`], at the step-down deadline, and as soon as the
//! backend reports a change of the group's election keys (leader, members, switchover:
//! an etcd watch; the embedded file's election counter), so a revoked lease is seen in
//! one round trip instead of up to a tick later; the lease is
//! renewed every `ttl / 3`; every call is bounded by a timeout that, while active, never
//! goes past the step-down deadline (`last confirmed renewal + ttl - margin`), so a hung
//! coordinator cannot keep an active member from stepping down in time.
//!
//! Handover (switchover or failback): the leader turns `Passive` first (the host stops its
//! services on that signal) and releases the leader key `step_down_margin` later.

use crate::api::*;
use crate::election::{decide, takeover_reason, ElectionDecision, ElectionSnapshot, PreviousLeader, View};
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How often the loop reads the group.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Lease identifier (etcd lease id; embedded: a row id).
pub(crate) type LeaseId = i64;

/// What the election needs from a backend. Every call may be cancelled by a timeout.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// Grants a lease and registers the member under it.
    async fn register(&self, m: &MemberInfo) -> Result<LeaseId, CoordError>;
    /// Renews the lease; `Ok(false)` when the lease no longer exists.
    async fn renew(&self, lease: LeaseId) -> Result<bool, CoordError>;
    /// Reads the group's leader key, live members and switchover request.
    async fn view(&self, group: u32, lease: Option<LeaseId>) -> Result<View, CoordError>;
    /// Creates the leader key with our lease if absent; the epoch when taken.
    async fn campaign(&self, m: &MemberInfo, lease: LeaseId) -> Result<Option<Epoch>, CoordError>;
    /// Deletes the leader key if it still has `epoch`.
    async fn release(&self, group: u32, epoch: Epoch) -> Result<(), CoordError>;
    /// Stores the last transition of the group.
    async fn record(&self, group: u32, t: &Transition) -> Result<(), CoordError>;
    /// Deletes the group's switchover request.
    async fn clear_switchover(&self, group: u32) -> Result<(), CoordError>;
    /// Revokes the lease (deleting what it holds).
    async fn revoke(&self, lease: LeaseId) -> Result<(), CoordError>;
    /// A signal for each change of the group's leader key, members or switchover request
    /// (coalesced; the tick still runs, so a missed signal costs at most a tick).
    async fn election_changes(&self, _group: u32) -> Option<mpsc::Receiver<()>> {
        None
    }
}

/// Registers `member` and starts its election loop.
pub(crate) async fn join<B: Backend>(b: Arc<B>, settings: &Settings, member: MemberInfo) -> Result<Membership, CoordError> {
    let ttl = settings.lease_ttl();
    let call = call_timeout(ttl);
    let sent = Instant::now();
    let lease = bounded(call, b.register(&member)).await?;
    let (tx, rx) = watch::channel(Activity::Passive { reason: "joined; waiting for the first election round".into() });
    let (lease_tx, lease_rx) = watch::channel(Some(lease));
    let cancel = CancellationToken::new();
    let changes = b.election_changes(member.group).await;
    let m = Member {
        b,
        info: member,
        ttl,
        margin: settings.step_down_margin(),
        rank_wait: settings.rank_wait(),
        failback: settings.coordination.failback_after_s.map(Duration::from_secs),
        tx,
        lease_tx,
        lease: Some(lease),
        confirmed: Some(sent),
        last_renew: sent,
        active: None,
        free_since: None,
        handing_over: None,
        prev: None,
        stats: Default::default(),
        changes,
    };
    m.stats.confirmed(sent);
    let lease_stats = m.stats.clone();
    let task = tokio::spawn(m.run(cancel.clone()));
    Ok(Membership { activity: rx, lease: lease_stats, lease_id: lease_rx, cancel, task: Some(task) })
}

fn call_timeout(ttl: Duration) -> Duration {
    (ttl / 3).clamp(Duration::from_millis(50), Duration::from_secs(2))
}

async fn bounded<T>(limit: Duration, f: impl Future<Output = Result<T, CoordError>>) -> Result<T, CoordError> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(CoordError::Unavailable(format!("no answer within {} ms", limit.as_millis()))),
    }
}

struct Member<B> {
    b: Arc<B>,
    info: MemberInfo,
    ttl: Duration,
    margin: Duration,
    rank_wait: Duration,
    failback: Option<Duration>,
    tx: watch::Sender<Activity>,
    /// Publishes `lease` (the companion revokes it if this process dies).
    lease_tx: watch::Sender<Option<LeaseId>>,
    lease: Option<LeaseId>,
    /// When the last confirmed renewal (or grant) was sent.
    confirmed: Option<Instant>,
    last_renew: Instant,
    active: Option<Epoch>,
    free_since: Option<Instant>,
    handing_over: Option<Instant>,
    prev: Option<PreviousLeader>,
    stats: Arc<crate::api::LeaseStats>,
    /// Wakes the loop on a change of the group's election keys.
    changes: Option<mpsc::Receiver<()>>,
}

/// The next change signal, or never when the backend gives none (or its watch ended).
async fn changed(rx: &mut Option<mpsc::Receiver<()>>) {
    match rx {
        Some(r) => {
            if r.recv().await.is_none() {
                *rx = None;
                std::future::pending::<()>().await
            }
        }
        None => std::future::pending::<()>().await,
    }
}

impl<B: Backend> Member<B> {
    /// The step-down deadline while active.
    fn deadline(&self) -> Option<Instant> {
        self.active?;
        Some(self.confirmed? + self.ttl.saturating_sub(self.margin))
    }

    /// Publishes the step-down deadline for services that decide without a fenced write.
    fn publish(&self) {
        self.stats.set_active_until(self.deadline());
    }

    /// Timeout for one call: the normal one, cut at the step-down deadline.
    fn limit(&self) -> Duration {
        let normal = call_timeout(self.ttl);
        match self.deadline() {
            Some(d) => normal.min(d.saturating_duration_since(Instant::now())).max(Duration::from_millis(1)),
            None => normal,
        }
    }

    fn snapshot(&self, view: Option<View>) -> ElectionSnapshot {
        let now = Instant::now();
        ElectionSnapshot {
            me: self.info.instance.clone(),
            my_order: self.info.order,
            now_ms: now_ms(),
            active: self.active,
            lease_age_ms: self.lease.and(self.confirmed).map(|c| now.duration_since(c).as_millis() as u64),
            ttl_ms: self.ttl.as_millis() as u64,
            margin_ms: self.margin.as_millis() as u64,
            rank_wait_ms: self.rank_wait.as_millis() as u64,
            failback_after_ms: self.failback.map(|d| d.as_millis() as u64),
            view,
            free_for_ms: self.free_since.map(|t| now.duration_since(t).as_millis() as u64),
            handing_over_ms: self.handing_over.map(|t| now.duration_since(t).as_millis() as u64),
        }
    }

    async fn run(mut self, cancel: CancellationToken) {
        loop {
            let mut sleep = TICK;
            if let Some(d) = self.deadline() {
                sleep = sleep.min(d.saturating_duration_since(Instant::now()));
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(sleep) => {}
                _ = changed(&mut self.changes) => {}
            }
            // Step down first if the lease went unconfirmed too long (e.g. after SIGSTOP).
            let d = decide(&self.snapshot(None));
            if matches!(d, ElectionDecision::StepDown { .. }) {
                self.act(d, None).await;
            }
            self.keep_lease().await;
            let view = bounded(self.limit(), self.b.view(self.info.group, self.lease)).await;
            let view = match view {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::debug!(instance = %self.info.instance, error = %e, "cannot read the group");
                    None
                }
            };
            if let Some(v) = &view {
                self.observe(v);
            }
            let d = decide(&self.snapshot(view.clone()));
            self.act(d, view).await;
        }
        self.leave().await;
    }

    /// Grants or renews the lease when due.
    async fn keep_lease(&mut self) {
        if let Some(lease) = self.lease {
            if self.last_renew.elapsed() < self.ttl / 3 {
                return;
            }
            let sent = Instant::now();
            self.last_renew = sent;
            match bounded(self.limit(), self.b.renew(lease)).await {
                Ok(true) => {
                    self.confirmed = Some(sent);
                    self.stats.confirmed(sent);
                    self.publish();
                }
                Ok(false) => {
                    self.stats.failed();
                    tracing::warn!(instance = %self.info.instance, lease, "lease is gone; registering again");
                    self.set_lease(None);
                    self.confirmed = None;
                    self.publish();
                }
                Err(e) => {
                    self.stats.failed();
                    tracing::debug!(instance = %self.info.instance, error = %e, "lease renewal failed")
                }
            }
        }
        if self.lease.is_none() {
            let sent = Instant::now();
            self.last_renew = sent;
            let mut info = self.info.clone();
            info.since_ms = now_ms();
            match bounded(self.limit(), self.b.register(&info)).await {
                Ok(l) => {
                    self.set_lease(Some(l));
                    self.confirmed = Some(sent);
                    self.stats.confirmed(sent);
                    self.info = info;
                }
                Err(e) => tracing::debug!(instance = %self.info.instance, error = %e, "cannot register"),
            }
        }
    }

    fn set_lease(&mut self, lease: Option<LeaseId>) {
        self.lease = lease;
        self.lease_tx.send_replace(lease);
    }

    fn observe(&mut self, v: &View) {
        match &v.leader {
            None => {
                self.free_since.get_or_insert_with(Instant::now);
            }
            Some(l) => {
                self.free_since = None;
                let order = v.members.iter().find(|c| c.instance == l.instance).map(|c| c.order);
                self.prev = Some(PreviousLeader { instance: l.instance.clone(), order, epoch: l.epoch });
                if !l.mine {
                    self.handing_over = None;
                }
            }
        }
        if v.leader.is_none() {
            self.handing_over = None;
        }
    }

    fn set_passive(&mut self, reason: String) {
        let was = self.active.take();
        self.publish();
        if was.is_some() {
            tracing::warn!(instance = %self.info.instance, %reason, "passive");
        }
        let _ = self.tx.send(Activity::Passive { reason });
    }

    fn set_active(&mut self, epoch: Epoch, reason: String) {
        tracing::info!(instance = %self.info.instance, epoch, %reason, "active");
        self.active = Some(epoch);
        self.handing_over = None;
        self.publish();
        let _ = self.tx.send(Activity::Active { epoch, since_ms: now_ms(), reason });
    }

    async fn act(&mut self, d: ElectionDecision, view: Option<View>) {
        let group = self.info.group;
        match d {
            ElectionDecision::StepDown { reason } => self.set_passive(reason),
            ElectionDecision::BeginHandover { reason, .. } => {
                self.set_passive(reason);
                self.handing_over = Some(Instant::now());
            }
            ElectionDecision::Release { epoch, reason } => {
                tracing::info!(instance = %self.info.instance, %reason, "releasing the leader key");
                if let Err(e) = bounded(self.limit(), self.b.release(group, epoch)).await {
                    tracing::warn!(instance = %self.info.instance, error = %e, "cannot release the leader key");
                }
            }
            ElectionDecision::Campaign { reason } => {
                let Some(lease) = self.lease else { return };
                tracing::debug!(instance = %self.info.instance, %reason, "campaigning");
                match bounded(self.limit(), self.b.campaign(&self.info, lease)).await {
                    Ok(Some(epoch)) => {
                        let view = view.unwrap_or_default();
                        let why = takeover_reason(&self.info.instance, self.prev.as_ref(), &view);
                        self.set_active(epoch, why.clone());
                        let t = Transition { at_ms: now_ms(), instance: self.info.instance.clone(), epoch: Some(epoch), reason: why };
                        if let Err(e) = bounded(self.limit(), self.b.record(group, &t)).await {
                            tracing::warn!(error = %e, "cannot record the transition");
                        }
                        if view.switchover.is_some() {
                            let _ = bounded(self.limit(), self.b.clear_switchover(group)).await;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(instance = %self.info.instance, error = %e, "campaign failed"),
                }
            }
            ElectionDecision::Resume { epoch, reason } => self.set_active(epoch, reason),
            ElectionDecision::ClearSwitchover { reason } => {
                tracing::info!(instance = %self.info.instance, %reason, "clearing switchover request");
                let _ = bounded(self.limit(), self.b.clear_switchover(group)).await;
            }
            ElectionDecision::Stay { reason } => {
                if self.active.is_none() {
                    // Keep the latest reason readable without waking watchers every tick.
                    self.tx.send_if_modified(|a| {
                        let first = matches!(a, Activity::Passive { reason } if reason.starts_with("joined"));
                        *a = Activity::Passive { reason };
                        first
                    });
                }
            }
        }
    }

    /// Resigns if active, then revokes the lease.
    async fn leave(&mut self) {
        let limit = call_timeout(self.ttl);
        if let Some(epoch) = self.active {
            self.set_passive("left the group".into());
            let _ = bounded(limit, self.b.release(self.info.group, epoch)).await;
        }
        if let Some(l) = self.lease.take() {
            let _ = bounded(limit, self.b.revoke(l)).await;
            self.lease_tx.send_replace(None);
        }
    }
}
