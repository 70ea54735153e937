//! mware-monitor: the monitoring service and the site's state (seeds: "Global Name
//! Monitoring", monitoring of MEGACO connections between MGC and MG, of the fsync file
//! synchronisation and of the site's microservices; failures "reflected in the system
//! status").
//!
//! On the active instance of each group it runs the group's probes (`dns`, `tcp`,
//! `http`, `postgres`, `megaco`, `fsync`, `command`, see [`Checker`]); each result goes
//! through the pure [`decide`] (`fail_after` failures to fail, `recover_after`
//! successes to recover, the reason in words). It also records the group's services
//! (from the host's events), what other services announce (pgctl's "no master"), and
//! whether each group of the site has an active instance. Every change is
//! written to the group's KV (fenced, `mware_host::items`) before it is announced on the host's
//! event channel, so a failover keeps each item's state and since when. Any instance
//! tells the site's state from the coordinator (`mware_host::site`, `GET /api/v1/monitoring`).
#![deny(missing_docs)]

mod api;
mod engine;
mod error;
mod handle;
mod metrics;
mod persist;
mod probes;
mod section;
mod service;
mod state;
mod watch;

pub use engine::{start as start_probes, EngineCtx, ProbeView, Views};
pub use error::MonitorError;
pub use handle::MonitorService;
pub use metrics::{CheckLabels, Metrics, ProbeLabels};
pub use mware_host::site::{ItemView, SiteView};
pub use persist::Change;
pub use probes::{http_client, Checker, ProbeEnv};
pub use section::{Monitoring, Probe, ProbeKind, SshCopy};
pub use state::{decide, Check, Decision, Health, Tracker};

/// The service and its section (`monitoring`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "monitoring",
        sections: vec![mware_config::section::<section::Monitoring>()],
        build: |registry| std::sync::Arc::new(MonitorService::new(registry)),
        cli: vec![],
    }
}
