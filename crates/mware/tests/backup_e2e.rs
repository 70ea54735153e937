//! End-to-end: backup_controller in real daemons of one group on the embedded
//! coordinator, PostgreSQL 15 and sshd (as the database server and as the storage
//! server, host keys pinned in the site's `ssh.known_hosts`). The active instance is
//! killed -9 mid-run; the next one finds the half-done run, removes its temporary file,
//! and makes exactly one complete run (one archive, no temporary file, the window then
//! counts as done). The CLI reads it: `mware backup status`, `list`, `restore` (into a
//! folder that starts), and `run` (an operator's run, followed to its end).

mod common;

use common::*;
use mware_testkit::pg::{bin as pg_bin, PgInstance, REPLICA_PASSWORD, REPLICA_USER};
use mware_testkit::sshd::{Sshd, SSH_PASSWORD, SSH_USER};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "backup-e2e-token";

fn role(name: &str, order: i64, port: u16, backup: &Value) -> Value {
    json!({"name": name, "roletype": "mware", "iface": "lo", "group": 3, "order": order, "api_port": port, "backup_controller": backup})
}

fn backups(d: &Daemon) -> Value {
    d.get("/api/v1/backups").map(|(_, v)| v).unwrap_or(Value::Null)
}

fn wait_backups(d: &Daemon, limit: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let v = backups(d);
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}; last: {v:#}\nlog:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn files(dir: &Path) -> Vec<String> {
    let out = Command::new("find").arg(dir).args(["-mindepth", "1"]).output().unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    v.sort();
    v
}

