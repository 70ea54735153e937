//! The site file's typed model: the seeds' role parameters with their defaults,
//! plus mware's own keys (marked "new" in their docs).
//!
//! Parsing here is the last step; [`crate::validate`] walks the raw JSON first
//! and reports every problem with its JSON path, so these types only ever see
//! input that is already known to be well formed.

use crate::secret::Secret;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One site: its coordination, its API settings and its servers with their roles.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Site name (latin letters, digits, `-` and `_`); used in the coordinator prefix.
    pub site: String,
    /// (new) Where groups elect their active instance and keep durable state.
    #[serde(default)]
    pub coordination: Coordination,
    /// (new) HTTP API settings shared by every instance.
    #[serde(default)]
    pub api: ApiConfig,
    /// (new) SSH host key checking (known_hosts file, trust on first use).
    #[serde(default)]
    pub ssh: crate::ssh::SshSettings,
    /// The servers of the site, each with its interfaces and role instances.
    pub servers: Vec<Server>,
}

/// Which coordinator backend to use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One SQLite file shared by the mware processes of one host (single server sites).
    #[default]
    Embedded,
    /// etcd v3 (several servers).
    Etcd,
}

/// (new) Coordination settings: election, leases, fencing and durable state.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Coordination {
    /// `embedded` (default) or `etcd`.
    #[serde(default)]
    pub backend: Backend,
    /// embedded: path of the SQLite file (default `var/coord.sqlite`, relative to the working directory).
    #[serde(default = "default_coord_path")]
    pub path: String,
    /// etcd: client endpoints, e.g. `["http://127.0.0.1:2379"]`.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// etcd: key prefix (default `/mware/<site>`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// etcd: user name, if etcd has auth enabled.
    #[serde(default)]
    pub user: Option<String>,
    /// etcd: password for `user`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// etcd: TLS files.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Lease time to live in milliseconds (default 3000). An active instance that cannot renew
    /// within it is replaced.
    #[serde(default = "default_lease_ttl_ms")]
    pub lease_ttl_ms: u64,
    /// How long before its lease can lapse an active instance that could not confirm renewal
    /// stops its services and turns passive (default 1000 ms).
    #[serde(default = "default_step_down_margin_ms")]
    pub step_down_margin_ms: u64,
    /// Wait per rank before a member further down the order tries to take over (default 300 ms).
    #[serde(default = "default_rank_wait_ms")]
    pub rank_wait_ms: u64,
    /// If set, a lower-order instance that has been healthy this many seconds takes activity back.
    #[serde(default)]
    pub failback_after_s: Option<u64>,
}

/// (new) TLS files for the etcd client.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificate (PEM).
    pub ca_file: String,
    /// Client certificate (PEM), for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<String>,
    /// Client key (PEM), for mutual TLS.
    #[serde(default)]
    pub key_file: Option<String>,
}

/// (new) HTTP API settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Name of the environment variable holding the bearer token for mutating calls
    /// (default `MWARE_API_TOKEN`). When the variable is unset, mutating calls are refused.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// Name of the environment variable holding the operator's bearer token. When set,
    /// the operator's calls (group switchover, eviction of a mutex holder) need that
    /// token and refuse the one of `token_env`, which call scripts on many servers
    /// carry; the operator's token is also taken for every other mutating call. When
    /// set but the variable is unset, the operator's calls are refused. Not set
    /// (default): one token for everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_token_env: Option<String>,
    /// How long a stopping instance waits for its services and requests to finish (default 10000 ms).
    #[serde(default = "default_drain_ms")]
    pub drain_timeout_ms: u64,
    /// (new) Longest time to receive a request's head; a slower client is disconnected
    /// (default 10000 ms).
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// (new) A connection with no request in flight and no byte moved for this long is
    /// closed (default 60000 ms).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// (new) Longest time for a call to produce its answer; past it the call is cancelled
    /// and answered 503 (default 120000 ms). Streamed answers are not cut. Must exceed
    /// every wait a call may ask for (`critical_sections.max_wait_ms`).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// (new) Most connections open at once; more are closed at once (default 1024).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// (new) Host names and addresses (`name`, `10.0.0.1`, `[::1]`, each with `:port` for
    /// that port only) a request's `Host` header may name, beside the instance's own
    /// server addresses (always accepted: other instances forward there). Any other
    /// `Host` is answered 421 (DNS rebinding). Not set: `localhost`, `127.0.0.1`, `[::1]`
    /// and the site's server names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
}

/// A server of the site.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Server name, unique in the site.
    pub name: String,
    /// Interface alias → address of this server on that interface.
    pub ifaces: BTreeMap<String, String>,
    /// Role instances on this server.
    #[serde(default)]
    pub roles: Vec<Role>,
}

