//! The coordinator contract: types and the [`Coordinator`] trait.

use async_trait::async_trait;
use mware_config::{Coordination, Site};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A leadership's fencing token. Only grows within a group.
pub type Epoch = u64;

/// Errors of the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// The backend could not be reached or answered with an error.
    #[error("coordinator unavailable: {0}")]
    Unavailable(String),
    /// The write carried an epoch that is no longer the group's leadership.
    #[error("write refused: epoch {held} of group {group} is stale ({})", current_words(*.current))]
    Fenced {
        /// Group.
        group: u32,
        /// Epoch the writer held.
        held: Epoch,
        /// Current epoch, if any leader exists.
        current: Option<Epoch>,
    },
    /// Bad arguments (key syntax, value too large, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
}

fn current_words(current: Option<Epoch>) -> String {
    match current {
        Some(e) => format!("current epoch: {e}"),
        None => "the group has no active instance".into(),
    }
}

/// Backend-independent settings, from the site file.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Site name.
    pub site: String,
    /// The `coordination` section.
    pub coordination: Coordination,
}

impl Settings {
    /// Settings of a site.
    pub fn from_site(site: &Site) -> Self {
        Settings { site: site.site.clone(), coordination: site.coordination.clone() }
    }
    /// Lease time to live.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.coordination.lease_ttl_ms)
    }
    /// Safety margin before lease expiry at which an unconfirmed leader steps down.
    pub fn step_down_margin(&self) -> Duration {
        Duration::from_millis(self.coordination.step_down_margin_ms)
    }
    /// Wait per rank before trying to take a free leader key.
    pub fn rank_wait(&self) -> Duration {
        Duration::from_millis(self.coordination.rank_wait_ms)
    }
}

/// What a member publishes about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemberInfo {
    /// Instance (role) name.
    pub instance: String,
    /// Group number.
    pub group: u32,
    /// Order within the group.
    pub order: i64,
    /// `host:port` of its API.
    pub address: String,
    /// mware version.
    pub version: String,
    /// When it joined, ms since the Unix epoch.
    pub since_ms: u64,
}

/// Whether this instance is active for its group, as a [`Membership`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Activity {
    /// Not active (waiting in order, stepped down, or not connected).
    Passive {
        /// Why, in words.
        reason: String,
    },
    /// Active with this epoch.
    Active {
        /// Fencing token of this leadership.
        epoch: Epoch,
        /// When it became active, ms since the Unix epoch.
        since_ms: u64,
        /// Why, in words (e.g. "took over: mware1 (order 10) lost its lease").
        reason: String,
    },
}

impl Activity {
    /// The epoch when active.
    pub fn epoch(&self) -> Option<Epoch> {
        match self {
            Activity::Active { epoch, .. } => Some(*epoch),
            Activity::Passive { .. } => None,
        }
    }
}

/// The right to write a group's state: the group and the leadership epoch held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// Group.
    pub group: u32,
    /// Epoch held by the writer.
    pub epoch: Epoch,
}

/// A value with its modification revision (compare-and-set uses it).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// The bytes.
    pub value: Vec<u8>,
    /// Revision of the last write; grows with every write.
    pub revision: u64,
}

/// One write of a batch, applied atomically with the others and the fence check.
#[derive(Debug, Clone)]
pub enum KvOp {
    /// Set a key.
    Put {
        /// Key, relative to the group's KV space.
        key: String,
        /// Value.
        value: Vec<u8>,
    },
    /// Delete a key (no error if absent).
    Delete {
        /// Key.
        key: String,
    },
    /// Delete every key `k` with `from <= k < to` (one operation however many keys).
    DeleteRange {
        /// First key of the range.
        from: String,
        /// End of the range (not included); must sort after `from`.
        to: String,
    },
}

/// Checks a [`KvOp::DeleteRange`]: a non-empty range.
pub(crate) fn check_range(from: &str, to: &str) -> Result<(), CoordError> {
    if from.is_empty() || to <= from {
        return Err(CoordError::Invalid(format!("expected a key range with from < to, found from {from:?}, to {to:?}")));
    }
    Ok(())
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq)]
pub enum KvEvent {
    /// Key set.
    Put {
        /// Key, relative to the group's KV space.
        key: String,
        /// New value.
        value: Vec<u8>,
        /// Its revision.
        revision: u64,
    },
    /// Key deleted.
    Delete {
        /// Key.
        key: String,
    },
    /// The watch was re-opened after a connection loss; the watcher should re-list.
    Resync,
}

/// A member as seen in the cluster view.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemberView {
    /// What it published.
    pub info: MemberInfo,
    /// Whether its lease is live.
    pub live: bool,
}

/// The group's current leadership.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Leader {
    /// Active instance.
    pub instance: String,
    /// Its epoch.
    pub epoch: Epoch,
    /// Since when, ms since the Unix epoch.
    pub since_ms: u64,
}

