//! `mware tasks ...` (a group's service tasks: list, runs of one, run one now) and the
//! text of the site's state that `mware status` prints first.

use crate::api_client;
use crate::cli::TasksAction;
use serde_json::{json, Value};

/// Runs one `mware tasks` action.
pub async fn run(action: TasksAction) -> anyhow::Result<()> {
    match action {
        TasksAction::List { api, json } => {
            let v = api_client::get(&api, "/api/v1/tasks").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let tasks = v["tasks"].as_array().cloned().unwrap_or_default();
            if tasks.is_empty() {
                println!("this group has no service task");
                return Ok(());
            }
            println!("{:<24} {:<18} {:<20} {:<12} {:<28} LAST SUCCESS", "TASK", "SCHEDULE", "NEXT", "RUNNING", "LAST RUN");
            for t in &tasks {
                let running = t["running"]["id"]
                    .as_u64()
                    .map(|id| format!("run {id}, {}", ago(t["running"]["started_ms"].as_u64())))
                    .unwrap_or_default();
                let last = &t["last_run"];
                let last = if last.is_null() {
                    "-".to_string()
                } else {
                    format!("{} ({})", last["outcome"].as_str().unwrap_or("?"), ago(last["finished_ms"].as_u64()))
                };
                println!(
                    "{:<24} {:<18} {:<20} {:<12} {:<28} {}",
                    t["name"].as_str().unwrap_or("?"),
                    t["schedule"].as_str().unwrap_or("?"),
                    t["next_ms"].as_u64().map(local).unwrap_or_else(|| "-".into()),
                    running,
                    last,
                    t["last_success_ms"].as_u64().map(|m| ago(Some(m))).unwrap_or_else(|| "never".into()),
                );
            }
            Ok(())
        }
        TasksAction::Runs { name, api, json } => {
            let v = api_client::get(&api, &format!("/api/v1/tasks/{name}/runs")).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let runs = v["runs"].as_array().cloned().unwrap_or_default();
            if runs.is_empty() {
                println!("task {name} has no run yet");
            }
            for r in &runs {
                let when = r["started_ms"].as_u64().or(r["slot_ms"].as_u64()).map(local).unwrap_or_else(|| "?".into());
                let took = r["duration_ms"].as_u64().map(|d| format!(", {:.1} s", d as f64 / 1000.0)).unwrap_or_default();
                let exit = r["exit_code"].as_i64().map(|c| format!(", exit {c}")).unwrap_or_default();
                println!(
                    "run {} {} on {} ({}){took}{exit}: {}",
                    r["id"],
                    r["outcome"].as_str().unwrap_or("?"),
                    r["instance"].as_str().unwrap_or("?"),
                    when,
                    r["reason"].as_str().unwrap_or("")
                );
                for (what, key) in [("stdout", "stdout_tail"), ("stderr", "stderr_tail")] {
                    let tail = r[key].as_str().unwrap_or("");
                    let lines: Vec<&str> = tail.lines().collect();
                    for l in &lines[lines.len().saturating_sub(5)..] {
                        println!("    {what}: {l}");
                    }
                }
            }
            Ok(())
        }
        TasksAction::Run { name, api, token_env } => {
            let v = api_client::post(&api, &format!("/api/v1/tasks/{name}/run"), &token_env, &json!({}), "run").await?;
            println!("task {name}: run {}: {}", v["run"], v["status"].as_str().unwrap_or(""));
            Ok(())
        }
    }
}

/// The site's state as `mware status` prints it: one line with the state, since when and
/// the summary, then every item that is not ok.
pub fn site_state_text(v: &Value) -> String {
    let state = v["state"].as_str().unwrap_or("?");
    let since = v["since_ms"].as_u64().map(|m| format!(" since {} ({})", local(m), ago(Some(m)))).unwrap_or_default();
    let mut out =
        format!("site {}: {}{since}\n  {}\n", v["site"].as_str().unwrap_or("?"), state.to_uppercase(), v["summary"].as_str().unwrap_or(""));
    for i in v["items"].as_array().into_iter().flatten().filter(|i| i["state"] != "ok") {
        let what = if i["kind"] == "group" {
            format!("group {}", i["name"].as_str().unwrap_or("?"))
        } else {
            format!("{} {} (group {})", i["kind"].as_str().unwrap_or("?"), i["name"].as_str().unwrap_or("?"), i["group"])
        };
        let since = i["since_ms"].as_u64().map(|m| format!(" for {}", ago(Some(m)))).unwrap_or_default();
        out += &format!("  {:<8} {what}{since}: {}\n", i["state"].as_str().unwrap_or("?"), i["reason"].as_str().unwrap_or(""));
    }
    out
}

/// `2026-11-21 03:30:00` in local time.
fn local(ms: u64) -> String {
    mware_tasks::decide::local(ms)
}

/// `42 s ago`, `3 min ago`, `2 h ago`.
pub(crate) fn ago(ms: Option<u64>) -> String {
    let Some(ms) = ms else { return "?".into() };
    let s = mware_coord::now_ms().saturating_sub(ms) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}
