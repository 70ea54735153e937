//! `mware calltracking ...`: a domain's live and recently ended calls, and the sg states,
//! as an on-call engineer reads them. Every call goes through the API of an instance,
//! which forwards it to the active instance of the group.

use crate::api::paths;
use clap::{CommandFactory, FromArgMatches, Parser};
use mware_client::{api, path, CliEnv, Conn, Subcommand};
use serde_json::Value;

/// Call tracking: a domain's live calls (who calls whom, ringing or answered, since
/// when) and its recently ended ones, or the edge proxies (sg) and what their loss
/// removed. Needs the API token in the env variable named by `--token-env`.
#[derive(Debug, Parser)]
#[command(name = "calltracking")]
struct Cmd {
    /// What to show.
    #[command(subcommand)]
    action: Action,
}

/// The `mware calltracking` subcommand, for the registry.
pub(crate) fn subcommand() -> Subcommand {
    Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) }
}

/// `mware calltracking ...`
#[derive(Debug, clap::Subcommand)]
enum Action {
    /// A domain's live calls and the calls that ended since `--since-min` minutes ago.
    Calls {
        /// The domain.
        domain: String,
        /// Ended calls of the last this many minutes (default 60).
        #[arg(long, default_value_t = 60)]
        since_min: u64,
        #[command(flatten)]
        conn: Conn,
    },
    /// The group's sg: up, failing or lost, since when, what a loss removed.
    Sg {
        #[command(flatten)]
        conn: Conn,
    },
}

async fn run(action: Action, _env: CliEnv) -> anyhow::Result<()> {
    match action {
        Action::Calls { domain, since_min, conn } => {
            let since = mware_config::now_ms().saturating_sub(since_min * 60_000);
            let p = format!("{}?since={since}", path(paths::CALLS, &[("domain", &domain)]));
            let v = api::send(api::Method::GET, &conn.api, &p, &conn.token_env, None, "listing calls").await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_calls(&v);
            }
        }
        Action::Sg { conn } => {
            let v = api::send(api::Method::GET, &conn.api, paths::SG, &conn.token_env, None, "reading the sg").await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("{:<16} {:<8} {:>8} {:<12} {:>7}  LAST ANSWER", "SG", "STATE", "FAILURES", "SINCE", "REMOVED");
            for s in v["sg"].as_array().into_iter().flatten() {
                println!(
                    "{:<16} {:<8} {:>8} {:<12} {:>7}  {}",
                    s["name"].as_str().unwrap_or("?"),
                    s["state"].as_str().unwrap_or("?"),
                    s["failures"].as_u64().unwrap_or(0),
                    mware_client::text::ago(s["since_ms"].as_u64()),
                    s["removed"].as_u64().unwrap_or(0),
                    s["last_answer"].as_str().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}

fn print_calls(v: &Value) {
    let live = v["live"].as_array().cloned().unwrap_or_default();
    println!("{} live call(s)", live.len());
    for c in &live {
        println!(
            "  {:<34} {} -> {}  {} since {}",
            c["id"].as_str().unwrap_or("?"),
            c["from"].as_str().unwrap_or("?"),
            c["to"].as_str().unwrap_or("?"),
            c["state"].as_str().unwrap_or("?"),
            mware_client::text::ago(c["since_ms"].as_u64())
        );
    }
    let ended = v["ended"].as_array().cloned().unwrap_or_default();
    println!("{} ended call(s)", ended.len());
    for c in &ended {
        let how = if c["answered"].as_bool() == Some(true) { "answered".to_string() } else { format!("unanswered ({})", c["code"]) };
        println!(
            "  {:<34} {} -> {}  {how}, ended {}",
            c["id"].as_str().unwrap_or("?"),
            c["from"].as_str().unwrap_or("?"),
            c["to"].as_str().unwrap_or("?"),
            mware_client::text::ago(c["ended_ms"].as_u64())
        );
    }
}
