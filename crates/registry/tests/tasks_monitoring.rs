//! The `service_tasks` and `monitoring` sections: what validates, and every problem of a
//! bad section reported at once with its path (a bad cron expression named with the
//! parser's reason, a key of another probe kind, a missing key of the kind).

mod common;
use common::*;
use mware_monitor::ProbeKind;
use mware_tasks::Overlap;
use serde_json::json;

const R0: &str = "/servers/0/roles/0";
const P0: &str = "servers[0].roles[0]";

#[test]
fn tasks_parse_with_their_defaults() {
    let mut v = base();
    set(
        &mut v,
        &format!("{R0}/service_tasks"),
        json!([
            {"name": "cleanup", "schedule": "*/10 * * * * *", "command": ["/bin/true"]},
            {"name": "report.daily", "schedule": "0 3 * * 1-5", "command": ["/usr/bin/env", "x"], "timeout_s": 60, "overlap": "queue",
             "env": {"PGPASSWORD": "hunter2"}, "working_dir": "/tmp", "history": 5}
        ]),
    );
    let site = ok(&v).site;
    let t = &site.servers[0].roles[0].section::<mware_tasks::ServiceTasks>().unwrap().0;
    assert_eq!((t[0].timeout_s, t[0].overlap, t[0].history), (3600, Overlap::Skip, 20));
    assert_eq!((t[1].overlap, t[1].history, t[1].working_dir.as_deref()), (Overlap::Queue, 5, Some("/tmp")));
    // An env value is a secret: the model never prints it.
    assert!(!format!("{:?}", t[1]).contains("hunter2"));
    assert!(!serde_json::to_string(&site).unwrap().contains("hunter2"));
}

#[test]
fn every_task_problem_is_reported_with_its_path() {
    let mut v = base();
    set(
        &mut v,
        &format!("{R0}/service_tasks"),
        json!([
            {"name": "a b", "schedule": "61 * * * *", "command": [], "timeout_s": 0, "overlap": "later", "env": {"1X": "v", "OK": 5}, "history": 0, "extra": 1},
            {"name": "dup", "schedule": "* * *", "command": ["", "x"]},
            {"name": "dup", "schedule": "*/5 * * * * *", "command": ["/bin/true", 3]},
            {"command": ["/bin/true"]}
        ]),
    );
    let e = errors(&v);
    let t = format!("{P0}.service_tasks");
    has(&e, &format!("{t}[0].name"), "expected a task name of 1 to 64");
    has(&e, &format!("{t}[0].schedule"), "expected a cron expression");
    has(&e, &format!("{t}[0].schedule"), "found \"61 * * * *\"");
    has(&e, &format!("{t}[0].command"), "found an empty list");
    has(&e, &format!("{t}[0].timeout_s"), "expected an integer from 1 to 604800, found 0");
    has(&e, &format!("{t}[0].overlap"), "expected \"skip\" or \"kill\" or \"queue\", found \"later\"");
    has(&e, &format!("{t}[0].env.1X"), "expected an environment variable name");
    has(&e, &format!("{t}[0].env.OK"), "expected a string, found a number");
    has(&e, &format!("{t}[0].history"), "expected an integer from 1 to 1000");
    has(&e, &format!("{t}[0].extra"), "unknown key \"extra\"");
    has(&e, &format!("{t}[1].schedule"), "found 3");
    has(&e, &format!("{t}[1].command[0]"), "expected the program");
    has(&e, &format!("{t}[2].name"), "found \"dup\" again (first at");
    has(&e, &format!("{t}[2].command[1]"), "expected a string, found 3");
    has(&e, &format!("{t}[3].name"), "required key \"name\"");
    has(&e, &format!("{t}[3].schedule"), "required key \"schedule\"");
    assert_eq!(e.len(), 15, "{}", show(&e));
}

fn probes(list: serde_json::Value) -> serde_json::Value {
    let mut v = base();
    set(&mut v, &format!("{R0}/monitoring"), json!({"probes": list}));
    v
}

