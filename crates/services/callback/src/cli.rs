//! `mware callback ...`: callback orders as an operator or an on-call engineer reads them
//! (whom to call back, in which queue, how each attempt went), taking one and cancelling
//! one. Every call goes through the API of an instance, which forwards it to the active
//! instance of the group (of the order's domain, or of the order's id).

use crate::api::paths;
use clap::{CommandFactory, FromArgMatches, Parser};
use mware_client::{api, encode, path, CliEnv, Conn, Subcommand};
use serde_json::{json, Value};

/// Callback orders: list them, show one with its attempts, take one, cancel one. Needs
/// the API token in the env variable named by `--token-env`.
#[derive(Debug, Parser)]
#[command(name = "callback")]
struct Cmd {
    /// What to do.
    #[command(subcommand)]
    action: Action,
}

/// The `mware callback` subcommand, for the registry.
pub(crate) fn subcommand() -> Subcommand {
    Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) }
}

/// `mware callback ...`
#[derive(Debug, clap::Subcommand)]
enum Action {
    /// The orders of a domain (or of the asked instance's group): number, queue, state,
    /// attempts, why it waits or ended.
    List {
        /// Only this domain's orders.
        #[arg(long, short)]
        domain: Option<String>,
        /// Only orders in this state (waiting, calling, completed, failed, cancelled).
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// One order with every attempt: when, which operator, the outcome.
    Show {
        /// Order id (`<group>-<hex>`).
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Takes an order: an operator of `--queue` (or `--operator`) first, then `--number`.
    Add {
        /// The domain.
        #[arg(long, short)]
        domain: String,
        /// The customer's number or URI.
        #[arg(long)]
        number: String,
        /// The queue.
        #[arg(long, conflicts_with = "operator")]
        queue: Option<String>,
        /// One operator (as listed in a queue).
        #[arg(long)]
        operator: Option<String>,
        /// Not before (RFC 3339 UTC).
        #[arg(long)]
        not_before: Option<String>,
        /// Not after (RFC 3339 UTC).
        #[arg(long)]
        not_after: Option<String>,
        /// A note for the operator.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Cancels an order (a call under way is hung up).
    Cancel {
        /// Order id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

async fn run(action: Action, _env: CliEnv) -> anyhow::Result<()> {
    let (v, conn) = match action {
        Action::List { domain, state, conn } => {
            let mut q = vec![];
            if let Some(d) = &domain {
                q.push(format!("domain={}", encode(d)));
            }
            if let Some(s) = &state {
                q.push(format!("state={}", encode(s)));
            }
            let p = if q.is_empty() { paths::ORDERS.to_string() } else { format!("{}?{}", paths::ORDERS, q.join("&")) };
            let v = api::send(api::Method::GET, &conn.api, &p, &conn.token_env, None, "listing callback orders").await?;
            if !conn.json {
                print_list(&v);
                return Ok(());
            }
            (v, conn)
        }
        Action::Show { id, conn } => {
            let v = api::send(api::Method::GET, &conn.api, &path(paths::ORDER, &[("id", &id)]), &conn.token_env, None, "reading the order")
                .await?;
            (v, conn)
        }
        Action::Add { domain, number, queue, operator, not_before, not_after, note, conn } => {
            let mut body = json!({"domain": domain, "number": number});
            for (k, v) in [("queue", queue), ("operator", operator), ("not_before", not_before), ("not_after", not_after), ("note", note)] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            let v = api::post(&conn.api, paths::ORDERS, &conn.token_env, &body, "the order").await?;
            (v, conn)
        }
        Action::Cancel { id, conn } => {
            let v = api::delete(&conn.api, &path(paths::ORDER, &[("id", &id)]), &conn.token_env, "cancelling").await?;
            (v, conn)
        }
    };
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_order(&v);
    }
    Ok(())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn print_list(v: &Value) {
    let orders = v["orders"].as_array().cloned().unwrap_or_default();
    if orders.is_empty() {
        println!("no callback order");
        return;
    }
    println!("{:<20} {:<20} {:<16} {:<10} {:>3} {:>8}  WHY", "ID", "NUMBER", "QUEUE", "STATE", "TRY", "AGE");
    for o in &orders {
        let queue = o["queue"].as_str().or(o["operator"].as_str()).unwrap_or("-");
        println!(
            "{:<20} {:<20} {:<16} {:<10} {:>3} {:>8}  {}",
            s(&o["id"]),
            s(&o["number"]),
            queue,
            s(&o["state"]),
            o["attempt_count"].as_u64().unwrap_or(0),
            mware_client::text::ago(o["created_ms"].as_u64()),
            o["reason"].as_str().unwrap_or("")
        );
    }
}

fn print_order(o: &Value) {
    println!("order {} of {}: call back {} ({})", s(&o["id"]), s(&o["domain"]), s(&o["number"]), s(&o["state"]));
    if let Some(q) = o["queue"].as_str() {
        println!("queue: {q}");
    }
    if let Some(op) = o["operator"].as_str() {
        println!("operator: {op}");
    }
    if o["not_before"].is_string() || o["not_after"].is_string() {
        println!("window: {} .. {}", s(&o["not_before"]), s(&o["not_after"]));
    }
    if let Some(n) = o["note"].as_str() {
        println!("note: {n}");
    }
    if let Some(r) = o["reason"].as_str() {
        println!("why: {r}");
    }
    for a in o["attempts"].as_array().into_iter().flatten() {
        println!(
            "  attempt {} at {} by {}: operator {} -> {} ({})",
            a["n"],
            mware_client::text::local(a["started_ms"].as_u64()),
            s(&a["instance"]),
            s(&a["operator"]),
            a["outcome"].as_str().unwrap_or("under way"),
            a["detail"].as_str().unwrap_or("")
        );
    }
}
