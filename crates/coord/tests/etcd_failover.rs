//! Failover of member processes against a real etcd: kill -9, SIGSTOP, a member cut off
//! from etcd, an etcd restart. Each test checks from the members' JSON lines that active
//! intervals never overlap.

mod common;
use common::*;
use mware_testkit::etcd::Etcd;
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
    wait_until("members 2 and 3 joined", T, || m2.events().len() > 0 && m3.events().len() > 0);
    std::thread::sleep(Duration::from_millis(500));

    let k1 = now_ms();
    m1.child.kill9();
    wait_until("mware2 active", T, || m2.is_active());
    assert!(!m3.is_active(), "mware3 (order 30) must not be active while mware2 (order 20) is");
    let reason = m2.last_activity().unwrap()["reason"].as_str().unwrap().to_string();
    assert_eq!(reason, "took over from mware1 (order 10): its lease expired");
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
