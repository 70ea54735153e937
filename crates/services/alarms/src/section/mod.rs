//! (new) The `alarms` section of a group (seeds: "Service collecting syslog events and
//! sending SNMP trap", "Telegram: system state monitoring bot"): a syslog receiver on
//! the group's active instance, rules that turn messages into alarms, monitoring state
//! changes as alarms, and the channels that send them (SNMP managers, Telegram).
//!
//! The section's type and its check live here, in the service that uses them.

use mware_config::{Check, Secret, SectionConfig, SiteInfo};
use serde_json::Value;

mod check;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// (new) Alarms of a group.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Alarms {
    /// Run the alarms service on the group's active instance (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The syslog receiver; not set: no syslog is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<SyslogIn>,
    /// Rules, tried in order; the first that matches a message makes it an alarm.
    /// A message no rule matches is counted and dropped.
    #[serde(default)]
    pub rules: Vec<AlarmRule>,
    /// Dedupe window in ms (default 60000): the same alarm (rule, host, app, message)
    /// again within it is counted, not sent; when the window closes one summary alarm
    /// "N more" is sent.
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
    /// Monitoring state changes of the group's items as alarms.
    #[serde(default)]
    pub monitoring: MonitoringAlarms,
    /// SNMP managers that get each alarm as a trap or an inform.
    #[serde(default)]
    pub snmp: Vec<SnmpManager>,
    /// The Telegram bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<Telegram>,
    /// Alarms kept for `GET /api/v1/alarms` once every channel sent them (default 1000).
    #[serde(default = "default_history")]
    pub history: usize,
    /// Most alarms waiting for a channel (default 100000); past it new alarms are
    /// dropped and counted (`mware_alarms_dropped_total{reason="outbox_full"}`).
    #[serde(default = "default_max_outbox")]
    pub max_outbox: usize,
}

impl SectionConfig for Alarms {
    const KEY: &'static str = "alarms";
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        check::section(cx, v, at)
    }
}

/// (new) Where syslog is taken: UDP and/or TCP ports on the active instance's `iface`
/// address.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyslogIn {
    /// UDP port (RFC 3164 or RFC 5424, one message per datagram).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_port: Option<u16>,
    /// TCP port (octet-counted, RFC 6587, or newline-framed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_port: Option<u16>,
    /// Longest message in bytes (default 8192); a longer one is counted and dropped.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// Most TCP connections at once (default 256).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most TCP connections at once from one peer address, an IPv6 peer counted by its /64
    /// (fewer than `max_connections`, so one peer cannot take every slot; default 16, or half
    /// of `max_connections` when that is 32 or less). More are closed at once. Read it
    /// through [`SyslogIn::per_peer`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_peer: Option<usize>,
    /// A TCP connection that sends nothing for this long is closed, in ms (default 30000).
    #[serde(default = "default_tcp_idle_timeout_ms")]
    pub tcp_idle_timeout_ms: u64,
}

/// (new) A rule: every condition given must hold.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlarmRule {
    /// Name, unique in the group (letters, digits, `_`, `-`, `.`; at most 64); carried by
    /// the alarm and its trap.
    pub name: String,
    /// Facilities (`kern`, `user`, `daemon`, `local0` … `local7`, …); any if not set.
    #[serde(default)]
    pub facility: Vec<String>,
    /// The message's severity at or above this level (`emerg` … `debug`); any if not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// A regex on the sending host's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A regex on the app-name (RFC 5424) or tag (RFC 3164).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// A regex on the message text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The alarm's severity; the message's own if not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_severity: Option<String>,
    /// Most alarms of this rule per window (`window_ms`); the rest are counted and
    /// summarised when the window closes. Not set: no limit beyond the dedupe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_window: Option<u32>,
}

/// (new) Monitoring state changes as alarms, with the severity of each state.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MonitoringAlarms {
    /// Raise them (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Severity of "failing" (default `crit`).
    #[serde(default = "default_failing")]
    pub failing: String,
    /// Severity of "warning" (default `warning`).
    #[serde(default = "default_warning")]
    pub warning: String,
    /// Severity of "recovered" (default `notice`); it also closes the item's open alarm.
    #[serde(default = "default_ok")]
    pub ok: String,
}

impl Default for MonitoringAlarms {
    fn default() -> Self {
        MonitoringAlarms { enabled: true, failing: default_failing(), warning: default_warning(), ok: default_ok() }
    }
}

/// (new) An SNMP manager.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnmpManager {
    /// `host:port` (port 162 usually).
    pub address: String,
    /// `v2c` (default) or `v3`.
    #[serde(default = "default_version")]
    pub version: String,
    /// v2c community (default `public`); a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<Secret>,
    /// Send informs (acknowledged, retried until the manager answers) instead of traps
    /// (fire and forget). Default false.
    #[serde(default)]
    pub inform: bool,
    /// Time to wait for an inform's answer, in ms (default 1000).
    #[serde(default = "default_snmp_timeout")]
    pub timeout_ms: u64,
    /// v3 user name (authPriv).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// v3 authentication protocol: `sha1`, `sha256` (default) or `sha512`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_protocol: Option<String>,
    /// v3 authentication password; a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<Secret>,
    /// v3 privacy protocol: `aes128` (default), `aes256` or `des`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priv_protocol: Option<String>,
    /// v3 privacy password; a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priv_password: Option<Secret>,
    /// v3 engine id of this sender for traps, in hex (default derived from the site).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_id: Option<String>,
}

/// (new) The Telegram bot.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Telegram {
    /// Bot API base URL (default `https://api.telegram.org`).
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Name of the environment variable that holds the bot token (a secret, never in
    /// the site file).
    pub token_env: String,
    /// Chats that get alarms and may talk to the bot; others get nothing.
    pub chat_ids: Vec<i64>,
    /// Long poll timeout of `getUpdates` in seconds (default 25).
    #[serde(default = "default_poll_s")]
    pub poll_timeout_s: u64,
}

fn default_true() -> bool {
    true
}
fn default_window_ms() -> u64 {
    60_000
}
fn default_history() -> usize {
    1000
}
fn default_max_outbox() -> usize {
    100_000
}
fn default_max_message() -> usize {
    8192
}
fn default_max_connections() -> usize {
    256
}

impl SyslogIn {
    /// The connections one peer may hold: `max_connections_per_peer` when given, else 16 or
    /// half of `max_connections` (at least 1), whichever is smaller.
    pub fn per_peer(&self) -> usize {
        self.max_connections_per_peer.unwrap_or_else(|| (self.max_connections / 2).clamp(1, 16))
    }
}
fn default_tcp_idle_timeout_ms() -> u64 {
    30_000
}
fn default_failing() -> String {
    "crit".into()
}
fn default_warning() -> String {
    "warning".into()
}
fn default_ok() -> String {
    "notice".into()
}
fn default_version() -> String {
    "v2c".into()
}
fn default_snmp_timeout() -> u64 {
    1000
}
fn default_api_base() -> String {
    "https://api.telegram.org".into()
}
fn default_poll_s() -> u64 {
    25
}

/// The syslog severities, most severe first (RFC 5424 numbering: the index).
pub const SEVERITIES: &[&str] = &["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

/// The syslog facilities (RFC 5424 numbering: the index).
pub const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert",
    "clockd", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
