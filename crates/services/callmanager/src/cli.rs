//! `mware calls ...`: the callmanager's calls as an on-call engineer reads them (who
//! calls whom, in which state, since when, why it ended), and hanging one up. Every call
//! goes through the API of an instance, which forwards it to the active instance of the
//! group (of the call's group, for one call).

use crate::api::paths;
use clap::{CommandFactory, FromArgMatches, Parser};
use mware_client::{api, path, CliEnv, Conn, Subcommand};
use serde_json::Value;

/// Calls placed by the callmanager (third-party call control): list the live and
/// recently ended calls, show one with its legs, or hang one up. Needs the API token in
/// the env variable named by `--token-env`.
#[derive(Debug, Parser)]
#[command(name = "calls")]
struct Cmd {
    /// What to do.
    #[command(subcommand)]
    action: CallsAction,
}

/// The `mware calls` subcommand, for the registry.
pub(crate) fn subcommand() -> Subcommand {
    Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) }
}

/// `mware calls ...`
#[derive(Debug, clap::Subcommand)]
enum CallsAction {
    /// The calls of the asked instance's group (of one domain with `--domain`): state,
    /// parties, since when, and why the ended ones ended.
    List {
        /// Only this domain's calls.
        #[arg(long, short)]
        domain: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// One call: its state and each leg's state, SIP code and reason.
    Show {
        /// Call id (`<group>-<hex>`).
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Hang up a call: CANCEL what rings, BYE what is up; returns once it ended.
    Hangup {
        /// Call id.
        id: String,
        /// API of any instance.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Environment variable holding the API token.
        #[arg(long, default_value = "MWARE_API_TOKEN")]
        token_env: String,
    },
}

/// Runs one `mware calls` action.
async fn run(action: CallsAction, _env: CliEnv) -> anyhow::Result<()> {
    match action {
        CallsAction::List { domain, conn: Conn { api, token_env, json } } => {
            let p = match &domain {
                Some(d) => format!("{}?domain={}", paths::CALLS, path("{d}", &[("d", d)])),
                None => paths::CALLS.to_string(),
            };
            let v = api::send(api::Method::GET, &api, &p, &token_env, None, "listing calls").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let calls = v["calls"].as_array().cloned().unwrap_or_default();
            if calls.is_empty() {
                println!("no call");
                return Ok(());
            }
            println!("{:<24} {:<11} {:<32} {:<32} {:>7}  ENDED", "ID", "STATE", "FROM", "TO", "AGE");
            for c in &calls {
                println!(
                    "{:<24} {:<11} {:<32} {:<32} {:>7}  {}",
                    c["id"].as_str().unwrap_or("?"),
                    c["state"].as_str().unwrap_or("?"),
                    c["legs"][0]["party"].as_str().unwrap_or("?"),
                    c["legs"][1]["party"].as_str().unwrap_or("?"),
                    ago(c["created_ms"].as_u64()),
                    c["ended"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        CallsAction::Show { id, conn: Conn { api, token_env, json } } => {
            let v = api::send(api::Method::GET, &api, &path(paths::CALL, &[("id", &id)]), &token_env, None, "reading the call").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_call(&v);
            }
            Ok(())
        }
        CallsAction::Hangup { id, api, token_env } => {
            let v = api::delete(&api, &path(paths::CALL, &[("id", &id)]), &token_env, "hang-up").await?;
            print_call(&v);
            Ok(())
        }
    }
}

fn print_call(c: &Value) {
    println!(
        "call {} of {}: {} (controlled by {}, created {} ago)",
        c["id"].as_str().unwrap_or("?"),
        c["domain"].as_str().unwrap_or("?"),
        c["state"].as_str().unwrap_or("?"),
        c["instance"].as_str().unwrap_or("?"),
        ago(c["created_ms"].as_u64())
    );
    if let Some(why) = c["ended"].as_str() {
        println!("ended: {why}");
    }
    for l in c["legs"].as_array().into_iter().flatten() {
        let code = l["code"].as_u64().map(|c| c.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "  leg {} {:<40} {:<10} {code} {} (since {} ago)",
            l["side"].as_str().unwrap_or("?"),
            l["party"].as_str().unwrap_or("?"),
            l["state"].as_str().unwrap_or("?"),
            l["reason"].as_str().unwrap_or(""),
            ago(l["since_ms"].as_u64())
        );
    }
}

fn ago(ms: Option<u64>) -> String {
    ms.map_or("?".into(), |ms| format!("{} s", mware_coord::now_ms().saturating_sub(ms) / 1000))
}
