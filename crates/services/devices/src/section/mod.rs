//! (new) The `devicemanager` section of a group: device jobs through the API, run by
//! remote pollers fed through RabbitMQ, or in-process when no broker is set.
//!
//! The section's type and its check live here, in the service that uses them.

use mware_config::{Check, Secret, SectionConfig, SiteInfo};
use serde_json::Value;

mod check;
use mware_jobs::TargetPattern;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// (new) devicemanager settings (a group's section: the same on every member).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceManager {
    /// PostgreSQL connection string (libpq key=value or URL) of the database holding jobs
    /// and results; a secret. Not set: an embedded SQLite file `devicemanager.sqlite` next
    /// to the embedded coordinator's file (single-server sites; with etcd set this, or a
    /// failover to another server starts with no jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Secret>,
    /// RabbitMQ URL (`amqp://user:pass@host:5672/%2f`); a secret. Not set: jobs run in this
    /// process through the same path (no remote pollers, no satellites served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amqp: Option<Secret>,
    /// Satellite ids (latin letters, digits, `_`, `-`): each has the queue
    /// `mware.jobs.sat.<id>`; a job naming another satellite is refused.
    #[serde(default)]
    pub satellites: Vec<String>,
    /// Deliveries of one job before it is dead-lettered and ends `failed` (its pollers
    /// died or returned it each time); default 5.
    #[serde(default = "default_max_deliveries")]
    pub max_deliveries: u32,
    /// Most jobs in one `jobs:batch` call (default 1000).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Largest `timeout_ms` a job may ask for (default 3600000).
    #[serde(default = "default_max_timeout_ms")]
    pub max_timeout_ms: u64,
    /// `timeout_ms` of a job that gives none (default 30000): the job must end within it
    /// from its acceptance, or it ends `expired`.
    #[serde(default = "default_timeout_ms")]
    pub default_timeout_ms: u64,
    /// Jobs run at once in-process (without `amqp`); default 32.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Hours an ended job (done, failed, expired) is kept before it is deleted (default
    /// 168: a week).
    #[serde(default = "default_keep_hours")]
    pub keep_hours: u64,
    /// (new) Name of the environment variable holding devicemanager's own bearer token.
    /// Job calls (submit, read, list) take it or the operator's token
    /// (`api.operator_token_env`), never the API token alone: that one is carried by call
    /// scripts on many servers. Not set: only the operator's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// (new) Per satellite (`pool`: jobs without one, in-process too), the targets its
    /// jobs may reach: ranges (`10.0.0.0/8`), addresses, host names, `*.domain`. A
    /// satellite with a list reaches only those. Loopback, link-local, multicast and
    /// unspecified addresses are refused unless an entry lies inside that range
    /// (`127.0.0.1`, not `0.0.0.0/0`); the site's own instances and coordinator endpoints
    /// always.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, Vec<String>>")]
    pub allowed_targets: BTreeMap<String, Vec<TargetPattern>>,
}

impl SectionConfig for DeviceManager {
    const KEY: &'static str = "devicemanager";
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        check::section(cx, v, at)
    }
}

fn default_max_deliveries() -> u32 {
    5
}
fn default_max_batch() -> usize {
    1000
}
fn default_max_timeout_ms() -> u64 {
    3_600_000
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_keep_hours() -> u64 {
    168
}
fn default_concurrency() -> usize {
    32
}

impl Default for DeviceManager {
    fn default() -> Self {
        serde_json::from_str("{}").expect("devicemanager defaults")
    }
}
