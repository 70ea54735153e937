//! End-to-end: the users service in real daemons on a real etcd, with a real PostgreSQL
//! and a real SMTP server (aiosmtpd). Two members of one group; the relay is down while
//! five invitations are made through the active one, so their mails wait in the outbox;
//! the active one is killed -9; the relay comes back; the next active instance sends each
//! mail exactly once, and the invitation accepted from the mail's link works there.

mod common;

use common::*;
use mware_testkit::etcd::Etcd;
use mware_testkit::pg::PgInstance;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TOKEN: &str = "users-e2e-token";
const DOMAIN: &str = "tenant1.example.ru";

fn role(name: &str, order: i64, port: u16, smtp: u16) -> Value {
    json!({
        "name": name, "roletype": "mware", "iface": "lo", "group": 5, "order": order, "api_port": port,
        "users": {
            "database": {"dsn_env": "MWARE_USERS_DSN", "pool_size": 4},
            "public_url": "https://id.test",
            "smtp": {"host": "127.0.0.1", "port": smtp, "tls": "none", "from": "noreply@example.ru", "timeout_s": 5},
            "argon2": {"memory_kib": 8192, "iterations": 1, "parallelism": 1},
            "domains": [{"name": DOMAIN}]
        }
    })
}

fn sink(port: u16, dir: &Path) -> mware_testkit::Child {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../services/users/tests/support/smtp_sink.py");
    let mut c = std::process::Command::new("/usr/bin/python3");
    c.arg(script).arg(port.to_string()).arg(dir.join("mail"));
    let child = mware_testkit::Child::spawn("smtp sink", c, &dir.join("smtp.log")).unwrap();
    mware_testkit::wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(15)).unwrap();
    child
}

/// Mails received: the envelope recipient of each.
fn mails(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("mail"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|f| {
            let t = std::fs::read_to_string(f).unwrap();
            (t.lines().next().unwrap().trim_start_matches("X-Envelope-To: ").to_string(), t)
        })
        .collect()
}

fn running(v: &Value) -> bool {
    v["state"] == "active" && v["services"].as_array().is_some_and(|s| s.iter().any(|x| x["name"] == "users" && x["state"] == "running"))
}

#[test]
fn after_kill9_of_the_active_each_queued_mail_is_sent_once_by_the_next() {
    let etcd = Etcd::start().unwrap();
    let pg = PgInstance::new_primary("users-e2e").unwrap();
    pg.psql("CREATE DATABASE users").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let smtp = mware_testkit::free_port();
    let ports = [mware_testkit::free_port(), mware_testkit::free_port()];
    let site = json!({
        "site": "uf",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/uf", "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "MWARE_API_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [role("u10", 10, ports[0], smtp), role("u20", 20, ports[1], smtp)]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let dsn = format!("host=127.0.0.1 port={} user=postgres dbname=users sslmode=disable", pg.port);
    let env = [("MWARE_API_TOKEN", TOKEN), ("MWARE_USERS_DSN", dsn.as_str()), ("MWARE_LOG_DIR", dir.path().to_str().unwrap())];
    let start = |i: usize, n: &str| Daemon::start(&cfg, n, &format!("127.0.0.1:{}", ports[i]), dir.path().join(format!("{n}.log")), &env);
    let mut d10 = start(0, "u10");
    d10.wait_status(Duration::from_secs(30), running);
    let d20 = start(1, "u20");
    d20.wait_status(Duration::from_secs(15), |v| v["state"] == "passive");

    // The relay is down (nothing listens on its port): five invitations, through the passive
    // one too (forwarded to the active), wait in the outbox.
    let who: Vec<String> = (1..=5).map(|i| format!("guest{i}@example.ru")).collect();
    for (i, w) in who.iter().enumerate() {
        let api = if i % 2 == 0 { &d10.api } else { &d20.api };
        let (s, v) = post_json(&format!("{api}/api/users/v1/invitations"), Some(TOKEN), &json!({"domain": DOMAIN, "email": w})).unwrap();
        assert_eq!(s, 201, "{v}\n{}", d10.log_text());
    }
    std::thread::sleep(Duration::from_secs(1));
    d10.child.kill9();
    let _relay = sink(smtp, dir.path());
    d20.wait_status(Duration::from_secs(30), running);

    let deadline = Instant::now() + Duration::from_secs(120);
    while mails(dir.path()).len() < 5 {
        assert!(Instant::now() < deadline, "5 mails after the failover, got {:?}\n{}", mails(dir.path()).len(), d20.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let got = mails(dir.path());
    for w in &who {
        assert_eq!(got.iter().filter(|(to, _)| to == w).count(), 1, "one mail to {w}");
    }
    assert_eq!(got.len(), 5);

    // The link of a mail sent by the new active instance works there.
    let body = got[0].1.split("--decoded body--").nth(1).unwrap().to_string();
    let token: String = body.split("token=").nth(1).unwrap().chars().take(43).collect();
    let (s, v) = post_json(
        &format!("{}/api/users/v1/invitations/accept", d20.api),
        None,
        &json!({"token": token, "password": "a long password for e2e"}),
    )
    .unwrap();
    assert_eq!(s, 201, "{v}");
    let (s, v) = post_json(
        &format!("{}/api/users/v1/login", d20.api),
        None,
        &json!({"domain": DOMAIN, "login": got[0].0, "password": "a long password for e2e"}),
    )
    .unwrap();
    assert_eq!(s, 200, "{v}");
    assert!(v["session"].as_str().is_some_and(|s| s.len() == 43));
}
