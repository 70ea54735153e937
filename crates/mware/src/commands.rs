//! The commands other than `run`: validate, route, schema, status, switchover, config, rtcache
//! (`ssh` is in [`crate::ssh_cmd`], the site's state text in [`crate::status_text`]); each
//! service's own subcommands come from its crate through the registry ([`run_service`]).

use crate::cli::{Cli, Command, ConfigAction};
use crate::load::{self, Loaded};
use anyhow::Context;
use mware_config::redact;
use mware_config::{DomainTree, Severity};
use mware_registry::validate;
use serde_json::{json, Value};
use std::process::ExitCode;

/// Runs a parsed command line.
pub fn dispatch(cli: Cli) -> ExitCode {
    // Every file mware writes (coordinator, caches, logs, known hosts) is its own: 0600,
    // folders 0700. Existing ones are checked where they are opened (mware_coord::fsmode).
    mware_coord::fsmode::restrict_umask();
    let fmt = cli.log_format;
    let result = match cli.command {
        Command::Validate { config } => return cmd_validate(&config),
        Command::Route { config, json, domains } => return cmd_route(&config, json, &domains),
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&mware_registry::schema()).unwrap_or_default());
            Ok(())
        }
        Command::Run { config, instance } => {
            crate::logging::init(fmt);
            runtime().block_on(crate::daemon::run(config, instance, fmt))
        }
        Command::Companion => {
            crate::logging::init(fmt);
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
            rt.block_on(crate::companion::run())
        }
        Command::Status { api, json } => runtime().block_on(cmd_status(&api, json)),
        Command::Switchover { group, to, api, token_env } => runtime().block_on(cmd_switchover(group, to, &api, &token_env)),
        Command::Config { action } => runtime().block_on(cmd_config(action)),
        Command::Ssh { action } => runtime().block_on(crate::ssh_cmd::run(action)),
        Command::Rtcache(args) => {
            crate::logging::init(fmt);
            runtime().block_on(async move {
                let cancel = tokio_util::sync::CancellationToken::new();
                crate::daemon::cancel_on_signals(cancel.clone());
                mware_realtime::run_rtcache(args, cancel).await
            })
        }
        Command::Poller(args) => {
            crate::logging::init(fmt);
            runtime().block_on(async move {
                let cancel = tokio_util::sync::CancellationToken::new();
                crate::daemon::cancel_on_signals(cancel.clone());
                mware_poller::run(args, cancel).await.map_err(anyhow::Error::from)
            })
        }
    };
    exit_code(result)
}

/// Runs a service's subcommand (from the registry) with what the binary gives it.
pub fn run_service(s: &mware_client::Subcommand, matches: clap::ArgMatches) -> ExitCode {
    mware_coord::fsmode::restrict_umask();
    let env = mware_client::CliEnv { site: |path| Box::pin(async move { crate::ssh_cmd::full_site(&path).await }) };
    exit_code(runtime().block_on((s.run)(matches, env)))
}

fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

