//! Every route of the API against a hostile client (issue 24: "the hostile checks cover every
//! route"). One real daemon on the embedded coordinator with the services that need no outside
//! server (critical sections, service tasks, monitoring, alarms, device jobs in-process); the
//! routes are taken from its own OpenAPI document, so a route added later is walked too.
//!
//! For each operation: without a credential, one that needs one answers 401; with the
//! operator's token, malformed, repeated-key, wrong-typed and oversized bodies and hostile path
//! segments are answered with a 4xx (or 503 for a service that is not running) and a JSON
//! error, never a 2xx that ignored the body, never a 5xx other than 503, never a hang; the
//! daemon stays healthy and its log holds no panic.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "routes-api-token-31";
const OPERATOR: &str = "routes-operator-token-32";

fn start(dir: &std::path::Path) -> Daemon {
    let (port, addr) = free_addr();
    let syslog = mware_testkit::free_port();
    let site = json!({
        "site": "routes",
        "coordination": {"backend": "embedded", "path": dir.join("c.sqlite")},
        "api": {"token_env": "R_TOKEN", "operator_token_env": "R_OPERATOR"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [{
            "name": "r1", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "api_port": port,
            "critical_sections": {},
            "service_tasks": [{"name": "noop", "schedule": "0 0 1 1 *", "command": ["/bin/true", "--secret-arg"]}],
            "monitoring": {"probes": [{"name": "p", "kind": "tcp", "target": "127.0.0.1:1", "interval_ms": 1000, "timeout_ms": 200}]},
            "alarms": {"syslog": {"udp_port": syslog, "tcp_port": syslog}},
            "devicemanager": {}
        }]}]
    });
    let cfg = dir.join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let d = Daemon::start(&cfg, "r1", &addr, dir.join("r1.log"), &[("R_TOKEN", TOKEN), ("R_OPERATOR", OPERATOR)]);
    d.wait_status(Duration::from_secs(30), |v| {
        v["state"] == "active" && v["services"].as_array().is_some_and(|s| s.len() >= 5 && s.iter().all(|s| s["state"] == "running"))
    });
    d
}

/// One operation of the OpenAPI document.
struct Op {
    method: String,
    path: String,
    secured: bool,
    /// HTTP Basic (provisioning entities): an unknown entity is answered 404 before the
    /// credential is looked at, as the realtime tests show.
    basic: bool,
}

fn operations(doc: &Value) -> Vec<Op> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let security = op["security"].as_array().cloned().unwrap_or_default();
            let basic = security.iter().any(|s| s.as_object().is_some_and(|o| o.keys().any(|k| k.to_lowercase().contains("basic"))));
            out.push(Op { method: method.to_uppercase(), path: path.clone(), secured: !security.is_empty(), basic });
        }
    }
    out
}

/// `path` with every `{param}` replaced: `{domain}` by `domain`, the others by `other`.
fn fill(path: &str, domain: &str, other: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let j = rest[i..].find('}').map(|j| i + j).unwrap();
        out.push_str(if &rest[i + 1..j] == "domain" { domain } else { other });
        rest = &rest[j + 1..];
    }
    out.push_str(rest);
    out
}

/// Sends one request; its status and body. A header that a path segment tried to inject
/// (`X-Injected`) must not come back. A large body goes through [`send_large`].
fn send(rt: &tokio::runtime::Runtime, d: &Daemon, method: &str, path: &str, token: Option<&str>, body: Vec<u8>) -> (u16, String) {
    if body.len() > 1 << 20 {
        return send_large(d, method, path, token, &body);
    }
    rt.block_on(async {
        let mut rb = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", d.api))
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(10))
            .body(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
        assert!(r.headers().get("x-injected").is_none(), "{method} {path}: a header was injected");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    })
}

/// A large body on a raw socket: the head first; a server that refuses on the declared
/// length answers at once (and may close before the body is sent, which a client library
/// reports as a broken pipe), otherwise the body follows. Status and body of the answer.
fn send_large(d: &Daemon, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = d.api.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => answer.extend_from_slice(&buf[..n]),
        _ => {
            // No early answer: the server reads the body before it decides.
            let _ = s.write_all(body);
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{method} {path}: no HTTP answer: {text:?}"));
    assert!(!text.to_ascii_lowercase().contains("\r\nx-injected"), "{method} {path}: a header was injected");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, dechunk(&body))
}

