//! Each fault aborts the run, says why in the run record, the target's last failure and
//! the log, leaves nothing under the final name nor any temporary file, keeps the last
//! good copy, and shows no secret: storage unreachable, a wrong storage password, a
//! wrong replica password, a pg_basebackup failure, the storage disk full (a 24 MiB
//! tmpfs mounted for the test), and a killed SSH connection mid-upload.

mod common;

use common::*;
use mware_backup::store;
use mware_testkit::pg::PgInstance;
use mware_testkit::sshd::Sshd;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

struct Setup {
    dir: tempfile::TempDir,
    db_sshd: Sshd,
    st_sshd: Sshd,
    primary: PgInstance,
}

fn setup(name: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db_sshd = pinned_sshd(dir.path());
    let st_sshd = pinned_sshd(dir.path());
    let primary = PgInstance::new_primary(name).expect("primary");
    Setup { dir, db_sshd, st_sshd, primary }
}

fn backup(s: &Setup, storage: &Path, tweak: impl FnOnce(&mut Value)) -> mware_config::Site {
    let mut b = backup_json(
        &s.st_sshd,
        &storage.join("slot").display().to_string(),
        vec![pgdb_json("db1", &["127.0.0.1"], s.primary.port, &s.db_sshd)],
        None,
    );
    tweak(&mut b);
    site(s.dir.path(), b)
}

