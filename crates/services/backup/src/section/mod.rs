//! The role's `backup_controller` section: scheduled pg_basebackup archives and the
//! `:SYNC` folder copy. The section's type and its check live here, in the service that
//! runs it; the plan (`crate::config`) is built from the checked value, and the
//! section's `SectionConfig::check` (the walk, then the plan) lives beside the plan.

use mware_config::Secret;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod check;

/// The walk of the raw section: every problem with its path (the plan's own checks follow
/// in [`crate::config`], where the section's `SectionConfig` impl lives).
pub(crate) use check::backup_controller as walk;

/// Backup controller: scheduled pg_basebackup archives and the `:SYNC` folder copy.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupController {
    /// Hour window `[from, to]` (0..=23, may wrap past midnight) when backups may start.
    #[serde(default)]
    pub hours_interval: Vec<u8>,
    /// Days of the week (1 = Monday .. 7 = Sunday) when backups run.
    #[serde(default)]
    pub weekdays: Vec<u8>,
    /// Storage server SSH host (shared default for `sync_folder` and `pgdb`).
    #[serde(default)]
    pub storage_ssh_host: Option<String>,
    /// Storage server SSH port (default 22).
    #[serde(default)]
    pub storage_ssh_port: Option<u16>,
    /// Storage server SSH user.
    #[serde(default)]
    pub storage_ssh_user: Option<String>,
    /// Storage server SSH password.
    #[serde(default)]
    pub storage_ssh_pwd: Option<Secret>,
    /// Path on the storage server; `%weekday` etc. templates rotate copies.
    #[serde(default)]
    pub storage_ssh_path: Option<String>,
    /// Copy of the `:SYNC` folder.
    #[serde(default)]
    pub sync_folder: Option<SyncFolder>,
    /// PostgreSQL instances to archive.
    #[serde(default)]
    pub pgdb: Vec<BackupPgdb>,
    /// (new) Deflate level of the zip archives, 1 (fastest) to 9 (smallest); default 6.
    #[serde(default)]
    pub compress_level: Option<u8>,
}

/// How the `:SYNC` folder is sent to storage.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SyncFolder {
    /// (new) The local path of the `:SYNC` folder on the servers of this group; default
    /// [`DEFAULT_SYNC_PATH`] (`/srv/sync`), the site's synchronised folder on the platform.
    #[serde(default)]
    pub path: Option<String>,
    /// `rsync` (default) or `zip`.
    #[serde(default)]
    pub send_mode: Option<String>,
    /// Glob patterns left out of the copy.
    #[serde(default)]
    pub excluded_paths: Vec<String>,
    /// Storage SSH host for this copy (overrides the top-level one).
    #[serde(default)]
    pub storage_ssh_host: Option<String>,
    /// Storage SSH port.
    #[serde(default)]
    pub storage_ssh_port: Option<u16>,
    /// Storage SSH user.
    #[serde(default)]
    pub storage_ssh_user: Option<String>,
    /// Storage SSH password.
    #[serde(default)]
    pub storage_ssh_pwd: Option<Secret>,
    /// Storage path.
    #[serde(default)]
    pub storage_ssh_path: Option<String>,
}

/// Where the `:SYNC` folder lives when `sync_folder.path` is not set: `/srv/sync`, the
/// folder of the site that the platform's file synchronisation (FSYNC) keeps alike on
/// every server (FHS: `/srv` holds the data a site serves).
pub const DEFAULT_SYNC_PATH: &str = "/srv/sync";

impl SyncFolder {
    /// The local path of the `:SYNC` folder: `path`, else [`DEFAULT_SYNC_PATH`].
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or(DEFAULT_SYNC_PATH)
    }
}

/// One PostgreSQL instance (a replicated pair) to archive.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupPgdb {
    /// (new) Name of this target in status, metrics and archive names (`<key>.zip`);
    /// default `db1`, `db2`... by position.
    #[serde(default)]
    pub key: Option<String>,
    /// The servers of the instance; the backup is taken from a streaming standby when
    /// there is one, else from the master.
    #[serde(default)]
    pub servers: Vec<BackupServer>,
    /// (new) pg_basebackup on the database servers (default `pg_basebackup`).
    #[serde(default)]
    pub pg_basebackup_command: Option<String>,
    /// (new) The server's configuration folder when it is not the data folder (Debian:
    /// `/etc/postgresql/15/main`); its files go into the archive under `pg_config/`.
    #[serde(default)]
    pub pg_config_folder: Option<String>,
    /// SSH port shared by the servers (default 22).
    #[serde(default)]
    pub ssh_port: Option<u16>,
    /// SSH user shared by the servers.
    #[serde(default)]
    pub ssh_user: Option<String>,
    /// SSH password shared by the servers.
    #[serde(default)]
    pub ssh_pwd: Option<Secret>,
    /// PostgreSQL port shared by the servers (default 5432).
    #[serde(default)]
    pub pg_port: Option<u16>,
    /// Replica user for pg_basebackup.
    #[serde(default)]
    pub pg_replica_user: Option<String>,
    /// Replica user's password.
    #[serde(default)]
    pub pg_replica_pwd: Option<Secret>,
    /// Storage SSH host for this instance's archives (overrides the top-level one).
    #[serde(default)]
    pub storage_ssh_host: Option<String>,
    /// Storage SSH port.
    #[serde(default)]
    pub storage_ssh_port: Option<u16>,
    /// Storage SSH user.
    #[serde(default)]
    pub storage_ssh_user: Option<String>,
    /// Storage SSH password.
    #[serde(default)]
    pub storage_ssh_pwd: Option<Secret>,
    /// Storage path.
    #[serde(default)]
    pub storage_ssh_path: Option<String>,
}

/// A server of a backed-up PostgreSQL instance.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupServer {
    /// SSH host (default: `pg_host`).
    #[serde(default)]
    pub ssh_host: Option<String>,
    /// PostgreSQL host (default: `ssh_host`).
    #[serde(default)]
    pub pg_host: Option<String>,
}
