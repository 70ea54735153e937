//! `mware mutex ...`: the critical sections of a domain, as an on-call engineer reads
//! them (who holds what, since when, until when, who waits), and the eviction of a
//! holder whose call script died. Every call goes through the API of any instance,
//! which forwards it to the active instance of the domain's group.

use crate::api::paths;
use clap::{CommandFactory, FromArgMatches, Parser};
use mware_client::{api, path, CliEnv, Subcommand};
use serde_json::{json, Value};

/// Critical sections of a domain: list them, show one (holders, waiters in line), or
/// evict a holder whose call script died.
#[derive(Debug, Parser)]
#[command(name = "mutex")]
struct Cmd {
    /// What to do.
    #[command(subcommand)]
    action: MutexAction,
}

/// The `mware mutex` subcommand, for the registry.
pub(crate) fn subcommand() -> Subcommand {
    Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) }
}

/// `mware mutex ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum MutexAction {
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

/// Runs one `mware mutex` action.
async fn run(action: MutexAction, _env: CliEnv) -> anyhow::Result<()> {
    match action {
        MutexAction::List { domain, api, json } => {
            let v = api::get(&api, &path(paths::MUTEXES, &[("domain", &domain)])).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let mutexes = v["mutexes"].as_array().cloned().unwrap_or_default();
            if mutexes.is_empty() {
                println!("domain {domain}: no mutex is held or waited on");
                return Ok(());
            }
            println!("{:<32} {:>5} {:>7} {:>7}  OLDEST HOLDER", "NAME", "LIMIT", "HOLDERS", "WAITERS");
            for m in &mutexes {
                let holders = m["holders"].as_array().cloned().unwrap_or_default();
                let oldest = holders.iter().min_by_key(|h| h["granted_at_ms"].as_u64().unwrap_or(u64::MAX));
                println!(
                    "{:<32} {:>5} {:>7} {:>7}  {}",
                    m["name"].as_str().unwrap_or("?"),
                    m["limit"],
                    holders.len(),
                    m["waiters"].as_array().map_or(0, Vec::len),
                    oldest.map(holder_line).unwrap_or_default()
                );
            }
            if let Some(total) = v["total"].as_u64().filter(|t| *t > mutexes.len() as u64) {
                println!("showing {} of {total} (the API pages with ?limit= and ?after=)", mutexes.len());
            }
            Ok(())
        }
        MutexAction::Show { domain, name, api, json } => {
            let Some(v) = get_or_free(&api, &path(paths::MUTEX, &[("domain", &domain), ("name", &name)])).await? else {
                println!("mutex {name} of {domain} is free: nobody holds or waits on it");
                return Ok(());
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("mutex {name} of {domain}, limit {}", v["limit"]);
            println!("holders:");
            for h in v["holders"].as_array().into_iter().flatten() {
                println!("  {}", holder_line(h));
            }
            println!("waiters, first in line first:");
            for (i, w) in v["waiters"].as_array().into_iter().flatten().enumerate() {
                println!(
                    "  {:>3}. {} (token {}), waiting {}",
                    i + 1,
                    w["owner"].as_str().unwrap_or("?"),
                    w["token"],
                    ago(w["since_ms"].as_u64())
                );
            }
            Ok(())
        }
        MutexAction::Evict { domain, name, token, reason, api, token_env } => {
            let at = path(paths::EVICT, &[("domain", &domain), ("name", &name)]);
            let v = api::post(&api, &at, &token_env, &json!({"token": token, "reason": reason}), "eviction").await?;
            println!("evicted {}; the next waiter, if any, holds it now", holder_line(&v["evicted"]));
            Ok(())
        }
    }
}

/// [`api::get`] of one mutex; `None` when the service answers that nobody holds or waits on
/// it. (A 404 of the forwarding layer, for a domain no group serves, names a `group`
/// and stays an error.)
async fn get_or_free(api: &str, path: &str) -> anyhow::Result<Option<Value>> {
    let (status, v, url) = api::fetch(api, path).await?;
    match status {
        s if s.is_success() => Ok(Some(v)),
        api::StatusCode::NOT_FOUND if v.get("group").is_none() => Ok(None),
        s => anyhow::bail!("{url}: {s}: {}", api::error_of(&v)),
    }
}

/// `owner (token N), held 12 s, lapses in 48 s[, unconfirmed since a failover]`.
fn holder_line(h: &Value) -> String {
    let now = mware_config::now_ms();
    let left = h["expires_at_ms"].as_u64().map_or("?".into(), |e| format!("{} s", e.saturating_sub(now) / 1000));
    format!(
        "{} (token {}), held {}, lapses in {left}{}",
        h["owner"].as_str().unwrap_or("?"),
        h["token"],
        ago(h["granted_at_ms"].as_u64()),
        if h["unconfirmed"].as_bool() == Some(true) { ", unconfirmed since a failover" } else { "" }
    )
}

fn ago(ms: Option<u64>) -> String {
    ms.map_or("?".into(), |ms| format!("{} s", mware_config::now_ms().saturating_sub(ms) / 1000))
}
