//! Hostile checks of issue 24 on real daemons (etcd; group 1: a10 active, a20 passive;
//! group 2: b10 serving `b.example`; all on 127.0.0.1): device jobs are no request
//! forgery tool (the call scripts' token refused; link-local, loopback, another
//! instance's API and the etcd endpoint refused with the rule named; an allowed target
//! runs end to end), a body too large to forward is 413 and not retryable, and the
//! `Host` header must name the instance (421 otherwise) while forwarding still works.

mod common;
mod devices_support;
use common::*;
use devices_support::tcp_target;
use mware_testkit::etcd::Etcd;
use serde_json::{json, Value};
use std::time::Duration;

const API: &str = "hj-api-token";
const OPERATOR: &str = "hj-operator-token";
const DM: &str = "hj-dm-token";

struct Site {
    _dir: tempfile::TempDir,
    _etcd: Etcd,
    etcd_port: u16,
    ports: [u16; 3],
    daemons: Vec<Daemon>,
}

/// A database of its own on the machine's PostgreSQL (a second group needs another
/// store than the SQLite file beside the coordinator's).
fn database() -> String {
    let db = format!("mware_hj_{}_{}", std::process::id(), mware_testkit::free_port());
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", &format!("CREATE DATABASE {db}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    format!("host=127.0.0.1 port=5432 user=postgres dbname={db}")
}

/// etcd and three daemons: a10 and a20 (group 1, devicemanager in-process on the SQLite
/// file, the pool allowed 127.0.0.0/8), b10 (group 2, devicemanager on PostgreSQL with
/// no allow-list).
fn start() -> Site {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ports = [0; 3].map(|_| mware_testkit::free_port());
    let dm_a = json!({"token_env": "HJ_DM_TOKEN", "allowed_targets": {"pool": ["127.0.0.0/8"]}});
    let dm_b = json!({"token_env": "HJ_DM_TOKEN", "database": database()});
    let role = |n: &str, g: u32, o: u32, p: u16, d: Value, dm: &Value| json!({"name": n, "roletype": "mware", "iface": "lo", "group": g, "order": o, "api_port": p, "include_domains": d, "devicemanager": dm});
    let site = json!({
        "site": "hj",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/hj", "path": dir.path().join("var/coord.sqlite").display().to_string(),
                         "lease_ttl_ms": 2000, "step_down_margin_ms": 700, "rank_wait_ms": 300},
        "api": {"token_env": "HJ_API_TOKEN", "operator_token_env": "HJ_OPERATOR_TOKEN", "allowed_hosts": ["mware.test"]},
        "servers": [{"name": "srv1", "ifaces": {"lo": "127.0.0.1"}, "roles": [
            role("a10", 1, 10, ports[0], json!([]), &dm_a),
            role("a20", 1, 20, ports[1], json!([]), &dm_a),
            role("b10", 2, 10, ports[2], json!(["b.example"]), &dm_b),
        ]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, serde_json::to_string_pretty(&site).unwrap()).unwrap();
    let env = [("HJ_API_TOKEN", API), ("HJ_OPERATOR_TOKEN", OPERATOR), ("HJ_DM_TOKEN", DM)];
    let run = |i: usize, n: &str| Daemon::start(&cfg, n, &format!("127.0.0.1:{}", ports[i]), dir.path().join(format!("{n}.log")), &env);
    let serving =
        |v: &Value| v["services"].as_array().is_some_and(|s| s.iter().any(|x| x["name"] == "devicemanager" && x["state"] == "running"));
    // a10 first, so that it is group 1's active member whatever the machine's load.
    let a10 = run(0, "a10");
    a10.wait_status(Duration::from_secs(30), |v| v["state"] == "active" && serving(v));
    let (a20, b10) = (run(1, "a20"), run(2, "b10"));
    a20.wait_status(Duration::from_secs(30), |v| v["state"] == "passive");
    b10.wait_status(Duration::from_secs(30), |v| v["state"] == "active" && serving(v));
    let daemons = vec![a10, a20, b10];
    let etcd_port = etcd.client_port();
    Site { _dir: dir, _etcd: etcd, etcd_port, ports, daemons }
}

/// A request with any Host header, method and body; status and JSON body.
fn call(url: &str, method: &str, host: Option<&str>, token: Option<&str>, body: Option<Vec<u8>>) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut rb = reqwest::Client::new().request(method.parse().unwrap(), url).timeout(Duration::from_secs(20));
        if let Some(h) = host {
            rb = rb.header(reqwest::header::HOST, h);
        }
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let r = rb.send().await.expect("the API answers");
        let code = r.status().as_u16();
        (code, r.json::<Value>().await.unwrap_or(Value::Null))
    })
}

