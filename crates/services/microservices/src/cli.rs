//! `mware ms ...`: the supervised processes of an instance (list, restart, stop, start),
//! the site's log (`mware logs`, `-f` to follow), and the UDP mirror's client
//! (`mware udp-mirror test HOST:PORT`); the last two also under `mware ms`.

use crate::paths;
use clap::{CommandFactory, FromArgMatches, Parser};
use mware_client::text::ago;
use mware_client::{api, path, CliEnv, Subcommand};
use serde_json::{json, Value};

/// Microservices: the processes supervised on an instance, the site's log of their
/// output, and the UDP mirror's test client.
#[derive(Debug, Parser)]
#[command(name = "ms")]
struct Cmd {
    /// What to do.
    #[command(subcommand)]
    action: Action,
}

/// The subcommands for the registry: `mware ms …`, and `mware logs` and `mware udp-mirror`
/// at the top (the same as `mware ms logs` and `mware ms udp-mirror`).
pub(crate) fn subcommands() -> Vec<Subcommand> {
    vec![
        Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) },
        Subcommand {
            command: LogsCmd::command,
            run: |m, env| Box::pin(async move { run(Action::Logs(LogsCmd::from_arg_matches(&m)?.args), env).await }),
        },
        Subcommand {
            command: MirrorCmd::command,
            run: |m, env| Box::pin(async move { run(Action::UdpMirror(MirrorCmd::from_arg_matches(&m)?.action), env).await }),
        },
    ]
}

#[derive(Debug, clap::Args)]
struct Api {
    /// API of the instance.
    #[arg(long, default_value = "http://127.0.0.1:8271")]
    api: String,
}

#[derive(Debug, clap::Args)]
struct Op {
    /// Process name.
    name: String,
    #[command(flatten)]
    api: Api,
    /// Environment variable holding the operator's (or the API) token.
    #[arg(long, default_value = "MWARE_API_TOKEN")]
    token_env: String,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Every process supervised on the instance: state, pid, since, restarts, last exit.
    List {
        #[command(flatten)]
        api: Api,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restart a process (a failed one too).
    Restart(Op),
    /// Stop a process and leave it stopped.
    Stop(Op),
    /// Start a stopped or failed process.
    Start(Op),
    /// The group's site log: every line of the supervised processes of every member
    /// (also `mware logs`).
    Logs(LogsArgs),
    /// The UDP mirror's client.
    #[command(name = "udp-mirror", subcommand)]
    UdpMirror(Mirror),
}

/// What to read of the site's log.
#[derive(Debug, clap::Args)]
struct LogsArgs {
    #[command(flatten)]
    api: Api,
    /// One process only.
    #[arg(long)]
    process: Option<String>,
    /// These members of the group only (comma-separated instance names; default: all).
    #[arg(long)]
    instance: Option<String>,
    /// From this long ago (`10m`, `2h`) or this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Lines whose text matches this regular expression.
    #[arg(long)]
    grep: Option<String>,
    /// Lines of this level (JSON lines with `level`).
    #[arg(long)]
    level: Option<String>,
    /// The last N lines (then new ones with `-f`).
    #[arg(long, default_value_t = 200)]
    limit: u32,
    /// Follow: print new lines as they come.
    #[arg(short, long)]
    follow: bool,
    /// Print the JSON lines as they are.
    #[arg(long)]
    json: bool,
}

/// The group's site log: every line the supervised processes of its members wrote, with
/// `-f` to follow (across a failover: it moves to any member that answers).
#[derive(Debug, Parser)]
#[command(name = "logs")]
struct LogsCmd {
    #[command(flatten)]
    args: LogsArgs,
}

/// The UDP mirror's test client: loss, round trip, jitter, reordering, source port kept.
#[derive(Debug, Parser)]
#[command(name = "udp-mirror")]
struct MirrorCmd {
    /// What to do.
    #[command(subcommand)]
    action: Mirror,
}

#[derive(Debug, clap::Subcommand)]
enum Mirror {
    /// Send datagrams to a mirror and measure loss, round trip, jitter, reordering and
    /// whether the source port was kept.
    Test {
        /// The mirror, HOST:PORT.
        target: String,
        /// Datagrams per second.
        #[arg(long, default_value_t = 50)]
        rate: u32,
        /// How long (`10s`, `1m`).
        #[arg(long, default_value = "10s")]
        duration: String,
        /// Datagram size, bytes (at least 20).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `10m` → ms since the epoch that long ago; an RFC 3339 time or ms as they are.
fn since_ms(s: &str) -> anyhow::Result<String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(mware_config::now_ms().saturating_sub(d.as_millis() as u64).to_string());
    }
    if s.parse::<u64>().is_ok() || chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        return Ok(s.to_string());
    }
    anyhow::bail!("--since: expected a duration such as 10m or an RFC 3339 time, found {s:?}")
}

