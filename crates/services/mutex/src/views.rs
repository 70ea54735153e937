//! The values the lock table takes and returns: what the API shows ([`HolderView`],
//! [`WaiterView`], [`MutexView`]), what an operation did ([`Effects`]: writes, grants)
//! and what an earlier activity left ([`SavedHolder`]).

use serde::{Deserialize, Serialize};

/// Identifies a queued waiter (unique within one table).
pub type WaiterId = u64;

/// A holder as shown by the API and stored in the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HolderView {
    /// Owner named by the acquirer (e.g. a call id).
    pub owner: String,
    /// Fencing token: grows with every grant of the mutex.
    pub token: u64,
    /// When the grant lapses unless renewed, ms since the Unix epoch.
    pub expires_at_ms: u64,
    /// When it was granted, ms since the Unix epoch (0: unknown, see `unconfirmed`).
    pub granted_at_ms: u64,
    /// Restored after a failover and not heard of since: its release may have been
    /// answered and lost, or (restored from a waiter's line record, lapsing a ttl after
    /// the failover) the previous active instance may have granted it just before it
    /// stopped. It counts as a holder (the owner may release or renew it with its
    /// token) until it is released, renewed, its owner asks again, or it lapses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unconfirmed: bool,
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
    /// The token it will be granted with.
    pub token: u64,
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

/// A grant to answer.
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
    /// A waiter's grant whose line record is durable already: it may be answered at
    /// once (by an instance that is surely still active), without waiting for `writes`.
    pub ready: bool,
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
    /// Store a waiter's line record: it may be granted without a further write once
    /// this is durable (a restore counts it as an unconfirmed holder).
    Queue {
        /// Domain.
        domain: String,
        /// Mutex name.
        name: String,
        /// Mutex limit.
        limit: u32,
        /// Owner.
        owner: String,
        /// The token it will be granted with.
        token: u64,
        /// TTL it asked for.
        ttl_ms: u64,
    },
    /// Forget a holder or a waiter (release, expiry, wait over).
    Delete {
        /// Domain.
        domain: String,
        /// Mutex name.
        name: String,
        /// Its token.
        token: u64,
    },
}

/// A waiter whose line record is written by an [`Effects`].
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    /// Domain.
    pub domain: String,
    /// Mutex name.
    pub name: String,
    /// The waiter.
    pub id: WaiterId,
    /// Waiters ahead of it in line when it joined.
    pub ahead: usize,
}

/// What an operation did: writes to make durable, then grants to answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Effects {
    /// Writes, in order.
    pub writes: Vec<Write>,
    /// Grants: on the spot ones may be answered once `writes` are durable; waiters'
    /// ones as their `ready` says.
    pub grants: Vec<Grant>,
    /// Waiters whose line record `writes` makes durable.
    pub queued: Vec<Queued>,
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
    /// Queued; a later release or expiry grants it, or the caller cancels it. The
    /// effects write its line record.
    Queued(WaiterId, Effects),
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

/// A record an earlier activity left: a holder, or a waiter's line record.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedHolder {
    /// Domain.
    pub domain: String,
    /// Mutex name.
    pub name: String,
    /// Mutex limit.
    pub limit: u32,
    /// The holder (for a line record: owner and token, times 0).
    pub holder: HolderView,
    /// `Some(ttl)` for a waiter's line record.
    pub queued_ttl_ms: Option<u64>,
}

/// A mutex as the console lists the busiest ones.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Busy {
    /// Domain.
    pub domain: String,
    /// Mutex name.
    pub name: String,
    /// Holders allowed at once.
    pub limit: u32,
    /// Holders now.
    pub holders: usize,
    /// Callers in line.
    pub waiters: usize,
    /// The oldest holder's owner.
    pub oldest_owner: Option<String>,
    /// The oldest holder's token (what an eviction names).
    pub oldest_token: Option<u64>,
    /// When the oldest holder was granted, ms since the Unix epoch.
    pub oldest_since_ms: Option<u64>,
}
