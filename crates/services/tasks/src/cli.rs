//! `mware tasks ...` (a group's service tasks: list, runs of one, run one now) and the
//! text of the site's state that `mware status` prints first.

use crate::api::paths;
use crate::decide::local;
use clap::{CommandFactory, FromArgMatches, Parser};
use mware_client::text::ago;
use mware_client::{api, path, CliEnv, Subcommand};
use serde_json::json;

/// Service tasks of a group (scheduled service scripts on its active instance): list
/// them, show a task's last runs, or run one now.
#[derive(Debug, Parser)]
#[command(name = "tasks")]
struct Cmd {
    /// What to do.
    #[command(subcommand)]
    action: TasksAction,
}

/// The `mware tasks` subcommand, for the registry.
pub(crate) fn subcommand() -> Subcommand {
    Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) }
}

/// `mware tasks ...`. The calls go to the group of the instance named by `--api`
/// (forwarded to its active instance).
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TasksAction {
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

/// Runs one `mware tasks` action.
async fn run(action: TasksAction, _env: CliEnv) -> anyhow::Result<()> {
    match action {
        TasksAction::List { api, json } => {
            let v = api::get(&api, paths::TASKS).await?;
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
            let v = api::get(&api, &path(paths::RUNS, &[("name", &name)])).await?;
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
            let v = api::post(&api, &path(paths::RUN, &[("name", &name)]), &token_env, &json!({}), "run").await?;
            println!("task {name}: run {}: {}", v["run"], v["status"].as_str().unwrap_or(""));
            Ok(())
        }
    }
}
