//! End-to-end: service tasks in real daemons on a real etcd. Two members of one group
//! carry a task that runs every 4 s for 2 s. The active one is killed -9 while a run is
//! in progress: the next one marks that run `lost` (never runs its slot again), runs the
//! next slot exactly once, and every slot after once; every run the task made is in the
//! history (the task appends a line per run to a file). The CLI (`mware tasks list`,
//! `runs`, `run`) and `mware status` (the site's state first) work against the survivor.

mod common;

use common::*;
use mware_testkit::etcd::Etcd;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TOKEN: &str = "tasks-e2e-token";

fn role(name: &str, order: i64, port: u16, marks: &str) -> Value {
    json!({
        "name": name, "roletype": "mware", "iface": "lo", "group": 3, "order": order, "api_port": port,
        "service_tasks": [{"name": "beat", "schedule": "*/4 * * * * *", "command": ["/bin/sh", "-c", format!("echo run >> {marks}; sleep 2")], "history": 50}]
    })
}

fn runs(d: &Daemon) -> Vec<Value> {
    match d.get("/api/v1/tasks/beat/runs") {
        Some((200, v)) => v["runs"].as_array().cloned().unwrap_or_default(),
        _ => vec![],
    }
}

fn mware(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(bin()).args(args).env("MWARE_API_TOKEN", TOKEN).output().unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn after_kill9_mid_run_the_next_slot_runs_once_on_the_next_instance() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks");
    let ports = [mware_testkit::free_port(), mware_testkit::free_port()];
    let m = marks.display().to_string();
    let site = json!({
        "site": "tf",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/tf", "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [role("t10", 10, ports[0], &m), role("t20", 20, ports[1], &m)]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let env = [("MWARE_API_TOKEN", TOKEN), ("MWARE_LOG_DIR", dir.path().to_str().unwrap())];
    let start = |i: usize, n: &str| Daemon::start(&cfg, n, &format!("127.0.0.1:{}", ports[i]), dir.path().join(format!("{n}.log")), &env);
    let mut d10 = start(0, "t10");
    d10.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    let d20 = start(1, "t20");
    d20.wait_status(Duration::from_secs(10), |v| v["state"] == "passive");

    // Wait for a run in progress on t10 (not the very first slot), then kill t10.
    let deadline = Instant::now() + Duration::from_secs(30);
    let lost_slot = loop {
        let r = runs(&d10);
        let done = r.iter().filter(|x| x["outcome"] == "ok").count();
        if let Some(cur) = r.iter().find(|x| x["outcome"] == "running") {
            if done >= 1 && mware_coord::now_ms() - cur["started_ms"].as_u64().unwrap() < 1500 {
                break cur["slot_ms"].as_u64().unwrap();
            }
        }
        assert!(Instant::now() < deadline, "no run in progress on t10: {r:?}\n{}", d10.log_text());
        std::thread::sleep(Duration::from_millis(100));
    };
    d10.child.kill9();
    let t0 = Instant::now();
    d20.wait_status(Duration::from_secs(20), |v| v["state"] == "active");
    eprintln!("t20 active {:?} after kill -9 of t10", t0.elapsed());

    // Three slots after the lost one have ended on t20.
    let deadline = Instant::now() + Duration::from_secs(30);
    let all = loop {
        let r = runs(&d20);
        let after = r.iter().filter(|x| x["instance"] == "t20" && x["outcome"] == "ok").count();
        if after >= 3 {
            break r;
        }
        assert!(Instant::now() < deadline, "{r:#?}\n{}", d20.log_text());
        std::thread::sleep(Duration::from_millis(200));
    };
    let lost: Vec<&Value> = all.iter().filter(|x| x["outcome"] == "lost").collect();
    assert_eq!(lost.len(), 1, "{all:#?}");
    assert_eq!((lost[0]["slot_ms"].as_u64(), lost[0]["instance"].as_str()), (Some(lost_slot), Some("t10")));
    assert!(lost[0]["reason"].as_str().unwrap().contains("not run again"), "{}", lost[0]);
    // Every slot ran at most once, across both instances.
    let mut per_slot: BTreeMap<u64, usize> = BTreeMap::new();
    for x in all.iter().filter(|x| ["ok", "running", "lost", "failed", "timeout", "killed"].contains(&x["outcome"].as_str().unwrap())) {
        *per_slot.entry(x["slot_ms"].as_u64().unwrap()).or_default() += 1;
    }
    assert!(per_slot.values().all(|n| *n == 1), "a slot ran twice: {per_slot:?}\n{all:#?}");
    // The next slot ran, once, on t20.
    let next = all
        .iter()
        .find(|x| x["slot_ms"].as_u64() == Some(lost_slot + 4000))
        .unwrap_or_else(|| panic!("the next slot did not run: {all:#?}"));
    assert_eq!(next["instance"], "t20", "{next}");
    // Every run the task made is in the history (the file has one line per run).
    std::thread::sleep(Duration::from_millis(300));
    let lines = std::fs::read_to_string(&marks).unwrap().lines().count();
    let recorded = runs(&d20).iter().filter(|x| ["ok", "running", "lost"].contains(&x["outcome"].as_str().unwrap())).count();
    assert!(lines == recorded || lines == recorded + 1, "{lines} runs made, {recorded} recorded");

    // The CLI against the survivor.
    let api = d20.api.clone();
    let (code, out) = mware(&["tasks", "list", "--api", &api]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("beat") && out.contains("*/4 * * * * *"), "{out}");
    let (code, out) = mware(&["tasks", "runs", "beat", "--api", &api]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" lost on t10 ") && out.contains(" ok on t20 "), "{out}");
    let (code, out) = mware(&["status", "--api", &api]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("site tf: "), "the site's state comes first: {out}");
    // A manual run: refused without the token, then started or refused while one runs.
    let out =
        std::process::Command::new(bin()).args(["tasks", "run", "beat", "--api", &api]).env_remove("MWARE_API_TOKEN").output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("MWARE_API_TOKEN"));
    let (code, out) = mware(&["tasks", "run", "beat", "--api", &api]);
    assert!((code == 0 && out.contains("started on request")) || out.contains("409 Conflict"), "{out}");
    // The task's output went to its log on t20.
    let log = std::fs::read_to_string(dir.path().join("task_beat.log")).unwrap();
    assert!(log.contains("ok: exited with 0"), "{log}");
}