#[test]
fn probes_of_every_kind_parse() {
    let v = probes(json!([
        {"name": "gns", "kind": "dns", "target": "sip.example.ru", "resolver": "127.0.0.1:5353", "expect": ["10.0.0.1"]},
        {"name": "sip", "kind": "tcp", "target": "127.0.0.1:5060", "interval_ms": 1000, "timeout_ms": 500, "fail_after": 2, "recover_after": 1},
        {"name": "web", "kind": "http", "target": "http://127.0.0.1:8080/health", "status": 204, "body_contains": "ok"},
        {"name": "db", "kind": "postgres", "dsn": "host=127.0.0.1 password=s3cret", "query": "select 1"},
        {"name": "mg1", "kind": "megaco", "target": "[::1]:2944", "mid": "[127.0.0.1]:2944"},
        {"name": "sync", "kind": "fsync", "target": "/srv/sync", "copies": ["/mnt/peer/sync"]},
        {"name": "script", "kind": "command", "command": ["/usr/local/bin/check", "-q"]}
    ]));
    let site = ok(&v).site;
    let m = &site.servers[0].roles[0].section::<mware_monitor::Monitoring>().unwrap();
    assert!(m.enabled);
    let kinds: Vec<ProbeKind> = m.probes.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [ProbeKind::Dns, ProbeKind::Tcp, ProbeKind::Http, ProbeKind::Postgres, ProbeKind::Megaco, ProbeKind::Fsync, ProbeKind::Command]
    );
    assert_eq!((m.probes[0].interval_ms, m.probes[0].timeout_ms, m.probes[0].fail_after, m.probes[0].recover_after), (10_000, 2_000, 3, 2));
    assert!(!serde_json::to_string(&site).unwrap().contains("s3cret"));
    // Without the section, monitoring is on with no probe.
    let site = ok(&base()).site;
    let m = site.servers[0].roles[0].section::<mware_monitor::Monitoring>().unwrap();
    assert!(m.enabled && m.probes.is_empty());
}

#[test]
fn every_probe_problem_is_reported_with_its_path() {
    let v = probes(json!([
        {"name": "a", "kind": "dns", "target": "bad..name", "resolver": "nowhere", "expect": ["10.0.0"], "status": 200},
        {"name": "b", "kind": "tcp", "target": "127.0.0.1", "timeout_ms": 5000, "interval_ms": 1000},
        {"name": "c", "kind": "http", "target": "https://h/", "status": 700},
        {"name": "d", "kind": "http", "target": "http://user:pw@h/"},
        {"name": "e", "kind": "postgres", "target": "x"},
        {"name": "f", "kind": "megaco", "target": "h:2944", "mid": "x\r\nEvil"},
        {"name": "g", "kind": "fsync", "target": "relative", "copies": []},
        {"name": "h", "kind": "command"},
        {"name": "i", "kind": "ping", "target": "x", "fail_after": 0},
        {"name": "a", "kind": "tcp"}
    ]));
    let e = errors(&v);
    let p = format!("{P0}.monitoring.probes");
    has(&e, &format!("{p}[0].target"), "bad..name");
    has(&e, &format!("{p}[0].resolver"), "expected an IP address or ip:port");
    has(&e, &format!("{p}[0].expect[0]"), "expected an IP address, found \"10.0.0\"");
    has(&e, &format!("{p}[0].status"), "found \"status\", a key of http probes");
    has(&e, &format!("{p}[1].target"), "expected host:port");
    has(&e, &format!("{p}[1].timeout_ms"), "expected at most interval_ms (1000 ms)");
    has(&e, &format!("{p}[2].target"), "expected an http:// URL");
    has(&e, &format!("{p}[2].status"), "expected an integer from 100 to 599, found 700");
    has(&e, &format!("{p}[3].target"), "expected no credentials in the URL, found some (not shown)");
    has(&e, &format!("{p}[4].target"), "expected no target for a postgres probe");
    has(&e, &format!("{p}[4].dsn"), "required key \"dsn\" for a postgres probe");
    has(&e, &format!("{p}[5].mid"), "expected an H.248 mId");
    has(&e, &format!("{p}[6].target"), "expected an absolute folder path");
    has(&e, &format!("{p}[6].copies"), "(copies or ssh_copies), found none");
    has(&e, &format!("{p}[7].command"), "required key \"command\" for a command probe");
    has(&e, &format!("{p}[8].kind"), "found \"ping\"");
    has(&e, &format!("{p}[8].fail_after"), "expected an integer from 1 to 100, found 0");
    has(&e, &format!("{p}[9].name"), "found \"a\" again");
    has(&e, &format!("{p}[9].target"), "required key \"target\" for a tcp probe");
    assert!(!e.iter().any(|q| q.message.contains("pw@")), "{}", show(&e));
    assert_eq!(e.len(), 19, "{}", show(&e));
}

