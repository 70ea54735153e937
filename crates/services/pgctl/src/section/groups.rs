//! `pg_controller` groups, parsed leniently at run time: the validator only warns,
//! and an invalid group is left out with the reason (the seed's run-time filter).
//!
//! [`parse_groups`] is the one check of these groups: `mware validate` prints its warnings
//! and pg_controller (crate `mware-pgctl`) runs exactly the groups it keeps and logs the
//! same warnings for the ones it leaves out.

use mware_config::{index, join, quote, Check, Problem, Secret, Severity};
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
    /// Folder for configs kept outside the data folder (en seed). Parsed, not yet acted on
    /// by pg_controller (backup_controller's `pgdb[].pg_config_folder` is).
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
    /// (new) TLS of pg_controller's own connections to this server (its probe): `disable`,
    /// `prefer` (default: TLS when the server offers it), `require` (TLS, certificate not
    /// checked, as libpq without a root certificate) or `verify-full` (TLS, chain and host
    /// name checked against `pg_ca_file`).
    #[serde(default)]
    pub pg_sslmode: Option<String>,
    /// (new) PEM file of the CA that signed the server's certificate, for `verify-full`.
    #[serde(default)]
    pub pg_ca_file: Option<String>,
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

/// The keys of a pg_controller group.
pub(super) const GROUP_KEYS: &[&str] =
    &["key", "referee", "servers", "promote_after_s", "maximum_lag_on_failover_bytes", "rejoin", "check_interval_ms"];
/// The keys of a pg_controller server.
pub(super) const SERVER_KEYS: &[&str] = &[
    "ssh_host",
    "ssh_port",
    "ssh_user",
    "ssh_pwd",
    "ssh_key_file",
    "pg_host",
    "pg_port",
    "pg_replica_user",
    "pg_replica_pwd",
    "pg_database",
    "pg_ctl_command",
    "pg_basebackup_command",
    "pg_rewind_command",
    "pg_data_folder",
    "pg_config_folder",
    "pg_backup_folder",
    "pg_log_filepath",
    "pg_signal_filepath",
    "pg_sslmode",
    "pg_ca_file",
];
const SERVER_REQUIRED: &[&str] =
    &["ssh_user", "pg_replica_user", "pg_replica_pwd", "pg_ctl_command", "pg_basebackup_command", "pg_data_folder"];

/// Parses the raw `pg_controller` list of a role. Valid groups come back typed (with
/// generated keys filled in); each invalid group is left out and explained by warnings whose
/// paths start with `base` (e.g. `servers[0].roles[0].pg_controller[1].servers[0].ssh_user`),
/// followed by one warning at the group's path saying it was left out. A group is invalid
/// when it is not an object, has unknown keys or values of the wrong type, has not exactly
/// two servers, a server lacks `ssh_host`/`pg_host`, `ssh_user`, `ssh_pwd`/`ssh_key_file`,
/// `pg_replica_user`, `pg_replica_pwd`, `pg_ctl_command`, `pg_basebackup_command` or
/// `pg_data_folder` (or `pg_rewind_command` with `rejoin: rewind`), its data folder is not an
/// absolute path other than `/`, its backup folder is not an absolute path outside the data
/// folder, both servers are the same `host:port`, or its key repeats an earlier group's. An absent key is generated as the first server's `pg_host:pg_port`.
/// Warnings never contain secret values.
pub fn parse_groups(raw: &[serde_json::Value], base: &str) -> (Vec<PgGroup>, Vec<Problem>) {
    let mut ok: Vec<PgGroup> = Vec::new();
    let mut cx = Check::new(Severity::Warning);
    let mut keys: Vec<(String, String)> = Vec::new();
    for (i, v) in raw.iter().enumerate() {
        let path = index(base, i);
        let before = cx.count();
        if let Some(mut g) = group(&mut cx, v, &path) {
            let key = g.key.clone().unwrap_or_else(|| {
                let s = &g.servers[0];
                format!("{}:{}", s.pg_host().unwrap_or_default(), s.pg_port)
            });
            if let Some((_, first)) = keys.iter().find(|(k, _)| *k == key) {
                let what = if g.key.is_some() { "key" } else { "generated key" };
                cx.report(
                    &join(&path, "key"),
                    format!("expected a key unique among pg_controller groups, found the {what} {key:?} again (first at {first})"),
                );
            } else {
                keys.push((key.clone(), path.clone()));
                g.key = Some(key);
                ok.push(g);
            }
        }
        let n = cx.count() - before;
        if n > 0 {
            cx.report(&path, format!("expected a valid group, found {n} problem(s): this group is left out and not controlled"));
        }
    }
    (ok, cx.into_problems())
}

