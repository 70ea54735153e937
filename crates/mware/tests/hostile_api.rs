//! The daemon's API against a hostile client on the site's network (issue 13): one
//! real daemon on the embedded coordinator, with tight server limits. Each case is a
//! finding of the security review; the provisioning surface has its own file in the
//! realtime crate.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const TOKEN: &str = "hostile-api-token-77";

fn start(dir: &std::path::Path) -> Daemon {
    let (port, addr) = free_addr();
    let site = json!({
        "site": "hostile",
        "coordination": {"backend": "embedded", "path": dir.join("c.sqlite")},
        "api": {"token_env": "H_TOKEN", "header_read_timeout_ms": 1000, "idle_timeout_ms": 2000, "max_connections": 4},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [{
            "name": "h1", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "api_port": port,
            "opts": {"passwd": "opts-secret-1", "conninfo": "host=x password=opts-secret-2", "apikey": "opts-secret-3"},
            "critical_sections": {"max_domains": 2},
            "pg_controller": [{"key": "main", "credentials": "pg-secret-4", "servers": [
                {"pg_host": "127.0.0.1", "pg_port": 1, "ssh_user": "postgres", "ssh_pwd": "pg-secret-5", "pg_replica_user": "r", "pg_replica_pwd": "pg-secret-6",
                 "pg_ctl_command": "pg_ctl", "pg_basebackup_command": "pg_basebackup", "pg_data_folder": "/nonexistent/a",
                 "private_key_pem": "pg-secret-7", "auth": "pg-secret-8", "note": "http://admin:pg-secret-9@10.0.0.1/"},
                {"pg_host": "127.0.0.1", "pg_port": 2, "ssh_user": "postgres", "ssh_pwd": "pg-secret-5", "pg_replica_user": "r", "pg_replica_pwd": "pg-secret-6",
                 "pg_ctl_command": "pg_ctl", "pg_basebackup_command": "pg_basebackup", "pg_data_folder": "/nonexistent/b"}
            ]}]
        }]}]
    });
    let cfg = dir.join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let d = Daemon::start(&cfg, "h1", &addr, dir.join("h1.log"), &[("H_TOKEN", TOKEN)]);
    d.wait_status(Duration::from_secs(20), |v| v["state"] == "active");
    d
}

fn addr(d: &Daemon) -> String {
    d.api.trim_start_matches("http://").to_string()
}

fn raw(d: &Daemon, method: &str, path: &str, token: Option<&str>, body: &[u8], ctype: &str) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut rb = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", d.api))
            .header("content-type", ctype)
            .body(body.to_vec());
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        (code, serde_json::from_str(&text).unwrap_or_else(|_| json!({"not_json": text})))
    })
}

#[test]
fn the_config_needs_the_token_and_shows_no_secret_even_under_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let (code, e) = d.get("/api/v1/config").unwrap();
    assert_eq!(code, 401, "{e}");
    let (code, c) = d.get_auth("/api/v1/config", TOKEN).unwrap();
    assert_eq!(code, 200);
    let text = c.to_string();
    for s in [
        "opts-secret-1",
        "opts-secret-2",
        "opts-secret-3",
        "pg-secret-4",
        "pg-secret-5",
        "pg-secret-6",
        "pg-secret-7",
        "pg-secret-8",
        "pg-secret-9",
        TOKEN,
    ] {
        assert!(!text.contains(s), "{s} shown by /api/v1/config: {text}");
    }
    let role = &c["servers"][0]["roles"][0];
    assert_eq!(role["opts"], "***");
    assert_eq!(role["pg_controller"][0]["servers"][0]["pg_data_folder"], "/nonexistent/a", "known harmless keys stay readable");
    assert!(!d.log_text().contains("secret-"), "a secret in the log");
}

#[test]
fn a_client_that_sends_its_headers_one_byte_a_second_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let mut s = TcpStream::connect(addr(&d)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1000))).unwrap();
    let t0 = Instant::now();
    let mut cut = None;
    for b in b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
        if s.write_all(&[*b]).is_err() {
            cut = Some(t0.elapsed());
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(0) = s.read(&mut probe) {
            cut = Some(t0.elapsed());
            break;
        }
    }
    let cut = cut.expect("the slow client was never disconnected");
    assert!(cut < Duration::from_secs(6), "disconnected after {cut:?} (api.header_read_timeout_ms is 1000)");
}