/// POSTs a body of `size` spaces with devicemanager's token: the body is written on its
/// own thread (the server may answer and close before it has read it all, so write
/// errors are expected) while the answer is read here.
fn big_post(d: &Daemon, path: &str, size: usize) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = d.api.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {DM}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut w = s.try_clone().unwrap();
    std::thread::spawn(move || {
        let chunk = vec![b' '; 64 << 10];
        for _ in 0..size / chunk.len() {
            if w.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)));
            if len.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, serde_json::from_str(body).unwrap_or_else(|_| json!({"not_json": text.chars().take(300).collect::<String>()})))
}

fn jobs_url(d: &Daemon) -> String {
    format!("{}/api/devicemanager/v1/jobs", d.api)
}

#[test]
fn device_jobs_refuse_the_call_scripts_token_and_targets_in_the_site() {
    let s = start();
    let (a10, a20, b10) = (&s.daemons[0], &s.daemons[1], &s.daemons[2]);
    let dev = tcp_target();
    let job = json!({"kind": "tcp.check", "target": dev});

    // The call scripts' token: 403 naming what is taken (through the passive member too);
    // none: 401. Nothing is stored.
    for d in [a10, a20] {
        let (code, v) = post_json(&jobs_url(d), Some(API), &job).unwrap();
        assert_eq!(code, 403, "{v}");
        let e = v["error"].as_str().unwrap();
        assert!(e.contains("found the API token (HJ_API_TOKEN)") && e.contains("HJ_OPERATOR_TOKEN") && e.contains("HJ_DM_TOKEN"), "{e}");
        assert_eq!(post_json(&jobs_url(d), None, &job).unwrap().0, 401);
    }
    assert_eq!(get_json_with(&jobs_url(a10), Some(API)).unwrap().0, 403, "job reads too");

    // devicemanager's own token and the operator's: accepted; an allowed target runs.
    let (code, v) = post_json(&jobs_url(a20), Some(DM), &job).unwrap();
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_str().unwrap();
    let (code, j) = get_json_with(&format!("{}/{id}?wait_ms=2500", jobs_url(a20)), Some(OPERATOR)).unwrap();
    assert_eq!((code, j["state"].as_str()), (200, Some("done")), "{j}");
    assert_eq!(post_json(&jobs_url(a10), Some(OPERATOR), &job).unwrap().0, 202);

    // Targets in the site or of a refused class: 400 naming the field and the rule.
    let refused = |d: &Daemon, target: String, want: &str| {
        let (code, v) = post_json(&jobs_url(d), Some(DM), &json!({"kind": "http.request", "target": target})).unwrap();
        assert_eq!(code, 400, "{target}: {v}");
        assert_eq!(v["problems"][0]["field"], "target", "{v}");
        let msg = v["problems"][0]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(want), "{target}: expected {want:?} in {msg:?}");
        msg
    };
    let msg = refused(a10, "169.254.169.254:80".into(), "is link-local");
    assert_eq!(
        msg,
        "169.254.169.254 is link-local, refused by devicemanager's target rules (allow it in devicemanager.allowed_targets.pool)"
    );
    refused(a10, format!("127.0.0.1:{}", s.ports[1]), "is the API of instance a20 (server srv1), one of the site's own endpoints");
    refused(a20, format!("127.0.0.1:{}", s.ports[2]), "the API of instance b10");
    refused(a10, format!("127.0.0.1:{}", s.etcd_port), &format!("is the coordinator endpoint 127.0.0.1:{}", s.etcd_port));
    // Group 2 has no allow-list: loopback is refused by default.
    refused(b10, dev.clone(), "127.0.0.1 is loopback");
    let (code, v) =
        post_json(&format!("{}:batch", jobs_url(a10)), Some(DM), &json!({"jobs": [job, {"kind": "tcp.check", "target": "[fe80::1]:22"}]}))
            .unwrap();
    assert_eq!((code, v["problems"][0]["field"].as_str()), (400, Some("jobs[1].target")), "{v}");
    // A name is judged again once resolved, where the job runs: `localhost` passes the
    // early check (loopback is allowed here) but resolves to the etcd endpoint (or to
    // ::1, not allowed): the job fails, nothing is sent.
    let (code, v) =
        post_json(&jobs_url(a10), Some(DM), &json!({"kind": "tcp.check", "target": format!("localhost:{}", s.etcd_port)})).unwrap();
    assert_eq!(code, 202, "{v}");
    let (_, j) = get_json_with(&format!("{}/{}?wait_ms=2500", jobs_url(a10), v["id"].as_str().unwrap()), Some(DM)).unwrap();
    assert_eq!(j["state"], "failed", "{j}");
    assert!(j["error"].as_str().unwrap().starts_with("target: localhost resolves to "), "{j}");
    let (_, list) = get_json_with(&jobs_url(a10), Some(DM)).unwrap();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 3, "only the three accepted jobs are stored: {list}");
}

