//! A scheduled run against a real PostgreSQL pair: the archive is taken from the
//! streaming standby, is a valid zip (Info-ZIP's `unzip -t` agrees), sits under its
//! final name with its sha256 beside it and no temporary file left, the window is not
//! run twice, and the archive restores into a data folder that starts as a PostgreSQL
//! server (as `postgres`, on its own port) with the same row count as the source.

mod common;

use common::*;
use mware_testkit::pg::{bin, PgInstance};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const ROWS: u64 = 20_000;

fn count(pg: &PgInstance) -> u64 {
    pg.psql("SELECT count(*) FROM t").ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// A restored data folder started by the test; stopped (as `postgres`) when dropped.
struct Started {
    data: std::path::PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin("pg_ctl"))
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w"])
            .output();
    }
}

fn start_restored(data: &Path, port: u16, sock: &Path) -> Started {
    let opts = format!("-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c cluster_name=restored", sock.display());
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin("pg_ctl"))
        .arg("start")
        .arg("-D")
        .arg(data)
        .arg("-l")
        .arg(data.with_extension("log"))
        .args(["-w", "-t", "120", "-o", &opts])
        .output()
        .expect("pg_ctl");
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "the restored folder does not start: {}{}\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Started { data: data.to_path_buf() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_takes_the_standby_and_the_archive_restores_with_the_same_rows() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let db_sshd = pinned_sshd(dir.path());
    let st_sshd = pinned_sshd(dir.path());
    let storage = postgres_dir("mware-storage-");
    let conf = postgres_dir("mware-pgconf-");
    std::fs::write(conf.path().join("postgresql.conf"), "# the server's own config\n").unwrap();
    chown_postgres(conf.path());
    let primary = blocking(|| PgInstance::new_primary("bk_a")).expect("primary");
    blocking(|| fill(&primary, ROWS, 200));
    let standby = blocking(|| PgInstance::new_standby("bk_b", &primary)).expect("standby");
    wait_until(Duration::from_secs(60), "standby replays the table", || blocking(|| count(&standby)) == ROWS).await;
    // The seed's pair: both servers on one port, the standby at 127.0.0.2.
    blocking(|| move_standby(&standby, "127.0.0.2", primary.port));
    wait_until(Duration::from_secs(60), "the standby streams again", || blocking(|| role_at("127.0.0.2", primary.port)) == "t|streaming")
        .await;

    let path = format!("{}/backup/dow_%weekday", storage.path().display());
    let mut pgdb = pgdb_json("db1", &["127.0.0.1", "127.0.0.2"], primary.port, &db_sshd);
    pgdb["pg_config_folder"] = Value::String(conf.path().display().to_string());
    let site = site(dir.path(), backup_json(&st_sshd, &path, vec![pgdb], None));
    let active = Active::join(dir.path()).await;
    let (svc, cancel, _site_tx, task, registry) = active.service(site.clone());

    let doc = {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            let d = svc.document();
            if !d["targets"][0]["last_success"].is_null() || !d["targets"][0]["last_failure"].is_null() {
                break d;
            }
            assert!(std::time::Instant::now() < deadline, "no run ended within 180 s: {d:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let ok = &doc["targets"][0]["last_success"];
    assert!(!ok.is_null(), "the run failed: {doc:#}");
    assert_eq!(ok["source"], format!("standby 127.0.0.2:{} (streaming)", primary.port), "expected the standby as the source: {doc:#}");
    let archive = ok["path"].as_str().unwrap().to_string();
    let weekday = chrono::Datelike::weekday(&chrono::Local::now().date_naive()).number_from_monday();
    assert_eq!(archive, format!("{}/backup/dow_{weekday}/db1.zip", storage.path().display()));
    let archive_path = Path::new(&archive);
    assert_eq!(sha256(archive_path), ok["sha256"].as_str().unwrap());
    let recorded = std::fs::read_to_string(format!("{archive}.sha256")).unwrap();
    assert_eq!(recorded, format!("{}  db1.zip\n", ok["sha256"].as_str().unwrap()));
    assert!(tree(storage.path()).iter().all(|f| !f.contains("mware-tmp")), "a temporary file is left: {:?}", tree(storage.path()));
    let t = Command::new("unzip").arg("-tq").arg(archive_path).output().unwrap();
    assert!(t.status.success(), "unzip -t: {}{}", String::from_utf8_lossy(&t.stdout), String::from_utf8_lossy(&t.stderr));
    let l = String::from_utf8_lossy(&Command::new("unzip").arg("-l").arg(archive_path).output().unwrap().stdout).into_owned();
    let year = chrono::Datelike::year(&chrono::Local::now()).to_string();
    assert!(l.lines().filter(|x| x.contains("PG_VERSION")).all(|x| x.contains(&year)), "entries carry their files' times: {l}");
    for f in ["pg_config/postgresql.conf", "PG_VERSION", "backup_label", "global/pg_control", "pg_wal/"] {
        assert!(l.contains(f), "expected {f} in the archive: {l}");
    }
    let mut m = String::new();
    prometheus_client::encoding::text::encode(&mut m, &registry).unwrap();
    assert!(m.contains("mware_backup_last_size_bytes{target=\"db1\"}"), "{m}");
    assert_no_secret("status", &doc.to_string());

    // One run per window: the next decision waits for the next window.
    wait_until(Duration::from_secs(20), "the window counts as done", || {
        svc.document()["next_run"]["reason"].as_str().unwrap_or("").contains("is done")
    })
    .await;
    assert_eq!(svc.document()["complete_runs"], 1);
    cancel.cancel();
    let _ = task.await;

    // Restore into a new folder and start it as a server of its own.
    let plan = plan_of(&site);
    let keys = mware_ssh::HostKeyPolicy::from(&site.ssh);
    let root = postgres_dir("mware-restore-");
    let to = root.path().join("data");
    let r = mware_backup::restore(&plan.targets[0], &keys, &archive, &to, |_, _| {}).await.expect("restore");
    assert!(r.checked, "the recorded sha256 was compared");
    assert!(r.removed.contains(&"standby.signal".to_string()), "a copy of a standby starts as a master: {r:?}");
    assert!(!mware_backup::partial_of(&to).exists());
    chown_postgres(root.path());
    let sock = root.path().join("sock");
    std::fs::create_dir(&sock).unwrap();
    chown_postgres(&sock);
    let port = mware_testkit::free_port();
    let _started = blocking(|| start_restored(&to, port, &sock));
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin("psql"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-d", "postgres", "-At", "-c", "SELECT count(*) FROM t"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ROWS.to_string(), "{}", String::from_utf8_lossy(&out.stderr));
    // A second restore into the same folder is refused and changes nothing.
    let e = mware_backup::restore(&plan.targets[0], &keys, &archive, &to, |_, _| {}).await.unwrap_err();
    assert!(e.to_string().contains("expected a folder that does not exist yet"), "{e}");
    assert_no_secret("log", &log_text());
    active.leave().await;
}
