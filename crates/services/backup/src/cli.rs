//! `mware backup ...`: the backups as an operator reads them (status, archives), a run
//! now followed with a progress bar, and a restore into a new folder. Status, run and
//! list go through the API of any instance of the group (forwarded to its active
//! instance); restore talks to the storage server itself, with the site file's settings.

use crate::api::paths;
use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser};
use indicatif::{ProgressBar, ProgressStyle};
use mware_client::text::{bytes, local};
use mware_client::{api, CliEnv, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Backups of the group's PostgreSQL instances and :SYNC folder (backup_controller):
/// their state, a run now with a progress bar, the archives on the storage servers,
/// and a restore into a new folder.
#[derive(Debug, Parser)]
#[command(name = "backup")]
struct Cmd {
    /// What to do.
    #[command(subcommand)]
    action: BackupAction,
}

/// The `mware backup` subcommand, for the registry.
pub(crate) fn subcommand() -> Subcommand {
    Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) }
}

/// `mware backup ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum BackupAction {
    /// Each target's last success (size, duration, source), last failure with its reason,
    /// the next run and a run in progress (bytes sent, rate).
    Status {
        /// API of any instance of the group (forwarded to its active instance).
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start a run now, outside the window too, and follow it with a progress bar until it
    /// ends (exit 1 when it fails). Needs the operator's token (`api.operator_token_env`)
    /// when the site sets one, else the API token, in the env variable `--token-env`.
    Run {
        /// Only this target (a pgdb key, or `sync`); default: all.
        #[arg(long)]
        target: Option<String>,
        /// API of any instance of the group.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Environment variable holding the token.
        #[arg(long, default_value = "MWARE_API_TOKEN")]
        token_env: String,
        /// Return once the run is accepted instead of following it.
        #[arg(long)]
        no_wait: bool,
    },
    /// The archives (and rsync copies) on the storage servers, with size and date, and the
    /// path to give `restore --archive`.
    List {
        /// API of any instance of the group.
        #[arg(long, default_value = "http://127.0.0.1:8271")]
        api: String,
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Fetch an archive from the storage server and unpack it into a new folder, with a
    /// progress bar. Every file's CRC and the archive's recorded sha256 are checked; the
    /// folder gets its name only when all is well. A PostgreSQL archive becomes a data
    /// folder ready to start (docs/services/backup.md, "Restoring a backup"); run this as the database's OS
    /// user, or chown the folder after.
    Restore {
        /// Site file (a bootstrap file reads the site stored in the coordinator): the
        /// storage server, its password and the pinned host keys come from it.
        #[arg(long, short)]
        config: PathBuf,
        /// The instance whose backup_controller to use (default: the only one with one).
        #[arg(long)]
        instance: Option<String>,
        /// Target: a pgdb key (`db1`...) or `sync`.
        #[arg(long)]
        target: String,
        /// The archive's path on the storage server, as `mware backup list` prints it.
        #[arg(long)]
        archive: String,
        /// The new folder (must not exist).
        #[arg(long)]
        to: PathBuf,
        /// Stop (naming the entry) before writing more than this many bytes, e.g. `50G`
        /// (default: the free space of the folder's file system, and at most 200 times
        /// the archive's size).
        #[arg(long, value_parser = parse_size)]
        max_size: Option<u64>,
    },
}

/// Runs one `mware backup` action.
async fn run(action: BackupAction, env: CliEnv) -> anyhow::Result<()> {
    match action {
        BackupAction::Status { api, json } => {
            let v = api::get(&api, paths::BACKUPS).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_status(&v);
            }
            Ok(())
        }
        BackupAction::Run { target, api, token_env, no_wait } => run_now(&api, &token_env, target, no_wait).await,
        BackupAction::List { api, json } => {
            let v = api::get(&api, paths::ARCHIVES).await?;
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
            restore(env, &config, instance, &target, &archive, &to, max_size).await
        }
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn date_s(secs: Option<u64>) -> String {
    local(secs.map(|s| s * 1000))
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
            local(ok["at_ms"].as_u64()),
            ok["bytes"].as_u64().map(bytes).unwrap_or_else(|| "-".into()),
            ok["duration_ms"].as_u64().map(|d| format!("{:.1} s", d as f64 / 1000.0)).unwrap_or_else(|| "-".into()),
            local(bad["at_ms"].as_u64()),
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
    let before = api::get(api, paths::BACKUPS).await?;
    let last_id = before["last_run"]["id"].clone();
    api::post(api, paths::RUN, token_env, &json!({"target": target}), "the backup run").await?;
    if no_wait {
        println!("backup run accepted; follow it with `mware backup status`");
        return Ok(());
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    bar.enable_steady_tick(Duration::from_millis(200));
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let v = match api::get(api, paths::BACKUPS).await {
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
    env: CliEnv,
    config: &std::path::Path,
    instance: Option<String>,
    target: &str,
    archive: &str,
    to: &std::path::Path,
    max_size: Option<u64>,
) -> anyhow::Result<()> {
    let site = (env.site)(config.to_path_buf()).await?;
    let with: Vec<_> = site
        .instances()
        .filter(|p| p.role.section::<crate::BackupController>().is_some())
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
    let bc = placed.role.section::<crate::BackupController>().context("backup_controller")?;
    let plan = crate::plan(&bc).map_err(|p| anyhow::anyhow!("backup_controller cannot be used: {}", p.join("; ")))?;
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
    let r = crate::restore_capped(spec, &policy, archive, to, max_size, move |done, total| {
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
    if matches!(spec.what, crate::config::What::Pg(_)) {
        println!(
            "next: chown -R postgres:postgres {0} (if you are not postgres), then pg_ctl -D {0} start (docs/services/backup.md: Restoring a backup)",
            to.display()
        );
    }
    Ok(())
}

/// A size in bytes with an optional K, M, G or T suffix (powers of 1024).
fn parse_size(raw: &str) -> Result<u64, String> {
    let t = raw.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("expected bytes with an optional K, M, G or T suffix, found {raw:?}")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("expected bytes with an optional K, M, G or T suffix, found {raw:?}"))
}
