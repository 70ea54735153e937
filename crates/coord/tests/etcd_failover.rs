//! Failover of member processes against a real etcd: kill -9, SIGSTOP, a member cut off
//! from etcd, an etcd restart. Each test checks from the members' JSON lines that active
//! intervals never overlap.

mod common;
use common::*;
use mware_testkit::etcd::Etcd;
use mware_testkit::Proxy;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn kill9_fails_over_in_order_without_overlap() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = etcd_args(&etcd.endpoint(), "/t/kill9", &[]);
    let mut m1 = Member::start(dir.path(), "mware1", 1, 10, &args);
    wait_until("mware1 active", T, || m1.is_active());
    let mut m2 = Member::start(dir.path(), "mware2", 1, 20, &args);
    let mut m3 = Member::start(dir.path(), "mware3", 1, 30, &args);
    wait_until("members 2 and 3 joined", T, || !m2.events().is_empty() && !m3.events().is_empty());
    std::thread::sleep(Duration::from_millis(500));

    let k1 = now_ms();
    m1.child.kill9();
    wait_until("mware2 active", T, || m2.is_active());
    assert!(!m3.is_active(), "mware3 (order 30) must not be active while mware2 (order 20) is");
    let reason = m2.last_activity().unwrap()["reason"].as_str().unwrap().to_string();
    assert_eq!(reason, "took over from mware1 (order 10): its lease ended (its process died, or it could not renew in time)");
    std::thread::sleep(Duration::from_millis(500));

    let k2 = now_ms();
    m2.child.kill9();
    wait_until("mware3 active", T, || m3.is_active());
    std::thread::sleep(Duration::from_millis(500));

    let mut all = intervals(&m1, Some(k1));
    all.extend(intervals(&m2, Some(k2)));
    all.extend(intervals(&m3, None));
    let all = assert_no_overlap(all);
    assert_eq!(all.iter().map(|i| i.instance.as_str()).collect::<Vec<_>>(), ["mware1", "mware2", "mware3"]);
    eprintln!("failover times: {} ms, {} ms", all[1].from - k1, all[2].from - k2);
    m3.child.kill9();
}

#[test]
fn sigstopped_leader_is_fenced_after_resuming() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = etcd_args(&etcd.endpoint(), "/t/stop", &[]);
    let m1 = Member::start(dir.path(), "mware1", 1, 10, &args);
    wait_until("mware1 active", T, || m1.is_active());
    let m2 = Member::start(dir.path(), "mware2", 1, 20, &args);
    wait_until("mware2 joined", T, || !m2.events().is_empty());
    std::thread::sleep(Duration::from_millis(300));

    let stopped = now_ms();
    m1.child.signal(libc::SIGSTOP);
    wait_until("mware2 active while mware1 is stopped", T, || m2.is_active());
    std::thread::sleep(Duration::from_millis(1000));
    let resumed = now_ms();
    m1.child.signal(libc::SIGCONT);
    wait_until("mware1 passive after resuming", T, || {
        m1.last_activity().is_some_and(|e| e["event"] == "passive" && e["ts_ms"].as_u64().unwrap() >= resumed)
    });
    std::thread::sleep(Duration::from_millis(500));

    let e2 = m2.last_activity().unwrap();
    assert_eq!(e2["event"], "active", "mware2 stays active");
    let epoch2 = e2["epoch"].as_u64().unwrap();
    // Every write mware1 attempted after resuming was refused, except one in flight at
    // SIGSTOP that etcd applied before mware2's leadership (revision below its epoch).
    for e in m1.events().iter().filter(|e| e["ts_ms"].as_u64().unwrap() >= resumed) {
        eprintln!("mware1 after SIGCONT: {e}");
        if e["event"] == "write" {
            assert!(e["revision"].as_u64().unwrap() < epoch2, "write of the stale leader accepted after takeover: {e}");
        }
    }
    // Its lease expired while it was stopped: it registers again as a passive member.
    wait_until("mware1 registers again", T, || {
        std::fs::read_to_string(&m1.log).unwrap_or_default().contains("lease is gone; registering again")
    });
    // The stopped process could not act between SIGSTOP and SIGCONT: its interval ends at the stop.
    let mut all: Vec<Interval> = intervals(&m1, None)
        .into_iter()
        .map(|mut i| {
            if i.from < stopped && i.to > stopped {
                i.to = stopped;
            }
            i
        })
        .collect();
    all.extend(intervals(&m2, None));
    assert_no_overlap(all);
}

#[test]
fn member_cut_off_from_etcd_steps_down_before_takeover() {
    let etcd = Etcd::start().unwrap();
    let proxy = Proxy::start(&format!("127.0.0.1:{}", etcd.client_port()));
    let dir = tempfile::tempdir().unwrap();
    let m1 = Member::start(dir.path(), "mware1", 1, 10, &etcd_args(&proxy.endpoint(), "/t/cut", &[]));
    wait_until("mware1 active", T, || m1.is_active());
    let m2 = Member::start(dir.path(), "mware2", 1, 20, &etcd_args(&etcd.endpoint(), "/t/cut", &[]));
    wait_until("mware2 joined", T, || !m2.events().is_empty());
    std::thread::sleep(Duration::from_millis(300));

    let cut = now_ms();
    proxy.cut();
    wait_until("mware2 active", T, || m2.is_active());
    let passive = m1.last_activity().unwrap();
    assert_eq!(passive["event"], "passive", "mware1 must have stepped down");
    let active = m2.last_activity().unwrap();
    let (p, a) = (passive["ts_ms"].as_u64().unwrap(), active["ts_ms"].as_u64().unwrap());
    assert!(p < a, "mware1 turned passive at {p}, after mware2 became active at {a}");
    assert!(passive["reason"].as_str().unwrap().contains("could not renew lease"), "{passive}");
    eprintln!("cut at {cut}: mware1 passive after {} ms, mware2 active after {} ms", p - cut, a - cut);

    // Healed, mware1 rejoins as passive; still exactly one active.
    proxy.heal();
    std::thread::sleep(Duration::from_secs(4));
    assert!(m2.is_active() && !m1.is_active());
    let mut all = intervals(&m1, None);
    all.extend(intervals(&m2, None));
    assert_no_overlap(all);
}

#[test]
fn etcd_restart_leaves_exactly_one_active() {
    let mut etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = etcd_args(&etcd.endpoint(), "/t/restart", &[]);
    let m1 = Member::start(dir.path(), "mware1", 1, 10, &args);
    wait_until("mware1 active", T, || m1.is_active());
    let m2 = Member::start(dir.path(), "mware2", 1, 20, &args);
    let m3 = Member::start(dir.path(), "mware3", 1, 30, &args);
    wait_until("members joined", T, || !m2.events().is_empty() && !m3.events().is_empty());
    std::thread::sleep(Duration::from_millis(300));

    etcd.restart().unwrap();
    let ms = [&m1, &m2, &m3];
    wait_until("exactly one active after the restart", Duration::from_secs(30), || ms.iter().filter(|m| m.is_active()).count() == 1);
    // Settled: still exactly one after a few more lease periods, and writes go through.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(ms.iter().filter(|m| m.is_active()).count(), 1);
    let leader = ms.iter().find(|m| m.is_active()).unwrap();
    let since = now_ms();
    wait_until("the active member writes again", T, || {
        leader.events().iter().any(|e| e["event"] == "write" && e["ts_ms"].as_u64().unwrap() >= since)
    });
    let mut all = Vec::new();
    for m in ms {
        all.extend(intervals(m, None));
    }
    eprintln!("intervals around the etcd restart: {:?}", assert_no_overlap(all));
}
