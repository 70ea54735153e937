//! End-to-end tests of devicemanager with real daemons, real `mware poller` processes and
//! the machine's RabbitMQ (a virtual host per test) or a RabbitMQ node of the test's own.
//! See tests/README.md for what each asserts.

mod common;
mod devices_support;

use common::*;
use devices_support::*;
use mware_testkit::rabbit::{RabbitNode, Vhost};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn fields(v: &Value) -> Vec<String> {
    v["problems"].as_array().into_iter().flatten().map(|p| p["field"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn in_process_jobs_without_a_broker_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let site = DmSite::new(dir.path(), &["d10"], json!({"max_batch": 3}));
    let d = site.start(0);
    wait_serving(&d, 30);
    let target = tcp_target();

    // A job: 202 with its id, then done with its result, through the same path a poller uses.
    let (code, v) = submit(&d, &json!({"kind": "tcp.check", "target": target, "idempotency_key": "k1"}));
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let j = wait_end(&d, &id, 20);
    assert_eq!(j["state"], "done", "{j}");
    assert!(j["result"]["connect_ms"].as_f64().is_some(), "{j}");
    assert_eq!((j["attempts"].as_u64(), j["poller"].as_str()), (Some(1), Some("in-process")), "{j}");
    assert!(j["finished_at"].as_str().unwrap().ends_with('Z'));
    // Same idempotency key: the first job's id, nothing stored again.
    let (_, again) = submit(&d, &json!({"kind": "tcp.check", "target": target, "idempotency_key": "k1"}));
    assert_eq!(again["id"], json!(id));

    // Mutating calls and job reads take the token.
    let url = format!("{}/api/devicemanager/v1/jobs", d.api);
    assert_eq!(post_json(&url, None, &json!({"kind": "tcp.check", "target": target})).unwrap().0, 401);
    assert_eq!(get_json(&format!("{url}/{id}")).unwrap().0, 401);

    // Bad input: 4xx naming the field, nothing stored.
    let bad = [
        (json!({"kind": "snmp.fly", "target": "h:1"}), "kind"),
        (json!({"kind": "tcp.check", "target": "no-port"}), "target"),
        (json!({"kind": "snmp.get", "target": "h:161", "params": {"community": "c"}}), "params.oid"),
        (json!({"kind": "tcp.check", "target": "h:1", "timeout_ms": -1}), "timeout_ms"),
        (json!({"kind": "tcp.check", "target": "h:1", "satellite": "sat1"}), "satellite"),
    ];
    for (body, field) in bad {
        let (code, v) = submit(&d, &body);
        assert_eq!(code, 400, "{body} -> {v}");
        assert_eq!(fields(&v), vec![field.to_string()], "{v}");
        assert!(v["error"].as_str().unwrap().starts_with(field), "{v}");
    }
    let many: Vec<Value> = (0..4).map(|_| json!({"kind": "tcp.check", "target": target})).collect();
    let (code, v) = post_json(&format!("{url}:batch"), Some(TOKEN), &json!({"jobs": many})).unwrap();
    assert_eq!((code, fields(&v)), (413, vec!["jobs".to_string()]), "{v}");
    let (code, v) =
        post_json(&format!("{url}:batch"), Some(TOKEN), &json!({"jobs": [{"kind": "tcp.check", "target": target}, {"kind": "tcp.check"}]}))
            .unwrap();
    assert_eq!((code, fields(&v)), (400, vec!["jobs[1].target".to_string()]), "{v}");
    let (code, list) = get_json_with(&format!("{url}?limit=50"), Some(TOKEN)).unwrap();
    assert_eq!((code, list["jobs"].as_array().unwrap().len()), (200, 1), "only the one good job is stored: {list}");
    let (code, v) = get_json_with(&format!("{url}?state=sleeping"), Some(TOKEN)).unwrap();
    assert_eq!((code, fields(&v)), (400, vec!["state".to_string()]));

    // A secret parameter is shown as *** and never logged.
    let (_, v) = submit(
        &d,
        &json!({"kind": "snmp.get", "target": "127.0.0.1:9", "timeout_ms": 1500, "params": {"community": "c0mmunity-s3cret", "oid": "1.3.6.1.2.1.1.5.0"}}),
    );
    let j = wait_end(&d, v["id"].as_str().unwrap(), 20);
    assert_eq!((j["state"].as_str(), &j["params"]["community"]), (Some("failed"), &json!("***")), "{j}");

    // Batches, the satellites' view, the OpenAPI document.
    let ids = submit_batch(&d, vec![json!({"kind": "tcp.check", "target": target}), json!({"kind": "tcp.check", "target": target})]);
    for id in &ids {
        assert_eq!(wait_end(&d, id, 20)["state"], "done");
    }
    let (code, sats) = d.get("/api/devicemanager/v1/satellites").unwrap();
    assert_eq!((code, sats["transport"].as_str()), (200, Some("in-process")), "{sats}");
    let (_, doc) = d.get("/api/openapi.json").unwrap();
    for p in [
        "/api/devicemanager/v1/jobs",
        "/api/devicemanager/v1/jobs:batch",
        "/api/devicemanager/v1/jobs/{id}",
        "/api/devicemanager/v1/satellites",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing from the OpenAPI document");
    }
    let metrics = get_text(&format!("{}/metrics", d.api)).unwrap();
    assert!(metrics.contains("mware_devicemanager_jobs_accepted_total{kind=\"tcp.check\"} 3"), "{metrics}");
    assert!(metrics.contains("mware_devicemanager_jobs_finished_total{state=\"done\"} 3"), "{metrics}");
    assert!(!d.log_text().contains("c0mmunity-s3cret"), "a community in the log");
}

#[test]
fn in_process_jobs_open_when_the_instance_dies_run_again_after_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let site = DmSite::new(dir.path(), &["d10"], json!({}));
    let mut d = site.start(0);
    wait_serving(&d, 30);
    let slow = SlowHttp::start(Duration::from_secs(2));
    let (_, v) = submit(&d, &json!({"kind": "http.request", "target": slow.addr, "timeout_ms": 60000}));
    let id = v["id"].as_str().unwrap().to_string();
    wait_job(&d, &id, 20, |j| j["state"] == "running" && slow.hits.load(Ordering::SeqCst) == 1);
    d.child.kill9();
    let d = site.start(0);
    wait_serving(&d, 30);
    let j = wait_end(&d, &id, 30);
    assert_eq!(j["state"], "done", "accepted, interrupted by the crash, run again by the next activity: {j}");
    assert_eq!(slow.hits.load(Ordering::SeqCst), 2);
}

#[test]
fn pollers_share_a_satellite_survive_kill9_and_jobs_of_a_satellite_without_poller_expire() {
    let vh = Vhost::new().expect("rabbitmq vhost");
    let dir = tempfile::tempdir().unwrap();
    let site = DmSite::new(dir.path(), &["d10"], json!({"amqp": vh.dsn(), "satellites": ["sat1", "sat2"]}));
    let d = site.start(0);
    wait_serving(&d, 30);
    let mut pollers: BTreeMap<String, mware_testkit::Child> =
        (1..=5).map(|i| (format!("p{i}"), poller(dir.path(), &vh.dsn(), Some("sat1"), &format!("p{i}"), 2))).collect();

    // Five replicas share the satellite's work.
    let dev = SlowHttp::start(Duration::from_millis(300));
    let ids = submit_batch(&d, (0..40).map(|_| json!({"kind": "http.request", "target": dev.addr, "satellite": "sat1"})).collect());
    let mut by = BTreeSet::new();
    for id in &ids {
        let j = wait_end(&d, id, 60);
        assert_eq!(j["state"], "done", "{j}");
        by.insert(j["poller"].as_str().unwrap().to_string());
    }
    assert_eq!(by.len(), 5, "every replica took jobs: {by:?}");
    assert!(!listening_sockets(d.child.pid()).is_empty(), "the check sees the daemon's API listener");
    for (name, p) in &pollers {
        assert_eq!(listening_sockets(p.pid()), Vec::<String>::new(), "poller {name} opens no port");
    }
    let (_, sats) = d.get("/api/devicemanager/v1/satellites").unwrap();
    let sat1 = &sats["satellites"][0];
    assert_eq!((sat1["satellite"].as_str(), sat1["broker"]["consumers"].as_u64()), (Some("sat1"), Some(5)), "{sats}");
    assert_eq!(sat1["pollers"].as_object().unwrap().len(), 5, "{sats}");

    // kill -9 of the poller running a job: the broker gives it to another; done once.
    let slow = SlowHttp::start(Duration::from_secs(3));
    let (_, v) = submit(&d, &json!({"kind": "http.request", "target": slow.addr, "satellite": "sat1", "timeout_ms": 60000}));
    let id = v["id"].as_str().unwrap().to_string();
    let running = wait_job(&d, &id, 20, |j| j["state"] == "running" && slow.hits.load(Ordering::SeqCst) == 1);
    let victim = running["poller"].as_str().unwrap().to_string();
    pollers.get_mut(&victim).unwrap().kill9();
    let j = wait_end(&d, &id, 30);
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!(j["attempts"], 2, "{j}");
    assert_ne!(j["poller"].as_str(), Some(victim.as_str()), "{j}");
    assert_eq!(slow.hits.load(Ordering::SeqCst), 2, "the device saw the killed attempt and the completed one");

    // A satellite with no poller: its jobs wait, then expire at their deadline.
    let t0 = Instant::now();
    let (_, v) = submit(&d, &json!({"kind": "tcp.check", "target": tcp_target(), "satellite": "sat2", "timeout_ms": 1500}));
    let j = wait_end(&d, v["id"].as_str().unwrap(), 20);
    assert_eq!(j["state"], "expired", "{j}");
    assert!(j["error"].as_str().unwrap().contains("poller"), "{j}");
    assert!(t0.elapsed() >= Duration::from_millis(1400), "expired before its deadline");
    let metrics = get_text(&format!("{}/metrics", d.api)).unwrap();
    assert!(!metrics.contains("mware_devicemanager_duplicate_results_total 0") || metrics.contains("duplicate_results_total"));
    drop(pollers);
}

#[test]
fn a_poller_on_sigterm_finishes_its_jobs_or_returns_them() {
    let vh = Vhost::new().expect("rabbitmq vhost");
    let dir = tempfile::tempdir().unwrap();
    let site = DmSite::new(dir.path(), &["d10"], json!({"amqp": vh.dsn(), "satellites": ["sat1"]}));
    let d = site.start(0);
    wait_serving(&d, 30);
    // Finishes: a 2 s job in hand when SIGTERM comes is completed, then the poller exits 0.
    let mut p1 = poller(dir.path(), &vh.dsn(), Some("sat1"), "t1", 4);
    let dev = SlowHttp::start(Duration::from_secs(2));
    let (_, v) = submit(&d, &json!({"kind": "http.request", "target": dev.addr, "satellite": "sat1"}));
    let id = v["id"].as_str().unwrap().to_string();
    wait_job(&d, &id, 20, |j| j["state"] == "running" && dev.hits.load(Ordering::SeqCst) == 1);
    p1.signal(libc::SIGTERM);
    assert_eq!(p1.wait_timeout(Duration::from_secs(15)), Some(0), "the poller exits 0 after its drain");
    // The result was published before the poller exited; the daemon takes it from the
    // broker on its own time.
    let j = wait_end(&d, &id, 15);
    assert_eq!((j["state"].as_str(), j["attempts"].as_u64()), (Some("done"), Some(1)), "{j}");
    // Returns: a job longer than the drain time goes back to the broker; another replica runs it.
    let mut p2 = poller_with(dir.path(), &vh.dsn(), Some("sat1"), "t2", 4, &["--drain-timeout-ms", "300"]);
    let slow = SlowHttp::start(Duration::from_secs(3));
    let (_, v) = submit(&d, &json!({"kind": "http.request", "target": slow.addr, "satellite": "sat1"}));
    let id = v["id"].as_str().unwrap().to_string();
    wait_job(&d, &id, 20, |j| j["state"] == "running" && slow.hits.load(Ordering::SeqCst) == 1);
    p2.signal(libc::SIGTERM);
    assert_eq!(p2.wait_timeout(Duration::from_secs(10)), Some(0));
    let _p3 = poller(dir.path(), &vh.dsn(), Some("sat1"), "t3", 4);
    let j = wait_end(&d, &id, 30);
    assert_eq!((j["state"].as_str(), j["attempts"].as_u64(), j["poller"].as_str()), (Some("done"), Some(2), Some("t3")), "{j}");
    // JSON logs when asked; the broker's password never in them; secrets *** in the config.
    for name in ["t1", "t2"] {
        let log = std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap();
        assert!(log.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{log}");
        assert!(log.contains("drain") || log.contains("finishing"), "{log}");
        assert!(!log.contains("guest:guest"), "{log}");
    }
    let (_, cfg) = d.get_auth("/api/v1/config", API_TOKEN).unwrap();
    let dm = &cfg["servers"][0]["roles"][0]["devicemanager"];
    assert_eq!(dm["amqp"], "***", "{cfg}");
    assert!(!d.log_text().contains("guest:guest"));
}

#[test]
fn a_job_that_keeps_killing_its_pollers_is_dead_lettered_and_failed() {
    let vh = Vhost::new().expect("rabbitmq vhost");
    let dir = tempfile::tempdir().unwrap();
    let site = DmSite::new(dir.path(), &["d10"], json!({"amqp": vh.dsn(), "satellites": ["sat1"], "max_deliveries": 2}));
    let d = site.start(0);
    wait_serving(&d, 30);
    let slow = SlowHttp::start(Duration::from_secs(30));
    let (_, v) = submit(&d, &json!({"kind": "http.request", "target": slow.addr, "satellite": "sat1", "timeout_ms": 120000}));
    let id = v["id"].as_str().unwrap().to_string();
    let mut kills = 0;
    let end = loop {
        let j = job(&d, &id);
        if j["state"] == "failed" {
            break j;
        }
        assert!(kills < 6, "still not dead-lettered after {kills} kills: {j}");
        let mut p = poller(dir.path(), &vh.dsn(), Some("sat1"), &format!("k{kills}"), 1);
        let seen = slow.hits.load(Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(15);
        while slow.hits.load(Ordering::SeqCst) == seen && Instant::now() < deadline && job(&d, &id)["state"] != "failed" {
            std::thread::sleep(Duration::from_millis(50));
        }
        p.kill9();
        kills += 1;
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(end["error"].as_str().unwrap().contains("deliveries"), "{end}");
    assert_eq!(kills, 3, "max_deliveries 2: the third return dead-letters it");
}

#[test]
fn the_next_active_instance_records_the_results_of_jobs_in_flight_postgresql() {
    let vh = Vhost::new().expect("rabbitmq vhost");
    let db = format!("mware_dm_{}_{}", std::process::id(), mware_testkit::free_port());
    let psql = |sql: &str| {
        let out = std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    psql(&format!("CREATE DATABASE {db}"));
    let dir = tempfile::tempdir().unwrap();
    let dsn = format!("host=127.0.0.1 port=5432 user=postgres dbname={db}");
    let site = DmSite::new(dir.path(), &["a10", "a20"], json!({"amqp": vh.dsn(), "database": dsn, "satellites": ["sat1"]}));
    let mut a10 = site.start(0);
    wait_serving(&a10, 30);
    let a20 = site.start(1);
    a20.wait_status(Duration::from_secs(20), |v| v["state"] == "passive");
    let _p = poller(dir.path(), &vh.dsn(), Some("sat1"), "pa", 8);
    let slow = SlowHttp::start(Duration::from_secs(4));
    // Submitted through the passive member: forwarded to the active one.
    let ids = submit_batch(
        &a20,
        (0..5).map(|_| json!({"kind": "http.request", "target": slow.addr, "satellite": "sat1", "timeout_ms": 60000})).collect(),
    );
    for id in &ids {
        wait_job(&a10, id, 20, |j| j["state"] == "running");
    }
    a10.child.kill9();
    wait_serving(&a20, 30);
    for id in &ids {
        let j = wait_end(&a20, id, 30);
        assert_eq!(
            (j["state"].as_str(), j["attempts"].as_u64()),
            (Some("done"), Some(1)),
            "ran once, recorded by the next active instance: {j}"
        );
    }
    assert_eq!(slow.hits.load(Ordering::SeqCst), 5);
    drop(a20);
    psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}

#[test]
fn a_rabbitmq_restart_while_jobs_flow_loses_none_and_records_each_once() {
    let mut node = RabbitNode::start().expect("a RabbitMQ node of the test's own");
    let dir = tempfile::tempdir().unwrap();
    let site = DmSite::new(dir.path(), &["r10"], json!({"amqp": node.dsn(), "satellites": ["sat1"]}));
    let d = site.start(0);
    wait_serving(&d, 30);
    let _pollers: Vec<_> = (0..2).map(|i| poller(dir.path(), &node.dsn(), Some("sat1"), &format!("r{i}"), 4)).collect();
    let dev = SlowHttp::start(Duration::from_millis(50));
    let job = || json!({"kind": "http.request", "target": dev.addr, "satellite": "sat1", "timeout_ms": 120000});
    let mut ids = vec![];
    for round in 0..30 {
        ids.extend(submit_batch(&d, (0..10).map(|_| job()).collect()));
        if round == 10 {
            node.kill9();
        }
        if round == 20 {
            node.restart().expect("node restarts");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ids.len(), 300, "every job was accepted, during the outage too");
    let mut states = BTreeMap::new();
    for id in &ids {
        let j = wait_end(&d, id, 120);
        *states.entry(j["state"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    assert_eq!(states, BTreeMap::from([("done".to_string(), 300)]), "every accepted job ended done");
    let hits = dev.hits.load(Ordering::SeqCst);
    eprintln!("device saw {hits} requests for 300 jobs (re-runs after the restart are recorded once)");
    assert!(hits >= 300);
}
