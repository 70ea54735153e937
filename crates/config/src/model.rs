//! The site file's typed model: the seeds' role parameters with their defaults,
//! plus mware's own keys (marked "new" in their docs).
//!
//! Parsing here is the last step; [`crate::validate`] walks the raw JSON first
//! and reports every problem with its JSON path, so these types only ever see
//! input that is already known to be well formed.

use crate::provisioning::Provisioning;
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

/// One mware role instance (the seeds' parameter table).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
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
    /// PostgreSQL streaming replication controller groups. Kept raw: the validator only warns
    /// about them; the controller filters invalid groups at run time (see [`crate::pg`]).
    #[serde(default)]
    pub pg_controller: RawPgGroups,
    /// Backup controller settings.
    #[serde(default)]
    pub backup_controller: Option<BackupController>,
    /// Start the audio-matcher process (IVR "anti-robot" component).
    #[serde(default)]
    pub enable_audiomatcher: bool,
    /// CTI adapter servers.
    #[serde(default)]
    pub cti_adapters: Vec<CtiAdapter>,
    /// (new) Critical sections service (named mutexes and semaphores per domain).
    #[serde(default)]
    pub critical_sections: CriticalSections,
    /// (new) Realtime provisioning service for SIP servers (Asterisk res_config_curl protocol).
    #[serde(default)]
    pub provisioning: Option<Provisioning>,
    /// (new) Scheduled service scripts, run on the group's active instance.
    #[serde(default)]
    pub service_tasks: Vec<crate::tasks::ServiceTask>,
    /// (new) Monitoring: probes and the group's part of the site's state (on by default).
    #[serde(default)]
    pub monitoring: crate::monitoring::Monitoring,
    /// (new) devicemanager: device jobs run by remote pollers through RabbitMQ, or in-process.
    #[serde(default)]
    pub devicemanager: Option<crate::devicemanager::DeviceManager>,
    /// (new) Alarms: syslog in, rules, SNMP traps and Telegram out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<crate::alarms::Alarms>,
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

/// (new) Critical sections service limits.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CriticalSections {
    /// Run the service on the active instance (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Longest mutex name in bytes (default 200).
    #[serde(default = "default_max_name_len")]
    pub max_name_len: usize,
    /// Most waiters queued on one mutex (default 1000); more get 429.
    #[serde(default = "default_max_waiters")]
    pub max_waiters_per_mutex: usize,
    /// Most mutexes held or waited on in one domain (default 10000); more get 429.
    #[serde(default = "default_max_mutexes")]
    pub max_mutexes_per_domain: usize,
    /// Longest `ttl_ms` a holder may ask for (default 3600000).
    #[serde(default = "default_max_ttl_ms")]
    pub max_ttl_ms: u64,
    /// (new) Longest `wait_ms` a caller may ask for (default 60000); must be below
    /// `api.request_timeout_ms`.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// (new) Most domains with a mutex held or waited on, over the group (default 10000);
    /// more get 429.
    #[serde(default = "default_max_domains")]
    pub max_domains: usize,
    /// (new) Largest semaphore `limit` a caller may ask for (default 1000): each holder is a
    /// coordinator write.
    #[serde(default = "default_max_limit")]
    pub max_limit: u32,
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
fn default_max_name_len() -> usize {
    200
}
fn default_max_waiters() -> usize {
    1000
}
fn default_max_mutexes() -> usize {
    10_000
}
fn default_max_ttl_ms() -> u64 {
    3_600_000
}
fn default_max_wait_ms() -> u64 {
    60_000
}
fn default_max_domains() -> usize {
    10_000
}
fn default_max_limit() -> u32 {
    1000
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
impl Default for CriticalSections {
    fn default() -> Self {
        serde_json::from_str("{}").expect("critical_sections defaults")
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

/// The raw `pg_controller` list, kept untyped for the run-time filter. It dereferences to
/// `Vec<serde_json::Value>`; `Debug` and `Serialize` show it with every secret as `***`.
#[derive(Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct RawPgGroups(pub Vec<serde_json::Value>);

impl RawPgGroups {
    fn redacted(&self) -> serde_json::Value {
        let mut v = self.0.clone();
        for g in &mut v {
            crate::redact::redact_allowed(g, crate::pg::GROUP_KEYS, "servers", crate::pg::SERVER_KEYS);
        }
        serde_json::Value::Array(v)
    }
}

impl std::ops::Deref for RawPgGroups {
    type Target = Vec<serde_json::Value>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::fmt::Debug for RawPgGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.redacted())
    }
}

impl Serialize for RawPgGroups {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.redacted().serialize(s)
    }
}