/// A change of leadership, recorded by the new leader (or by the one stepping down).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transition {
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
    /// Instance concerned.
    pub instance: String,
    /// Epoch after the transition, if it is an acquisition.
    pub epoch: Option<Epoch>,
    /// What happened and why, in words.
    pub reason: String,
}

/// One group as the coordinator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupView {
    /// Group number.
    pub group: u32,
    /// Registered members, live or not (lowest order first).
    pub members: Vec<MemberView>,
    /// Current leader, if any.
    pub leader: Option<Leader>,
    /// Last transition recorded.
    pub last_transition: Option<Transition>,
}

/// Handle of a running membership: the election runs in a background task until
/// [`Membership::leave`] or drop.
pub struct Membership {
    /// Current activity of this instance; changes are pushed here.
    pub activity: watch::Receiver<Activity>,
    /// Lease renewal figures, for metrics.
    pub lease: std::sync::Arc<LeaseStats>,
    /// The id of the lease this member holds now (`None` between losing one and being
    /// granted the next): what a [`LeaseRevoker`](crate::LeaseRevoker) in another process
    /// revokes when this one dies.
    pub lease_id: watch::Receiver<Option<i64>>,
    /// Stops the background task (drop does the same).
    pub(crate) cancel: tokio_util::sync::CancellationToken,
    /// The background task.
    pub(crate) task: Option<tokio::task::JoinHandle<()>>,
}

/// Lease renewal figures of a membership (read by the daemon's metrics).
#[derive(Debug, Default)]
pub struct LeaseStats {
    /// When the last renewal (or grant) was confirmed, ms since the Unix epoch (0: never).
    pub last_confirmed_ms: std::sync::atomic::AtomicU64,
    /// Round trip of the last confirmed renewal, in microseconds.
    pub last_latency_us: std::sync::atomic::AtomicU64,
    /// Confirmed renewals and grants.
    pub renewals: std::sync::atomic::AtomicU64,
    /// Renewals that failed or timed out.
    pub failures: std::sync::atomic::AtomicU64,
    /// While active: the step-down deadline (`last confirmed renewal + ttl − margin`) as
    /// nanoseconds on [`mono_ns`]'s clock; 0 while passive. See [`LeaseStats::active_now`].
    pub active_until_ns: std::sync::atomic::AtomicU64,
}

