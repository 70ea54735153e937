//! Benchmark of the callmanager against its peer: calls set up per second and set-up
//! time through a real Kamailio to SIPp UAS phones, against SIPp's own UAC calling the
//! same phone through the same Kamailio (the ceiling), in the same run; plus the
//! process's memory per live call.
//!
//! `cargo run --release -p mware-callmanager --example bench -- [calls] [concurrency] [held]`
//! (defaults 2000, 100, 1000). Results and the command go to `BENCHMARKS.md`.

#[path = "common/mod.rs"]
mod common;
use common::pct;

use mware_callmanager::call::{self, CallSpec, Command, Engine, OnChange};
use mware_callmanager::decide::CallState;
use mware_testkit::sip::{free_sip_port, Kamailio, Phone};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

const DOMAIN: &str = "example.test";

fn sipp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp")
}

fn rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

/// SIPp's UAC calling `bob` through Kamailio: (calls per second, failed, p99 ms).
fn ceiling(kam: &Kamailio, dir: &std::path::Path, calls: u32, concurrency: u32) -> (f64, u64, f64) {
    let t0 = Instant::now();
    let out = std::process::Command::new("/usr/bin/sipp")
        .arg(format!("127.0.0.1:{}", kam.sip_port))
        .arg("-sf")
        .arg(mware_testkit::sip::scenario("uac.xml"))
        .args(["-s", "bob", "-key", "domain", DOMAIN, "-d", "0", "-i", "127.0.0.1", "-p"])
        .arg(free_sip_port().to_string())
        .args(["-r", "100000", "-l"])
        .arg(concurrency.to_string())
        .args(["-m"])
        .arg(calls.to_string())
        .args(["-trace_rtt", "-rtt_freq", "1"])
        .args(["-timeout", "120", "-nostdin"])
        .current_dir(dir)
        .output()
        .expect("sipp");
    let secs = t0.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let failed = text
        .lines()
        .find(|l| l.trim_start().starts_with("Failed call"))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    // SIPp writes the response times to uac_<pid>_rtt.csv in its working directory:
    // `Date_ms;response_time_ms;rtd_no` per call.
    let stat = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).find(|p| p.to_string_lossy().ends_with("_rtt.csv"));
    if failed == u64::MAX {
        eprintln!("sipp: {}\n{}", String::from_utf8_lossy(&out.stderr), text);
    }
    let mut rtts: Vec<f64> = stat
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split(';').nth(1).and_then(|v| v.trim().parse().ok()))
        .collect();
    (f64::from(calls) / secs, failed, pct(&mut rtts, 0.99))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let calls = *args.first().unwrap_or(&2000);
    let concurrency = *args.get(1).unwrap_or(&100);
    let held = *args.get(2).unwrap_or(&1000);
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os("BENCH_KEEP").is_some() {
        eprintln!("working directory (kept): {}", dir.path().display());
    }
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../examples/kamailio/kamailio.cfg");
    let kam = Kamailio::start(&cfg, dir.path(), &[]).unwrap();
    let _alice =
        Phone::start_untraced(&sipp_dir().join("uas_answer.xml"), dir.path(), "alice", DOMAIN, kam.sip_port, &["-d", "0"]).unwrap();
    let _bob = Phone::start_untraced(&sipp_dir().join("uas_answer.xml"), dir.path(), "bob", DOMAIN, kam.sip_port, &["-d", "0"]).unwrap();

    let (cps, failed, p99) = ceiling(&kam, dir.path(), calls, concurrency);
    println!("sipp-direct: {calls} calls, {concurrency} at once: {cps:.0} calls/s, {failed} failed, set-up p99 {p99:.1} ms");

    let (tx, mut rx) = mpsc::unbounded_channel::<(String, CallState)>();
    let on_change: OnChange = Box::new(move |v, _| {
        let _ = tx.send((v.id.clone(), v.state));
    });
    let active = common::active_engine(dir.path(), kam.sip_port, on_change).await;
    let eng = active.eng.clone();

    let (mw_cps, bad, p50, p99m) = setup_rate(&eng, &mut rx, calls, concurrency).await;
    println!(
        "mware 3pcc (two legs, stored): {calls} calls, {concurrency} at once: {mw_cps:.0} calls/s ({:.2} of sipp-direct), {bad} failed, set-up p50 {p50:.1} ms p99 {p99m:.1} ms",
        mw_cps / cps
    );
    memory(&eng, &mut rx, held).await;
    drop(active);
    if std::env::var_os("BENCH_KEEP").is_some() {
        let _ = dir.keep();
    }
}

