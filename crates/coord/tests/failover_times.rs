//! Measures kill -9 → next active (from the members' JSON timestamps) over several runs,
//! with the default lease (3000 ms), on both backends. A measurement, not a check:
//! `cargo test -p mware-coord --test failover_times -- --ignored --nocapture`
//! (about 1 minute per 10 runs per backend).

mod common;
use common::*;
use mware_testkit::etcd::Etcd;
use std::time::Duration;

const RUNS: usize = 10;

fn measure(dir: &std::path::Path, args: &[String]) -> Vec<u64> {
    let names = ["mware1", "mware2"];
    let mut ms: Vec<Member> = names.iter().zip([10, 20]).map(|(n, o)| Member::start(dir, n, 1, o, args)).collect();
    wait_until("one active", Duration::from_secs(20), || ms.iter().any(|m| m.is_active()));
    let mut times = Vec::new();
    for run in 0..RUNS {
        std::thread::sleep(Duration::from_millis(700 + 97 * run as u64 % 1000));
        let i = ms.iter().position(|m| m.is_active()).unwrap();
        let other = 1 - i;
        let killed = now_ms();
        ms[i].child.kill9();
        wait_until("the other active", Duration::from_secs(20), || ms[other].is_active());
        let t = ms[other].last_activity().unwrap()["ts_ms"].as_u64().unwrap() - killed;
        times.push(t);
        // Restart the killed one (as a passive member, with a fresh log).
        let name = format!("{}-{run}", names[i]);
        ms[i] = Member::start(dir, &name, 1, if i == 0 { 10 } else { 20 }, args);
        wait_until("restarted member joined", Duration::from_secs(20), || !ms[i].events().is_empty());
    }
    times
}

fn report(what: &str, mut t: Vec<u64>) {
    t.sort_unstable();
    let p = |q: f64| t[((t.len() as f64 * q).ceil() as usize).clamp(1, t.len()) - 1];
    eprintln!("{what}: runs {} p50 {} ms p95 {} ms max {} ms (all: {t:?})", t.len(), p(0.5), p(0.95), t[t.len() - 1]);
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn failover_times_etcd() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    report("etcd kill -9 -> next active", measure(dir.path(), &etcd_args(&etcd.endpoint(), "/t/times", &[])));
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn failover_times_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coord.sqlite").display().to_string();
    let args: Vec<String> = ["--backend", "embedded", "--path", &path].iter().map(|s| s.to_string()).collect();
    report("embedded kill -9 -> next active", measure(dir.path(), &args));
}
