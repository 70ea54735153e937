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
use std::time::{Duration, Instant};

use mware_config::now_ms;

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

fn pct(mut v: Vec<i64>, p: f64) -> i64 {
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
    let rounds: usize = std::env::var("CONSOLE_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    for round in 0..rounds {
        let a =
            (0..2).find(|&i| sync(|| ds[i].get("/api/v1/status")).is_some_and(|(_, v)| v["state"] == "active")).expect("b10 or b20 active");
        let other = 1 - a;
        sync(|| ds[other].wait_status(Duration::from_secs(10), |v| v["state"] == "passive"));
        let next = ["b10", "b20"][other];
        // Let the page settle on the current state first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let kill_ms = now_ms();
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
            if let Some(at) = b.js(&script).await.as_u64().filter(|&at| at >= kill_ms) {
                break at;
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "round {round}: page never showed {next}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if std::env::var("CONSOLE_BENCH_DEBUG").is_ok() {
            eprintln!("kill at {kill_ms}, api at {api_at}, shown: {}", b.js("return JSON.stringify(window.mwareShown)").await);
        }
        eprintln!(
            "round {round}: {next} active in its API {} ms after the kill, on the page {} ms after",
            api_at - kill_ms,
            page_at as i64 - kill_ms as i64
        );
        lat.push(page_at as i64 - api_at as i64);
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
    // 50 consoles, each doing what the page does: one event stream from the instance it
    // came from, and on each event (and every 15 s) the cluster view, the site's state, the
    // active instance's status and each service panel's document. (Browser tabs would
    // share Chromium's six connections per host, so 50 tabs of one browser are not 50
    // consoles.)
    let stop = tokio_util::sync::CancellationToken::new();
    for _ in 0..50 {
        tokio::spawn(emulated_console(d30_api.clone(), stop.clone()));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = sync(|| get_text(&format!("{d30_api}/metrics"))).unwrap_or_default();
    let conns = metrics.lines().find(|l| l.starts_with("mware_http_connections ")).unwrap_or("?").to_string();
    eprintln!("50 consoles open; the serving instance has {conns}");
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
    stop.cancel();
}

/// One console's traffic, as `console/app.js` makes it.
async fn emulated_console(api: String, stop: tokio_util::sync::CancellationToken) {
    let c = reqwest::Client::new();
    let refresh = |c: reqwest::Client, api: String| async move {
        let cluster: serde_json::Value = match c.get(format!("{api}/api/v1/cluster")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => return,
        };
        let _ = c.get(format!("{api}/api/v1/monitoring")).send().await;
        for g in cluster["groups"].as_array().into_iter().flatten() {
            let Some(addr) =
                g["members"].as_array().into_iter().flatten().find(|m| m["active"] == true).and_then(|m| m["address"].as_str())
            else {
                continue;
            };
            let _ = c.get(format!("http://{addr}/api/v1/status")).send().await;
            for p in ["/api/v1/mutexes", "/api/v1/pg", "/api/v1/tasks", "/api/v1/monitoring/probes", "/api/v1/backups"] {
                let _ = c.get(format!("http://{addr}{p}")).send().await;
            }
        }
    };
    let _ = c.get(format!("{api}/api/v1/console")).send().await;
    refresh(c.clone(), api.clone()).await;
    let Ok(mut sse) = c.get(format!("{api}/api/v1/events")).send().await else { return };
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => refresh(c.clone(), api.clone()).await,
            chunk = sse.chunk() => match chunk {
                Ok(Some(_)) => refresh(c.clone(), api.clone()).await,
                _ => return,
            },
        }
    }
}