/// Runs once; returns the run's reason (must have failed) after the common checks.
async fn failing_run(s: &Setup, site: &mware_config::Site, storage: &Path, keep: Option<&str>) -> String {
    let active = Active::join(s.dir.path()).await;
    let runner = active.runner(site);
    let report = runner.run(&plan_of(site), None, None).await.expect("the run is recorded");
    let state = store::load(&*active.coord, GROUP).await.unwrap();
    active.leave().await;
    let r = &report.record;
    assert_eq!(r.result.as_deref(), Some("failed"), "{r:?}");
    let reason = r.reason.clone().unwrap();
    assert_eq!(state.last_run.as_ref().and_then(|l| l.reason.clone()), Some(reason.clone()), "recorded in the coordinator");
    assert_eq!(state.targets["db1"].last_failure.as_ref().and_then(|f| f.reason.clone()), Some(reason.clone()));
    assert!(state.running.is_none() && state.leftovers.is_empty(), "{state:?}");
    let files = tree(storage);
    assert!(files.iter().all(|f| !f.contains("mware-tmp")), "a temporary file is left: {files:?}");
    match keep {
        None => assert!(!files.iter().any(|f| f.ends_with("db1.zip")), "something under the final name: {files:?}"),
        Some(sha) => assert_eq!(sha256(&storage.join("slot/db1.zip")), sha, "the last good copy changed"),
    }
    assert_no_secret("the reason", &reason);
    assert!(log_text().contains(&reason), "the log says why: {reason}");
    assert_no_secret("the log", &log_text());
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_aborts_the_run_and_says_why() {
    init_tracing();
    let s = blocking(|| setup("bk_faults"));
    // A role that may log in but not replicate: pg_basebackup itself fails.
    s.primary.psql(&format!("CREATE ROLE noreplica LOGIN PASSWORD '{}'", mware_testkit::pg::REPLICA_PASSWORD)).unwrap();
    let mut hba = std::fs::OpenOptions::new().append(true).open(s.primary.data.join("pg_hba.conf")).unwrap();
    std::io::Write::write_all(
        &mut hba,
        b"host all noreplica 127.0.0.1/32 scram-sha-256\nhost replication noreplica 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    s.primary.psql("SELECT pg_reload_conf()").unwrap();
    let closed = mware_testkit::free_port();
    type Tweak = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Tweak, String)> = vec![
        (
            "storage unreachable",
            Box::new(move |b: &mut Value| b["storage_ssh_port"] = json!(closed)),
            format!("target db1: storage server: ssh to postgres@127.0.0.1:{closed}: expected an ssh server"),
        ),
        (
            "wrong storage password",
            Box::new(|b: &mut Value| b["storage_ssh_pwd"] = json!("not-the-password")),
            format!("ssh login to postgres@127.0.0.1:{} with the configured password was refused", s.st_sshd.port),
        ),
        (
            "wrong replica password",
            Box::new(|b: &mut Value| b["pgdb"][0]["pg_replica_pwd"] = json!("not-the-password")),
            "password authentication failed for user \"replica\"".to_string(),
        ),
        (
            "pg_basebackup failure",
            Box::new(|b: &mut Value| b["pgdb"][0]["pg_replica_user"] = json!("noreplica")),
            "must be superuser or replication role".to_string(),
        ),
    ];
    for (name, tweak, expect) in cases {
        let storage = postgres_dir("mware-storage-");
        let site = backup(&s, storage.path(), tweak);
        let reason = failing_run(&s, &site, storage.path(), None).await;
        assert!(reason.contains(&expect), "{name}: expected the reason to say {expect:?}, found {reason}");
        assert!(reason.starts_with("target db1"), "{name}: {reason}");
        if name == "pg_basebackup failure" {
            assert!(reason.contains("pg_basebackup on postgres@127.0.0.1") && reason.contains("exit code 1"), "{reason}");
        }
    }
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(mib: u32) -> Tmpfs {
        let d = tempfile::Builder::new().prefix("mware-tmpfs-").tempdir_in("/tmp").unwrap();
        let uid = String::from_utf8(std::process::Command::new("id").args(["-u", "postgres"]).output().unwrap().stdout).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0755,uid={}", uid.trim()), "tmpfs"])
            .arg(d.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs (the disk-full test needs root)");
        Tmpfs(d)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_storage_disk_fails_the_run_and_keeps_the_last_good_copy() {
    init_tracing();
    let s = blocking(|| setup("bk_full"));
    let fs = Tmpfs::mount(24);
    let site = backup(&s, fs.0.path(), |_| {});
    let active = Active::join(s.dir.path()).await;
    let report = active.runner(&site).run(&plan_of(&site), None, None).await.unwrap();
    active.leave().await;
    assert_eq!(report.record.result.as_deref(), Some("ok"), "{:?}", report.record);
    let good = sha256(&fs.0.path().join("slot/db1.zip"));
    // Leave about 1 MiB free: the next archive does not fit.
    let free = nix_free(fs.0.path());
    let filler = fs.0.path().join("filler");
    let st = std::process::Command::new("fallocate").args(["-l", &(free - (1 << 20)).to_string()]).arg(&filler).status().unwrap();
    assert!(st.success());
    let reason = failing_run(&s, &site, fs.0.path(), Some(&good)).await;
    assert!(reason.contains("No space left on device"), "{reason}");
    assert!(reason.contains("writing") && reason.contains("on the storage server"), "{reason}");
}

fn nix_free(p: &Path) -> u64 {
    let out = std::process::Command::new("df").args(["--output=avail", "-B1"]).arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

/// Every descendant of `pid` (not `pid` itself).
fn descendants(pid: i32) -> Vec<i32> {
    let mut all: Vec<(i32, i32)> = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(st) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            if let Some(pp) = st.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|x| x.parse().ok()) {
                all.push((p, pp));
            }
        }
    }
    let mut out = vec![];
    let mut frontier = vec![pid];
    while let Some(x) = frontier.pop() {
        for (c, pp) in &all {
            if *pp == x {
                out.push(*c);
                frontier.push(*c);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_storage_connection_fails_the_run() {
    init_tracing();
    let s = blocking(|| setup("bk_killed"));
    blocking(|| fill(&s.primary, 60_000, 1000));
    let storage = postgres_dir("mware-storage-");
    let site = backup(&s, storage.path(), |_| {});
    let active = Active::join(s.dir.path()).await;
    let runner = active.runner(&site);
    let live = runner.live.clone();
    let plan = plan_of(&site);
    let run = tokio::spawn(async move { runner.run(&plan, None, None).await });
    wait_until(Duration::from_secs(60), "the upload is under way", || {
        live.lock().unwrap().as_ref().is_some_and(|p| p.bytes.load(std::sync::atomic::Ordering::Relaxed) > 2 << 20)
    })
    .await;
    // The storage server's per-connection processes (ours: children of our sshd).
    for pid in descendants(s.st_sshd.pid()) {
        libc_kill(pid);
    }
    let report = tokio::time::timeout(Duration::from_secs(60), run).await.expect("the run ends").unwrap().unwrap();
    active.leave().await;
    let r = &report.record;
    assert_eq!(r.result.as_deref(), Some("failed"), "{r:?}");
    let reason = r.reason.clone().unwrap();
    assert!(reason.contains("on the storage server") || reason.contains("ssh to postgres@127.0.0.1"), "{reason}");
    assert_no_secret("the reason", &reason);
    let files = tree(storage.path());
    assert!(files.iter().all(|f| !f.contains("mware-tmp") && !f.ends_with("db1.zip")), "{files:?}");
}

fn libc_kill(pid: i32) {
    let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_shows_in_the_service_status_and_as_an_event() {
    init_tracing();
    let s = blocking(|| setup("bk_status"));
    let storage = postgres_dir("mware-storage-");
    let site = backup(&s, storage.path(), |b| b["storage_ssh_pwd"] = json!("not-the-password"));
    let active = Active::join(s.dir.path()).await;
    let (svc, cancel, _tx, task, _reg, (status, events)) = active.service_ctx(site);
    let mut rx = events.subscribe();
    let ev = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let e = rx.recv().await.unwrap();
            if let mware_host::EventKind::Item { source, item, state, reason } = &e.kind {
                if source == "backup" {
                    return (item.clone(), state.clone(), reason.clone());
                }
            }
        }
    })
    .await
    .expect("a backup event");
    assert_eq!((ev.0.as_str(), ev.1.as_str()), ("db1", "failing"), "{ev:?}");
    assert!(ev.2.contains("with the configured password was refused"), "{ev:?}");
    // The service's reason (what /api/v1/status shows) says the backup failed and when the
    // next try comes: no sooner than 20 minutes later, the window being open all day.
    wait_until(Duration::from_secs(20), "the status says why", || {
        let r = status.get().reason;
        r.contains("the last backup failed: target db1") && r.contains("retrying no sooner than 20 min later")
    })
    .await;
    let doc = mware_host::Service::status_doc(&svc);
    assert_eq!(doc["failed"], true, "{doc}");
    assert!(doc["last_run"]["reason"].as_str().unwrap().contains("refused"), "{doc}");
    assert_no_secret("the status", &format!("{} {doc}", status.get().reason));
    cancel.cancel();
    let _ = task.await;
    active.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_lost_activity_mid_run_puts_nothing_in_place() {
    init_tracing();
    let s = blocking(|| setup("bk_fenced"));
    blocking(|| fill(&s.primary, 40_000, 1000));
    let storage = postgres_dir("mware-storage-");
    let site = backup(&s, storage.path(), |_| {});
    let active = Active::join(s.dir.path()).await;
    let runner = active.runner(&site);
    let live = runner.live.clone();
    let plan = plan_of(&site);
    let run = tokio::spawn(async move { runner.run(&plan, None, None).await });
    wait_until(Duration::from_secs(60), "the upload is under way", || {
        live.lock().unwrap().as_ref().is_some_and(|p| p.bytes.load(std::sync::atomic::Ordering::Relaxed) > 1 << 20)
    })
    .await;
    // Activity is lost (the leader key is released) while the archive is still being sent.
    active.leave().await;
    let r = tokio::time::timeout(Duration::from_secs(120), run).await.expect("the run ends").unwrap();
    let e = r.expect_err("a run whose instance lost activity cannot record its end");
    assert!(matches!(e, mware_backup::BackupError::Coord(mware_coord::CoordError::Fenced { .. })), "{e}");
    let files = tree(storage.path());
    assert!(files.iter().all(|f| !f.ends_with("db1.zip") && !f.contains("mware-tmp")), "{files:?}");
}
