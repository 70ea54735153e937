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
        AlarmsAction::List { api, limit, json } => {
            let v = api_client::get(&api, &format!("/api/v1/alarms?limit={limit}")).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let open = v["open"].as_array().cloned().unwrap_or_default();
            println!("{} open alarm(s)", open.len());
            for a in &open {
                println!("  {}", line(a));
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
