//! End-to-end: the users service in real daemons on a real etcd, with a real PostgreSQL
//! and a real SMTP server (aiosmtpd). Two members of one group.
//!
//! 1. The relay is down while five invitations are made through the active one, so their
//!    mails wait in the outbox; the active one is killed -9; the relay comes back; the next
//!    active instance sends each mail exactly once, and the invitation accepted from the
//!    mail's link works there.
//! 2. Abuse limits: a flood through the passive instance (forwarded) is limited per real
//!    client address (clients on their own loopback addresses), a client's own forwarding
//!    headers are ignored; a client over its limit is refused before its body is read (a
//!    body announced and never sent gets its 429 at once); a login locked out and a client
//!    address over its limit stay refused (429) on the next active instance after a kill -9.

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
    role_with(name, order, port, smtp, json!({}))
}

fn role_with(name: &str, order: i64, port: u16, smtp: u16, limits: Value) -> Value {
    let mut r = json!({
        "name": name, "roletype": "mware", "iface": "lo", "group": 5, "order": order, "api_port": port,
        "users": {
            "database": {"dsn_env": "MWARE_USERS_DSN", "pool_size": 4},
            "public_url": "https://id.test",
            "smtp": {"host": "127.0.0.1", "port": smtp, "tls": "none", "from": "noreply@example.ru", "timeout_s": 5},
            "argon2": {"memory_kib": 8192, "iterations": 1, "parallelism": 1},
            "domains": [{"name": DOMAIN}]
        }
    });
    if limits.is_object() && limits.as_object().is_some_and(|m| !m.is_empty()) {
        r["users"]["limits"] = limits;
    }
    r
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

/// Sends from the local address `from` a POST of `path` to `api` that announces a body of
/// a megabyte and sends ten bytes of it; reads the answer for up to 3 s: (its head, its
/// body), both empty when none came.
fn head_only_from(from: [u8; 4], api: &str, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let addr: std::net::SocketAddr = api.trim_start_matches("http://").parse().unwrap();
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(std::net::SocketAddr::from((from, 0))).unwrap();
        let mut tcp = sock.connect(addr).await.unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"domain\":"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut got = vec![];
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len =
                    head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").and_then(|v| v.trim().parse().ok()));
                if body.len() >= len.unwrap_or(0) {
                    return (head.to_string(), body.to_string());
                }
            }
        }
        let text = String::from_utf8_lossy(&got).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (head.to_string(), body.to_string())
    })
}

/// POSTs `body` to `url` from the local address `from`, with extra headers: the status.
fn post_from(from: [u8; 4], url: &str, body: &Value, headers: &[(&str, &str)]) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::builder().local_address(std::net::IpAddr::from(from)).timeout(Duration::from_secs(10)).build().unwrap();
        let mut rb = c.post(url).json(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
    })
}

