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
#![deny(missing_docs)]

mod api;
pub mod election;
mod embedded;
mod etcd;
mod member;

pub use api::*;
pub use embedded::EmbeddedCoordinator;
pub use etcd::EtcdCoordinator;

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
