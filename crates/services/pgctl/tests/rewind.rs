//! `rejoin: rewind` against a real PostgreSQL 15 pair and a real sshd: a returning old
//! master is rejoined with pg_rewind (its data folder stays in place), and when pg_rewind
//! cannot be used the controller falls back to a basebackup and says why. Also checks the
//! `mware_pgctl_*` metrics an operator would graph.
//!
//! Index:
//! - `old_master_is_rewound_not_rebuilt`: kill -9 db1 -> db2 promoted; db1 started again ->
//!   pg_rewind (no data folder in backups), streams, own port/config kept, new rows arrive.
//! - `rewind_with_a_wrong_command_falls_back_to_basebackup`: pg_rewind_command does not exist.
//! - `rewind_refused_by_the_source_falls_back_to_basebackup`: the replica user lost its
//!   grants on the new master, so pg_rewind itself fails after db1 was stopped.
//! - `second_master_on_fresh_state_is_rewound_to_the_first`: db2 promoted by hand and
//!   written to -> rewound to db1's history (its own writes gone), config kept.

mod common;
use common::*;
use mware_testkit::pg::{bin, PgInstance, REPLICA_PASSWORD};
use mware_testkit::sshd::{Sshd, SSH_PASSWORD};
use serde_json::json;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(150);

fn streams(master: &PgInstance) -> bool {
    master.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").map(|c| c != "0").unwrap_or(false)
}

fn rewind_group(db1: &PgInstance, db2: &PgInstance, sshd: &Sshd, rewind_cmd: &str) -> serde_json::Value {
    let mut a = server_json(db1, sshd);
    a["pg_rewind_command"] = json!(rewind_cmd);
    let mut b = server_json(db2, sshd);
    b["pg_rewind_command"] = json!(bin("pg_rewind"));
    let mut g = group_json(a, b, 3);
    g["rejoin"] = json!("rewind");
    g
}

