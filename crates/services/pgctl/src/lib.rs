//! mware-pgctl: pg_controller, which keeps exactly one PostgreSQL primary per pair of
//! servers in streaming replication (seed: `pg_controller`).
//!
//! Per group, a loop observes both servers over PostgreSQL connections, decides with the
//! pure [`decide()`] (whose `Display` is the reason in words), and acts over SSH: promote a
//! standby after the master has been unreachable for `promote_after_s` (only if the
//! referee answers and the lag allows), or rebuild a second master / returning old master
//! as a standby of the current one (its data folder moved into `pg_backup_folder`, its
//! own configuration kept). The master last seen is persisted in the coordinator's
//! epoch-guarded KV with the intent of any action in flight, and published as
//! `pg/<key>/master`. Activity goes to the main log and to `pgctrl_<key>.log`; metrics
//! are `mware_pgctl_*` (see `metrics`). With `rejoin: rewind`, a returning master is
//! rejoined with pg_rewind, and rebuilt with pg_basebackup only if that fails. A promotion
//! touches `pg_signal_filepath` only when the standby watches that file (`trigger`),
//! and runs `pg_ctl promote` at once otherwise.
//!
//! SSH goes through `mware-ssh` with the site's pinned host keys (`ssh` section): each
//! server's key is checked when its loop starts and every few minutes (`hostcheck`),
//! and an action on a server whose key is refused is held back with the reason in the
//! group's status and log; nothing is sent to that server.
#![deny(missing_docs)]

mod api;
pub mod config;
mod decide;
mod error;
mod group;
mod handle;
mod hostcheck;
mod journal;
mod metrics;
mod probe;
mod promote;
mod referee;
mod remote;
mod section;
mod service;
mod status;
pub mod store;
mod trigger;

pub use decide::{decide, Decision, Observed, ServerObs, Snapshot};
pub use error::{PgctlError, Result};
pub use handle::PgctlService;
pub use probe::probe;
pub use section::{parse_groups, PgController, PgGroup, PgServer, Rejoin};
pub use status::{GroupStatus, ServerStatus};

/// The service and its section (`pg_controller`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "pgctl",
        sections: vec![mware_config::section::<section::PgController>()],
        build: |registry| std::sync::Arc::new(PgctlService::new(registry)),
        cli: vec![],
    }
}
