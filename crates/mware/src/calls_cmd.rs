//! `mware calls ...`: the callmanager's calls as an on-call engineer reads them (who
//! calls whom, in which state, since when, why it ended), and hanging one up. Every call
//! goes through the API of an instance, which forwards it to the active instance of the
//! group (of the call's group, for one call).

use crate::api_client;
use crate::cli::CallsAction;
use serde_json::Value;

/// Runs one `mware calls` action.
pub async fn run(action: CallsAction) -> anyhow::Result<()> {
    match action {
        CallsAction::List { domain, api, token_env, json } => {
            let path = match &domain {
                Some(d) => format!("/api/callmanager/v1/calls?domain={d}"),
                None => "/api/callmanager/v1/calls".into(),
            };
            let v = api_client::send(reqwest::Method::GET, &api, &path, &token_env, None, "listing calls").await?;
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
        CallsAction::Show { id, api, token_env, json } => {
            let v = api_client::send(
                reqwest::Method::GET,
                &api,
                &format!("/api/callmanager/v1/calls/{id}"),
                &token_env,
                None,
                "reading the call",
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_call(&v);
            }
            Ok(())
        }
        CallsAction::Hangup { id, api, token_env } => {
            let v =
                api_client::send(reqwest::Method::DELETE, &api, &format!("/api/callmanager/v1/calls/{id}"), &token_env, None, "hang-up")
                    .await?;
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
