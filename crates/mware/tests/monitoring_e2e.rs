//! End-to-end: the site's state in real daemons on a real etcd. Group 1 (two members)
//! probes a TCP listener of the test; group 2 has one member. Any instance, passive ones
//! included, answers `GET /api/v1/monitoring` with the same site-wide view. The listener
//! closes: the probe fails after `fail_after` checks, the change is on the event stream
//! and the site is failing. kill -9 of group 1's active member: the next one shows the
//! probe failing since the same time. Group 2's only member dies: group 2 is failing
//! ("no active instance"), with since when. The listener comes back: the probe
//! recovers. `mware status` prints the site's state first; metrics per probe.

mod common;

use common::*;
use mware_testkit::etcd::Etcd;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn role(name: &str, group: u32, order: i64, port: u16, target: &str) -> Value {
    let mut r = json!({"name": name, "roletype": "mware", "iface": "lo", "group": group, "order": order, "api_port": port});
    if group == 1 {
        r["monitoring"] = json!({"probes": [{"name": "sip", "kind": "tcp", "target": target, "interval_ms": 200, "timeout_ms": 200, "fail_after": 2, "recover_after": 2}]});
    } else {
        r["include_domains"] = json!(["two.example"]);
    }
    r
}

fn state(d: &Daemon) -> Value {
    match d.get("/api/v1/monitoring") {
        Some((200, v)) => v,
        other => panic!("GET /api/v1/monitoring: {other:?}"),
    }
}

fn item<'a>(v: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    v["items"].as_array()?.iter().find(|i| i["kind"] == kind && i["name"] == name)
}

fn wait(d: &Daemon, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = state(d);
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_site_state_across_a_failing_probe_a_failover_and_a_group_down() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let ports = [mware_testkit::free_port(), mware_testkit::free_port(), mware_testkit::free_port()];
    let site = json!({
        "site": "mon",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/mon", "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [
            role("m10", 1, 10, ports[0], &target), role("m20", 1, 20, ports[1], &target), role("n10", 2, 10, ports[2], &target)
        ]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let start = |i: usize, n: &str| Daemon::start(&cfg, n, &format!("127.0.0.1:{}", ports[i]), dir.path().join(format!("{n}.log")), &[]);
    let mut m10 = start(0, "m10");
    m10.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    let m20 = start(1, "m20");
    let mut n10 = start(2, "n10");
    n10.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    m20.wait_status(Duration::from_secs(10), |v| v["state"] == "passive");

    // Every instance tells the same site-wide state, a passive one too.
    for d in [&m10, &m20, &n10] {
        let v = wait(d, "site ok", |v| v["state"] == "ok" && item(v, "probe", "sip").is_some_and(|p| p["state"] == "ok"));
        assert!(
            item(&v, "group", "1").is_some() && item(&v, "group", "2").is_some() && item(&v, "service", "monitoring").is_some(),
            "{v:#}"
        );
    }

    // The listener closes: failing after fail_after checks, announced on the stream.
    let events = std::thread::spawn({
        let url = format!("{}/api/v1/events", m10.api);
        move || read_events(&url, "probe/sip", "failing")
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(listener);
    let v = wait(&m20, "probe failing", |v| item(v, "probe", "sip").is_some_and(|p| p["state"] == "failing"));
    assert_eq!(v["state"], "failing");
    let sip = item(&v, "probe", "sip").unwrap().clone();
    assert!(sip["reason"].as_str().unwrap().starts_with("failing: 2 checks in a row failed (fail_after 2): cannot connect to"), "{sip}");
    assert!(v["summary"].as_str().unwrap().contains("probe sip (group 1)"), "{v}");
    let event = events.join().unwrap();
    assert_eq!((event["group"].as_u64(), event["instance"].as_str()), (Some(1), Some("m10")));
    let since = sip["since_ms"].as_u64().unwrap();

    // kill -9 of group 1's active member: the next one keeps the probe's state and since.
    m10.child.kill9();
    m20.wait_status(Duration::from_secs(20), |v| v["state"] == "active");
    let v = wait(&m20, "group 1 back with m20", |v| {
        item(v, "group", "1").is_some_and(|g| g["state"] == "ok" && g["reason"].as_str().unwrap().starts_with("m20 is active"))
    });
    let sip = item(&v, "probe", "sip").unwrap();
    assert_eq!((sip["state"].as_str(), sip["since_ms"].as_u64()), (Some("failing"), Some(since)), "{v:#}");

    // Group 2's only member dies: group 2 fails, seen from group 1, since when known.
    n10.child.kill9();
    let v = wait(&m20, "group 2 failing", |v| item(v, "group", "2").is_some_and(|g| g["state"] == "failing" && g["since_ms"].is_u64()));
    assert!(item(&v, "group", "2").unwrap()["reason"].as_str().unwrap().starts_with("group 2 has no active instance"), "{v:#}");
    let out = std::process::Command::new(bin()).args(["status", "--api", &m20.api]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.starts_with("site mon: FAILING since "), "{text}");
    assert!(text.contains("group 2 for ") && text.contains("probe sip (group 1)"), "{text}");

    // The listener comes back: the probe recovers after recover_after checks.
    let _listener = std::net::TcpListener::bind(&target).unwrap();
    let v = wait(&m20, "probe ok again", |v| item(v, "probe", "sip").is_some_and(|p| p["state"] == "ok"));
    assert!(
        item(&v, "probe", "sip").unwrap()["reason"].as_str().unwrap().starts_with("ok again after 2 checks in a row succeeded"),
        "{v:#}"
    );
    let metrics = get_text(&format!("{}/metrics", m20.api)).unwrap();
    assert!(metrics.contains("mware_monitoring_probe_up{probe=\"sip\"} 1"), "{metrics}");
    assert!(metrics.contains("mware_monitoring_probe_latency_seconds{probe=\"sip\"}"));
    assert!(metrics.contains("mware_monitoring_probe_changes_total{probe=\"sip\"}"));
}

/// Reads the event stream until an `Item` event of `item` in `state`; returns it.
fn read_events(url: &str, item: &str, state: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut resp = reqwest::Client::new().get(url).send().await.expect("events stream");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut buf = String::new();
        while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let msg: String = buf.drain(..end + 2).collect();
                if let Some(data) = msg.lines().find_map(|l| l.strip_prefix("data: ")) {
                    let e: Value = serde_json::from_str(data).unwrap();
                    if e["type"] == "item" && e["item"] == item && e["state"] == state {
                        return e;
                    }
                }
            }
        }
        panic!("no {item} {state} event on {url}")
    })
}