#[test]
fn members_of_a_group_carry_the_same_tasks_and_probes() {
    let mut v = base();
    let mut r2 = role("mware2", 1, 20, &[]);
    r2["service_tasks"] = json!([{"name": "t", "schedule": "* * * * *", "command": ["/bin/true"]}]);
    set(&mut v, "/servers/0/roles/1", r2);
    set(&mut v, &format!("{R0}/service_tasks"), json!([{"name": "t", "schedule": "*/2 * * * *", "command": ["/bin/true"]}]));
    set(&mut v, &format!("{R0}/monitoring"), json!({"probes": []}));
    let e = errors(&v);
    has(&e, "servers[0].roles[1].service_tasks[0].schedule", "expected the same as servers[0].roles[0] (mware1)");
    has(&e, "servers[0].roles[1].monitoring", "found it missing here");
}

#[test]
fn fsync_copies_over_ssh() {
    let v = probes(json!([
        {"name": "s", "kind": "fsync", "target": "/srv/sync", "ssh_copies": [
            {"host": "srv2", "user": "sync", "password": "pw-not-shown", "path": "/srv/sync"},
            {"host": "srv3", "port": 2222, "user": "sync", "key_file": "/etc/mware/id_ed25519", "path": "/srv/sync"}
        ]}
    ]));
    let site = ok(&v).site;
    let c = &site.servers[0].roles[0].section::<mware_monitor::Monitoring>().unwrap().probes[0].ssh_copies;
    assert_eq!((c[0].port, c[1].port), (22, 2222));
    assert!(!serde_json::to_string(&site).unwrap().contains("pw-not-shown"));
    let v = probes(json!([
        {"name": "s", "kind": "fsync", "target": "/srv/sync", "ssh_copies": [
            {"host": "", "user": "sync", "path": "rel", "port": 0, "extra": 1},
            {"host": "h", "user": "u", "password": "x", "key_file": "/k", "path": "/p"}
        ]},
        {"name": "t", "kind": "tcp", "target": "h:1", "ssh_copies": []}
    ]));
    let e = errors(&v);
    let p = format!("{P0}.monitoring.probes");
    has(&e, &format!("{p}[0].ssh_copies[0].host"), "non-empty");
    has(&e, &format!("{p}[0].ssh_copies[0].port"), "from 1 to 65535");
    has(&e, &format!("{p}[0].ssh_copies[0].path"), "expected an absolute folder path");
    has(&e, &format!("{p}[0].ssh_copies[0].extra"), "unknown key");
    has(&e, &format!("{p}[0].ssh_copies[0]"), "expected either password or key_file, found neither");
    has(&e, &format!("{p}[0].ssh_copies[1]"), "found both");
    has(&e, &format!("{p}[1].ssh_copies"), "a key of fsync probes");
    assert!(!e.iter().any(|q| q.message.contains("pw-not-shown")));
    assert_eq!(e.len(), 7, "{}", show(&e));
}