impl LeaseStats {
    /// Records a confirmed renewal sent at `sent`.
    pub fn confirmed(&self, sent: std::time::Instant) {
        use std::sync::atomic::Ordering::Relaxed;
        self.last_latency_us.store(sent.elapsed().as_micros() as u64, Relaxed);
        self.last_confirmed_ms.store(now_ms(), Relaxed);
        self.renewals.fetch_add(1, Relaxed);
    }
    /// Records a failed renewal.
    pub fn failed(&self) {
        self.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Publishes the step-down deadline (`None`: passive).
    pub fn set_active_until(&self, deadline: Option<std::time::Instant>) {
        let ns = deadline.map_or(0, |d| mono_ns_of(d).max(1));
        self.active_until_ns.store(ns, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether this member is, right now, surely still the active one: active and before
    /// its step-down deadline. Reads the monotonic clock, so it turns false on time even
    /// when the membership loop did not run (a paused process, a hung coordinator call).
    /// The next instance cannot become active before this deadline has passed, so a
    /// decision taken while this is true cannot overlap the next activity.
    pub fn active_now(&self) -> bool {
        let until = self.active_until_ns.load(std::sync::atomic::Ordering::SeqCst);
        until != 0 && mono_ns() < until
    }
}

fn mono_base() -> std::time::Instant {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(std::time::Instant::now)
}

fn mono_ns_of(t: std::time::Instant) -> u64 {
    t.saturating_duration_since(mono_base()).as_nanos() as u64
}

/// Nanoseconds on a monotonic clock private to this process (for [`LeaseStats`]).
pub fn mono_ns() -> u64 {
    mono_ns_of(std::time::Instant::now())
}

impl Membership {
    /// Waits until this instance is active and returns its epoch (at once if it already
    /// is); `Err` when the membership ended first.
    pub async fn wait_active(&mut self) -> Result<Epoch, CoordError> {
        loop {
            if let Activity::Active { epoch, .. } = &*self.activity.borrow_and_update() {
                return Ok(*epoch);
            }
            self.activity.changed().await.map_err(|_| CoordError::Unavailable("the membership ended before it became active".into()))?;
        }
    }

    /// Leaves the group: resigns if active (so the next in order takes over at once) and
    /// revokes the lease.
    pub async fn leave(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The coordinator contract. See the crate docs for the guarantees.
#[async_trait]
pub trait Coordinator: Send + Sync + 'static {
    /// Registers `member` with a lease and takes part in its group's election until the
    /// returned handle is left or dropped. Keep-alives and watches re-open by themselves.
    async fn join(&self, member: MemberInfo) -> Result<Membership, CoordError>;

    /// Every group that has members or a leader key.
    async fn cluster(&self) -> Result<Vec<GroupView>, CoordError>;

    /// Asks the active instance of `group` to hand over (to `to`, or to the next in order).
    /// The active instance stops its services first, then releases the leader key.
    async fn request_switchover(&self, group: u32, to: Option<String>) -> Result<(), CoordError>;

    /// Reads a key of a group's KV space.
    async fn kv_get(&self, group: u32, key: &str) -> Result<Option<Versioned>, CoordError>;
    /// Lists keys under a prefix of a group's KV space (key order).
    async fn kv_list(&self, group: u32, prefix: &str) -> Result<Vec<(String, Versioned)>, CoordError>;
    /// Applies writes atomically, only if `fence` is still the group's leadership.
    /// Returns the revision of the batch. At most [`MAX_TXN_OPS`] operations: etcd
    /// refuses a larger transaction.
    async fn kv_apply(&self, fence: &Fence, ops: Vec<KvOp>) -> Result<u64, CoordError>;
    /// Sets `key` only if its revision is `expected` (`None`: only if absent), fenced.
    /// `Ok(false)` when the comparison failed (nothing written).
    async fn kv_cas(&self, fence: &Fence, key: &str, expected: Option<u64>, value: Vec<u8>) -> Result<bool, CoordError>;
    /// Streams changes under a prefix of a group's KV space, from now on.
    async fn kv_watch(&self, group: u32, prefix: &str) -> Result<mpsc::Receiver<KvEvent>, CoordError>;

    /// The site file stored by `mware config push`, with its revision.
    async fn config_get(&self) -> Result<Option<(String, u64)>, CoordError>;
    /// Stores a (validated) site file; returns its revision.
    async fn config_put(&self, text: &str) -> Result<u64, CoordError>;
    /// Streams each new stored site file.
    async fn config_watch(&self) -> Result<mpsc::Receiver<(String, u64)>, CoordError>;
}

/// Most operations one [`Coordinator::kv_apply`] may carry: etcd's default
/// `--max-txn-ops` (one transaction cannot be split without losing its atomicity, so
/// callers bound their batches).
pub const MAX_TXN_OPS: usize = 128;

/// Convenience wrappers over [`Coordinator::kv_apply`].
pub async fn kv_put(c: &dyn Coordinator, fence: &Fence, key: &str, value: Vec<u8>) -> Result<u64, CoordError> {
    c.kv_apply(fence, vec![KvOp::Put { key: key.to_string(), value }]).await
}

/// Pauses of [`kv_apply_retrying`]: from 100 ms doubling to 1.5 s, each lengthened by a
/// random share of itself (so writers that failed together do not retry in step): at most 3 s.
const WRITE_RETRY: backon::ExponentialBuilder = backon::ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(100))
    .with_max_delay(Duration::from_millis(1500))
    .with_jitter()
    .without_max_times();

/// Applies `ops` (fenced), retrying while the coordinator does not answer, with the pauses
/// of [`WRITE_RETRY`]. `Ok(true)`: written; `Ok(false)`: `cancel` fired first;
/// `Err`: refused ([`CoordError::Fenced`]: this instance is no longer active) or invalid.
/// `what` names the write in the warning logged on each retry.
pub async fn kv_apply_retrying(
    c: &dyn Coordinator,
    fence: &Fence,
    ops: Vec<KvOp>,
    cancel: &tokio_util::sync::CancellationToken,
    what: &str,
) -> Result<bool, CoordError> {
    let mut pauses = backon::BackoffBuilder::build(WRITE_RETRY);
    loop {
        match c.kv_apply(fence, ops.clone()).await {
            Ok(_) => return Ok(true),
            Err(e @ (CoordError::Fenced { .. } | CoordError::Invalid(_))) => return Err(e),
            Err(e) => {
                let pause = pauses.next().unwrap_or(Duration::from_secs(3));
                tracing::warn!(error = %e, what, retry_in_ms = pause.as_millis() as u64, "cannot write to the group's store yet; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(false),
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// Deletes one key, fenced.
pub async fn kv_delete(c: &dyn Coordinator, fence: &Fence, key: &str) -> Result<u64, CoordError> {
    c.kv_apply(fence, vec![KvOp::Delete { key: key.to_string() }]).await
}

/// Milliseconds since the Unix epoch (defined once, in `mware-config`).
pub use mware_config::now_ms;

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    /// The write pauses grow from 100 ms, never pass 3 s, and differ between two writers.
    #[test]
    fn write_pauses_grow_capped_and_jittered() {
        let a: Vec<Duration> = WRITE_RETRY.build().take(12).collect();
        let b: Vec<Duration> = WRITE_RETRY.build().take(12).collect();
        assert!(a[0] >= Duration::from_millis(100) && a[0] < Duration::from_millis(200), "{a:?}");
        assert!(a[3] >= Duration::from_millis(800), "doubles: {a:?}");
        assert!(a.iter().all(|p| *p <= Duration::from_secs(3)), "capped: {a:?}");
        assert!(a[8..].iter().all(|p| *p >= Duration::from_millis(1500)), "stays at the cap: {a:?}");
        assert_ne!(a, b, "jitter: two writers do not pause in step");
    }
}
