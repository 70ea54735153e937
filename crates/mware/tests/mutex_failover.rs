//! End-to-end: the critical sections checker against three real `mware run` processes
//! on a real etcd while the active instance is killed -9, or paused (SIGSTOP) past its
//! lease and resumed. No two holds overlap across the failover, tokens grow in grant
//! order, and grants made before the failure are still held after it (their release
//! succeeds on the new active instance). Waiters are handed the mutex without a
//! coordinator write, so the pause is the case that matters: the resumed instance must
//! not hand anything over once its lease is past.

mod common;
#[path = "../../services/mutex/tests/common/checker.rs"]
mod checker;

use common::*;
use mware_testkit::etcd::Etcd;
use serde_json::json;
use std::time::{Duration, Instant};

const TOKEN: &str = "mutex-e2e-token";

#[test]
fn checker_holds_across_kill9_of_the_active_instance() {
    across(|ds| {
        ds[0].child.kill9();
    });
}

#[test]
fn checker_holds_across_a_pause_of_the_active_instance_past_its_lease() {
    across(|ds| {
        ds[0].child.signal(libc::SIGSTOP);
        ds[1].wait_status(Duration::from_secs(20), |v| v["state"] == "active");
        // Let the new active instance grant for a while, then resume the old one with
        // its in-flight hand-overs.
        std::thread::sleep(Duration::from_secs(2));
        ds[0].child.signal(libc::SIGCONT);
        ds[0].wait_status(Duration::from_secs(10), |v| v["state"] == "passive");
    });
}

/// Runs the checker through `fail`, which makes `ds[0]` (the active instance) fail.
fn across(fail: impl FnOnce(&mut Vec<Daemon>)) {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site = json!({"site": "mx",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "MX_TOKEN"}});
    // x10 first, the others once it serves: started together on a busy machine, x30
    // could join first and win the first election (it is the best instance present).
    let trio = Trio::new(dir.path(), ["x10", "x20", "x30"], 7, site, &[("MX_TOKEN", TOKEN)]);
    let mut ds = vec![trio.start(0)];
    ds[0].wait_status(Duration::from_secs(30), |v| {
        v["state"] == "active" && v["services"].as_array().map(|s| s.iter().any(|s| s["name"] == "mutex" && s["state"] == "running")).unwrap_or(false)
    });
    ds.extend([trio.start(1), trio.start(2)]);
    for d in &ds[1..] {
        d.wait_status(Duration::from_secs(15), |v| v["state"] == "passive");
    }
    let bases: Vec<String> = ds.iter().map(|d| d.api.clone()).collect();
    let cfg = checker::Config {
        bases,
        domain: "calls.example.ru".into(),
        name: "ivr-line-1".into(),
        clients: 8,
        limit: 1,
        duration: Duration::from_secs(14),
        hold: Duration::from_millis(10),
        ttl_ms: 20_000,
        wait_ms: 15_000,
        token: Some(TOKEN.into()),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let run = rt.spawn(checker::run(cfg));
    std::thread::sleep(Duration::from_secs(4));
    let failed_at = Instant::now();
    fail(&mut ds);
    ds[1].wait_status(Duration::from_secs(20), |v| v["state"] == "active");
    eprintln!("x20 active {:?} after the failure", failed_at.elapsed());
    let report = rt.block_on(run).unwrap();
    eprintln!(
        "holds {}, busy {}, unavailable {}, unexpected {:?}",
        report.holds.len(),
        report.busy,
        report.unavailable,
        report.unexpected
    );
    checker::check(&report.holds, 1).unwrap();
    assert!(report.unexpected.is_empty(), "unexpected answers: {:?}", report.unexpected);
    assert!(report.holds.len() > 20, "too few holds: {}", report.holds.len());
    assert_eq!(report.lost_releases, 0, "grants lost in the failover");
    // Holds were granted after the failover too, by the new active instance.
    let (_, st) = ds[1].get("/api/v1/status").unwrap();
    assert_eq!(st["state"], "active");
}
