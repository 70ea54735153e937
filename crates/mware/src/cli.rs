//! Command-line interface definition (clap). Every command explains itself in `--help`.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// mware — Active-Passive middleware for telecom sites.
///
/// One instance per group is active and hosts the group's services (critical sections,
/// pg_controller, realtime provisioning, service tasks, monitoring); the others wait in `order` and take over when it
/// fails. Groups split the tenant domain tree between them with `include_domains`.
#[derive(Debug, Parser)]
#[command(name = "mware", version, propagate_version = true)]
pub struct Cli {
    /// Log format for commands that log (`run`, `rtcache`, `poller`).
    #[arg(long, global = true, value_enum, env = "MWARE_LOG_FORMAT", default_value_t = LogFormat::Text)]
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
    /// Started by `mware run` beside itself: revokes the instance's lease the moment the
    /// daemon dies (its standard input is a pipe only the daemon writes to).
    #[command(hide = true)]
    Companion,
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
    /// Print the site's state first (ok, warning or failing, since when, and every item
    /// that is not ok: probes, groups without an active instance, failed services, pg
    /// groups without a master), then the cluster (every group: members, order, live,
    /// active, epoch, last transition).
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
    /// SSH host keys: see the key a server presents, pin it in the site's known_hosts file.
    ///
    /// Every SSH connection mware makes (pg_controller today) checks the server's key
    /// against the known_hosts file named by the site's `ssh.known_hosts` (default
    /// `var/known_hosts`, relative to the working directory of `mware run`): a key that
    /// differs is refused, and so is a host with no entry unless `ssh.trust_on_first_use`
    /// is true. Nothing is sent to a refused server.
    Ssh {
        /// What to do.
        #[command(subcommand)]
        action: SshAction,
    },
    /// Site config stored in the coordinator.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Run the realtime cache sidecar next to a SIP server (Asterisk res_config_curl).
    Rtcache(mware_realtime::RtcacheArgs),
    /// Run a device job poller (a satellite's, or the pool's): takes jobs from RabbitMQ
    /// (URL in the environment variable MWARE_AMQP_DSN), runs them, sends the results back.
    /// Opens no port; reconnects with backoff; on SIGTERM finishes or returns its jobs.
    Poller(mware_poller::PollerArgs),
}

/// `mware ssh ...`
#[derive(Debug, Subcommand)]
pub enum SshAction {
    /// Print the host key an SSH server presents: type, SHA256 fingerprint, known_hosts line.
    ///
    /// The fingerprint is printed as `ssh-keygen -l` prints it, so it can be compared with
    /// `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` run on the server. Only the key
    /// exchange runs: no user name, no password, no command is sent.
    ShowKey {
        /// Host name or address, as the site file names it (`ssh_host`).
        host: String,
        /// SSH port.
        #[arg(long, short, default_value_t = 22)]
        port: u16,
    },
    /// Pin the host key a server presents in the site's known_hosts file (prints where).
    ///
    /// The file is the site's `ssh.known_hosts` (default `var/known_hosts`, relative to
    /// the working directory: run this where `mware run` runs, or use an absolute path).
    /// Pinning a key that is already there changes nothing; a host with another key
    /// pinned is refused (remove its old line first, if the key was changed on purpose).
    /// With `--fingerprint`, a server presenting another key is refused and nothing is
    /// written; without it the key is trusted as presented: compare the printed
    /// fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server.
    Pin {
        /// Site file whose `ssh.known_hosts` names the file (a bootstrap file reads the
        /// site stored in the coordinator).
        #[arg(long, short)]
        config: PathBuf,
        /// Host name or address, exactly as the site file names it (`ssh_host`).
        host: String,
        /// SSH port.
        #[arg(long, short, default_value_t = 22)]
        port: u16,
        /// The fingerprint the key must have (`SHA256:...`, from `ssh-keygen -l` on the
        /// server); when the server presents another key, nothing is written.
        #[arg(long)]
        fingerprint: Option<String>,
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
