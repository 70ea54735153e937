//! Benchmark (ignored; run with `cargo test --release -p mware --test console_bench -- --ignored --nocapture`):
//! the operator console's figures from issue 17, in a real headless Chromium on three
//! daemons on a real etcd.
//!
//! 1. Update latency: 20 kill -9 failovers of the active instance; for each, the time from
//!    the moment the new active instance reports active in `/api/v1/status` (polled every
//!    10 ms by this test) to the moment the page, loaded from the third instance, shows it
//!    (the page notes `Date.now()` when it draws a new active instance; one clock).
//! 2. The CPU cost to the instances of 50 open consoles: CPU seconds of the instance the
//!    pages are loaded from and of the active instance (from /proc) over 30 s idle without
//!    consoles and with 50, and over a failover with 50.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::*;
use mware_testkit::etcd::Etcd;
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn sync<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// CPU seconds (user + system) used so far by process `pid`.
fn cpu_s(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // After the name: state(skipped as non-number) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0)) as f64 / ticks
}

fn pct(mut v: Vec<u64>, p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn console_update_latency_and_cost_of_50_consoles() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site = json!({
        "site": "bench",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/cbench", "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
    });
    let t = Trio::new(dir.path(), ["b10", "b20", "b30"], 1, site, &[]);
    let mut ds = vec![t.start(0)];
    sync(|| ds[0].wait_status(Duration::from_secs(30), |v| v["state"] == "active"));
    ds.push(t.start(1));
    ds.push(t.start(2));
    let (d30_api, d30_pid) = (ds[2].api.clone(), ds[2].child.pid());
    let b = Browser::start(1280, 900, &dir.path().join("chrome.log")).await;
    b.client.goto(&format!("{d30_api}/")).await.unwrap();
    b.wait_js("page live", "return document.getElementById('conn').textContent.startsWith('live from');", Duration::from_secs(10)).await;

    // 1. Update latency over 20 failovers between b10 and b20.
    let mut lat = vec![];
    for round in 0..20 {
        let a =
            (0..2).find(|&i| sync(|| ds[i].get("/api/v1/status")).is_some_and(|(_, v)| v["state"] == "active")).expect("b10 or b20 active");
        let other = 1 - a;
        sync(|| ds[other].wait_status(Duration::from_secs(10), |v| v["state"] == "passive"));
        let next = ["b10", "b20"][other];
        ds[a].child.kill9();
        let t0 = Instant::now();
        let api_at = loop {
            if sync(|| ds[other].get("/api/v1/status")).is_some_and(|(_, v)| v["state"] == "active") {
                break now_ms();
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "round {round}: {next} not active");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let script = format!(
            "var s = window.mwareShown.filter(function(x){{return x.active === '{next}'}}); return s.length ? s[s.length-1].at : null;"
        );
        let page_at = loop {
            if let Some(at) = b.js(&script).await.as_u64().filter(|&at| at + 5000 > api_at) {
                break at;
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "round {round}: page never showed {next}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        lat.push(page_at.saturating_sub(api_at));
        ds[a] = t.start(a);
    }
    let p50 = pct(lat.clone(), 0.5);
    let p99 = pct(lat.clone(), 0.99);
    eprintln!("update latency over 20 failovers (API active -> page shows it): p50 {p50} ms, p99 {p99} ms, all {lat:?}");

    // 2. CPU of the instance serving the pages (b30) and of the active one: idle without
    // consoles, idle with 50, and over a failover with 50.
    let active_pid = |ds: &Vec<Daemon>| {
        ds.iter().find(|d| sync(|| d.get("/api/v1/status")).is_some_and(|(_, v)| v["state"] == "active")).map(|d| d.child.pid()).unwrap()
    };
    let window = Duration::from_secs(30);
    let measure = |pids: [i32; 2]| {
        let c0: Vec<f64> = pids.iter().map(|p| cpu_s(*p)).collect();
        move || -> Vec<f64> { pids.iter().zip(c0).map(|(p, c)| (cpu_s(*p) - c) / window.as_secs_f64() * 100.0).collect() }
    };
    b.client.goto("about:blank").await.unwrap();
    let pa = active_pid(&ds);
    let m = measure([d30_pid, pa]);
    tokio::time::sleep(window).await;
    let base = m();
    for _ in 0..50 {
        let w = b.client.new_window(true).await.unwrap();
        b.client.switch_to_window(w.handle).await.unwrap();
        b.client.goto(&format!("{d30_api}/")).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let m = measure([d30_pid, pa]);
    tokio::time::sleep(window).await;
    let idle50 = m();
    let a = ds.iter().position(|d| d.child.pid() == pa).unwrap();
    let m = measure([d30_pid, pa]);
    ds[a].child.kill9();
    tokio::time::sleep(window).await;
    let fail50 = m();
    eprintln!(
        "CPU, % of one core over {window:?}: serving instance {:.2} (no console) / {:.2} (50 consoles idle) / {:.2} (50 consoles, failover); \
         active instance {:.2} / {:.2} / (killed in the failover)",
        base[0], idle50[0], fail50[0], base[1], idle50[1]
    );
    eprintln!(
        "50 consoles idle cost the serving instance {:.2} % and the active one {:.2} % of one core",
        idle50[0] - base[0],
        idle50[1] - base[1]
    );
}
