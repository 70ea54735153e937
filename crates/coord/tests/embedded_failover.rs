//! The embedded backend across processes: two members on one host share one SQLite
//! file and fail over on kill -9.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn two_processes_fail_over_on_kill9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coord.sqlite").display().to_string();
    let args: Vec<String> = ["--backend", "embedded", "--path", &path].iter().map(|s| s.to_string()).collect();
    let mut m1 = Member::start(dir.path(), "mware1", 1, 10, &args);
    wait_until("mware1 active", Duration::from_secs(20), || m1.is_active());
    let m2 = Member::start(dir.path(), "mware2", 1, 20, &args);
    wait_until("mware2 joined", Duration::from_secs(20), || !m2.events().is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert!(!m2.is_active());

    let killed = now_ms();
    m1.child.kill9();
    wait_until("mware2 active", Duration::from_secs(20), || m2.is_active());
    let e = m2.last_activity().unwrap();
    assert_eq!(e["reason"], "took over from mware1 (order 10): its lease ended (its process died, or it could not renew in time)");
    let since = now_ms();
    wait_until("mware2 writes", Duration::from_secs(10), || {
        m2.events().iter().any(|e| e["event"] == "write" && e["ts_ms"].as_u64().unwrap() >= since)
    });
    let mut all = intervals(&m1, Some(killed));
    all.extend(intervals(&m2, None));
    let all = assert_no_overlap(all);
    eprintln!("embedded failover: {} ms", all[1].from - killed);
}
