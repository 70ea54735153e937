//! mware-coord: how the instances of a group agree on one active instance, and
//! where services keep state that must survive a failover.
//!
//! The [`Coordinator`] trait is the whole contract; each backend lives in its
//! own file (`embedded.rs`: one SQLite file per host, `etcd.rs`: etcd v3).
//!
//! Guarantees every backend gives:
//! - **One active per group.** At most one member of a group holds the leader
//!   key at a time; it is identified by `(instance, epoch)`.
//! - **Epochs only grow.** Each new leadership of a group gets an epoch greater
//!   than every earlier one (etcd: the leader key's create revision; embedded: a
//!   counter in the same transaction). It is the fencing token.
//! - **Fenced writes.** Every KV write carries a [`Fence`] and is applied only
//!   if that epoch is still the group's current leadership, atomically with the
//!   check; otherwise it fails with [`CoordError::Fenced`] and changes nothing.
//! - **Step down before expiry.** A [`Membership`] reports `Passive` as soon as
//!   it cannot confirm its lease renewal within `lease_ttl - step_down_margin`,
//!   so the holder stops acting before anyone else can be elected.
//! - **Failover order.** When the leader key is free, the live member with the
//!   lowest `order` takes it first; a member of rank r (0-based among live
//!   members) waits `r * rank_wait` before trying, so the configured order holds.
//! - **Durable.** KV data and the site config survive the restart of every mware
//!   instance (and of etcd, with its own data directory).
//!
//! How the election runs (shared by both backends, see [`election`] for the pure rules
//! and `member.rs` for the loop):
//! - every member renews its lease every `lease_ttl / 3` and reads its group every
//!   100 ms; every call is bounded so that an active member that cannot reach the
//!   coordinator still turns `Passive` at `ttl - step_down_margin` after its last
//!   confirmed renewal, with the reason "could not renew lease for N ms; stepping down
//!   before it can expire";
//! - a member that lost its lease (e.g. after SIGSTOP or a long cut) registers again
//!   with a new lease and waits as a passive member;
//! - **switchover and failback**: the active member turns `Passive` first (the host
//!   stops its services on that signal), waits `step_down_margin`, then releases the
//!   leader key; the target tries first, the old leader is ranked last;
//! - the new leader records a [`Transition`] with the reason in words ("took over from
//!   mware1 (order 10): its lease ended (its process died, or it could not renew in time)") and clears the switchover request;
//! - [`Membership::leave`] (or dropping it) releases the leader key at once and revokes
//!   the lease: the host must stop its services before calling it.
//! - **Process death** (kill -9, a crash): a [`LeaseRevoker`] in a companion process
//!   revokes the dead member's lease at once ([`Membership::lease_id`] says which), which
//!   frees its leader key and its registration in one step; the next live member in order
//!   then has rank 0 and takes over at its next read of the group (≤ 100 ms). Without the
//!   companion (a host that vanished) the lease runs out as before. See `companion.rs`.
//!
//! Backend notes: etcd leases are granted in whole seconds (`lease_ttl_ms` rounded up);
//! the embedded backend's leases use the wall clock (ms), so a wall-clock jump on the
//! host shortens or lengthens them. The etcd client re-opens keep-alive streams and
//! watches after errors, and authenticates again when etcd forgets its token (restart).
//! TLS to etcd (`tls.ca_file`, and `cert_file` + `key_file` for mutual TLS) is set up once at
//! connect and reused by every reconnect; it needs `https://` endpoints.
//!
//! The daemon opens the coordinator and runs the membership loop on a [`CoordRuntime`]: a
//! thread and runtime of their own, so that no amount of request handling on the daemon's
//! runtime can delay a lease renewal or a step-down.
#![deny(missing_docs)]

mod api;
mod companion;
pub mod election;
mod embedded;
mod etcd;
pub mod fsmode;
mod group_commit;
mod member;
mod runtime;

pub use api::*;
pub use companion::{decide as companion_decide, CompanionAction, CompanionEvent, CompanionMsg, LeaseRevoker};
pub use embedded::EmbeddedCoordinator;
pub use etcd::EtcdCoordinator;
pub use group_commit::GroupCommit;
pub use runtime::CoordRuntime;

use mware_config::{Backend, Site};
use std::sync::Arc;

/// Opens the backend the site file's `coordination` names.
pub async fn connect(site: &Site) -> Result<Arc<dyn Coordinator>, CoordError> {
    let settings = Settings::from_site(site);
    match site.coordination.backend {
        Backend::Embedded => Ok(Arc::new(EmbeddedCoordinator::open(settings).await?)),
        Backend::Etcd => Ok(Arc::new(EtcdCoordinator::connect(settings).await?)),
    }
}
