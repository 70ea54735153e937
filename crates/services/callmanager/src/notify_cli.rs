//! `mware notifications ...`: voice notifications as an operator reads them (each
//! number's state and attempts with their outcome and SIP code), sending one, and
//! cancelling one. Every request goes through the API of an instance, which forwards
//! it to the active instance of the group.

use crate::notify_api::paths;
use clap::{CommandFactory, FromArgMatches, Parser};
use mware_client::{api, path, CliEnv, Conn, Subcommand};
use serde_json::{json, Value};

/// Voice notifications of the callmanager: numbers called, a message played, retries.
/// Needs the API token in the env variable named by `--token-env`.
#[derive(Debug, Parser)]
#[command(name = "notifications")]
struct Cmd {
    /// What to do.
    #[command(subcommand)]
    action: Action,
}

/// The `mware notifications` subcommand, for the registry.
pub(crate) fn subcommand() -> Subcommand {
    Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) }
}

/// `mware notifications ...`
#[derive(Debug, clap::Subcommand)]
enum Action {
    /// The notifications of the asked instance's group: state and numbers done.
    List {
        /// Only this domain's.
        #[arg(long, short)]
        domain: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// One notification: each number with its attempts.
    Show {
        /// Notification id (`<group>-n<hex>`).
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Sends a notification: calls each number and speaks the text.
    Send {
        /// The domain (its group calls).
        #[arg(long, short)]
        domain: String,
        /// A number or URI to call (repeat for more).
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        /// The text spoken.
        #[arg(long, conflicts_with = "audio")]
        text: Option<String>,
        /// A WAV file (absolute path on the instances) instead of text.
        #[arg(long)]
        audio: Option<String>,
        /// Most attempts per number.
        #[arg(long, default_value_t = 3)]
        attempts: u32,
        /// Seconds between attempts.
        #[arg(long, default_value_t = 300)]
        retry_after_s: u32,
        /// The digit that confirms.
        #[arg(long)]
        confirm_digit: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Cancels a notification: no number is called any more.
    Cancel {
        /// Notification id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

async fn run(action: Action, _env: CliEnv) -> anyhow::Result<()> {
    match action {
        Action::List { domain, conn } => {
            let p = match &domain {
                Some(d) => format!("{}?domain={}", paths::NOTIFICATIONS, path("{d}", &[("d", d)])),
                None => paths::NOTIFICATIONS.to_string(),
            };
            let v = api::send(api::Method::GET, &conn.api, &p, &conn.token_env, None, "listing notifications").await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let all = v["notifications"].as_array().cloned().unwrap_or_default();
            if all.is_empty() {
                println!("no notification");
                return Ok(());
            }
            println!("{:<22} {:<10} {:<24} {:>7}  NUMBERS DONE", "ID", "STATE", "DOMAIN", "AGE");
            for n in &all {
                let nums = n["numbers"].as_array().cloned().unwrap_or_default();
                let done = nums.iter().filter(|x| crate::notify::FINAL.contains(&x["state"].as_str().unwrap_or(""))).count();
                println!(
                    "{:<22} {:<10} {:<24} {:>7}  {done}/{}",
                    n["id"].as_str().unwrap_or("?"),
                    n["state"].as_str().unwrap_or("?"),
                    n["domain"].as_str().unwrap_or("?"),
                    ago(n["created_ms"].as_u64()),
                    nums.len()
                );
            }
            Ok(())
        }
        Action::Show { id, conn } => {
            let p = path(paths::NOTIFICATION, &[("id", &id)]);
            let v = api::send(api::Method::GET, &conn.api, &p, &conn.token_env, None, "reading the notification").await?;
            print(&v, conn.json)
        }
        Action::Send { domain, to, text, audio, attempts, retry_after_s, confirm_digit, conn } => {
            let mut body = json!({"domain": domain, "to": to, "attempts": attempts, "retry_after_s": retry_after_s});
            for (k, v) in [("text", text), ("audio", audio), ("confirm_digit", confirm_digit)] {
                if let Some(v) = v {
                    body[k] = Value::String(v);
                }
            }
            let v = api::send(api::Method::POST, &conn.api, paths::NOTIFICATIONS, &conn.token_env, Some(&body), "the notification").await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("notification {} created ({} ms message)", v["id"].as_str().unwrap_or("?"), v["message_ms"]);
            }
            Ok(())
        }
        Action::Cancel { id, conn } => {
            let v = api::delete(&conn.api, &path(paths::NOTIFICATION, &[("id", &id)]), &conn.token_env, "cancel").await?;
            print(&v, conn.json)
        }
    }
}

fn print(n: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(n)?);
        return Ok(());
    }
    println!(
        "notification {} of {}: {} (run by {}, created {} ago, message {} ms)",
        n["id"].as_str().unwrap_or("?"),
        n["domain"].as_str().unwrap_or("?"),
        n["state"].as_str().unwrap_or("?"),
        n["instance"].as_str().unwrap_or("?"),
        ago(n["created_ms"].as_u64()),
        n["message_ms"]
    );
    for x in n["numbers"].as_array().into_iter().flatten() {
        println!("  {:<40} {}", x["to"].as_str().unwrap_or("?"), x["state"].as_str().unwrap_or("?"));
        for a in x["attempts"].as_array().into_iter().flatten() {
            let code = a["code"].as_u64().map(|c| c.to_string()).unwrap_or_else(|| "-".into());
            println!(
                "    #{} {:<12} {code:>4} {} ({} ago, by {})",
                a["index"],
                a["outcome"].as_str().unwrap_or("running"),
                a["reason"].as_str().unwrap_or(""),
                ago(a["start_ms"].as_u64()),
                a["instance"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(())
}

fn ago(ms: Option<u64>) -> String {
    ms.map_or("?".into(), |ms| format!("{} s", mware_coord::now_ms().saturating_sub(ms) / 1000))
}
