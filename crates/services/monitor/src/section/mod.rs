//! (new) The `monitoring` section of a group: probes run on the group's active
//! instance, each with its kind's parameters. The kinds and what each checks are
//! described on [`ProbeKind`]; which parameters a kind takes is checked by the
//! validator (a parameter of another kind is refused with its path). The section's type
//! and its check live here, in the service that runs the probes.

use mware_config::{Check, Secret, SectionConfig, SiteInfo};
use serde_json::Value;

mod check;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// (new) Monitoring of a group: its probes, and its part of the site's state.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// Run the monitoring service on the group's active instance (default true): it runs
    /// the probes and records the state of the group's services for the site's state.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The probes.
    #[serde(default)]
    pub probes: Vec<Probe>,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring { enabled: true, probes: vec![] }
    }
}

impl SectionConfig for Monitoring {
    const KEY: &'static str = "monitoring";
    /// On by default: a group without the key still records its part of the site's state.
    fn absent() -> Option<Self> {
        Some(Monitoring::default())
    }
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        check::monitoring(cx, v, at)
    }
}

/// What a probe checks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// A name (`target`) resolves through `resolver` to every address of `expect`.
    Dns,
    /// A TCP connection to `target` (`host:port`) opens.
    Tcp,
    /// A GET of `target` (an `http://` URL) answers `status` (default 200) and, if set,
    /// its body contains `body_contains`.
    Http,
    /// A connection to `dsn` opens and `query` (default `select 1`) answers.
    Postgres,
    /// An H.248 (MEGACO) text AuditValue on ROOT sent over UDP to `target` (`host:port`)
    /// gets a Reply with the same transaction id and no error descriptor in time.
    Megaco,
    /// A canary file written into the folder `target` appears with the same content in
    /// every folder of `copies` and `ssh_copies` in time.
    Fsync,
    /// `command` (an argv) exits 0 in time.
    Command,
}

impl ProbeKind {
    /// The kind's name as written in the site file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Dns => "dns",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Http => "http",
            ProbeKind::Postgres => "postgres",
            ProbeKind::Megaco => "megaco",
            ProbeKind::Fsync => "fsync",
            ProbeKind::Command => "command",
        }
    }
}

/// (new) One probe. Common keys first; the others belong to one kind each.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Name, unique in the group: latin letters, digits, `_`, `-` and `.` (at most 64).
    pub name: String,
    /// What it checks.
    pub kind: ProbeKind,
    /// What it probes: dns: the name; tcp and megaco: `host:port`; http: the URL;
    /// fsync: the local synced folder (absolute path). Not taken by postgres and command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Time between two checks in ms (default 10000).
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Longest time one check may take in ms (default 2000; at most `interval_ms`).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive failures that turn an ok probe failing (default 3).
    #[serde(default = "default_fail_after")]
    pub fail_after: u32,
    /// Consecutive successes that turn a failing probe ok again (default 2).
    #[serde(default = "default_recover_after")]
    pub recover_after: u32,
    /// dns: the resolver, `ip` or `ip:port` (default: the server's /etc/resolv.conf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    /// dns: addresses the name must resolve to (each must be among the answers; none
    /// given: any answer will do).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<String>,
    /// http: the expected status (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// http: text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// postgres: connection string (libpq key=value or URL); a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsn: Option<Secret>,
    /// postgres: the query that must answer (default `select 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// megaco: the mId this probe sends as (default `[<local address>]:<local port>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    /// fsync: the other copies of the synced folder as this server reaches them (absolute
    /// paths, e.g. mounts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<String>,
    /// fsync: other copies of the synced folder on other servers, read over SSH (host keys
    /// checked against the site's `ssh.known_hosts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_copies: Vec<SshCopy>,
    /// command: the program and its arguments (an argv, never a shell line).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// (new) A copy of a synced folder on another server, read over SSH.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SshCopy {
    /// SSH host.
    pub host: String,
    /// SSH port (default 22).
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    /// SSH user.
    pub user: String,
    /// SSH password (or `key_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Private key file, unencrypted (or `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// The folder's path on that server (absolute).
    pub path: String,
}

fn default_ssh_port() -> u16 {
    22
}

impl Probe {
    /// The probe's timeout.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms)
    }
    /// The probe's interval.
    pub fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.interval_ms)
    }
}

fn default_true() -> bool {
    true
}
fn default_interval_ms() -> u64 {
    10_000
}
fn default_timeout_ms() -> u64 {
    2_000
}
fn default_fail_after() -> u32 {
    3
}
fn default_recover_after() -> u32 {
    2
}
