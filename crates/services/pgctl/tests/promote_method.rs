//! Promotion with `pg_signal_filepath` set, against a real PostgreSQL 15 pair, a real sshd
//! and the embedded coordinator:
//!
//! - `an_unwatched_signal_file_is_skipped_for_pg_ctl_promote`: the standby watches no
//!   trigger file. The mismatch is a warning in the group's status and once in
//!   `pgctrl_main.log`; after kill -9 of the master, the standby is promoted with
//!   `pg_ctl promote` at once, and writes are accepted soon after the decision (not 15 s
//!   later, after a fallback).
//! - `a_watched_signal_file_is_used`: the standby's `promote_trigger_file` is the configured
//!   path; no warning; the promotion touches the file and the server reports finding it.
//!
//! Each prints `kill -> decision` and `decision -> first write` for the report.

mod common;
use common::*;
use mware_testkit::pg::PgInstance;
use mware_testkit::sshd::Sshd;
use std::time::{Duration, UNIX_EPOCH};

const LONG: Duration = Duration::from_secs(120);

use mware_config::now_ms;

/// A group whose servers each have `pg_signal_filepath` = `<root>/promote.trigger`.
fn group_with_signal_files(db1: &PgInstance, db2: &PgInstance, sshd: &Sshd) -> serde_json::Value {
    let mut a = server_json(db1, sshd);
    a["pg_signal_filepath"] = serde_json::json!(signal_path(db1));
    let mut b = server_json(db2, sshd);
    b["pg_signal_filepath"] = serde_json::json!(signal_path(db2));
    group_json(a, b, 2)
}

fn signal_path(pg: &PgInstance) -> String {
    pg.root.join("promote.trigger").display().to_string()
}

/// Tries an INSERT on `pg` as postgres over TCP every 20 ms; the wall-clock ms of the first
/// one that commits.
async fn first_write_ms(pg: &PgInstance) -> u64 {
    let deadline = now_ms() + LONG.as_millis() as u64;
    loop {
        let conn = format!("host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=2", pg.port);
        if let Ok((c, task)) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await {
            let task = tokio::spawn(task);
            let ok = c.batch_execute("INSERT INTO t VALUES (2)").await.is_ok();
            drop(c);
            let _ = task.await;
            if ok {
                return now_ms();
            }
        }
        assert!(now_ms() < deadline, "no write accepted by {} within {LONG:?}", pg.name);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wall-clock ms of the first journal line containing `needle`.
fn journal_time_ms(journal: &str, needle: &str) -> u64 {
    let line = journal.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in:\n{journal}"));
    let ts = line.split_whitespace().next().unwrap();
    let t = humantime::parse_rfc3339(ts).unwrap_or_else(|e| panic!("timestamp {ts:?}: {e}"));
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Kills db1, waits for db2 to accept a write; returns (kill -> decision, decision -> first
/// write) in ms and the journal.
async fn fail_over(ctl: &Controller, db1: &PgInstance, db2: &PgInstance) -> (u64, u64, String) {
    blocking(|| db1.psql("CREATE TABLE t(x int); INSERT INTO t VALUES (1)")).unwrap();
    wait_until(LONG, "row replicated", || db2.psql("SELECT count(*) FROM t").map(|c| c == "1").unwrap_or(false)).await;
    let killed = now_ms();
    blocking(|| db1.kill9()).unwrap();
    let wrote = first_write_ms(db2).await;
    let name = format!("127.0.0.1:{}", db2.port);
    ctl.wait_status(LONG, "promotion recorded", |g| g.last_action.as_deref().is_some_and(|a| a.contains("accepts writes"))).await;
    let journal = ctl.journal();
    let decided = journal_time_ms(&journal, &format!("INFO [main] promote {name} because"));
    assert_eq!(blocking(|| db2.psql("SELECT count(*) FROM t")).unwrap(), "2", "the row from before the kill and the new one");
    (decided.saturating_sub(killed), wrote.saturating_sub(decided), journal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unwatched_signal_file_is_skipped_for_pg_ctl_promote() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sshd = common::pinned_sshd(dir.path());
    let db1 = blocking(|| PgInstance::new_primary("db1")).unwrap();
    let db2 = blocking(|| PgInstance::new_standby("db2", &db1)).unwrap();
    let g = group_with_signal_files(&db1, &db2, &sshd);
    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;
    let st = ctl.wait_status(LONG, "healthy pair", |g| g.reason.starts_with("healthy")).await;
    let expected = format!(
        "pg_signal_filepath {} of 127.0.0.1:{} is not a file that server watches (its promote_trigger_file is empty): it will be promoted with pg_ctl promote",
        signal_path(&db2),
        db2.port
    );
    assert_eq!(st.warnings, vec![expected.clone()], "the mismatch is shown in the status");
    let api = serde_json::to_value(&st).unwrap();
    assert_eq!(api["warnings"][0], expected.as_str(), "and in GET /api/v1/pg/main");
    // Several cycles later it is still logged once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ctl.journal().matches(&format!("WARN [main] {expected}")).count(), 1, "{}", ctl.journal());

    let (to_decision, to_write, journal) = fail_over(&ctl, &db1, &db2).await;
    println!("MEASURED unwatched signal file: kill -> decision {to_decision} ms, decision -> first write {to_write} ms");
    assert!(journal.contains(&format!("promote 127.0.0.1:{} because", db2.port)) && journal.contains(", with pg_ctl promote"), "{journal}");
    assert!(!journal.contains("did not promote within"), "no fallback was needed: {journal}");
    assert!(!std::path::Path::new(&signal_path(&db2)).exists(), "the unwatched file was not touched");
    assert!(to_write <= 5000, "writes accepted {to_write} ms after the decision (the old way took 15 s more)");
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watched_signal_file_is_used() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sshd = common::pinned_sshd(dir.path());
    let db1 = blocking(|| PgInstance::new_primary("db1")).unwrap();
    let db2 = blocking(|| PgInstance::new_standby("db2", &db1)).unwrap();
    // db2 watches exactly its configured signal file (PostgreSQL 15).
    let conf = db2.data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&format!("promote_trigger_file = '{}'\n", signal_path(&db2)));
    std::fs::write(&conf, text).unwrap();
    blocking(|| db2.psql("SELECT pg_reload_conf()")).unwrap();
    wait_until(LONG, "db2 watches the file", || db2.psql("SHOW promote_trigger_file").map(|p| p == signal_path(&db2)).unwrap_or(false))
        .await;

    let g = group_with_signal_files(&db1, &db2, &sshd);
    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;
    let st = ctl.wait_status(LONG, "healthy pair", |g| g.reason.starts_with("healthy")).await;
    assert!(st.warnings.is_empty(), "nothing to warn about: {:?}", st.warnings);

    let (to_decision, to_write, journal) = fail_over(&ctl, &db1, &db2).await;
    println!("MEASURED watched signal file: kill -> decision {to_decision} ms, decision -> first write {to_write} ms");
    assert!(journal.contains(&format!("by touching its signal file {}, which it watches", signal_path(&db2))), "{journal}");
    assert!(!journal.contains("did not promote within"), "the file did it, no pg_ctl fallback: {journal}");
    let log = std::fs::read_to_string(&db2.log).unwrap();
    assert!(log.contains(&format!("promote trigger file found: {}", signal_path(&db2))), "db2's server log: {log}");
    assert!(to_write <= 15_000, "writes accepted {to_write} ms after the decision");
    ctl.stop().await;
}