fn mware(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin()).args(args).env("MWARE_API_TOKEN", TOKEN).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_failover_mid_run_is_followed_by_exactly_one_complete_run() {
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let db_sshd = Sshd::start().unwrap();
    let st_sshd = Sshd::start().unwrap();
    db_sshd.pin_in(&kh).unwrap();
    st_sshd.pin_in(&kh).unwrap();
    let storage = tempfile::Builder::new().prefix("mware-storage-").tempdir_in("/tmp").unwrap();
    assert!(Command::new("chown").args(["postgres:postgres"]).arg(storage.path()).status().unwrap().success());
    let pg = PgInstance::new_primary("bk_e2e").unwrap();
    // ~40 MB of rows: a run lasts long enough to be cut.
    pg.psql("CREATE TABLE t AS SELECT g AS id, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 32) i) AS v FROM generate_series(1, 40000) g").unwrap();
    let backup = json!({
        "hours_interval": [0, 23], "weekdays": [1, 2, 3, 4, 5, 6, 7],
        "storage_ssh_host": "127.0.0.1", "storage_ssh_port": st_sshd.port, "storage_ssh_user": SSH_USER, "storage_ssh_pwd": SSH_PASSWORD,
        "storage_ssh_path": storage.path().join("b").display().to_string(),
        "pgdb": [{"key": "main", "servers": [{"ssh_host": "127.0.0.1", "pg_host": "127.0.0.1"}], "ssh_port": db_sshd.port, "ssh_user": SSH_USER,
                  "ssh_pwd": SSH_PASSWORD, "pg_port": pg.port, "pg_replica_user": REPLICA_USER, "pg_replica_pwd": REPLICA_PASSWORD,
                  "pg_basebackup_command": pg_bin("pg_basebackup")}]
    });
    let ports = [free_port_pair(), free_port_pair()];
    let site = json!({
        "site": "bk",
        "coordination": {"backend": "embedded", "path": dir.path().join("coord.sqlite").display().to_string(), "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "MWARE_API_TOKEN"},
        "ssh": {"known_hosts": kh.display().to_string()},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [role("b10", 10, ports[0], &backup), role("b20", 20, ports[1], &backup)]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let env = [("MWARE_API_TOKEN", TOKEN)];
    let mut d10 = Daemon::start(&cfg, "b10", &format!("127.0.0.1:{}", ports[0]), dir.path().join("b10.log"), &env);
    d10.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    let d20 = Daemon::start(&cfg, "b20", &format!("127.0.0.1:{}", ports[1]), dir.path().join("b20.log"), &env);
    d20.wait_status(Duration::from_secs(30), |v| v["state"] == "passive");

    // The window is open: b10 starts the run at once. Kill it once bytes flow.
    let mid = wait_backups(&d10, Duration::from_secs(60), "b10's run sends bytes", |v| {
        v["running"]["bytes_sent"].as_u64().unwrap_or(0) > 1 << 20
    });
    let cut_run = mid["running"]["run_id"].as_str().unwrap().to_string();
    d10.child.kill9();
    let tmp_seen = files(storage.path()).iter().any(|f| f.contains(".mware-tmp-"));
    assert!(tmp_seen, "the cut run's temporary file is on the storage server: {:?}", files(storage.path()));

    // b20 takes over, cleans up and runs once, to the end.
    let done = wait_backups(&d20, Duration::from_secs(180), "b20 completes a run", |v| v["last_run"]["result"] == "ok");
    assert_ne!(done["last_run"]["id"], cut_run, "{done:#}");
    assert_eq!(done["complete_runs"], 1, "{done:#}");
    std::thread::sleep(Duration::from_secs(3));
    let after = backups(&d20);
    assert_eq!(after["complete_runs"], 1, "exactly one complete run: {after:#}");
    assert!(after["next_run"]["reason"].as_str().unwrap().contains("is done"), "{after:#}");
    assert!(after["running"].is_null(), "{after:#}");
    let on_storage = files(storage.path());
    let archive = storage.path().join("b/main.zip");
    assert_eq!(
        on_storage,
        vec![storage.path().join("b").display().to_string(), archive.display().to_string(), format!("{}.sha256", archive.display())]
    );
    let log20 = d20.log_text();
    assert!(log20.contains("found a half-done run") && log20.contains(&cut_run), "{log20}");
    assert!(log20.contains("removed a leftover temporary copy"), "{log20}");
    assert_eq!(log20.matches("backup: run started").count(), 1, "{log20}");
    assert_eq!(d10.log_text().matches("backup: run started").count(), 1);
    // The service status in /api/v1/status carries the backup document.
    let st = d20.wait_status(Duration::from_secs(5), |v| v["services"].as_array().is_some_and(|a| a.iter().any(|s| s["name"] == "backup")));
    let svc = st["services"].as_array().unwrap().iter().find(|s| s["name"] == "backup").unwrap().clone();
    assert_eq!(svc["state"], "running", "{svc}");
    for text in [log20.as_str(), &d10.log_text(), &st.to_string(), &after.to_string()] {
        for secret in [SSH_PASSWORD, REPLICA_PASSWORD] {
            assert!(!text.contains(secret), "a secret shows: {text}");
        }
    }

    // The CLI: status, list, restore (a folder that starts), and an operator's run.
    let (ok, out) = mware(&["backup", "status", "--api", &d20.api]);
    assert!(ok && out.contains("main") && out.contains("is done"), "{out}");
    let (ok, out) = mware(&["backup", "list", "--api", &d20.api]);
    assert!(ok && out.contains(&archive.display().to_string()), "{out}");
    let root = tempfile::Builder::new().prefix("mware-restore-").tempdir_in("/tmp").unwrap();
    let to = root.path().join("data");
    let (ok, out) = mware(&[
        "backup",
        "restore",
        "--config",
        cfg.to_str().unwrap(),
        "--target",
        "main",
        "--archive",
        archive.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert!(ok && out.contains("matches the one recorded"), "{out}");
    assert!(to.join("PG_VERSION").exists() && to.join("pg_wal").is_dir());
    // Bad requests change nothing: no token, a bad body, an unknown key (through b20's API).
    let url = format!("{}/api/v1/backups/run", d20.api);
    assert_eq!(post_json(&url, None, &json!({})).unwrap().0, 401);
    for (body, field) in
        [(json!({"target": 5}), "target: expected a target key string"), (json!({"tagret": "main"}), "expected only the key \"target\"")]
    {
        let (code, v) = post_json(&url, Some(TOKEN), &body).unwrap();
        assert_eq!(code, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{v}");
    }
    assert_eq!(backups(&d20)["complete_runs"], 1);
    let (ok, out) = mware(&["backup", "run", "--api", &d20.api, "--target", "nope"]);
    assert!(!ok && out.contains("404") && out.contains("expected one of main"), "{out}");
    let (ok, out) = mware(&["backup", "run", "--api", &d20.api]);
    assert!(ok && out.contains("done") && out.contains("main.zip"), "{out}");
    assert_eq!(backups(&d20)["complete_runs"], 2);
}

fn free_port_pair() -> u16 {
    mware_testkit::free_port()
}
