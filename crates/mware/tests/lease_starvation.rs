//! End-to-end (issue 24, item 1): nothing a client does may starve the lease.
//!
//! Two real daemons of one group on a real etcd, the alarms service on, its SNMP manager
//! unreachable (an inform channel to a closed port: nothing is ever sent, so nothing is
//! trimmed). A syslog flood over UDP opens 100,000 alarms. Then 16 clients read
//! `GET /api/v1/alarms` (with and without `limit`) as fast as they can for 30 s, which
//! needs no token, while a separate prober times `/healthz` and a sampler reads the
//! active's `mware_lease_*` metrics.
//!
//! Asserted: no step-down (the active keeps its epoch and never turns passive, the other
//! instance is never active), `/healthz` p99 under 100 ms, and every list answer bounded
//! (a page of at most `limit` open alarms with their total).

mod common;

use common::*;
use mware_testkit::etcd::Etcd;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "lease-starvation-token";
/// Open alarms the test builds up before the readers start.
const OPEN: u64 = 100_000;
const READERS: usize = 16;
const LOAD: Duration = Duration::from_secs(30);

fn metric(api: &str, name: &str) -> Option<f64> {
    let text = get_text(&format!("{api}/metrics"))?;
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Open alarms on `d`, from the alarms service's status document (cheap to read at any
/// size of the log).
fn open_total(d: &Daemon) -> u64 {
    let Some((200, v)) = d.get("/api/v1/status") else { return 0 };
    v["services"].as_array().into_iter().flatten().find(|s| s["name"] == "alarms").and_then(|s| s["detail"]["open"].as_u64()).unwrap_or(0)
}

/// Sends distinct RFC 3164 messages that the rule `flood` turns into alarms, at most
/// ~20k ahead of what the active instance has opened, until `OPEN` are open.
fn flood(d: &Daemon, udp: u16) -> Duration {
    let start = Instant::now();
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut sent, mut open, mut progress) = (0u64, 0u64, Instant::now());
    while open < OPEN {
        assert!(start.elapsed() < Duration::from_secs(150), "only {open} alarms open after {sent} messages:\n{}", d.log_text());
        if sent < open + 20_000 {
            for _ in 0..2_000 {
                let m = format!("<131>Dec  7 04:00:00 sbc1 kamailio: trunk flood {sent} dialog timeout");
                let _ = s.send_to(m.as_bytes(), ("127.0.0.1", udp));
                sent += 1;
                if sent % 250 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
        let now = open_total(d);
        if now > open {
            progress = Instant::now();
        } else if progress.elapsed() > Duration::from_secs(2) {
            // Datagrams the receive buffer dropped: what is missing is sent anew.
            sent = now;
            progress = Instant::now();
        }
        open = now;
    }
    start.elapsed()
}

fn p(v: &mut [u64], q: f64) -> u64 {
    v.sort_unstable();
    v.get(((v.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0)
}

#[test]
fn sixteen_readers_of_100k_open_alarms_do_not_force_a_failover() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (udp, dead_manager) = (mware_testkit::free_port(), mware_testkit::free_port());
    let ports = [mware_testkit::free_port(), mware_testkit::free_port()];
    let role = |name: &str, order: i64, port: u16| {
        json!({"name": name, "roletype": "mware", "iface": "lo", "group": 7, "order": order, "api_port": port,
        "alarms": {
            "syslog": {"udp_port": udp},
            "rules": [{"name": "flood", "facility": ["local0"], "severity": "err"}],
            "snmp": [{"address": format!("127.0.0.1:{dead_manager}"), "inform": true, "timeout_ms": 300}],
            "max_outbox": 300_000
        }})
    };
    // The coordination timings are the defaults (lease 3 s, step down 1 s before).
    let site = json!({
        "site": "ls",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/ls"},
        "api": {"token_env": "MWARE_API_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [role("l10", 10, ports[0]), role("l20", 20, ports[1])]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let env = [("MWARE_API_TOKEN", TOKEN)];
    let l10 = Daemon::start(&cfg, "l10", &format!("127.0.0.1:{}", ports[0]), dir.path().join("l10.log"), &env);
    let before = l10.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    let l20 = Daemon::start(&cfg, "l20", &format!("127.0.0.1:{}", ports[1]), dir.path().join("l20.log"), &env);
    l20.wait_status(Duration::from_secs(10), |v| v["state"] == "passive");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(l10.get("/api/v1/alarms"), Some((200, _))) {
        assert!(Instant::now() < deadline, "the alarms service did not start:\n{}", l10.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }

    let filled = flood(&l10, udp);
    eprintln!("{OPEN} alarms open after {:.1} s of syslog flood", filled.as_secs_f64());

    // The load: 16 readers, a /healthz prober, a sampler of the lease metrics and of the
    // other instance's state.
    let stop = Arc::new(AtomicBool::new(false));
    let (reads, biggest, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(Vec::<String>::new())));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let mut readers = vec![];
    for i in 0..READERS {
        let (client, api, stop, reads, biggest, bad) =
            (client.clone(), l10.api.clone(), stop.clone(), reads.clone(), biggest.clone(), bad.clone());
        readers.push(rt.spawn(async move {
            let path = if i % 2 == 0 { "/api/v1/alarms".to_string() } else { "/api/v1/alarms?limit=1000".to_string() };
            while !stop.load(Ordering::Relaxed) {
                match client.get(format!("{api}{path}")).send().await {
                    Ok(r) => {
                        let code = r.status().as_u16();
                        let body = r.bytes().await.unwrap_or_default();
                        biggest.fetch_max(body.len() as u64, Ordering::Relaxed);
                        reads.fetch_add(1, Ordering::Relaxed);
                        if code != 200 {
                            bad.lock().unwrap().push(format!("{path}: {code} {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
                        }
                    }
                    Err(e) => bad.lock().unwrap().push(format!("{path}: {e}")),
                }
            }
        }));
    }
    let prober = {
        let (api, stop) = (l10.api.clone(), stop.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let c = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            let mut lat = vec![];
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok =
                    rt.block_on(async { c.get(format!("{api}/healthz")).send().await.map(|r| r.status().is_success()).unwrap_or(false) });
                lat.push(if ok { t.elapsed().as_micros() as u64 } else { 5_000_000 });
                std::thread::sleep(Duration::from_millis(20));
            }
            lat
        })
    };
    let sampler = {
        let (a10, a20, stop) = (l10.api.clone(), l20.api.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut renew_max, mut since_max, mut other_active) = (0f64, 0f64, vec![]);
            while !stop.load(Ordering::Relaxed) {
                renew_max = renew_max.max(metric(&a10, "mware_lease_renew_latency_seconds").unwrap_or(0.0));
                since_max = since_max.max(metric(&a10, "mware_lease_seconds_since_renewal").unwrap_or(0.0));
                if let Some((_, v)) = get_json(&format!("{a20}/api/v1/status")) {
                    if v["state"] == "active" {
                        other_active.push(v.to_string());
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            (renew_max, since_max, other_active)
        })
    };
    std::thread::sleep(LOAD);
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for r in readers {
            let _ = tokio::time::timeout(Duration::from_secs(25), r).await;
        }
    });
    let mut lat = prober.join().unwrap();
    let (renew_max, since_max, other_active) = sampler.join().unwrap();
    let (p50, p99, max) = (p(&mut lat, 0.5), p(&mut lat, 0.99), p(&mut lat, 1.0));
    eprintln!(
        "{} reads in {} s (largest answer {} bytes); /healthz p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} probes; \
         lease renewal latency max {:.0} ms, longest since a renewal {:.0} ms",
        reads.load(Ordering::Relaxed),
        LOAD.as_secs(),
        biggest.load(Ordering::Relaxed),
        p50 as f64 / 1e3,
        p99 as f64 / 1e3,
        max as f64 / 1e3,
        lat.len(),
        renew_max * 1e3,
        since_max * 1e3
    );

    let after = l10.get("/api/v1/status").map(|x| x.1).unwrap_or(Value::Null);
    let log = l10.log_text();
    assert!(
        !log.contains("could not renew lease"),
        "the active instance stepped down:\n{}",
        log.lines().filter(|l| l.contains("renew") || l.contains("passive")).take(5).collect::<Vec<_>>().join("\n")
    );
    assert_eq!((after["state"].clone(), after["epoch"].clone()), (json!("active"), before["epoch"].clone()), "activity changed: {after}");
    assert!(other_active.is_empty(), "the other instance was active: {:?}", &other_active[..1]);
    assert!(!l20.log_text().contains("\"state\":\"active\""), "the other instance took over:\n{}", l20.log_text());
    assert!(p99 < 100_000, "/healthz p99 {:.1} ms (at most 100 ms)", p99 as f64 / 1e3);
    let bad = bad.lock().unwrap();
    assert!(bad.is_empty(), "{} failed reads, such as {:?}", bad.len(), &bad[..bad.len().min(3)]);

    // Every answer is a bounded page, with the total and a cursor that walks on.
    let (_, v) = l10.get("/api/v1/alarms?limit=1000").unwrap();
    assert_eq!(v["open"].as_array().unwrap().len(), 1000);
    assert!(v["open_total"].as_u64().unwrap() >= OPEN, "{}", v["open_total"]);
    let next = v["next"].as_str().unwrap().to_string();
    assert_eq!(v["open"][999]["id"], next.as_str());
    let (_, w) = l10.get(&format!("/api/v1/alarms?limit=10&after={next}")).unwrap();
    let first = w["open"][0]["id"].as_str().unwrap();
    assert!(first != next && w["open"].as_array().unwrap().len() == 10, "{}", w["open"]);
    let (code, e) = l10.get("/api/v1/alarms?limit=100000").unwrap();
    assert_eq!(code, 400, "{e}");
    assert!(e["error"].as_str().unwrap().starts_with("limit: expected an integer from 1 to 1000"), "{e}");
}
