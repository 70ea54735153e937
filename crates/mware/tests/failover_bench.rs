//! Benchmark (ignored by default): failover time of a group of three real `mware run`
//! processes on a real etcd with the default lease (3000 ms). Each round kills -9 the
//! active instance and measures until another instance reports `active` in
//! `/api/v1/status`; the killed one is restarted before the next round.
//!
//! Run: `cargo test -p mware --release --test failover_bench -- --ignored --nocapture`
//! (`MWARE_BENCH_ROUNDS`, default 20).

mod common;

use common::*;
use mware_testkit::etcd::Etcd;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
#[ignore]
fn failover_time_kill9_default_lease() {
    let rounds: usize = std::env::var("MWARE_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site = json!({"site": "bench", "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()]}});
    let trio = Trio::new(dir.path(), ["b10", "b20", "b30"], 1, site, &[]);
    let mut ds = trio.start_all();
    let active = |ds: &[Daemon]| -> Vec<usize> {
        (0..ds.len()).filter(|&i| ds[i].get("/api/v1/status").map(|(_, v)| v["state"] == "active").unwrap_or(false)).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while active(&ds).len() != 1 {
        assert!(Instant::now() < deadline, "no active instance");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut times = vec![];
    for round in 0..rounds {
        // Everyone joined and settled.
        for d in &ds {
            d.wait_status(Duration::from_secs(30), |v| v["state"] == "active" || v["state"] == "passive");
        }
        std::thread::sleep(Duration::from_millis(1500));
        let a = active(&ds);
        assert_eq!(a.len(), 1, "round {round}: active {a:?}");
        let victim = a[0];
        let t0 = Instant::now();
        ds[victim].child.kill9();
        loop {
            let now = active(&ds);
            assert!(now.len() <= 1, "two active: {now:?}");
            if now.len() == 1 {
                assert_ne!(now[0], victim);
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "round {round}: no failover in 30 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = t0.elapsed();
        times.push(took.as_secs_f64() * 1000.0);
        eprintln!("round {round}: {} -> failover in {:.0} ms", trio.name(victim), took.as_secs_f64() * 1000.0);
        ds[victim] = trio.start(victim);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "failover kill -9 -> next active (lease 3000 ms, {} rounds): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        times.len(),
        pct(0.5),
        pct(0.95),
        times[times.len() - 1]
    );
}
