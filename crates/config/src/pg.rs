//! `pg_controller` groups, parsed leniently at run time: the validator only warns,
//! and an invalid group is left out with the reason (the seed's run-time filter).

use crate::secret::Secret;
use crate::validate::Problem;
use serde::{Deserialize, Serialize};

/// How a returning old master is turned into a standby.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Rejoin {
    /// Move the data folder away and take a full pg_basebackup (the seed's way).
    #[default]
    Basebackup,
    /// Try pg_rewind first, fall back to basebackup.
    Rewind,
}

/// One pg_controller group: two servers in streaming replication.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PgGroup {
    /// Unique key; generated from the servers when absent.
    #[serde(default)]
    pub key: Option<String>,
    /// Host (`host` or `host:port`) the controller must reach before it promotes.
    #[serde(default)]
    pub referee: Option<String>,
    /// The two servers.
    pub servers: Vec<PgServer>,
    /// (new) Seconds the master must be unreachable before the standby is promoted (default 30).
    #[serde(default = "d_promote")]
    pub promote_after_s: u64,
    /// (new) Never promote a standby lagging more than this many bytes (off by default).
    #[serde(default)]
    pub maximum_lag_on_failover_bytes: Option<u64>,
    /// (new) `basebackup` (default) or `rewind`.
    #[serde(default)]
    pub rejoin: Rejoin,
    /// (new) Milliseconds between controller cycles (default 2000).
    #[serde(default = "d_interval")]
    pub check_interval_ms: u64,
}

/// One PostgreSQL server of a pg_controller group (the seed's server fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PgServer {
    /// SSH host (default: `pg_host`).
    #[serde(default)]
    pub ssh_host: Option<String>,
    /// SSH port (default 22).
    #[serde(default = "d_ssh_port")]
    pub ssh_port: u16,
    /// SSH user.
    #[serde(default)]
    pub ssh_user: Option<String>,
    /// SSH password.
    #[serde(default)]
    pub ssh_pwd: Option<Secret>,
    /// (new) SSH private key file, instead of a password.
    #[serde(default)]
    pub ssh_key_file: Option<String>,
    /// PostgreSQL host reachable by replicas (default: `ssh_host`).
    #[serde(default)]
    pub pg_host: Option<String>,
    /// PostgreSQL port (default 5432).
    #[serde(default = "d_pg_port")]
    pub pg_port: u16,
    /// Replica user.
    #[serde(default)]
    pub pg_replica_user: Option<String>,
    /// Replica user's password.
    #[serde(default)]
    pub pg_replica_pwd: Option<Secret>,
    /// Database the controller connects to (default `postgres`).
    #[serde(default = "d_db")]
    pub pg_database: String,
    /// pg_ctl command for the SSH user.
    #[serde(default)]
    pub pg_ctl_command: Option<String>,
    /// pg_basebackup command for the SSH user.
    #[serde(default)]
    pub pg_basebackup_command: Option<String>,
    /// (new) pg_rewind command, for `rejoin: rewind`.
    #[serde(default)]
    pub pg_rewind_command: Option<String>,
    /// Data folder.
    #[serde(default)]
    pub pg_data_folder: Option<String>,
    /// Folder for configs kept outside the data folder (en seed).
    #[serde(default)]
    pub pg_config_folder: Option<String>,
    /// Where old data folders are moved (default `/tmp/pg_backups`).
    #[serde(default = "d_backup")]
    pub pg_backup_folder: String,
    /// PostgreSQL log file (pg_ctl -l).
    #[serde(default)]
    pub pg_log_filepath: Option<String>,
    /// Promotion signal file; when set, promotion touches it instead of `pg_ctl promote`.
    #[serde(default)]
    pub pg_signal_filepath: Option<String>,
}

fn d_promote() -> u64 {
    30
}
fn d_interval() -> u64 {
    2000
}
fn d_ssh_port() -> u16 {
    22
}
fn d_pg_port() -> u16 {
    5432
}
fn d_db() -> String {
    "postgres".into()
}
fn d_backup() -> String {
    "/tmp/pg_backups".into()
}

impl PgServer {
    /// SSH host, defaulting to `pg_host`.
    pub fn ssh_host(&self) -> Option<&str> {
        self.ssh_host.as_deref().or(self.pg_host.as_deref())
    }
    /// PostgreSQL host, defaulting to `ssh_host`.
    pub fn pg_host(&self) -> Option<&str> {
        self.pg_host.as_deref().or(self.ssh_host.as_deref())
    }
}

/// Parses the raw `pg_controller` list of a role. Valid groups come back typed (with
/// generated keys filled in); each invalid group is left out and explained by problems whose
/// paths start with `base` (e.g. `servers[0].roles[0].pg_controller`). (Stub: to be completed.)
pub fn parse_groups(raw: &[serde_json::Value], base: &str) -> (Vec<PgGroup>, Vec<Problem>) {
    let mut ok = Vec::new();
    let mut problems = Vec::new();
    for (i, v) in raw.iter().enumerate() {
        match serde_json::from_value::<PgGroup>(v.clone()) {
            Ok(mut g) => {
                if g.key.is_none() {
                    g.key = Some(format!("pg{i}"));
                }
                ok.push(g)
            }
            Err(e) => problems.push(Problem {
                path: format!("{base}[{i}]"),
                message: e.to_string(),
                severity: crate::validate::Severity::Warning,
            }),
        }
    }
    (ok, problems)
}
