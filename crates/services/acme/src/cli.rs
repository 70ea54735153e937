//! `mware certs list|show|renew`: the group's ACME certificates, one in full, and an
//! operator's renewal.

use crate::api::paths;
use clap::{CommandFactory, FromArgMatches, Parser};
use mware_client::{api, path, CliEnv, Subcommand};
use serde_json::{json, Value};

/// ACME certificates of the group: their state, expiry, targets; renew one now.
#[derive(Debug, Parser)]
#[command(name = "certs")]
struct Cmd {
    /// What to do.
    #[command(subcommand)]
    action: Action,
}

/// The subcommand for the registry: `mware certs …`.
pub(crate) fn subcommands() -> Vec<Subcommand> {
    vec![Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) }]
}

#[derive(Debug, clap::Args)]
struct Api {
    /// API of an instance of the group.
    #[arg(long, default_value = "http://127.0.0.1:8271")]
    api: String,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Every certificate: state, expiry, the next step, targets deployed.
    List {
        #[command(flatten)]
        api: Api,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// One certificate in full (JSON): names, serial, expiry, order in flight, each target.
    Show {
        /// Certificate name.
        name: String,
        #[command(flatten)]
        api: Api,
    },
    /// Renew a certificate now (whatever its expiry) and deploy it.
    Renew {
        /// Certificate name.
        name: String,
        #[command(flatten)]
        api: Api,
        /// Environment variable holding the operator's (or the API) token.
        #[arg(long, default_value = "MWARE_API_TOKEN")]
        token_env: String,
    },
}

fn line(c: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let targets: Vec<String> =
        c["targets"].as_array().cloned().unwrap_or_default().iter().map(|t| format!("{}={}", s(&t["name"]), s(&t["state"]))).collect();
    format!(
        "{:<20} {:<8} {:<21} {:<12} {}\n    {}",
        s(&c["name"]),
        s(&c["state"]),
        s(&c["certificate"]["not_after"]),
        if targets.is_empty() { "-".into() } else { targets.join(",") },
        s(&c["reason"]),
        s(&c["next"])
    )
}

async fn run(action: Action, _env: CliEnv) -> anyhow::Result<()> {
    match action {
        Action::List { api, json } => {
            let v = api::get(&api.api, paths::LIST).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("{:<20} {:<8} {:<21} {:<12} REASON\n    NEXT", "CERTIFICATE", "STATE", "EXPIRES", "TARGETS");
            for c in v["certificates"].as_array().cloned().unwrap_or_default() {
                println!("{}", line(&c));
            }
            Ok(())
        }
        Action::Show { name, api } => {
            let v = api::get(&api.api, &path(paths::ONE, &[("name", &name)])).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Action::Renew { name, api, token_env } => {
            api::post(&api.api, &path(paths::RENEW, &[("name", &name)]), &token_env, &json!({}), "renew").await?;
            println!("certificate {name}: renewal requested");
            Ok(())
        }
    }
}
