//! `mware backup ...`: the backups as an operator reads them (status, archives), a run
//! now followed with a progress bar, and a restore into a new folder. Status, run and
//! list go through the API of any instance of the group (forwarded to its active
//! instance); restore talks to the storage server itself, with the site file's settings.

use crate::api_client;
use crate::cli::BackupAction;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::time::Duration;

/// Runs one `mware backup` action.
pub async fn run(action: BackupAction) -> anyhow::Result<()> {
    match action {
        BackupAction::Status { api, json } => {
            let v = api_client::get(&api, "/api/v1/backups").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_status(&v);
            }
            Ok(())
        }
        BackupAction::Run { target, api, token_env, no_wait } => run_now(&api, &token_env, target, no_wait).await,
        BackupAction::List { api, json } => {
            let v = api_client::get(&api, "/api/v1/backups/archives").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("{:<8} {:<26} {:>12}  {:<19}  ARCHIVE", "TARGET", "STORAGE", "SIZE", "DATE");
            for t in v["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["error"].as_str() {
                    println!("{:<8} {:<26} cannot list: {e}", s(&t["target"]), s(&t["storage"]));
                    continue;
                }
                for a in t["archives"].as_array().into_iter().flatten() {
                    let size = if a["kind"] == "dir" { "(rsync copy)".to_string() } else { bytes(a["size"].as_u64().unwrap_or(0)) };
                    println!(
                        "{:<8} {:<26} {:>12}  {:<19}  {}",
                        s(&t["target"]),
                        s(&t["storage"]),
                        size,
                        date_s(a["mtime"].as_u64()),
                        s(&a["path"])
                    );
                }
            }
            Ok(())
        }
        BackupAction::Restore { config, instance, target, archive, to, max_size } => {
            restore(&config, instance, &target, &archive, &to, max_size).await
        }
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.2} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn date_ms(ms: Option<u64>) -> String {
    ms.and_then(|m| chrono::DateTime::from_timestamp_millis(m as i64))
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

fn date_s(secs: Option<u64>) -> String {
    date_ms(secs.map(|s| s * 1000))
}

fn print_status(v: &Value) {
    println!("{:<8} {:<5} {:<19} {:>10} {:>9}  {:<19}  LAST FAILURE", "TARGET", "KIND", "LAST SUCCESS", "SIZE", "DURATION", "FAILED AT");
    for t in v["targets"].as_array().into_iter().flatten() {
        let ok = &t["last_success"];
        let bad = &t["last_failure"];
        println!(
            "{:<8} {:<5} {:<19} {:>10} {:>9}  {:<19}  {}",
            s(&t["key"]),
            s(&t["kind"]),
            date_ms(ok["at_ms"].as_u64()),
            ok["bytes"].as_u64().map(bytes).unwrap_or_else(|| "-".into()),
            ok["duration_ms"].as_u64().map(|d| format!("{:.1} s", d as f64 / 1000.0)).unwrap_or_else(|| "-".into()),
            date_ms(bad["at_ms"].as_u64()),
            s(&bad["reason"]),
        );
        if let Some(p) = ok["path"].as_str() {
            println!("         last archive: {p}{}", ok["source"].as_str().map(|x| format!(" (from {x})")).unwrap_or_default());
        }
    }
    println!("next run: {} ({})", s(&v["next_run"]["at"]), s(&v["next_run"]["reason"]));
    let r = &v["running"];
    if !r.is_null() {
        println!(
            "running: {} target {}, {} sent at {}/s",
            s(&r["run_id"]),
            s(&r["target"]),
            bytes(r["bytes_sent"].as_u64().unwrap_or(0)),
            bytes(r["rate_bytes_per_s"].as_u64().unwrap_or(0))
        );
    }
    if let Some(l) = v["last_run"].as_object() {
        println!("last run: {} {} {}", s(&l["id"].clone()), s(&l["result"].clone()), l["reason"].as_str().unwrap_or(""));
    }
    for p in v["problems"].as_array().into_iter().flatten() {
        println!("problem: {}", s(p));
    }
}

async fn run_now(api: &str, token_env: &str, target: Option<String>, no_wait: bool) -> anyhow::Result<()> {
    let before = api_client::get(api, "/api/v1/backups").await?;
    let last_id = before["last_run"]["id"].clone();
    api_client::post(api, "/api/v1/backups/run", token_env, &json!({"target": target}), "the backup run").await?;
    if no_wait {
        println!("backup run accepted; follow it with `mware backup status`");
        return Ok(());
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    bar.enable_steady_tick(Duration::from_millis(200));
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let v = match api_client::get(api, "/api/v1/backups").await {
            Ok(v) => v,
            Err(e) => {
                bar.set_message(format!("waiting for the API: {e}"));
                continue;
            }
        };
        let r = &v["running"];
        if !r.is_null() {
            bar.set_message(format!(
                "{} {}: {} sent, {}/s",
                s(&r["run_id"]),
                s(&r["target"]),
                bytes(r["bytes_sent"].as_u64().unwrap_or(0)),
                bytes(r["rate_bytes_per_s"].as_u64().unwrap_or(0))
            ));
        } else if v["last_run"]["id"] != last_id && !v["last_run"].is_null() {
            bar.finish_and_clear();
            let l = &v["last_run"];
            if l["result"] == "ok" {
                println!("backup run {} done", s(&l["id"]));
                for t in v["targets"].as_array().into_iter().flatten() {
                    if let Some(p) = t["last_success"]["path"].as_str() {
                        println!("  {}: {} ({})", s(&t["key"]), p, bytes(t["last_success"]["bytes"].as_u64().unwrap_or(0)));
                    }
                }
                return Ok(());
            }
            anyhow::bail!("backup run {} {}: {}", s(&l["id"]), s(&l["result"]), s(&l["reason"]));
        } else {
            bar.set_message("waiting for the run to start");
        }
    }
}

async fn restore(
    config: &std::path::Path,
    instance: Option<String>,
    target: &str,
    archive: &str,
    to: &std::path::Path,
    max_size: Option<u64>,
) -> anyhow::Result<()> {
    let site = crate::ssh_cmd::full_site(config).await?;
    let with: Vec<_> = site
        .instances()
        .filter(|p| p.role.section::<mware_backup::BackupController>().is_some())
        .filter(|p| instance.as_deref().is_none_or(|i| p.role.name == i))
        .collect();
    let placed = match (with.as_slice(), &instance) {
        ([one], _) => *one,
        ([], Some(i)) => anyhow::bail!("--instance: expected an instance with backup_controller, found none named {i:?}"),
        ([], None) => anyhow::bail!("expected an instance with backup_controller in {}, found none", config.display()),
        (many, None) => {
            // Members of one group carry the same section: any of them will do.
            let groups: std::collections::BTreeSet<u32> = many.iter().map(|p| p.role.group).collect();
            anyhow::ensure!(
                groups.len() == 1,
                "expected one group with backup_controller, found groups {groups:?}: name one with --instance"
            );
            many[0]
        }
        (many, Some(_)) => many[0],
    };
    let bc = placed.role.section::<mware_backup::BackupController>().context("backup_controller")?;
    let plan = mware_backup::plan(&bc).map_err(|p| anyhow::anyhow!("backup_controller cannot be used: {}", p.join("; ")))?;
    let keys: Vec<&str> = plan.targets.iter().map(|t| t.key.as_str()).collect();
    let spec = plan
        .targets
        .iter()
        .find(|t| t.key == target)
        .with_context(|| format!("--target: expected one of {}, found {target:?}", keys.join(", ")))?;
    let policy = mware_ssh::HostKeyPolicy::from(&site.ssh);
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let b2 = bar.clone();
    let r = mware_backup::restore_capped(spec, &policy, archive, to, max_size, move |done, total| {
        b2.set_length(total);
        b2.set_position(done);
    })
    .await;
    bar.finish_and_clear();
    let r = r?;
    println!(
        "restored {archive} into {}: {} entries, {}, sha256 {} ({})",
        to.display(),
        r.entries,
        bytes(r.bytes),
        r.sha256,
        if r.checked { "matches the one recorded beside the archive" } else { "no checksum was recorded beside the archive" }
    );
    if !r.removed.is_empty() {
        println!("removed {} so the copy starts as a master", r.removed.join(", "));
    }
    if matches!(spec.what, mware_backup::config::What::Pg(_)) {
        println!(
            "next: chown -R postgres:postgres {0} (if you are not postgres), then pg_ctl -D {0} start (docs/services/backup.md: Restoring a backup)",
            to.display()
        );
    }
    Ok(())
}
