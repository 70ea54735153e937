//! `mware alarms ...`: a group's open and recent alarms with each channel's backlog,
//! and acknowledging one.

use crate::api::paths;
use clap::{CommandFactory, FromArgMatches, Parser};
use mware_client::text::ago;
use mware_client::{api, path, CliEnv, Subcommand};
use serde_json::{json, Value};

fn line(a: &Value) -> String {
    let s = |k: &str| a[k].as_str().unwrap_or("").to_string();
    let app = if s("app").is_empty() { String::new() } else { format!("/{}", s("app")) };
    let acked = a["acked"]["by"].as_str().map(|b| format!(" [acked by {b}]")).unwrap_or_default();
    format!(
        "{:<10} {:<8} {:<16} {}{app} ({}): {}{acked}",
        s("id"),
        s("severity"),
        s("rule"),
        s("host"),
        ago(a["at_ms"].as_u64()),
        s("message")
    )
}

/// Alarms of a group: the open ones and the most recent, each channel's backlog
/// (SNMP managers, Telegram), and acknowledging one.
#[derive(Debug, Parser)]
#[command(name = "alarms")]
struct Cmd {
    /// What to do.
    #[command(subcommand)]
    action: AlarmsAction,
}

/// The `mware alarms` subcommand, for the registry.
pub(crate) fn subcommand() -> Subcommand {
    Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) }
}

/// `mware alarms ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AlarmsAction {
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

/// Runs one `mware alarms` action.
async fn run(action: AlarmsAction, _env: CliEnv) -> anyhow::Result<()> {
    match action {
        AlarmsAction::List { api, limit, after, json } => {
            let mut path = format!("{}?limit={limit}", paths::ALARMS);
            if let Some(a) = &after {
                if a.is_empty() || !a.chars().all(|c| c.is_ascii_digit() || c == '-') {
                    anyhow::bail!("--after: expected an alarm id like 7-120, found {a:?}");
                }
                path.push_str("&after=");
                path.push_str(a);
            }
            let v = api::get(&api, &path).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let open = v["open"].as_array().cloned().unwrap_or_default();
            let total = v["open_total"].as_u64().unwrap_or(open.len() as u64);
            if open.len() as u64 == total {
                println!("{total} open alarm(s)");
            } else {
                println!("{total} open alarm(s); showing {}", open.len());
            }
            for a in &open {
                println!("  {}", line(a));
            }
            if let Some(next) = v["next"].as_str() {
                println!("  ... more: mware alarms list --after {next}");
            }
            println!("recent:");
            for a in v["recent"].as_array().into_iter().flatten() {
                println!("  {}", line(a));
            }
            for c in v["channels"].as_array().into_iter().flatten() {
                println!(
                    "channel {}: sent through {}, {} waiting",
                    c["channel"].as_str().unwrap_or("?"),
                    c["sent_through"].as_str().unwrap_or("-"),
                    c["backlog"]
                );
            }
            Ok(())
        }
        AlarmsAction::Ack { id, api, token_env } => {
            let v = api::post(&api, &path(paths::ACK, &[("id", &id)]), &token_env, &json!({}), "acknowledge").await?;
            println!("acknowledged: {}", line(&v));
            Ok(())
        }
    }
}
