//! (new) The `microservices` section of a group: the product layer's processes that the
//! group supervises, the size of the site's log of their output, and the UDP mirror.
//!
//! The section's type and its check live here, in the service that runs it; what the
//! check passes parses (the signal names go through [`signal`], the same parser the
//! supervisor uses).

use mware_config::{Check, Secret, SectionConfig, SiteInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

mod check;

/// (new) The `microservices` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Microservices {
    /// The supervised processes, in file order.
    #[serde(default)]
    pub processes: Vec<Process>,
    /// The site's log of their output on each instance.
    #[serde(default)]
    pub log: LogConfig,
    /// The UDP mirror test service (absent: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_mirror: Option<MirrorConfig>,
    /// Forwarding of the log's lines to a syslog receiver, RFC 5424 (absent: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<SyslogConfig>,
}

/// (new) Where and how the site log's lines are forwarded as syslog messages (RFC 5424:
/// HOSTNAME the instance, APP-NAME the process, MSGID the stream).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// The receiver, `HOST:PORT` (an address or a name; `[v6]:PORT`).
    pub target: String,
    /// `udp` (default: one message per datagram) or `tcp` (octet-counted framing, RFC 6587).
    #[serde(default)]
    pub transport: Transport,
    /// The facility of every message (default `local0`): `user`, `daemon`, `local0`…`local7` and
    /// the other RFC 5424 names.
    #[serde(default = "default_facility")]
    pub facility: String,
    /// The processes whose lines are forwarded; empty (default): every one.
    #[serde(default)]
    pub processes: Vec<String>,
}

/// How syslog messages travel.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One message per datagram.
    #[default]
    Udp,
    /// A stream of octet-counted messages (`LEN SP MSG`).
    Tcp,
}

/// The facility names of RFC 5424, in code order (`kern` is 0, `local7` 23).
pub const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

fn default_facility() -> String {
    "local0".into()
}

impl SectionConfig for Microservices {
    const KEY: &'static str = "microservices";
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        check::microservices(cx, v, at)
    }
}

/// (new) One supervised process.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// Name, unique in the group: latin letters, digits, `_`, `-` and `.` (at most 64).
    pub name: String,
    /// The program and its arguments (an argv, never a shell line).
    pub argv: Vec<String>,
    /// Environment variables added to the daemon's own; values are secrets (never shown).
    #[serde(default)]
    pub env: BTreeMap<String, Secret>,
    /// Working directory (default: the daemon's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Where it runs: `active` (default: on the group's active instance only, moved to
    /// the next one on a failover) or `every` (on every member of the group, active or not).
    #[serde(default)]
    pub run_on: RunOn,
    /// When it is started again after it ends: `always` (default), `on-failure` (an exit
    /// other than 0, or a signal) or `never`.
    #[serde(default)]
    pub restart: Restart,
    /// First pause before a restart, milliseconds (default 500); it doubles with each
    /// restart in the window, up to `backoff_max_ms`.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Longest pause before a restart, milliseconds (default 30000).
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Restarts allowed within `restart_window_s` (default 5); one more and the process
    /// is shown `failed` and left stopped until an operator starts it.
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    /// The window of `max_restarts`, seconds (default 60).
    #[serde(default = "default_window_s")]
    pub restart_window_s: u64,
    /// Signal sent to the process group to stop it (default `SIGTERM`).
    #[serde(default = "default_stop_signal")]
    pub stop_signal: String,
    /// Seconds between the stop signal and SIGKILL of the group (default 5).
    #[serde(default = "default_grace_s")]
    pub stop_grace_s: u64,
    /// Resource limits (`setrlimit` in the child before it starts).
    #[serde(default)]
    pub limits: Limits,
}

/// Where a process runs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunOn {
    /// The group's active instance only.
    #[default]
    Active,
    /// Every member of the group.
    Every,
}

/// When a process that ended is started again.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Whatever the exit.
    #[default]
    Always,
    /// After an exit other than 0, or a signal.
    OnFailure,
    /// Never.
    Never,
}

/// Resource limits of a process (each absent: the daemon's own).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Open files (`RLIMIT_NOFILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nofile: Option<u64>,
    /// Address space, MiB (`RLIMIT_AS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_space_mb: Option<u64>,
    /// CPU time, seconds (`RLIMIT_CPU`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<u64>,
    /// Processes of the user (`RLIMIT_NPROC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nproc: Option<u64>,
    /// Largest core file, MiB (`RLIMIT_CORE`; 0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_mb: Option<u64>,
}

/// The site's log on each instance.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Size of one log file before it is rotated, MiB (default 16).
    #[serde(default = "default_file_mb")]
    pub file_mb: u64,
    /// Rotated files kept besides the current one (default 4).
    #[serde(default = "default_files")]
    pub files: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { file_mb: default_file_mb(), files: default_files() }
    }
}

/// (new) The UDP mirror: every datagram on its ports goes back to its source, never
/// larger, within the rate limits.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// UDP ports on the address of the role's `iface`.
    pub ports: Vec<u16>,
    /// Answers per second to one source address (default 100); past it, dropped and counted.
    #[serde(default = "default_per_source_pps")]
    pub per_source_pps: u32,
    /// Answers per second in all (default 5000); past it, dropped and counted.
    #[serde(default = "default_global_pps")]
    pub global_pps: u32,
    /// Source networks answered (`10.0.0.0/8`, `::1/128`); empty (default): any.
    #[serde(default)]
    pub allowed_networks: Vec<String>,
}

fn default_backoff_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    30_000
}
fn default_max_restarts() -> u32 {
    5
}
fn default_window_s() -> u64 {
    60
}
fn default_stop_signal() -> String {
    "SIGTERM".into()
}
fn default_grace_s() -> u64 {
    5
}
fn default_file_mb() -> u64 {
    16
}
fn default_files() -> u32 {
    4
}
fn default_per_source_pps() -> u32 {
    100
}
fn default_global_pps() -> u32 {
    5000
}

/// Parses a stop signal's name (`SIGTERM`, `TERM`, `SIGINT` ...); `Err` says what is
/// accepted.
pub fn signal(name: &str) -> Result<nix::sys::signal::Signal, String> {
    use nix::sys::signal::Signal::*;
    let up = name.trim_start_matches("SIG");
    let s = match up {
        "TERM" => SIGTERM,
        "INT" => SIGINT,
        "HUP" => SIGHUP,
        "QUIT" => SIGQUIT,
        "USR1" => SIGUSR1,
        "USR2" => SIGUSR2,
        "KILL" => SIGKILL,
        _ => return Err("expected one of SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGKILL".into()),
    };
    Ok(s)
}

/// Parses an allowed network `ADDR/LEN` (or a bare address: one host).
pub fn network(text: &str) -> Result<(std::net::IpAddr, u8), String> {
    let (a, l) = text.split_once('/').unwrap_or((text, ""));
    let addr: std::net::IpAddr = a.parse().map_err(|_| "expected an IP address before '/'".to_string())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = if l.is_empty() { max } else { l.parse::<u8>().map_err(|_| "expected a prefix length after '/'".to_string())? };
    if len > max {
        return Err(format!("expected a prefix length of at most {max}"));
    }
    Ok((addr, len))
}