/// One mware role instance (the seeds' parameter table): the keys of the site here, the
/// services' sections in [`Role::sections`]. Unknown keys are refused by the validator
/// (a key no registered section claims), not by serde: the sections are kept by name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Role {
    /// Name: latin letters and digits, starting with a letter; unique in the site.
    pub name: String,
    /// Role type; only `"mware"`.
    pub roletype: String,
    /// Alias of the server interface used between roles; must be in the server's `ifaces`.
    pub iface: String,
    /// Additional role options: any JSON object or list.
    #[serde(default)]
    pub opts: Option<serde_json::Value>,
    /// When false the role takes no part in validation and is never started.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Group number, 1..=9999999. One instance per group is active.
    pub group: u32,
    /// Order within the group: the order of failover (lowest first).
    pub order: i64,
    /// Domains this group serves, with their subtrees, except branches named by other groups.
    /// Exactly one group leaves it empty and serves the rest of the tree.
    #[serde(default)]
    pub include_domains: Vec<String>,
    /// (new) TCP port of this instance's HTTP API on its `iface` address (default 8271).
    #[serde(default = "default_api_port")]
    pub api_port: u16,
    /// Start the audio-matcher process (IVR "anti-robot" component).
    #[serde(default)]
    pub enable_audiomatcher: bool,
    /// CTI adapter servers.
    #[serde(default)]
    pub cti_adapters: Vec<CtiAdapter>,
    /// The service sections (`alarms`, `backup_controller`, …): every key not above,
    /// each checked and parsed by the service that owns it ([`Role::section`]).
    #[serde(flatten)]
    pub sections: crate::section::Sections,
}

/// A CTI adapter server.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CtiAdapter {
    /// Adapter key (protocol service name).
    pub key: String,
    /// Interface alias, or `default`.
    pub iface: String,
    /// TCP port.
    pub port: u16,
}

fn default_true() -> bool {
    true
}
fn default_coord_path() -> String {
    "var/coord.sqlite".into()
}
fn default_lease_ttl_ms() -> u64 {
    3000
}
fn default_step_down_margin_ms() -> u64 {
    1000
}
fn default_rank_wait_ms() -> u64 {
    300
}
fn default_token_env() -> String {
    "MWARE_API_TOKEN".into()
}
fn default_drain_ms() -> u64 {
    10_000
}
fn default_api_port() -> u16 {
    8271
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_idle_timeout_ms() -> u64 {
    60_000
}
fn default_request_timeout_ms() -> u64 {
    120_000
}
fn default_max_connections() -> usize {
    1024
}

impl Default for Coordination {
    fn default() -> Self {
        serde_json::from_str("{}").expect("coordination defaults")
    }
}
impl Default for ApiConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("api defaults")
    }
}

impl Coordination {
    /// The etcd key prefix: the configured one or `/mware/<site>`.
    pub fn prefix_for(&self, site: &str) -> String {
        self.prefix.clone().unwrap_or_else(|| format!("/mware/{site}"))
    }
}

/// A role instance together with the server it runs on.
#[derive(Debug, Clone, Copy)]
pub struct Placed<'a> {
    /// The server.
    pub server: &'a Server,
    /// The role instance.
    pub role: &'a Role,
}

impl Placed<'_> {
    /// `address:api_port` where this instance listens (its iface address).
    pub fn api_addr(&self) -> Option<String> {
        let ip = self.server.ifaces.get(&self.role.iface)?;
        Some(if ip.contains(':') { format!("[{ip}]:{}", self.role.api_port) } else { format!("{ip}:{}", self.role.api_port) })
    }
}

impl Role {
    /// The service section of type `T` (see [`crate::SectionConfig`]): `None` when the
    /// section is off.
    pub fn section<T: crate::SectionConfig>(&self) -> Option<T> {
        self.sections.get::<T>()
    }
}

impl Site {
    /// Every enabled role instance with its server, in file order.
    pub fn instances(&self) -> impl Iterator<Item = Placed<'_>> {
        self.servers.iter().flat_map(|s| s.roles.iter().filter(|r| r.enabled).map(move |r| Placed { server: s, role: r }))
    }
    /// The JSON path of the enabled instance with this name (`servers[0].roles[1]`), as the
    /// validator names it in its problems.
    pub fn instance_path(&self, name: &str) -> Option<String> {
        self.servers.iter().enumerate().find_map(|(i, s)| {
            let j = s.roles.iter().position(|r| r.enabled && r.name == name)?;
            Some(format!("servers[{i}].roles[{j}]"))
        })
    }
    /// The enabled instance with this name.
    pub fn instance(&self, name: &str) -> Option<Placed<'_>> {
        self.instances().find(|p| p.role.name == name)
    }
    /// Enabled instances of a group, in failover order (lowest `order` first).
    pub fn group_members(&self, group: u32) -> Vec<Placed<'_>> {
        let mut v: Vec<_> = self.instances().filter(|p| p.role.group == group).collect();
        v.sort_by_key(|p| p.role.order);
        v
    }
    /// The distinct group numbers with at least one enabled instance, ascending.
    pub fn groups(&self) -> Vec<u32> {
        let mut g: Vec<u32> = self.instances().map(|p| p.role.group).collect();
        g.sort_unstable();
        g.dedup();
        g
    }
}
