//! End-to-end: a group's services are the group's. Two real daemons of one group on a
//! real etcd carry the same service sections (critical sections, provisioning against
//! the machine's PostgreSQL, pg_controller); after kill -9 of the active one, the next
//! one runs every one of them. A passive member forwards the group's calls
//! (`/api/v1/pg`) to the active one, and the event stream of the survivor announces
//! its activity and its services.

mod common;

use common::*;
use mware_testkit::etcd::Etcd;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn role(name: &str, order: i64, port: u16) -> Value {
    json!({
        "name": name, "roletype": "mware", "iface": "lo", "group": 7, "order": order, "api_port": port,
        "critical_sections": {"enabled": true},
        "provisioning": {"dsn": "host=127.0.0.1 port=5432 user=postgres dbname=postgres"},
        "pg_controller": [{"key": "main", "servers": [
            {"pg_host": "127.0.0.1", "pg_port": 1, "ssh_user": "postgres", "ssh_pwd": "x", "pg_replica_user": "r", "pg_replica_pwd": "y",
             "pg_ctl_command": "pg_ctl", "pg_basebackup_command": "pg_basebackup", "pg_data_folder": "/nonexistent/a"},
            {"pg_host": "127.0.0.1", "pg_port": 2, "ssh_user": "postgres", "ssh_pwd": "x", "pg_replica_user": "r", "pg_replica_pwd": "y",
             "pg_ctl_command": "pg_ctl", "pg_basebackup_command": "pg_basebackup", "pg_data_folder": "/nonexistent/b"}
        ]}]
    })
}

/// The services of a status document with their states, sorted by name.
fn services(status: &Value) -> Vec<(String, String)> {
    let mut v: Vec<_> = status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (s["name"].as_str().unwrap_or("").to_string(), s["state"].as_str().unwrap_or("").to_string()))
        .collect();
    v.sort();
    v
}

fn all_serving(status: &Value) -> bool {
    let s = services(status);
    s.len() == 3 && s.iter().all(|(_, st)| st == "running" || st == "idle")
}

#[test]
fn after_kill9_the_next_member_runs_every_service_of_the_group() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ports = [mware_testkit::free_port(), mware_testkit::free_port()];
    let site = json!({
        "site": "gs",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/gs", "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [role("g10", 10, ports[0]), role("g20", 20, ports[1])]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let start = |i: usize, n: &str| Daemon::start(&cfg, n, &format!("127.0.0.1:{}", ports[i]), dir.path().join(format!("{n}.log")), &[]);
    let mut d10 = start(0, "g10");
    let s10 = d10.wait_status(Duration::from_secs(30), |v| v["state"] == "active" && all_serving(v));
    let names: Vec<String> = services(&s10).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["mutex", "pgctl", "provisioning"], "{s10}");
    let d20 = start(1, "g20");
    d20.wait_status(Duration::from_secs(10), |v| v["state"] == "passive");

    // A passive member answers the group's calls through the active one.
    let (code, pg) = d20.get("/api/v1/pg").unwrap();
    assert_eq!(code, 200, "{pg}");
    assert_eq!(pg["groups"][0]["key"], "main", "{pg}");

    // Follow g20's event stream across the failover.
    let events = follow_events(&d20.api, Duration::from_secs(30));
    d10.child.kill9();
    let t0 = Instant::now();
    let s20 = d20.wait_status(Duration::from_secs(20), |v| v["state"] == "active" && all_serving(v));
    eprintln!("g20 active with every service serving {:?} after kill -9 of g10", t0.elapsed());
    assert_eq!(services(&s20).into_iter().map(|(n, _)| n).collect::<Vec<_>>(), names, "{s20}");
    // The services answer on the new active instance.
    assert_eq!(d20.get("/api/v1/pg").unwrap().0, 200);
    assert_eq!(d20.get("/api/v1/domains/any.example/mutexes").unwrap().0, 200);

    let seen = events.join().unwrap();
    let active = seen.iter().position(|e| e["type"] == "activity" && e["active"] == true);
    assert!(active.is_some(), "no activity event on the stream: {seen:?}");
    for svc in ["mutex", "pgctl", "provisioning"] {
        let after = seen[active.unwrap()..]
            .iter()
            .any(|e| e["type"] == "service" && e["service"] == svc && (e["state"] == "running" || e["state"] == "idle"));
        assert!(after, "no event says {svc} runs on g20: {seen:?}");
    }
    // Ids grow by one.
    let ids: Vec<u64> = seen.iter().filter_map(|e| e["id"].as_u64()).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
}

/// Reads `/api/v1/events` from `api` on a thread until the three services have said they
/// run after an activity event, or `limit` passes; returns the events (JSON data lines).
fn follow_events(api: &str, limit: Duration) -> std::thread::JoinHandle<Vec<Value>> {
    let url = format!("{api}/api/v1/events");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut out = vec![];
            let mut resp = reqwest::Client::new().get(&url).send().await.expect("events stream");
            assert_eq!(resp.headers()["content-type"], "text/event-stream");
            ready_tx.send(()).unwrap();
            let deadline = tokio::time::Instant::now() + limit;
            let mut buf = String::new();
            while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let msg: String = buf.drain(..end + 2).collect();
                    if let Some(data) = msg.lines().find_map(|l| l.strip_prefix("data: ")) {
                        out.push(serde_json::from_str::<Value>(data).unwrap());
                    }
                }
                let running = |s: &str| out.iter().any(|e| e["type"] == "service" && e["service"] == s && e["state"] == "running");
                if out.iter().any(|e| e["type"] == "activity" && e["active"] == true)
                    && ["mutex", "pgctl", "provisioning"].iter().all(|s| running(s))
                {
                    break;
                }
            }
            out
        })
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).expect("event stream opened");
    h
}
