//! pg_controller with SSH host keys that are not the server's: it never acts on such a
//! server, and says why in the group's status and `pgctrl_<key>.log`. Real PostgreSQL 15
//! pair, real sshd, embedded coordinator.
//!
//! Index:
//! - `wrong_pinned_key_holds_back_the_promotion_until_the_pin_is_fixed`: another key is
//!   pinned for the sshd; db1 is killed: db2 is not promoted, no intent is recorded, sshd
//!   saw no login; the status and the log name both fingerprints. Once the right key is
//!   pinned, the next check accepts it and db2 is promoted.
//! - `unknown_host_is_not_rebuilt`: nothing pinned: a second master is left alone (its
//!   data folder not moved), the status says how to pin.

mod common;
use common::*;
use mware_testkit::pg::PgInstance;
use mware_testkit::sshd::{throwaway_host_key, Sshd};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

fn login_attempts(sshd: &Sshd) -> Vec<String> {
    let log = sshd.log_text();
    log.lines().filter(|l| l.contains("password") || l.contains("Accepted") || l.contains("session opened")).map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_pinned_key_holds_back_the_promotion_until_the_pin_is_fixed() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sshd = Sshd::start().expect("sshd");
    let (other, other_fp) = throwaway_host_key().unwrap();
    std::fs::write(known_hosts(dir.path()), format!("[127.0.0.1]:{} {other}\n", sshd.port)).unwrap();
    let db1 = blocking(|| PgInstance::new_primary("db1")).expect("db1");
    let db2 = blocking(|| PgInstance::new_standby("db2", &db1)).expect("db2");
    let g = group_json(server_json(&db1, &sshd), server_json(&db2, &sshd), 2);
    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;

    // The check at start shows the refusal before anything needs SSH.
    let st = ctl
        .wait_status(LONG, "refusal shown for db2", |g| {
            g.reason.starts_with("healthy")
                && g.servers[1].ssh_error.as_deref().is_some_and(|e| e.contains("does not match the pinned key"))
        })
        .await;
    let e = st.servers[1].ssh_error.clone().unwrap();
    assert!(e.contains(&other_fp) && e.contains(&sshd.fingerprint) && e.contains(&format!("postgres@127.0.0.1:{}", sshd.port)), "{e}");
    assert!(st.servers[1].ssh_host_key.is_none());

    blocking(|| db1.kill9()).unwrap();
    let st = ctl.wait_status(LONG, "promotion held back", |g| g.reason.contains("held back")).await;
    assert!(st.reason.starts_with(&format!("promote 127.0.0.1:{} because", db2.port)), "{}", st.reason);
    assert!(st.reason.contains(&sshd.fingerprint) && st.reason.contains(&other_fp), "{}", st.reason);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(blocking(|| db2.in_recovery()).unwrap(), "db2 is not promoted");
    let p = mware_pgctl::store::load(ctl.coord.as_ref(), GROUP, "main").await.unwrap();
    assert!(p.intent.is_none(), "no intent recorded: {:?}", p.intent);
    assert_eq!(p.last_master, Some(format!("127.0.0.1:{}", db1.port)), "the record still names db1");
    assert_eq!(login_attempts(&sshd), Vec::<String>::new(), "sshd saw no login:\n{}", sshd.log_text());
    let journal = ctl.journal();
    assert!(journal.contains("nothing will be done to") && journal.contains(&other_fp), "{journal}");
    assert!(journal.contains("held back"), "{journal}");
    assert!(!journal.contains("accepts writes"), "{journal}");

    // The operator pins the right key: the next check (within 30 s) accepts it and the
    // promotion goes ahead.
    std::fs::write(known_hosts(dir.path()), format!("{}\n", sshd.known_hosts_line())).unwrap();
    wait_until(LONG, "db2 promoted once the right key is pinned", || db2.in_recovery().map(|r| !r).unwrap_or(false)).await;
    let st = ctl.wait_status(LONG, "db2 recorded", |g| g.last_master.as_deref() == Some(&format!("127.0.0.1:{}", db2.port))).await;
    assert_eq!(st.servers[1].ssh_host_key.as_deref(), Some(format!("ssh-ed25519 {}", sshd.fingerprint).as_str()));
    assert!(st.servers[1].ssh_error.is_none(), "{:?}", st.servers[1].ssh_error);
    assert!(ctl.journal().contains("is accepted"), "{}", ctl.journal());
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_host_is_not_rebuilt() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sshd = Sshd::start().expect("sshd");
    let db1 = blocking(|| PgInstance::new_primary("db1")).expect("db1");
    let db2 = blocking(|| PgInstance::new_standby("db2", &db1)).expect("db2");
    blocking(|| db2.promote()).unwrap();
    let g = group_json(server_json(&db1, &sshd), server_json(&db2, &sshd), 2);
    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;

    let st = ctl.wait_status(LONG, "rebuild held back", |g| g.reason.contains("held back")).await;
    assert!(st.reason.starts_with(&format!("rebuild 127.0.0.1:{}", db2.port)), "{}", st.reason);
    assert!(
        st.reason.contains("is not pinned") && st.reason.contains("mware ssh pin") && st.reason.contains(&sshd.fingerprint),
        "{}",
        st.reason
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!blocking(|| db2.in_recovery()).unwrap(), "db2 left alone");
    assert!(db2.backup_entries().is_empty(), "db2's data folder not moved");
    assert!(!known_hosts(dir.path()).exists(), "nothing learned without trust_on_first_use");
    assert_eq!(login_attempts(&sshd), Vec::<String>::new(), "{}", sshd.log_text());
    ctl.stop().await;
}