fn spec(i: u32) -> CallSpec {
    CallSpec {
        id: format!("1-{i:016x}"),
        domain: DOMAIN.into(),
        from: format!("sip:alice@{DOMAIN}"),
        to: format!("sip:bob@{DOMAIN}"),
        caller_id: None,
        answer_timeout_s: 30,
        max_duration_s: 600,
        variables: serde_json::json!({}),
    }
}

type Changes = mpsc::UnboundedReceiver<(String, CallState)>;

/// Calls set up per second with at most `concurrency` calls being set up or up, each
/// hung up once connected: (calls/s, failed, set-up p50 ms, p99 ms).
async fn setup_rate(eng: &Arc<Engine>, rx: &mut Changes, calls: u32, concurrency: u32) -> (f64, u32, f64, f64) {
    let sem = Arc::new(Semaphore::new(concurrency as usize));
    let mut handles = std::collections::HashMap::new();
    let mut started = std::collections::HashMap::new();
    let (mut ok, mut bad, mut setup) = (0u32, 0u32, vec![]);
    let mut why = std::collections::HashMap::new();
    let t0 = Instant::now();
    let mut next = 0;
    while ok + bad < calls {
        while next < calls {
            let Ok(p) = sem.clone().try_acquire_owned() else { break };
            p.forget();
            let s = spec(next);
            started.insert(s.id.clone(), Instant::now());
            handles.insert(s.id.clone(), call::start(eng.clone(), s));
            next += 1;
        }
        let Some((id, state)) = rx.recv().await else { break };
        match state {
            CallState::Connected => {
                if let Some(t) = started.get(&id) {
                    setup.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                ok += 1;
                if let Some(h) = handles.get(&id).cloned() {
                    tokio::spawn(async move { h.send(Command::HangUp("bench".into())).await });
                }
            }
            CallState::Ended => {
                if let Some(v) = handles.remove(&id).map(|h| h.get()).filter(|v| v.connected_ms.is_none()) {
                    bad += 1;
                    *why.entry(v.ended.unwrap_or_default()).or_insert(0u32) += 1;
                }
                sem.add_permits(1);
            }
            _ => {}
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let p50 = pct(&mut setup.clone(), 0.5);
    if !why.is_empty() {
        eprintln!("failed calls by reason: {why:?}");
    }
    (f64::from(ok) / secs, bad, p50, pct(&mut setup, 0.99))
}

/// Memory per live call: `held` calls connected at once.
async fn memory(eng: &Arc<Engine>, rx: &mut Changes, held: u32) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    while rx.try_recv().is_ok() {}
    let before = rss_kb();
    let mut live = vec![];
    let mut connected = 0;
    for i in 0..held {
        live.push(call::start(eng.clone(), spec(1_000_000 + i)));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while connected < held && Instant::now() < deadline {
        if let Ok(Some((_, CallState::Connected))) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            connected += 1;
        }
    }
    let after = rss_kb();
    let per = |kb: u64| (kb.saturating_sub(before)) as f64 / f64::from(connected.max(1));
    println!("memory: {connected} live calls, RSS {before} KB -> {after} KB: {:.1} KB per live call", per(after));
    // Each ACK is kept 64xT1 (32 s) to answer a retransmitted 2xx (RFC 3261 §13.3.1.4);
    // past that a live call costs only its own state.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let steady = rss_kb();
    println!("memory 35 s later: RSS {steady} KB: {:.1} KB per live call", per(steady));
    for h in live {
        let _ = h.send(Command::HangUp("bench".into())).await;
    }
}