fn print_line(l: &Value, json: bool) {
    if json {
        println!("{l}");
        return;
    }
    let t = l["ts_ms"]
        .as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    println!(
        "{t} {}/{} {}: {}",
        l["instance"].as_str().unwrap_or("?"),
        l["process"].as_str().unwrap_or("?"),
        l["stream"].as_str().unwrap_or("?"),
        l["line"].as_str().unwrap_or("")
    );
}

async fn op(o: Op, template: &str, what: &str) -> anyhow::Result<()> {
    api::post(&o.api.api, &path(template, &[("name", &o.name)]), &o.token_env, &json!({}), what).await?;
    println!("process {}: {what} requested", o.name);
    Ok(())
}

async fn list(api_url: &str, json: bool) -> anyhow::Result<()> {
    let v = api::get(api_url, paths::LIST).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{:<20} {:<7} {:<8} {:>8} {:<14} {:>8} {:<22} REASON", "PROCESS", "RUN_ON", "STATE", "PID", "SINCE", "RESTARTS", "LAST EXIT");
    for p in v["processes"].as_array().cloned().unwrap_or_default() {
        let e = &p["last_exit"];
        let exit = match (e["code"].as_i64(), e["signal"].as_i64()) {
            (Some(c), _) => format!("code {c} {}", ago(e["at_ms"].as_u64())),
            (None, Some(s)) => format!("signal {s} {}", ago(e["at_ms"].as_u64())),
            _ => "-".into(),
        };
        println!(
            "{:<20} {:<7} {:<8} {:>8} {:<14} {:>8} {:<22} {}",
            p["name"].as_str().unwrap_or("?"),
            p["run_on"].as_str().unwrap_or("?"),
            p["state"].as_str().unwrap_or("?"),
            p["pid"].as_u64().map(|p| p.to_string()).unwrap_or("-".into()),
            ago(p["since_ms"].as_u64()),
            p["restarts"],
            exit,
            p["reason"].as_str().unwrap_or("")
        );
    }
    let l = &v["log"];
    println!(
        "site log on {}: {} lines written, {} lost, {} stalls",
        v["instance"].as_str().unwrap_or("?"),
        l["written"],
        l["lost"],
        l["stalls"]
    );
    Ok(())
}

async fn run(action: Action, _env: CliEnv) -> anyhow::Result<()> {
    match action {
        Action::List { api, json } => list(&api.api, json).await,
        Action::Restart(o) => op(o, paths::RESTART, "restart").await,
        Action::Stop(o) => op(o, paths::STOP, "stop").await,
        Action::Start(o) => op(o, paths::START, "start").await,
        Action::Logs(LogsArgs { api, process, instance, since, grep, level, limit, follow, json }) => {
            let mut base = format!("{}?format=json", paths::LOGS);
            for (k, v) in [("process", process), ("instance", instance), ("q", grep), ("level", level)] {
                if let Some(v) = v {
                    base.push_str(&format!("&{k}={}", mware_client::encode(&v)));
                }
            }
            let since = since.map(|s| since_ms(&s)).transpose()?;
            crate::follow::run(crate::follow::Follow { api: api.api, base, since, limit, follow }, |l| print_line(l, json)).await
        }
        Action::UdpMirror(Mirror::Test { target, rate, duration, size, json }) => {
            let d = humantime::parse_duration(&duration)
                .map_err(|e| anyhow::anyhow!("--duration: expected a duration such as 10s, found {duration:?}: {e}"))?;
            let addr = tokio::net::lookup_host(&target).await?.next().ok_or_else(|| anyhow::anyhow!("{target}: no address"))?;
            let r = crate::mirror::test(addr, rate, d, size).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(());
            }
            println!("sent {} received {} loss {:.2}%", r.sent, r.received, r.loss_pct);
            println!("rtt p50 {:.3} ms p99 {:.3} ms jitter {:.3} ms", r.rtt_p50_ms, r.rtt_p99_ms, r.jitter_ms);
            println!("reordered {} duplicates {} larger than sent {}", r.reordered, r.duplicates, r.larger);
            match r.source_port_kept {
                Some(true) => println!("source port kept ({})", r.seen_port.unwrap_or(0)),
                Some(false) => println!("source port rewritten: the mirror saw {} (a NAT on the way)", r.seen_port.unwrap_or(0)),
                None => println!("no answer: source port unknown"),
            }
            Ok(())
        }
    }
}
