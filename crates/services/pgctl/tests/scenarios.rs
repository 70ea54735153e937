//! pg_controller scenarios against a real PostgreSQL 15 pair, a real sshd and the
//! embedded coordinator. Each test is bounded in time, stops what it started, and
//! asserts what an operator cares about: one master, the data, the config kept.
//!
//! Index:
//! - `both_masters_first_in_list_wins`: two masters on a fresh state -> db2 rebuilt from db1.
//! - `failover_then_old_master_rejoins`: kill -9 db1 -> db2 promoted, accepts writes, keeps
//!   the rows; db1 started again -> rebuilt from db2, streams, own port/config kept.
//! - `referee_unreachable_blocks_promotion`: no promotion while the referee is down.
//! - `bad_ssh_password_and_bad_pg_ctl_change_nothing`: clear error, nothing changed, no secret.

mod common;
use common::*;
use mware_pgctl::Observed;
use mware_testkit::pg::{PgInstance, REPLICA_PASSWORD};
use mware_testkit::sshd::SSH_PASSWORD;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

fn pair() -> (PgInstance, PgInstance) {
    let db1 = PgInstance::new_primary("db1").expect("db1");
    let db2 = PgInstance::new_standby("db2", &db1).expect("db2");
    (db1, db2)
}

fn streams(master: &PgInstance) -> bool {
    master.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").map(|c| c != "0").unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_masters_first_in_list_wins() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sshd = pinned_sshd(dir.path());
    let (db1, db2) = blocking(pair);
    blocking(|| db2.promote()).unwrap();
    assert!(!db2.in_recovery().unwrap() && !db1.in_recovery().unwrap(), "set-up: two masters");
    let g = group_json(server_json(&db1, &sshd), server_json(&db2, &sshd), 3);
    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;

    wait_until(LONG, "db2 becomes a standby streaming from db1", || db2.in_recovery().unwrap_or(false) && streams(&db1)).await;
    assert!(!db1.in_recovery().unwrap(), "db1 stays master");
    assert_eq!(db2.psql("SHOW port").unwrap(), db2.port.to_string(), "db2 keeps its own port");
    assert_eq!(db2.psql("SHOW cluster_name").unwrap(), "db2", "db2 keeps its own config");
    let backups = db2.backup_entries();
    assert!(backups.iter().any(|e| e.starts_with("data-")), "old data folder kept in backups: {backups:?}");
    assert!(db1.backup_entries().is_empty(), "db1 untouched");
    blocking(|| db1.psql("CREATE TABLE t(x int); INSERT INTO t VALUES (42)")).unwrap();
    wait_until(LONG, "a row written on db1 reaches db2", || db2.psql("SELECT x FROM t").map(|x| x == "42").unwrap_or(false)).await;
    let st = ctl.wait_status(LONG, "healthy", |g| g.reason.starts_with("healthy")).await;
    assert_eq!(st.master.as_deref(), Some(format!("127.0.0.1:{}", db1.port).as_str()));
    let rec = mware_pgctl::store::load_master(ctl.coord.as_ref(), GROUP, "main").await.unwrap().expect("master published");
    assert_eq!(rec.port, db1.port);
    let journal = ctl.journal();
    assert!(
        journal.contains("rebuild 127.0.0.1:") && journal.contains("db1 is first") || journal.contains("first in the list"),
        "{journal}"
    );
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_then_old_master_rejoins() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sshd = pinned_sshd(dir.path());
    let (db1, db2) = blocking(pair);
    let g = group_json(server_json(&db1, &sshd), server_json(&db2, &sshd), 3);
    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;
    ctl.wait_status(LONG, "healthy pair", |g| g.reason.starts_with("healthy")).await;

    blocking(|| db1.psql("CREATE TABLE t(x int); INSERT INTO t SELECT generate_series(1, 1000)")).unwrap();
    wait_until(LONG, "rows replicated", || db2.psql("SELECT count(*) FROM t").map(|c| c == "1000").unwrap_or(false)).await;

    blocking(|| db1.kill9()).unwrap();
    wait_until(LONG, "db2 promoted", || db2.in_recovery().map(|r| !r).unwrap_or(false)).await;
    blocking(|| db2.psql("INSERT INTO t VALUES (1001)")).expect("db2 accepts writes");
    assert_eq!(db2.psql("SELECT count(*) FROM t").unwrap(), "1001", "rows committed before the kill are there");
    let st =
        ctl.wait_status(LONG, "db2 recorded as master", |g| g.last_master.as_deref() == Some(&format!("127.0.0.1:{}", db2.port))).await;
    assert!(st.servers[0].role == Observed::Unreachable);
    let journal = ctl.journal();
    assert!(journal.contains("was unreachable for") && journal.contains("accepts writes"), "{journal}");

    // The old master comes back as a master on the old timeline: it must be rebuilt.
    blocking(|| db1.start()).expect("db1 restarts");
    wait_until(LONG, "db1 rebuilt as a standby of db2", || db1.in_recovery().unwrap_or(false) && streams(&db2)).await;
    assert_eq!(db1.psql("SHOW port").unwrap(), db1.port.to_string());
    assert_eq!(db1.psql("SHOW cluster_name").unwrap(), "db1", "db1 keeps its own config");
    assert!(db1.backup_entries().iter().any(|e| e.starts_with("data-")), "db1's old data kept: {:?}", db1.backup_entries());
    blocking(|| db2.psql("INSERT INTO t VALUES (1002)")).unwrap();
    wait_until(LONG, "db1 replays new rows", || db1.psql("SELECT count(*) FROM t").map(|c| c == "1002").unwrap_or(false)).await;
    assert!(!db2.in_recovery().unwrap(), "exactly one master: db2");
    let rec = mware_pgctl::store::load_master(ctl.coord.as_ref(), GROUP, "main").await.unwrap().unwrap();
    assert_eq!(rec.port, db2.port, "published master is db2");
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn referee_unreachable_blocks_promotion() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sshd = pinned_sshd(dir.path());
    let (db1, db2) = blocking(pair);
    let referee_port = mware_testkit::free_port();
    let mut g = group_json(server_json(&db1, &sshd), server_json(&db2, &sshd), 2);
    g["referee"] = serde_json::json!(format!("127.0.0.1:{referee_port}"));
    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;
    ctl.wait_status(LONG, "healthy pair", |g| g.reason.starts_with("healthy")).await;

    blocking(|| db1.kill9()).unwrap();
    ctl.wait_status(LONG, "held back by the referee", |g| g.reason.contains("referee does not answer")).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(db2.in_recovery().unwrap(), "no promotion while the referee is unreachable");

    // The referee answers again: now the promotion happens.
    let listener = std::net::TcpListener::bind(("127.0.0.1", referee_port)).unwrap();
    wait_until(LONG, "db2 promoted once the referee answers", || db2.in_recovery().map(|r| !r).unwrap_or(false)).await;
    assert!(ctl.journal().contains("and the referee answered"), "{}", ctl.journal());
    drop(listener);
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_ssh_password_and_bad_pg_ctl_change_nothing() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sshd = pinned_sshd(dir.path());
    let (db1, db2) = blocking(pair);
    blocking(|| db2.promote()).unwrap();
    let wrong = "wrong-ssh-pw-xyz";
    let mut b = server_json(&db2, &sshd);
    b["ssh_pwd"] = serde_json::json!(wrong);
    let g = group_json(server_json(&db1, &sshd), b, 3);
    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;
    let st = ctl.wait_status(LONG, "ssh error reported", |g| g.last_error.is_some()).await;
    let err = st.last_error.clone().unwrap();
    assert!(err.contains("ssh login to postgres@127.0.0.1") && err.contains("password was refused"), "{err}");
    let shown = serde_json::to_string(&ctl.svc.groups()).unwrap() + &ctl.journal();
    for secret in [wrong, SSH_PASSWORD, REPLICA_PASSWORD] {
        assert!(!shown.contains(secret), "secret leaked: {shown}");
    }
    assert!(!db1.in_recovery().unwrap() && !db2.in_recovery().unwrap(), "nothing changed");
    assert!(db2.backup_entries().is_empty(), "data folder not moved");

    // Fix the password but break pg_ctl: a clear error and still nothing changed (config reload).
    let mut b = server_json(&db2, &sshd);
    b["pg_ctl_command"] = serde_json::json!("/nonexistent/pg_ctl");
    let g = group_json(server_json(&db1, &sshd), b, 3);
    ctl.site_tx.send(std::sync::Arc::new(site(dir.path(), vec![g]))).unwrap();
    let st = ctl
        .wait_status(LONG, "pg_ctl error reported", |g| g.last_error.as_deref().is_some_and(|e| e.contains("pg_ctl command not found")))
        .await;
    assert!(st.last_error.unwrap().contains("nothing was changed"));
    assert!(!db1.in_recovery().unwrap() && !db2.in_recovery().unwrap(), "nothing changed");
    assert!(db2.backup_entries().is_empty(), "data folder not moved");
    ctl.stop().await;
}