#[test]
fn connections_beyond_the_cap_are_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    // Hold every slot with connections that send nothing (closed after 2 s idle).
    let held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr(&d)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(addr(&d)).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(extra.read(&mut buf), Ok(0) | Err(_)), "a fifth connection was kept");
    drop(held);
    // Once the silent ones are gone (idle timeout), the API answers and counts.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        if let Some(m) = get_text(&format!("{}/metrics", d.api)).filter(|m| m.contains("mware_http_connections_refused_total")) {
            break m;
        }
        assert!(Instant::now() < deadline, "the API did not answer again");
        std::thread::sleep(Duration::from_millis(200));
    };
    let refused = metrics.lines().find(|l| l.starts_with("mware_http_connections_refused_total")).unwrap();
    assert!(!refused.ends_with(" 0"), "{refused}");
}

#[test]
fn errors_are_json_naming_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    // Unknown path and wrong method.
    let (code, e) = raw(&d, "GET", "/api/v1/nope", None, b"", "text/plain");
    assert_eq!(code, 404, "{e}");
    assert!(e["error"].as_str().unwrap().contains("/api/v1/nope"), "{e}");
    let (code, e) = raw(&d, "DELETE", "/api/v1/status", None, b"", "text/plain");
    assert_eq!(code, 405, "{e}");
    assert!(e["error"].as_str().unwrap().contains("DELETE"), "{e}");
    // axum's own rejections: a bad query, a body too large.
    let (code, e) = raw(&d, "GET", "/api/v1/events?since=abc", None, b"", "text/plain");
    assert_eq!(code, 400, "{e}");
    assert!(e["error"].as_str().unwrap().starts_with("request: "), "{e}");
    let big = vec![b' '; 3 << 20];
    let (code, e) = raw(&d, "POST", "/api/v1/domains/a.ru/mutexes/m/acquire", Some(TOKEN), &big, "application/json");
    assert_eq!(code, 413, "{e}");
    assert!(e["error"].is_string(), "{e}");
    // A repeated key in a body: which value was meant? Refused, naming it.
    let (code, e) = raw(
        &d,
        "POST",
        "/api/v1/domains/a.ru/mutexes/m/acquire",
        Some(TOKEN),
        br#"{"owner":"o","ttl_ms":10,"ttl_ms":99999,"wait_ms":0}"#,
        "application/json",
    );
    assert_eq!((code, e["field"].as_str()), (400, Some("ttl_ms")), "{e}");
    let (code, e) = raw(&d, "POST", "/api/v1/groups/1/switchover", Some(TOKEN), br#"{"to":"h1","to":"h2"}"#, "application/json");
    assert_eq!(code, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("to again"), "{e}");
    // A misspelt key is not ignored: `limt` would have granted a plain mutex.
    let body = br#"{"owner":"o","ttl_ms":1000,"wait_ms":0,"limt":5}"#;
    let (code, e) = raw(&d, "POST", "/api/v1/domains/a.ru/mutexes/m/acquire", Some(TOKEN), body, "application/json");
    assert_eq!(code, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains(r#"unknown key "limt""#), "{e}");
    // `..` is no mutex name: a URL library resolves it (even encoded), so such a mutex could be
    // taken by a raw client but never addressed again. Sent on a raw socket.
    let body = r#"{"owner":"o","ttl_ms":1000,"wait_ms":0}"#;
    let mut s = TcpStream::connect(addr(&d)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /api/v1/domains/a.ru/mutexes/%2E%2E/acquire HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        addr(&d),
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains(r#""field":"name""#), "{answer}");
}

#[test]
fn one_token_cannot_make_unbounded_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let acquire = |domain: &str, body: &[u8]| {
        raw(&d, "POST", &format!("/api/v1/domains/{domain}/mutexes/m/acquire"), Some(TOKEN), body, "application/json")
    };
    // A semaphore with 2^32 slots, a wait of an hour.
    let (code, e) = acquire("a.ru", br#"{"owner":"o","ttl_ms":1000,"wait_ms":0,"limit":4294967295}"#);
    assert_eq!((code, e["field"].as_str()), (400, Some("limit")), "{e}");
    let (code, e) = acquire("a.ru", br#"{"owner":"o","ttl_ms":1000,"wait_ms":3600000}"#);
    assert_eq!((code, e["field"].as_str()), (400, Some("wait_ms")), "{e}");
    // Domains with mutexes are capped (max_domains 2 here).
    for dom in ["a.ru", "b.ru"] {
        let (code, e) = acquire(dom, br#"{"owner":"o","ttl_ms":60000,"wait_ms":0}"#);
        assert_eq!(code, 200, "{e}");
    }
    let (code, e) = acquire("c.ru", br#"{"owner":"o","ttl_ms":60000,"wait_ms":0}"#);
    assert_eq!(code, 429, "{e}");
    assert!(e["error"].as_str().unwrap().contains("max_domains"), "{e}");
}
