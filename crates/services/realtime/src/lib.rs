//! mware-realtime: realtime configuration for SIP servers that keeps working
//! when its source is down.
//!
//! Two parts speak Asterisk's `res_config_curl` protocol
//! (`POST .../provision/asterisk/{entity_id}/{family}/{single|multi|store|update|destroy|require|static}`):
//!
//! - [`ProvisioningService`], the `provisioning` service of an active mware
//!   instance, answers from PostgreSQL tables with Asterisk's realtime column
//!   names ([`provisioning_routes`] describe its routes for the daemon);
//! - the `rtcache` sidecar ([`rtcache::run`]), next to each Asterisk, forwards
//!   to the provisioning upstreams with failover and caches reads on disk
//!   (redb) with sorcery's `object_lifetime_maximum`/`object_lifetime_stale`,
//!   so an outage of the source never deletes an object (Asterisk issue #273):
//!   only a real "not found" does.
#![deny(missing_docs)]

pub mod codec;
mod db;
mod error;
mod metrics;
mod provisioning;
pub mod query;
pub mod rtcache;
mod section;

pub use error::RealtimeError;
pub use metrics::{ProvisioningMetrics, RtcacheMetrics};
pub use provisioning::{default_families, provisioning_routes, resolve_entity, ProvisioningHandle, ProvisioningService};
pub use rtcache::{run as run_rtcache, RtcacheArgs};
pub use section::{is_entity_id, Provisioning, ProvisioningEntity};

/// The provisioning service and its section (`provisioning`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "provisioning",
        sections: vec![mware_config::section::<section::Provisioning>()],
        build: |registry| std::sync::Arc::new(ProvisioningService::new(registry)),
        cli: vec![],
    }
}
