//! Command-line interface definition (clap). Every command explains itself in `--help`.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// mware — Active-Passive middleware for telecom sites.
///
/// One instance per group is active and hosts the group's services (critical sections,
/// pg_controller, realtime provisioning); the others wait in `order` and take over when it
/// fails. Groups split the tenant domain tree between them with `include_domains`.
#[derive(Debug, Parser)]
#[command(name = "mware", version, propagate_version = true)]
pub struct Cli {
    /// Log format for commands that log (`run`, `rtcache`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a site file: prints a one-line summary and exits 0 when valid; prints every
    /// problem (one per line, starting with its JSON path) and exits 1 otherwise.
    Validate {
        /// Site file (JSON).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print which group serves each domain, and that group's enabled instances in failover order.
    Route {
        /// Site file (JSON).
        #[arg(long, short)]
        config: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Domains to look up.
        #[arg(required = true)]
        domains: Vec<String>,
    },
    /// Print the JSON Schema of the site file.
    Schema,
    /// Run the daemon for one instance of the site.
    ///
    /// The file may be a whole site, or only `{"site": ..., "coordination": ...}`: then the
    /// site file stored with `mware config push` is used. SIGHUP or a change of the file
    /// reloads it (a file that does not validate is refused and the running config kept);
    /// SIGTERM/SIGINT stop the services and leave the group within `api.drain_timeout_ms`.
    Run {
        /// Site file (JSON).
        #[arg(long, short)]
        config: PathBuf,
        /// Instance (role name) to run.
        #[arg(long, short)]
        instance: String,
    },
    /// Print the cluster (every group: members, order, live, active, epoch, last transition).
    Status {
        /// API of any instance.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Hand a group's activity over cleanly: the active instance stops its services first,
    /// then the target (or the next in order) takes over. Needs the API token in the env
    /// variable named by `--token-env`, or the operator's token when the site sets
    /// `api.operator_token_env`.
    Switchover {
        /// Group number.
        #[arg(long)]
        group: u32,
        /// Instance that should become active (default: the next in order).
        #[arg(long)]
        to: Option<String>,
        /// API of any instance.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Environment variable holding the API token.
        #[arg(long, default_value = "MWARE_API_TOKEN")]
        token_env: String,
    },
    /// Critical sections of a domain: list them, show one (holders, waiters in line), or
    /// evict a holder whose call script died.
    Mutex {
        /// What to do.
        #[command(subcommand)]
        action: MutexAction,
    },
    /// Site config stored in the coordinator.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Run the realtime cache sidecar next to a SIP server (Asterisk res_config_curl).
    Rtcache(mware_realtime::RtcacheArgs),
}

/// `mware mutex ...`
#[derive(Debug, Subcommand)]
pub enum MutexAction {
    /// Every mutex of a domain that is held or waited on: limit, holders, waiters, and
    /// the oldest holder.
    List {
        /// Domain.
        #[arg(long, short)]
        domain: String,
        /// API of any instance (calls are forwarded to the domain's active instance).
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One mutex: its holders (token, held for, lapses in, unconfirmed after a failover)
    /// and its waiters in the order they will be served.
    Show {
        /// Domain.
        #[arg(long, short)]
        domain: String,
        /// Mutex name.
        name: String,
        /// API of any instance.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Print the raw JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a holder whoever owns it (its call script died holding it with a long
    /// ttl); the next waiter is granted and the evicted owner's release or renew is
    /// refused from then on. Durable before it returns; logged with the reason. Needs
    /// the API token in the env variable named by `--token-env`, or the operator's token
    /// when the site sets `api.operator_token_env`.
    Evict {
        /// Domain.
        #[arg(long, short)]
        domain: String,
        /// Mutex name.
        name: String,
        /// Token of the grant to remove (see `mware mutex show`).
        #[arg(long)]
        token: u64,
        /// Why, for the daemon's log (who asks, which ticket).
        #[arg(long)]
        reason: String,
        /// API of any instance.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Environment variable holding the API token.
        #[arg(long, default_value = "MWARE_API_TOKEN")]
        token_env: String,
    },
}

/// `mware config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate a site file and store it in the coordinator named by its own `coordination`
    /// section; running instances apply it if it validates.
    Push {
        /// Site file (JSON).
        file: PathBuf,
    },
    /// Print the site file stored in the coordinator (secrets shown as ***).
    Show {
        /// A file whose `site` and `coordination` say where to look.
        #[arg(long, short)]
        config: PathBuf,
    },
}