#[test]
fn a_body_too_large_for_the_passive_member_is_413_not_retryable_and_it_still_forwards() {
    let s = start();
    let (a10, a20) = (&s.daemons[0], &s.daemons[1]);
    for d in [a20, a10] {
        let (code, v) = big_post(d, "/api/devicemanager/v1/jobs", 10 << 20);
        assert_eq!(code, 413, "{v}");
        assert_eq!(v["retryable"], false, "{v}");
    }
    let text = get_text(&format!("{}/metrics", a20.api)).unwrap();
    assert!(text.contains("mware_forwarded_requests_total{outcome=\"too_large\"} 1"), "{text}");
    // The passive member still forwards the next call.
    let (code, v) = post_json(&jobs_url(a20), Some(DM), &json!({"kind": "tcp.check", "target": tcp_target()})).unwrap();
    assert_eq!(code, 202, "{v}");
}

#[test]
fn the_host_header_must_name_the_instance_and_forwarding_across_groups_still_works() {
    let s = start();
    let a10 = &s.daemons[0];
    let status = format!("{}/api/v1/status", a10.api);
    let (code, v) = call(&status, "GET", Some("evil.example"), None, None);
    assert_eq!(code, 421, "{v}");
    assert!(v["error"].as_str().unwrap().contains("found \"evil.example\""), "{v}");
    let (code, _) = call(&status, "GET", Some(&format!("evil.example:{}", s.ports[0])), None, None);
    assert_eq!(code, 421);
    // A configured name, with or without the port, and the instance's own address.
    for host in [format!("mware.test:{}", s.ports[0]), "MWARE.test".into(), format!("127.0.0.1:{}", s.ports[0])] {
        assert_eq!(call(&status, "GET", Some(&host), None, None).0, 200, "{host}");
    }
    // `localhost` is not in the configured list (it replaces the default).
    assert_eq!(call(&status, "GET", Some("localhost"), None, None).0, 421);
    // Refused before anything else: a job call with a valid token and a foreign Host.
    let (code, _) = call(&jobs_url(a10), "POST", Some("evil.example"), Some(DM), Some(b"{}".to_vec()));
    assert_eq!(code, 421);
    // Forwarding to group 2 sends b10's address as Host: accepted there.
    let (code, v) = call(&format!("{}/api/v1/domains/x.b.example", a10.api), "GET", None, None, None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["group"], 2, "{v}");
    let text = get_text(&format!("{}/metrics", a10.api)).unwrap();
    assert!(text.contains("mware_http_misdirected_requests_total 4"), "{text}");
}