/// The payload of a chunked body (hyper chunks answers of unknown length).
fn dechunk(body: &str) -> String {
    if serde_json::from_str::<Value>(body).is_ok() || body.is_empty() {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// A refusal: 4xx (or 503, a service not running here) with a JSON body naming the error;
/// provisioning (`basic`) answers res_config_curl, which reads the status and no JSON.
fn refused(what: &str, code: u16, text: &str, basic: bool) {
    assert!((400..500).contains(&code) || code == 503, "{what}: expected a 4xx refusal, found {code}: {text}");
    if basic {
        return;
    }
    let v: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("{what}: expected a JSON error, found {code}: {text}"));
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: expected an `error` text, found {v}");
}

#[test]
fn every_route_refuses_what_it_should_and_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (code, doc) = d.get("/api/openapi.json").unwrap();
    assert_eq!(code, 200);
    let ops = operations(&doc);
    assert!(ops.len() >= 30, "expected the routes of every service, found {}", ops.len());
    let bodies: [(&str, Vec<u8>); 5] = [
        ("malformed JSON", b"{".to_vec()),
        ("a JSON array", b"[1,2]".to_vec()),
        ("a repeated key", br#"{"a":1,"a":2}"#.to_vec()),
        ("wrong types", br#"{"owner":7,"to":[],"message":{},"kind":null,"target":1.5}"#.to_vec()),
        ("3 MB", vec![b' '; 3 << 20]),
    ];
    let segments = ["..%2F..%2Fetc%2Fpasswd", "%00", &"x".repeat(5000), "%E2%80%AE", "%0d%0aX-Injected:%201"];
    let mut walked = 0;
    for op in &ops {
        let path = fill(&op.path, "a.ru", "noop"); // "noop" is the task's name and a valid mutex name
        let what = format!("{} {}", op.method, op.path);
        // No credential: a secured call is refused before anything else.
        if op.secured {
            let ok = if op.basic { &[401, 404][..] } else { &[401][..] };
            let (code, text) = send(&rt, &d, &op.method, &path, None, b"{}".to_vec());
            assert!(ok.contains(&code), "{what} without a token: {code} {text}");
            let (code, text) = send(&rt, &d, &op.method, &path, Some("not-the-token"), b"{}".to_vec());
            assert!(ok.contains(&code), "{what} with a wrong token: {code} {text}");
        }
        // Hostile bodies on calls that take one.
        if op.method != "GET" && op.method != "DELETE" {
            for (name, body) in &bodies {
                let (code, text) = send(&rt, &d, &op.method, &path, Some(OPERATOR), body.clone());
                refused(&format!("{what} with {name}"), code, &text, op.basic);
            }
        }
        // Hostile path segments in every parameter.
        if op.path.contains('{') {
            for seg in segments {
                let p = fill(&op.path, seg, seg);
                let (code, text) = send(&rt, &d, &op.method, &p, Some(OPERATOR), b"{}".to_vec());
                assert!(code < 500 || code == 503, "{what} with segment {:.40}: {code}: {text}", seg);
                assert!(!text.contains('\r') && !text.contains('\u{202E}'), "{what}: a control character echoed raw: {text:?}");
            }
        }
        walked += 1;
    }
    assert_eq!(walked, ops.len());
    let (code, _) = d.get("/healthz").unwrap();
    assert_eq!(code, 200, "the daemon is unhealthy after the walk:\n{}", d.log_text());
    let log = d.log_text();
    assert!(!log.contains("panicked"), "a handler panicked:\n{log}");
    assert!(!log.contains("--secret-arg"), "a task argument reached the log");
    // The public task list shows the program, not its arguments.
    let (_, tasks) = d.get("/api/v1/tasks").unwrap();
    assert_eq!(tasks["tasks"][0]["command"], json!(["/bin/true", "***"]), "{tasks}");
}
