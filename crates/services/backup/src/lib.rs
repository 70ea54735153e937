//! mware-backup: backup_controller (seed: `backup_controller`), scheduled, verified and
//! restorable backups of the site's PostgreSQL instances and its `:SYNC` folder to a
//! storage server over SSH.
//!
//! On the active instance of its group, the [`BackupService`] decides with the pure
//! [`decide()`] (window, weekdays, one run per window, retry ≥ 20 min after a failure)
//! and runs: each PostgreSQL instance is copied with `pg_basebackup` from a streaming
//! standby (else the master), its tar stream turned into a Zip64 archive with deflate
//! on every core (`zipper`) and streamed into a temporary file on the storage server,
//! renamed into place only once the sha256 computed there matches the one computed
//! while sending; the `:SYNC` folder goes by rsync (into a temporary folder, then put in
//! place) or as one zip. A run's start and result are fenced records in the coordinator
//! ([`store`]); a run cut short by a failover is cleaned up by the next active instance.
//! [`restore()`] fetches and unpacks an archive into a folder ready to start.
//! Status: `GET /api/v1/backups`; metrics `mware_backup_*`; a failure is an
//! `Item { source: "backup" }` event and shows in `/api/v1/status`.
#![deny(missing_docs)]

mod api;
mod cli;
pub mod config;
mod decide;
mod error;
mod glob;
mod handle;
mod metrics;
mod pg;
mod restore;
mod run;
mod section;
mod service;
mod storage;
pub mod store;
mod sync;
mod template;
mod unzip;
mod upload;
mod zipper;

pub use config::{plan, Plan, TargetSpec};
pub use decide::{decide, Decision, History, Schedule};
pub use error::{BackupError, Result};
pub use handle::{BackupService, RunRequest};
pub use metrics::Metrics;
pub use restore::{partial_of, restore, restore_capped, Restored};
pub use run::{Live, Runner};
pub use section::{BackupController, BackupPgdb, BackupServer, SyncFolder, DEFAULT_SYNC_PATH};
pub use storage::Listed;
pub use sync::rsync;
pub use unzip::read_all as read_zip;
pub use zipper::Zipper;

/// The archives of target `t` on its storage server: where its path template puts them
/// (every slot of a template).
pub async fn list_archives(t: &TargetSpec, keys: &mware_ssh::HostKeyPolicy) -> Result<Vec<Listed>> {
    let (prefix, templated) = template::fixed_prefix(t.storage.path.as_deref());
    let depth = if templated {
        let rest = t.storage.path.as_deref().unwrap_or("").trim_start_matches(&prefix).trim_matches('/');
        rest.split('/').count() as u32 + 1
    } else {
        1
    };
    let s = t
        .storage
        .target(keys)
        .connect()
        .await
        .map_err(|e| BackupError::Ssh { what: format!("target {}: storage server", t.key), source: e })?;
    let r = storage::list(&s, &prefix, depth, &[t.file_name()]).await;
    s.close().await;
    r
}

/// The service and its section (`backup_controller`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "backup",
        sections: vec![mware_config::section::<section::BackupController>()],
        build: |registry| std::sync::Arc::new(BackupService::new(registry)),
        cli: vec![cli::subcommand()],
    }
}
