//! `mware registrations ...`: the static registrations of a domain as an on-call
//! engineer reads them (contact, where from, reachable since when, the last answer), and
//! putting or deleting one (the operator's token). Every call goes through the API of an
//! instance, which forwards it to the active instance of the domain's group.

use crate::api::paths;
use clap::{CommandFactory, FromArgMatches, Parser};
use mware_client::{api, path, CliEnv, Subcommand};
use serde_json::{json, Value};

/// Static registrations (accounts that never register: a gateway, an old phone) kept
/// in the registrar by mware: list a domain's with their OPTIONS state, put one, delete
/// one. Needs a token in the env variable named by `--token-env` (the operator's token
/// to put or delete).
#[derive(Debug, Parser)]
#[command(name = "registrations")]
struct Cmd {
    /// What to do.
    #[command(subcommand)]
    action: Action,
}

/// The `mware registrations` subcommand, for the registry.
pub(crate) fn subcommand() -> Subcommand {
    Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) }
}

/// Where the API is and which token to send.
#[derive(Debug, clap::Args)]
struct Conn {
    /// API of any instance (forwarded to the domain's group).
    #[arg(long, default_value = "http://127.0.0.1:8271")]
    api: String,
    /// Environment variable holding the token.
    #[arg(long, default_value = "MWARE_API_TOKEN")]
    token_env: String,
}

/// `mware registrations ...`
#[derive(Debug, clap::Subcommand)]
enum Action {
    /// A domain's static registrations: contact, source, reachable since when, last answer.
    List {
        /// The domain.
        domain: String,
        #[command(flatten)]
        conn: Conn,
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Binds user@domain to a permanent contact (`sip:` URI with an IP address).
    Put {
        /// The domain.
        domain: String,
        /// The user part.
        user: String,
        /// The contact, e.g. `sip:gw1@10.0.0.9:5060`.
        contact: String,
        /// `udp` (default) or `tcp`.
        #[arg(long)]
        transport: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Removes user@domain's static registration (its contact leaves the registrar).
    Delete {
        /// The domain.
        domain: String,
        /// The user part.
        user: String,
        #[command(flatten)]
        conn: Conn,
    },
}

async fn run(action: Action, _env: CliEnv) -> anyhow::Result<()> {
    match action {
        Action::List { domain, conn, json } => {
            let p = path(paths::STATICS, &[("domain", &domain)]);
            let v = api::send(api::Method::GET, &conn.api, &p, &conn.token_env, None, "listing static registrations").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            print_list(&v);
            Ok(())
        }
        Action::Put { domain, user, contact, transport, conn } => {
            let mut body = json!({"contact": contact});
            if let Some(t) = transport {
                body["transport"] = json!(t);
            }
            let p = path(paths::STATIC, &[("domain", &domain), ("user", &user)]);
            let v = api::send(api::Method::PUT, &conn.api, &p, &conn.token_env, Some(&body), "the static registration").await?;
            println!(
                "{} -> {} stored; the registrar has it within a cycle",
                v["aor"].as_str().unwrap_or("?"),
                v["contact"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        Action::Delete { domain, user, conn } => {
            let p = path(paths::STATIC, &[("domain", &domain), ("user", &user)]);
            api::delete(&conn.api, &p, &conn.token_env, "the removal").await?;
            println!("{user}@{domain} is being removed; its contact leaves the registrar within a cycle");
            Ok(())
        }
    }
}

fn print_list(v: &Value) {
    let list = v["registrations"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no static registration");
        return;
    }
    println!("{:<32} {:<40} {:<5} {:<12} {:<12}  LAST ANSWER", "AOR", "CONTACT", "FROM", "REACHABLE", "SINCE");
    for r in &list {
        let c = &r["check"];
        let reach = match c["reachable"].as_bool() {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "unknown",
        };
        println!(
            "{:<32} {:<40} {:<5} {:<12} {:<12}  {}",
            r["aor"].as_str().unwrap_or("?"),
            r["contact"].as_str().unwrap_or("?"),
            r["source"].as_str().unwrap_or("?"),
            if r["removing"].as_bool() == Some(true) { "removing" } else { reach },
            mware_client::text::ago(c["since_ms"].as_u64()),
            c["last_answer"].as_str().unwrap_or("-")
        );
    }
}
