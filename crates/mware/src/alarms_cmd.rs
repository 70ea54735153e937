//! `mware alarms ...`: a group's open and recent alarms with each channel's backlog,
//! and acknowledging one.

use crate::api_client;
use crate::cli::AlarmsAction;
use crate::tasks_cmd::ago;
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

/// Runs one `mware alarms` action.
pub async fn run(action: AlarmsAction) -> anyhow::Result<()> {
    match action {
        AlarmsAction::List { api, limit, after, json } => {
            let mut path = format!("/api/v1/alarms?limit={limit}");
            if let Some(a) = &after {
                if a.is_empty() || !a.chars().all(|c| c.is_ascii_digit() || c == '-') {
                    anyhow::bail!("--after: expected an alarm id like 7-120, found {a:?}");
                }
                path.push_str("&after=");
                path.push_str(a);
            }
            let v = api_client::get(&api, &path).await?;
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
            let v = api_client::post(&api, &format!("/api/v1/alarms/{id}/ack"), &token_env, &json!({}), "acknowledge").await?;
            println!("acknowledged: {}", line(&v));
            Ok(())
        }
    }
}