/// Set-up shared by the tests: a healthy pair under the controller, rows on db1, db1
/// killed, db2 promoted and written to, then `before_return` and db1 started again.
/// Returns once db1 streams from db2 again.
async fn fail_over_and_return(
    dir: &std::path::Path,
    rewind_cmd: &str,
    before_return: impl FnOnce(&PgInstance),
) -> (Controller, PgInstance, PgInstance, Sshd) {
    let sshd = pinned_sshd(dir);
    let db1 = blocking(|| PgInstance::new_primary("db1")).expect("db1");
    let db2 = blocking(|| PgInstance::new_standby("db2", &db1)).expect("db2");
    let g = rewind_group(&db1, &db2, &sshd, rewind_cmd);
    let ctl = Controller::start(dir, "mware1", site(dir, vec![g])).await;
    ctl.wait_status(LONG, "healthy pair", |g| g.reason.starts_with("healthy")).await;
    blocking(|| db1.psql("CREATE TABLE t(x int); INSERT INTO t SELECT generate_series(1, 1000)")).unwrap();
    wait_until(LONG, "rows replicated", || db2.psql("SELECT count(*) FROM t").map(|c| c == "1000").unwrap_or(false)).await;

    blocking(|| db1.kill9()).unwrap();
    // While no master is seen (at least promote_after_s = 3 s), the metrics say so.
    let no_master = r#"mware_pgctl_seconds_since_master_seen{group="main"} 0"#;
    let deadline = std::time::Instant::now() + LONG;
    while ctl.metrics().contains(no_master) {
        assert!(std::time::Instant::now() < deadline, "seconds_since_master_seen never grew: {}", ctl.metrics());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_until(LONG, "db2 promoted", || db2.in_recovery().map(|r| !r).unwrap_or(false)).await;
    let (n1, n2) = (format!("127.0.0.1:{}", db1.port), format!("127.0.0.1:{}", db2.port));
    ctl.wait_status(LONG, "db2 recorded and seen as master", |g| {
        g.last_master.as_deref() == Some(n2.as_str()) && g.master.as_deref() == Some(n2.as_str())
    })
    .await;
    let m = ctl.metrics();
    for line in [
        format!(r#"mware_pgctl_server_up{{group="main",server="{n1}"}} 0"#),
        format!(r#"mware_pgctl_server_is_master{{group="main",server="{n1}"}} 0"#),
        format!(r#"mware_pgctl_server_is_master{{group="main",server="{n2}"}} 1"#),
    ] {
        assert!(m.contains(&line), "{line} in {m}");
    }
    blocking(|| db2.psql("INSERT INTO t VALUES (1001)")).expect("db2 accepts writes");
    blocking(|| before_return(&db2));

    // The old master comes back on its old timeline (its crash recovery writes WAL of its own).
    blocking(|| db1.start()).expect("db1 restarts");
    wait_until(LONG, "db1 rejoined as a standby of db2", || db1.in_recovery().unwrap_or(false) && streams(&db2)).await;
    (ctl, db1, db2, sshd)
}

/// What every rejoin must give, whatever the method.
async fn assert_rejoined(ctl: &Controller, db1: &PgInstance, db2: &PgInstance) {
    assert_eq!(db1.psql("SHOW port").unwrap(), db1.port.to_string(), "db1 keeps its own port");
    assert_eq!(db1.psql("SHOW cluster_name").unwrap(), "db1", "db1 keeps its own config");
    assert_eq!(db1.psql("SELECT count(*) FROM t").unwrap(), "1001", "db1 has db2's row written after the failover");
    blocking(|| db2.psql("INSERT INTO t VALUES (1002)")).unwrap();
    wait_until(LONG, "db1 replays new rows", || db1.psql("SELECT count(*) FROM t").map(|c| c == "1002").unwrap_or(false)).await;
    assert!(!db2.in_recovery().unwrap(), "exactly one master: db2");
    let shown = serde_json::to_string(&ctl.svc.groups()).unwrap() + &ctl.journal() + &ctl.metrics();
    for secret in [SSH_PASSWORD, REPLICA_PASSWORD] {
        assert!(!shown.contains(secret), "secret leaked: {shown}");
    }
}

fn data_backups(pg: &PgInstance) -> Vec<String> {
    pg.backup_entries().into_iter().filter(|e| e.starts_with("data-")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_master_is_rewound_not_rebuilt() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (ctl, db1, db2, _sshd) = fail_over_and_return(dir.path(), &bin("pg_rewind"), |_| {}).await;
    assert_rejoined(&ctl, &db1, &db2).await;
    assert!(data_backups(&db1).is_empty(), "rewound in place, data folder not moved: {:?}", db1.backup_entries());
    let st = ctl.wait_status(LONG, "rewind reported", |g| g.last_action.as_deref().is_some_and(|a| a.contains("pg_rewind"))).await;
    let action = st.last_action.unwrap();
    eprintln!("last_action: {action}\njournal:\n{}", ctl.journal());
    assert!(action.contains("done with pg_rewind (no basebackup)"), "{action}");
    let journal = ctl.journal();
    assert!(journal.contains("rewind 127.0.0.1:") && journal.contains("rewound"), "{journal}");
    assert!(journal.contains("servers diverged at WAL location"), "pg_rewind really rewound: {journal}");
    assert!(!journal.contains("pg_basebackup instead"), "{journal}");

    let m = ctl.metrics();
    assert!(m.contains(r#"mware_pgctl_actions_total{group="main",action="rewind",outcome="ok"} 1"#), "{m}");
    assert!(m.contains(r#"mware_pgctl_actions_total{group="main",action="promote",outcome="ok"} 1"#), "{m}");
    assert!(!m.contains(r#"action="rebuild""#), "no basebackup: {m}");
    assert!(m.contains(r#"mware_pgctl_decisions_total{group="main",action="healthy"}"#), "{m}");
    ctl.wait_status(LONG, "healthy again", |g| g.reason.starts_with("healthy")).await;
    let m = ctl.metrics();
    let (n1, n2) = (format!("127.0.0.1:{}", db1.port), format!("127.0.0.1:{}", db2.port));
    for line in [
        format!(r#"mware_pgctl_server_up{{group="main",server="{n1}"}} 1"#),
        format!(r#"mware_pgctl_server_is_master{{group="main",server="{n1}"}} 0"#),
        format!(r#"mware_pgctl_server_is_master{{group="main",server="{n2}"}} 1"#),
        format!(r#"mware_pgctl_replication_lag_bytes{{group="main",server="{n2}"}} 0"#),
    ] {
        assert!(m.contains(&line), "{line} in {m}");
    }
    assert!(m.contains(&format!(r#"mware_pgctl_replication_lag_bytes{{group="main",server="{n1}"}}"#)), "{m}");
    assert!(m.contains(r#"mware_pgctl_seconds_since_master_seen{group="main"} 0"#), "{m}");
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rewind_with_a_wrong_command_falls_back_to_basebackup() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (ctl, db1, db2, _sshd) = fail_over_and_return(dir.path(), "/nonexistent/pg_rewind", |_| {}).await;
    assert_rejoined(&ctl, &db1, &db2).await;
    assert_eq!(data_backups(&db1).len(), 1, "basebackup moved the old data folder away: {:?}", db1.backup_entries());
    let st = ctl.wait_status(LONG, "fallback reported", |g| g.last_action.as_deref().is_some_and(|a| a.contains("pg_rewind failed"))).await;
    let action = st.last_action.unwrap();
    eprintln!("last_action: {action}\njournal:\n{}", ctl.journal());
    assert!(action.contains("pg_rewind command not found: /nonexistent/pg_rewind"), "{action}");
    assert!(action.contains("rebuilt with pg_basebackup instead"), "{action}");
    assert!(ctl.journal().contains("falling back to pg_basebackup"), "{}", ctl.journal());
    let m = ctl.metrics();
    assert!(m.contains(r#"mware_pgctl_actions_total{group="main",action="rewind",outcome="failed"} 1"#), "{m}");
    assert!(m.contains(r#"mware_pgctl_actions_total{group="main",action="rebuild",outcome="ok"} 1"#), "{m}");
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rewind_refused_by_the_source_falls_back_to_basebackup() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let revoke = |db2: &PgInstance| {
        db2.psql("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) FROM replica").expect("revoke");
    };
    let (ctl, db1, db2, _sshd) = fail_over_and_return(dir.path(), &bin("pg_rewind"), revoke).await;
    assert_rejoined(&ctl, &db1, &db2).await;
    assert_eq!(data_backups(&db1).len(), 1, "basebackup moved the old data folder away: {:?}", db1.backup_entries());
    let st = ctl.wait_status(LONG, "fallback reported", |g| g.last_action.as_deref().is_some_and(|a| a.contains("pg_rewind failed"))).await;
    let action = st.last_action.unwrap();
    eprintln!("last_action: {action}\njournal:\n{}", ctl.journal());
    assert!(action.contains("pg_rewind exited with") && action.contains("permission denied"), "{action}");
    assert!(action.contains("rebuilt with pg_basebackup instead"), "{action}");
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn second_master_on_fresh_state_is_rewound_to_the_first() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sshd = pinned_sshd(dir.path());
    let db1 = blocking(|| PgInstance::new_primary("db1")).expect("db1");
    let db2 = blocking(|| PgInstance::new_standby("db2", &db1)).expect("db2");
    blocking(|| db2.promote()).unwrap();
    blocking(|| db2.psql("CREATE TABLE only_on_db2(x int); INSERT INTO only_on_db2 VALUES (1)")).unwrap();
    blocking(|| db1.psql("CREATE TABLE t(x int); INSERT INTO t VALUES (7)")).unwrap();
    let mut g = rewind_group(&db1, &db2, &sshd, &bin("pg_rewind"));
    g["servers"][0]["pg_rewind_command"] = json!(bin("pg_rewind"));
    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;

    wait_until(LONG, "db2 rewound into a standby of db1", || db2.in_recovery().unwrap_or(false) && streams(&db1)).await;
    assert!(!db1.in_recovery().unwrap(), "db1, first in the list, stays master");
    assert!(data_backups(&db2).is_empty(), "rewound in place: {:?}", db2.backup_entries());
    assert_eq!(db2.psql("SHOW port").unwrap(), db2.port.to_string(), "db2 keeps its own port");
    assert_eq!(db2.psql("SHOW cluster_name").unwrap(), "db2", "db2 keeps its own config");
    assert_eq!(db2.psql("SELECT x FROM t").unwrap(), "7", "db2 has db1's data");
    assert!(
        db2.psql("SELECT to_regclass('only_on_db2') IS NULL").unwrap() == "t",
        "what only db2 wrote while it was a second master is gone (rewound to db1's history)"
    );
    let st = ctl.wait_status(LONG, "rewind reported", |g| g.last_action.as_deref().is_some_and(|a| a.contains("pg_rewind"))).await;
    assert!(st.last_action.unwrap().contains("first in the list"));
    ctl.stop().await;
}
