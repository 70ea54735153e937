//! End-to-end: pg_controller inside real `mware run` processes (etcd backend) over a
//! real PostgreSQL 15 pair and a real sshd. The master's postmaster is killed -9, and
//! while the controller waits out `promote_after_s` the active mware instance is killed
//! -9 too: the next instance takes over and finishes the failover with exactly one
//! promotion (the new master is on timeline 2), the replicated rows are there, and it
//! accepts writes.

mod common;

use common::*;
use mware_testkit::etcd::Etcd;
use mware_testkit::pg::{PgInstance, REPLICA_PASSWORD};
use mware_testkit::sshd::{Sshd, SSH_PASSWORD};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn server(pg: &PgInstance, sshd: &Sshd) -> Value {
    mware_testkit::pg::controller_server_json(pg, sshd)
}

fn wait(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out after {limit:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn active_mware_killed_mid_failover_next_instance_promotes_once() {
    let etcd = Etcd::start().unwrap();
    let sshd = Sshd::start().expect("sshd");
    let db1 = PgInstance::new_primary("db1").expect("db1");
    let db2 = PgInstance::new_standby("db2", &db1).expect("db2");
    db1.psql("CREATE TABLE calls(id int); INSERT INTO calls SELECT generate_series(1, 500)").unwrap();
    wait(Duration::from_secs(60), "rows reach db2", || db2.psql("SELECT count(*) FROM calls").map(|c| c == "500").unwrap_or(false));

    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    sshd.pin_in(&known_hosts).unwrap();
    let ports: Vec<u16> = (0..2).map(|_| mware_testkit::free_port()).collect();
    let group =
        json!({"key": "main", "servers": [server(&db1, &sshd), server(&db2, &sshd)], "promote_after_s": 6, "check_interval_ms": 300});
    let roles: Vec<Value> = [("p10", 10, ports[0]), ("p20", 20, ports[1])]
        .iter()
        .map(|(n, o, p)| json!({"name": n, "roletype": "mware", "iface": "lo", "group": 3, "order": o, "api_port": p, "pg_controller": [group.clone()]}))
        .collect();
    let site = json!({"site": "pgx",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "ssh": {"known_hosts": known_hosts.display().to_string()},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": roles}]});
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let logdir = dir.path().join("logs");
    let env = [("MWARE_LOG_DIR", logdir.to_str().unwrap())];
    let mut p10 = Daemon::start(&cfg, "p10", &format!("127.0.0.1:{}", ports[0]), dir.path().join("p10.log"), &env);
    let p20 = Daemon::start(&cfg, "p20", &format!("127.0.0.1:{}", ports[1]), dir.path().join("p20.log"), &env);
    p10.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    p20.wait_status(Duration::from_secs(30), |v| v["state"] == "passive");
    let healthy = |d: &Daemon| {
        d.get("/api/v1/pg")
            .map(|(c, v)| {
                c == 200
                    && v["groups"][0]["master"] == format!("127.0.0.1:{}", db1.port)
                    && v["groups"][0]["reason"].as_str().unwrap_or("").starts_with("healthy")
            })
            .unwrap_or(false)
    };
    wait(Duration::from_secs(60), "p10's controller sees db1 master and healthy", || healthy(&p10));

    // The master dies; the controller starts counting promote_after_s.
    db1.kill9().unwrap();
    wait(Duration::from_secs(20), "p10 notices db1 is unreachable", || {
        p10.get("/api/v1/pg")
            .map(|(_, v)| {
                v["groups"][0]["servers"][0]["reachable"] == false
                    || v["groups"][0]["reason"].as_str().unwrap_or("").contains("unreachable")
            })
            .unwrap_or(false)
    });
    // ... and the active mware dies in the middle of that failover.
    p10.child.kill9();
    p20.wait_status(Duration::from_secs(20), |v| v["state"] == "active");

    // p20 finishes the job: db2 is promoted, once.
    wait(Duration::from_secs(90), "db2 promoted and writable", || {
        db2.in_recovery().map(|r| !r).unwrap_or(false) && db2.psql("INSERT INTO calls VALUES (501)").is_ok()
    });
    assert_eq!(db2.psql("SELECT count(*) FROM calls").unwrap(), "501", "replicated rows kept");
    let tl = db2.psql("SELECT timeline_id FROM pg_control_checkpoint()").unwrap();
    let tl_now = db2.psql("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)::text").unwrap();
    assert!(tl_now.ends_with('2'), "exactly one promotion: WAL timeline {tl_now} (checkpoint timeline {tl})");
    wait(Duration::from_secs(20), "p20 publishes db2 as the master", || {
        p20.get("/api/v1/pg").map(|(_, v)| v["groups"][0]["master"] == format!("127.0.0.1:{}", db2.port)).unwrap_or(false)
    });
    let journal = std::fs::read_to_string(logdir.join("pgctrl_main.log")).unwrap_or_default();
    let promotions = journal.lines().filter(|l| l.contains("promoted") && l.contains(&db2.port.to_string())).count();
    assert!(promotions <= 2, "promotion logged {promotions} times:\n{journal}");
    // No secret in any output.
    for out in [p10.log_text(), p20.log_text(), journal] {
        assert!(!out.contains(SSH_PASSWORD) && !out.contains(REPLICA_PASSWORD), "a secret leaked");
    }
}