#[test]
fn limits_see_the_real_client_behind_forwarding_and_survive_a_kill9() {
    let etcd = Etcd::start().unwrap();
    let pg = PgInstance::new_primary("users-lim").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let smtp = mware_testkit::free_port(); // no relay: mails wait in the outbox
    let ports = [mware_testkit::free_port(), mware_testkit::free_port()];
    let limits = json!({"per_ip_per_min": 20, "per_login_per_hour": 3, "per_address_per_hour": 100, "alarm_after": 1000});
    let site = json!({
        "site": "ul",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/ul", "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "MWARE_API_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"},
                     "roles": [role_with("u10", 10, ports[0], smtp, limits.clone()), role_with("u20", 20, ports[1], smtp, limits)]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let dsn = format!("host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable", pg.port);
    let env = [("MWARE_API_TOKEN", TOKEN), ("MWARE_USERS_DSN", dsn.as_str()), ("MWARE_LOG_DIR", dir.path().to_str().unwrap())];
    let start = |i: usize, n: &str| Daemon::start(&cfg, n, &format!("127.0.0.1:{}", ports[i]), dir.path().join(format!("{n}.log")), &env);
    let mut d10 = start(0, "u10");
    d10.wait_status(Duration::from_secs(30), running);
    let d20 = start(1, "u20");
    d20.wait_status(Duration::from_secs(15), |v| v["state"] == "passive");
    let recovery = |api: &str| format!("{api}/api/users/v1/recovery");
    let body = |i: usize| json!({"domain": DOMAIN, "login": format!("nobody{i}@example.ru")});

    // A flood from 127.0.0.20 through the passive instance: limited as 127.0.0.20 (20 a
    // minute), not as the forwarding instance.
    let codes: Vec<u16> = (0..30).map(|i| post_from([127, 0, 0, 20], &recovery(&d20.api), &body(i), &[])).collect();
    let refused = codes.iter().filter(|c| **c == 429).count();
    assert!(codes.iter().all(|c| *c == 202 || *c == 429), "{codes:?}\n{}", d10.log_text());
    assert!((5..=12).contains(&refused), "about 10 of 30 refused at 20 a minute: {codes:?}");
    // Another client through the same passive instance has its own budget.
    assert_eq!(post_from([127, 0, 0, 21], &recovery(&d20.api), &body(100), &[]), 202, "another client is not refused");
    // The flooder cannot pass for another client: its own headers are dropped by the
    // forwarder, and ignored by the active instance when they do not come from a member.
    // (A client's own x-mware-forwarded-by makes the passive one answer 503 rather than
    // forward a second time: that header is the loop guard, so it is sent to the active.)
    let claimed = [("x-mware-client-addr", "127.0.0.99")];
    assert_eq!(post_from([127, 0, 0, 20], &recovery(&d20.api), &body(101), &claimed), 429, "a claimed address through the passive");
    let forged = [("x-mware-client-addr", "127.0.0.99"), ("x-mware-forwarded-by", "u20")];
    assert_eq!(post_from([127, 0, 0, 20], &recovery(&d10.api), &body(102), &forged), 429, "forged headers straight to the active");
    // A client over its limit is refused before its body is read: a request whose body
    // never comes (a megabyte announced, ten bytes sent) and would not parse gets its 429
    // at once, with Retry-After and the body of every 429.
    // Right after a request of the client passed, the next one is refused, and so is every
    // one for about 3 s (20 a minute): the request without its body comes then.
    let mut last = 0;
    for i in 0..200 {
        let code = post_from([127, 0, 0, 20], &recovery(&d10.api), &body(400 + i), &[]);
        if (last, code) == (202, 429) {
            break;
        }
        last = code;
        std::thread::sleep(Duration::from_millis(if code == 429 { 50 } else { 0 }));
    }
    assert_eq!(last, 202, "a request of the flooding client passed again after a while");
    let (head, answer) = head_only_from([127, 0, 0, 20], &d10.api, "/api/users/v1/recovery");
    assert!(head.starts_with("HTTP/1.1 429"), "{head}\n{answer}");
    assert!(head.to_ascii_lowercase().contains("\r\nretry-after: "), "{head}");
    assert_eq!(answer, r#"{"error":"too many requests for this ip: try again later","retryable":true}"#);
    let (head, _) = head_only_from([127, 0, 0, 21], &d10.api, "/api/users/v1/recovery");
    assert_eq!(head, "", "a client under its limit is served: its body is waited for");

    // A login locked out (3 an hour), and the flooding address: both kept in the database.
    let login = |api: &str| format!("{api}/api/users/v1/login");
    let attempt = json!({"domain": DOMAIN, "login": "victim@example.ru", "password": "guess guess guess"});
    let codes: Vec<u16> = (0..4).map(|_| post_from([127, 0, 0, 22], &login(&d20.api), &attempt, &[])).collect();
    assert_eq!(codes, [401, 401, 401, 429], "three attempts an hour for one login");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.psql("SELECT string_agg(kind, ',' ORDER BY kind) FROM limit_trips").unwrap() != "ip,login" {
        assert!(Instant::now() < deadline, "trips kept: {}", pg.psql("SELECT kind FROM limit_trips").unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }

    d10.child.kill9();
    d20.wait_status(Duration::from_secs(30), running);
    // The next active instance: the login is still locked out, from any address; the
    // flooding address is still refused; a new client passes.
    assert_eq!(post_from([127, 0, 0, 23], &login(&d20.api), &attempt, &[]), 429, "the lockout survives the kill -9\n{}", d20.log_text());
    // The flooding address gets back only what refilled since (one every 3 s), not a fresh
    // budget of 20: most of 20 more requests are refused.
    let codes: Vec<u16> = (0..20).map(|i| post_from([127, 0, 0, 20], &recovery(&d20.api), &body(300 + i), &[])).collect();
    assert!(codes.iter().filter(|c| **c == 429).count() >= 5, "the flooding address has no fresh budget: {codes:?}");
    assert_eq!(post_from([127, 0, 0, 24], &recovery(&d20.api), &body(201), &[]), 202, "a new client passes");
}
