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
    /// Critical sections of a domain: list them, show one (holders, waiters in line), or
    /// evict a holder whose call script died.
    Mutex {
        /// What to do.
        #[command(subcommand)]
        action: MutexAction,
    },
    /// Calls placed by the callmanager (third-party call control): list the live and
    /// recently ended calls, show one with its legs, or hang one up. Needs the API token
    /// in the env variable named by `--token-env`.
    Calls {
        /// What to do.
        #[command(subcommand)]
        action: CallsAction,
    },
    /// Backups of the group's PostgreSQL instances and :SYNC folder (backup_controller):
    /// their state, a run now with a progress bar, the archives on the storage servers,
    /// and a restore into a new folder.
    Backup {
        /// What to do.
        #[command(subcommand)]
        action: BackupAction,
    },
    /// Service tasks of a group (scheduled service scripts on its active instance): list
    /// them, show a task's last runs, or run one now.
    Tasks {
        /// What to do.
        #[command(subcommand)]
        action: TasksAction,
    },
    /// Alarms of a group: the open ones and the most recent, each channel's backlog
    /// (SNMP managers, Telegram), and acknowledging one.
    Alarms {
        /// What to do.
        #[command(subcommand)]
        action: AlarmsAction,
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

/// `mware calls ...`
#[derive(Debug, Subcommand)]
pub enum CallsAction {
    /// The calls of the asked instance's group (of one domain with `--domain`): state,
    /// parties, since when, and why the ended ones ended.
    List {
        /// Only this domain's calls.
        #[arg(long, short)]
        domain: Option<String>,
        /// API of an instance of the group (forwarded to its active instance).
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Environment variable holding the API token.
        #[arg(long, default_value = "MWARE_API_TOKEN")]
        token_env: String,
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One call: its state and each leg's state, SIP code and reason.
    Show {
        /// Call id (`<group>-<hex>`).
        id: String,
        /// API of any instance (forwarded to the call's group).
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Environment variable holding the API token.
        #[arg(long, default_value = "MWARE_API_TOKEN")]
        token_env: String,
        /// Print the raw JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Hang up a call: CANCEL what rings, BYE what is up; returns once it ended.
    Hangup {
        /// Call id.
        id: String,
        /// API of any instance.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Environment variable holding the API token.
        #[arg(long, default_value = "MWARE_API_TOKEN")]
        token_env: String,
    },
}

/// `mware backup ...`
#[derive(Debug, Subcommand)]
pub enum BackupAction {
    /// Each target's last success (size, duration, source), last failure with its reason,
    /// the next run and a run in progress (bytes sent, rate).
    Status {
        /// API of any instance of the group (forwarded to its active instance).
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start a run now, outside the window too, and follow it with a progress bar until it
    /// ends (exit 1 when it fails). Needs the operator's token (`api.operator_token_env`)
    /// when the site sets one, else the API token, in the env variable `--token-env`.
    Run {
        /// Only this target (a pgdb key, or `sync`); default: all.
        #[arg(long)]
        target: Option<String>,
        /// API of any instance of the group.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Environment variable holding the token.
        #[arg(long, default_value = "MWARE_API_TOKEN")]
        token_env: String,
        /// Return once the run is accepted instead of following it.
        #[arg(long)]
        no_wait: bool,
    },
    /// The archives (and rsync copies) on the storage servers, with size and date, and the
    /// path to give `restore --archive`.
    List {
        /// API of any instance of the group.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Fetch an archive from the storage server and unpack it into a new folder, with a
    /// progress bar. Every file's CRC and the archive's recorded sha256 are checked; the
    /// folder gets its name only when all is well. A PostgreSQL archive becomes a data
    /// folder ready to start (docs/services/backup.md, "Restoring a backup"); run this as the database's OS
    /// user, or chown the folder after.
    Restore {
        /// Site file (a bootstrap file reads the site stored in the coordinator): the
        /// storage server, its password and the pinned host keys come from it.
        #[arg(long, short)]
        config: PathBuf,
        /// The instance whose backup_controller to use (default: the only one with one).
        #[arg(long)]
        instance: Option<String>,
        /// Target: a pgdb key (`db1`...) or `sync`.
        #[arg(long)]
        target: String,
        /// The archive's path on the storage server, as `mware backup list` prints it.
        #[arg(long)]
        archive: String,
        /// The new folder (must not exist).
        #[arg(long)]
        to: PathBuf,
        /// Stop (naming the entry) before writing more than this many bytes, e.g. `50G`
        /// (default: the free space of the folder's file system, and at most 200 times
        /// the archive's size).
        #[arg(long, value_parser = parse_size)]
        max_size: Option<u64>,
    },
}

/// A size in bytes with an optional K, M, G or T suffix (powers of 1024).
fn parse_size(raw: &str) -> Result<u64, String> {
    let t = raw.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("expected bytes with an optional K, M, G or T suffix, found {raw:?}")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("expected bytes with an optional K, M, G or T suffix, found {raw:?}"))
}

/// `mware tasks ...`. The calls go to the group of the instance named by `--api`
/// (forwarded to its active instance).
#[derive(Debug, Subcommand)]
pub enum TasksAction {
    /// Every task: schedule, next slot, run in progress, last run and last success.
    List {
        /// API of an instance of the group.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The kept runs of a task, newest first: outcome and why, exit code, duration,
    /// and the tail of its output.
    Runs {
        /// Task name.
        name: String,
        /// API of an instance of the group.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Print the raw JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a task now, by its overlap policy (refused while a run is in progress with
    /// `overlap: skip`). Needs the API token in the env variable named by `--token-env`,
    /// or the operator's token when the site sets `api.operator_token_env`.
    Run {
        /// Task name.
        name: String,
        /// API of an instance of the group.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Environment variable holding the API token.
        #[arg(long, default_value = "MWARE_API_TOKEN")]
        token_env: String,
    },
}

/// `mware alarms ...`
#[derive(Debug, Subcommand)]
pub enum AlarmsAction {
    /// Open alarms (the first `--limit`, oldest first, with how many are open), the most
    /// recent ones, and each channel's backlog.
    List {
        /// API of an instance of the group.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// How many open and recent alarms to show (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Show the open alarms after this one (the `next` id printed with a previous page).
        #[arg(long)]
        after: Option<String>,
        /// Print the raw JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an alarm (it is no longer open; the acknowledgement survives a
    /// failover). Needs the operator's token (or the API token when the site sets no
    /// `api.operator_token_env`) in the variable named by `--token-env`.
    Ack {
        /// Alarm id, such as 7-120.
        id: String,
        /// API of an instance of the group.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Environment variable holding the token.
        #[arg(long, default_value = "MWARE_API_TOKEN")]
        token_env: String,
    },
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

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_take_a_binary_suffix() {
        assert_eq!(super::parse_size("1024"), Ok(1024));
        assert_eq!(super::parse_size("50G"), Ok(50 << 30));
        assert_eq!(super::parse_size("2k"), Ok(2048));
        for bad in ["", "G", "1.5G", "5X", "-1", "99999999999T"] {
            assert!(super::parse_size(bad).unwrap_err().starts_with("expected bytes"), "{bad}");
        }
    }
}
