//! Switchover on request: to a named member and to the next in order. The old leader
//! turns passive before the new one becomes active.

mod common;
use common::*;
use mware_coord::{Coordinator, EmbeddedCoordinator, EtcdCoordinator, Settings};
use mware_testkit::etcd::Etcd;
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn run(args: Vec<String>, coord: Arc<dyn Coordinator>, rt: &tokio::runtime::Runtime, dir: &std::path::Path) {
    let m1 = Member::start(dir, "mware1", 1, 10, &args);
    wait_until("mware1 active", T, || m1.is_active());
    let m2 = Member::start(dir, "mware2", 1, 20, &args);
    let m3 = Member::start(dir, "mware3", 1, 30, &args);
    wait_until("members joined", T, || !m2.events().is_empty() && !m3.events().is_empty());
    std::thread::sleep(Duration::from_millis(500));

    // Unknown target: refused, nothing changes.
    assert!(rt.block_on(coord.request_switchover(1, Some("nobody".into()))).is_err());

    rt.block_on(coord.request_switchover(1, Some("mware3".into()))).unwrap();
    wait_until("mware3 active", T, || m3.is_active());
    assert!(!m2.is_active());
    let a3 = m3.last_activity().unwrap();
    assert_eq!(a3["reason"], "took over from mware1 (order 10): switchover requested");
    let p1 = m1.last_activity().unwrap();
    assert_eq!(p1["event"], "passive");
    assert!(p1["ts_ms"].as_u64() < a3["ts_ms"].as_u64(), "old leader passive before the new one is active");
    std::thread::sleep(Duration::from_millis(500));

    // Next in order after mware3 (wrapping around): mware1.
    rt.block_on(coord.request_switchover(1, None)).unwrap();
    wait_until("mware1 active again", T, || m1.is_active());
    assert!(!m2.is_active() && !m3.is_active());
    std::thread::sleep(Duration::from_millis(500));
    let view = rt.block_on(coord.cluster()).unwrap();
    assert_eq!(view[0].leader.as_ref().unwrap().instance, "mware1");
    assert_eq!(view[0].members.len(), 3);

    let mut all = intervals(&m1, None);
    all.extend(intervals(&m2, None));
    all.extend(intervals(&m3, None));
    let all = assert_no_overlap(all);
    assert_eq!(all.iter().map(|i| i.instance.as_str()).collect::<Vec<_>>(), ["mware1", "mware3", "mware1"]);
}

#[test]
fn switchover_etcd() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = mware_config::Coordination {
        backend: mware_config::Backend::Etcd,
        endpoints: vec![etcd.endpoint()],
        prefix: Some("/t/sw".into()),
        ..Default::default()
    };
    let coord: Arc<dyn Coordinator> =
        Arc::new(rt.block_on(EtcdCoordinator::connect(Settings { site: "t".into(), coordination: c })).unwrap());
    run(etcd_args(&etcd.endpoint(), "/t/sw", &[]), coord, &rt, dir.path());
}

#[test]
fn switchover_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let path = dir.path().join("coord.sqlite").display().to_string();
    let c = mware_config::Coordination { path: path.clone(), ..Default::default() };
    let coord: Arc<dyn Coordinator> =
        Arc::new(rt.block_on(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c })).unwrap());
    let args = ["--backend", "embedded", "--path", &path].iter().map(|s| s.to_string()).collect();
    run(args, coord, &rt, dir.path());
}

#[test]
fn failback_to_lower_order_member() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = etcd_args(&etcd.endpoint(), "/t/fb", &["--failback-after-s", "2"]);
    let m2 = Member::start(dir.path(), "mware2", 1, 20, &args);
    wait_until("mware2 active", T, || m2.is_active());
    let joined = now_ms();
    let m1 = Member::start(dir.path(), "mware1", 1, 10, &args);
    wait_until("mware1 takes activity back", T, || m1.is_active());
    let a1 = m1.last_activity().unwrap();
    assert!(a1["ts_ms"].as_u64().unwrap() >= joined + 2000, "not before failback_after_s");
    let p2 = m2.last_activity().unwrap();
    assert_eq!(p2["event"], "passive");
    assert!(p2["reason"].as_str().unwrap().starts_with("failback: mware1 (order 10)"), "{p2}");
    let mut all = intervals(&m1, None);
    all.extend(intervals(&m2, None));
    assert_no_overlap(all);
}
