//! `mware mutex ...`: the critical sections of a domain, as an on-call engineer reads
//! them (who holds what, since when, until when, who waits), and the eviction of a
//! holder whose call script died. Every call goes through the API of any instance,
//! which forwards it to the active instance of the domain's group.

use crate::api_client;
use crate::cli::MutexAction;
use serde_json::{json, Value};

/// Runs one `mware mutex` action.
pub async fn run(action: MutexAction) -> anyhow::Result<()> {
    match action {
        MutexAction::List { domain, api, json } => {
            let v = api_client::get(&api, &format!("/api/v1/domains/{domain}/mutexes")).await?;
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
            let Some(v) = get_or_free(&api, &format!("/api/v1/domains/{domain}/mutexes/{name}")).await? else {
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
            let path = format!("/api/v1/domains/{domain}/mutexes/{name}/evict");
            let v = api_client::post(&api, &path, &token_env, &json!({"token": token, "reason": reason}), "eviction").await?;
            println!("evicted {}; the next waiter, if any, holds it now", holder_line(&v["evicted"]));
            Ok(())
        }
    }
}

/// [`api_client::get`] of one mutex; `None` when the service answers that nobody holds or waits on
/// it. (A 404 of the forwarding layer, for a domain no group serves, names a `group`
/// and stays an error.)
async fn get_or_free(api: &str, path: &str) -> anyhow::Result<Option<Value>> {
    let (status, v, url) = api_client::fetch(api, path).await?;
    match status {
        s if s.is_success() => Ok(Some(v)),
        reqwest::StatusCode::NOT_FOUND if v.get("group").is_none() => Ok(None),
        s => anyhow::bail!("{url}: {s}: {}", api_client::error_of(&v)),
    }
}

/// `owner (token N), held 12 s, lapses in 48 s[, unconfirmed since a failover]`.
fn holder_line(h: &Value) -> String {
    let now = mware_coord::now_ms();
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
    ms.map_or("?".into(), |ms| format!("{} s", mware_coord::now_ms().saturating_sub(ms) / 1000))
}