/// Checks one group; `Some` only when it has no problem.
fn group(cx: &mut Check, v: &serde_json::Value, p: &str) -> Option<PgGroup> {
    let before = cx.count();
    let m = cx.object(v, p)?;
    cx.keys(m, p, GROUP_KEYS, &["servers"]);
    cx.nonempty_str(m, p, "key");
    cx.nonempty_str(m, p, "referee");
    cx.int(m, p, "promote_after_s", 1, 86_400);
    cx.int(m, p, "maximum_lag_on_failover_bytes", 0, i64::MAX);
    let rewind = cx.choice(m, p, "rejoin", &["basebackup", "rewind"]).is_some_and(|r| r == "rewind");
    cx.int(m, p, "check_interval_ms", 100, 3_600_000);
    if let Some(list) = m.get("servers").and_then(|s| cx.list(s, &join(p, "servers"))) {
        if list.len() != 2 {
            cx.report(&join(p, "servers"), format!("expected exactly two servers, found {}", list.len()));
        }
        for (j, s) in list.iter().enumerate() {
            server(cx, s, &index(&join(p, "servers"), j), rewind);
        }
    }
    if cx.count() > before {
        return None;
    }
    let g: PgGroup = match serde_json::from_value(v.clone()) {
        Ok(g) => g,
        Err(_) => {
            cx.report(p, "expected a group the model accepts, found one it refuses");
            return None;
        }
    };
    let (a, b) = (&g.servers[0], &g.servers[1]);
    let host = |s: &PgServer| s.pg_host().unwrap_or_default().to_ascii_lowercase();
    if host(a) == host(b) && a.pg_port == b.pg_port {
        cx.report(&join(p, "servers"), format!("expected two different servers, found both at {}:{}", host(a), a.pg_port));
        return None;
    }
    Some(g)
}

fn server(cx: &mut Check, v: &serde_json::Value, p: &str, rewind: bool) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, SERVER_KEYS, SERVER_REQUIRED);
    let ssh = cx.nonempty_str(m, p, "ssh_host").is_some();
    let pg = cx.nonempty_str(m, p, "pg_host").is_some();
    if !ssh && !pg && !m.contains_key("ssh_host") && !m.contains_key("pg_host") {
        cx.report(p, "expected ssh_host or pg_host, found neither");
    }
    cx.port(m, p, "ssh_port");
    cx.port(m, p, "pg_port");
    cx.secret(m, p, "ssh_pwd");
    cx.secret(m, p, "pg_replica_pwd");
    for k in SERVER_KEYS {
        if !matches!(*k, "ssh_host" | "pg_host" | "ssh_port" | "pg_port" | "ssh_pwd" | "pg_replica_pwd") {
            cx.nonempty_str(m, p, k);
        }
    }
    if let Some(mode) = m.get("pg_sslmode").and_then(|v| v.as_str()) {
        if !["disable", "prefer", "require", "verify-full"].contains(&mode) {
            cx.report(&join(p, "pg_sslmode"), format!("expected disable, prefer, require or verify-full, found {}", quote(mode)));
        } else if mode == "verify-full" && !m.contains_key("pg_ca_file") {
            cx.report(&join(p, "pg_ca_file"), "expected the CA file that verify-full checks the server against, found none");
        }
    }
    if !m.contains_key("ssh_pwd") && !m.contains_key("ssh_key_file") {
        cx.report(p, "expected ssh_pwd or ssh_key_file (how to log in over SSH), found neither");
    }
    let text = |k: &str| m.get(k).and_then(serde_json::Value::as_str).filter(|v| !v.trim().is_empty());
    let raw_data = text("pg_data_folder");
    let data = raw_data.map(|d| d.trim_end_matches('/'));
    if let (Some(raw), Some(d)) = (raw_data, data) {
        if !d.starts_with('/') {
            cx.report(&join(p, "pg_data_folder"), format!("expected an absolute path other than /, found {}", quote(raw)));
        }
    }
    let backup = match m.get("pg_backup_folder") {
        None => Some(d_backup()),
        Some(_) => text("pg_backup_folder").map(str::to_string),
    };
    if let Some(raw_b) = backup {
        let b = raw_b.trim_end_matches('/');
        let inside = data.is_some_and(|d| d.starts_with('/') && (b == d || b.starts_with(&format!("{d}/"))));
        if !b.starts_with('/') || b.is_empty() || inside {
            cx.report(
                &join(p, "pg_backup_folder"),
                format!("expected an absolute path outside pg_data_folder (old data folders are moved there), found {}", quote(&raw_b)),
            );
        }
    }
    if rewind && !m.contains_key("pg_rewind_command") {
        cx.report(&join(p, "pg_rewind_command"), "expected a pg_rewind command since the group has rejoin \"rewind\", found it missing");
    }
}