fn cmd_validate(path: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            println!("{}: cannot read the file: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    match validate(&text) {
        Ok(v) => {
            for w in &v.warnings {
                println!("{w}");
            }
            let s = &v.site;
            println!(
                "{}: valid: site {}, {} servers, {} enabled instances in {} groups, coordination {:?}{}",
                path.display(),
                s.site,
                s.servers.len(),
                s.instances().count(),
                s.groups().len(),
                s.coordination.backend,
                if v.warnings.is_empty() { String::new() } else { format!(", {} warnings", v.warnings.len()) }
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            let n = problems.iter().filter(|p| p.severity == Severity::Error).count();
            eprintln!("{}: invalid: {n} problems", path.display());
            ExitCode::FAILURE
        }
    }
}

/// Prints the route of each domain; a text that is not a domain name is refused on stderr
/// (and as `{"domain", "error", "field"}` in the JSON list) and makes the exit code 1.
fn cmd_route(path: &std::path::Path, as_json: bool, domains: &[String]) -> ExitCode {
    let site = match load::load(path) {
        Ok(Loaded::Site { site, .. }) => site,
        Ok(Loaded::Bootstrap(_)) => {
            eprintln!("error: {}: expected a whole site file with servers, found only coordination settings", path.display());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let tree = DomainTree::build(&site);
    let mut refused = 0;
    let mut routes: Vec<Value> = Vec::new();
    for d in domains {
        match crate::routing::route_json(&site, &tree, d) {
            Ok(r) => routes.push(r),
            Err(e) => {
                refused += 1;
                eprintln!("error: {e}");
                let mut v = crate::routing::domain_error_json(&e);
                v["domain"] = json!(d);
                routes.push(v);
            }
        }
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&routes).unwrap_or_default());
    } else {
        for r in routes.iter().filter(|r| r.get("field").is_none()) {
            println!("{}", crate::routing::route_line(r));
        }
    }
    if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn cmd_status(api: &str, as_json: bool) -> anyhow::Result<()> {
    let v = mware_client::api::get(api, "/api/v1/cluster").await?;
    // The site's state comes first; an instance that cannot tell it does not hide the cluster.
    let state = mware_client::api::fetch(api, "/api/v1/monitoring").await;
    if as_json {
        let state = match &state {
            Ok((s, m, _)) if s.is_success() => m.clone(),
            Ok((s, m, url)) => json!({"error": format!("{url}: {s}: {}", mware_client::api::error_of(m))}),
            Err(e) => json!({"error": format!("{e:#}")}),
        };
        let mut v = v;
        v["site_state"] = state;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    match &state {
        Ok((s, m, _)) if s.is_success() => print!("{}", crate::status_text::site_state_text(m)),
        Ok((s, m, url)) => println!("site state: unknown ({url}: {s}: {})", mware_client::api::error_of(m)),
        Err(e) => println!("site state: unknown ({e:#})"),
    }
    println!();
    println!("site {}", v["site"].as_str().unwrap_or("?"));
    println!("{:<9} {:<16} {:>7} {:<6} {:<7} {:>8}  LAST TRANSITION", "GROUP", "INSTANCE", "ORDER", "LIVE", "ACTIVE", "EPOCH");
    for g in v["groups"].as_array().into_iter().flatten() {
        let epoch = g["epoch"].as_u64().map(|e| e.to_string()).unwrap_or_else(|| "-".into());
        let last = &g["last_transition"];
        let last = if last.is_null() {
            String::new()
        } else {
            format!("{} ({})", last["reason"].as_str().unwrap_or(""), fmt_ms(last["at_ms"].as_u64()))
        };
        for (i, m) in g["members"].as_array().into_iter().flatten().enumerate() {
            println!(
                "{:<9} {:<16} {:>7} {:<6} {:<7} {:>8}  {}",
                if i == 0 { g["group"].to_string() } else { String::new() },
                m["name"].as_str().unwrap_or("?"),
                m["order"].to_string(),
                if m["live"].as_bool() == Some(true) { "yes" } else { "no" },
                if m["active"].as_bool() == Some(true) { "ACTIVE" } else { "" },
                if m["active"].as_bool() == Some(true) { epoch.clone() } else { String::new() },
                if i == 0 { last.clone() } else { String::new() },
            );
        }
    }
    Ok(())
}

fn fmt_ms(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => {
            let ago = mware_coord::now_ms().saturating_sub(ms) / 1000;
            format!("{ago} s ago")
        }
        None => "?".into(),
    }
}

async fn cmd_switchover(group: u32, to: Option<String>, api: &str, token_env: &str) -> anyhow::Result<()> {
    mware_client::api::post(api, &format!("/api/v1/groups/{group}/switchover"), token_env, &json!({"to": to}), "switchover").await?;
    println!("switchover of group {group} requested{}", to.map(|t| format!(" to {t}")).unwrap_or_default());
    Ok(())
}

async fn cmd_config(action: ConfigAction) -> anyhow::Result<()> {
    match action {
        ConfigAction::Push { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let (site, warnings) =
                load::check(&text).map_err(|e| anyhow::anyhow!("{}: invalid, nothing stored:\n{}", file.display(), load::lines(&e)))?;
            for w in &warnings {
                eprintln!("{w}");
            }
            let coord = mware_coord::connect(&site).await?;
            let rev = coord.config_put(&text).await?;
            println!("stored site {} in the coordinator (revision {rev})", site.site);
            Ok(())
        }
        ConfigAction::Show { config } => {
            let site = match load::load(&config)? {
                Loaded::Site { site, .. } | Loaded::Bootstrap(site) => site,
            };
            let coord = mware_coord::connect(&site).await?;
            match coord.config_get().await? {
                Some((text, rev)) => {
                    let mut v: Value = serde_json::from_str(&text)?;
                    redact(&mut v);
                    println!("{}", serde_json::to_string_pretty(&json!({"revision": rev, "site": v}))?);
                }
                None => println!("no site file stored in the coordinator"),
            }
            Ok(())
        }
    }
}
