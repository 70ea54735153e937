//! End-to-end: `mware run` as a real process on the embedded coordinator.
//! Status, config with secrets redacted, auth on mutating calls, SIGHUP reload
//! (a broken file is refused and the old config kept; a good one is applied),
//! clean stop on SIGTERM, and no secret value anywhere in the process output.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const SSH_PWD: &str = "ssh-Secret-7781";
const REPLICA_PWD: &str = "replica-Secret-9034";
const STORAGE_PWD: &str = "storage-Secret-5521";
const TOKEN: &str = "api-Token-3310";

/// The site; `opts` carries a generation number `gen`, also shown as `drain_timeout_ms`
/// = 5000 + gen (opts itself is shown as `***` by the API).
fn site(port: u16, coord: &str, opts: Value) -> Value {
    let gen = opts["gen"].as_u64().unwrap_or(0);
    json!({
        "site": "e2e",
        "coordination": {"backend": "embedded", "path": coord, "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "E2E_TOKEN", "drain_timeout_ms": 5000 + gen},
        "servers": [{
            "name": "srv1", "ifaces": {"lo": "127.0.0.1"},
            "roles": [{
                "name": "mware1", "roletype": "mware", "iface": "lo", "group": 1, "order": 10,
                "api_port": port, "opts": opts,
                "pg_controller": [{"key": "main", "servers": [
                    {"ssh_host": "127.0.0.1", "ssh_user": "postgres", "ssh_pwd": SSH_PWD, "pg_port": 1, "pg_replica_user": "replica", "pg_replica_pwd": REPLICA_PWD,
                     "pg_ctl_command": "pg_ctl", "pg_basebackup_command": "pg_basebackup", "pg_data_folder": "/nonexistent/a"},
                    {"ssh_host": "127.0.0.2", "ssh_user": "postgres", "ssh_pwd": SSH_PWD, "pg_port": 1, "pg_replica_user": "replica", "pg_replica_pwd": REPLICA_PWD,
                     "pg_ctl_command": "pg_ctl", "pg_basebackup_command": "pg_basebackup", "pg_data_folder": "/nonexistent/b"}
                ]}],
                "backup_controller": {"hours_interval": [20, 3], "weekdays": [1, 2], "storage_ssh_host": "127.0.0.1", "storage_ssh_user": "u", "storage_ssh_pwd": STORAGE_PWD}
            }, {
                "name": "mware9", "roletype": "mware", "iface": "nope", "group": 0, "order": 10, "enabled": false
            }]
        }]
    })
}

/// Waits until the running config's `opts.gen` is `gen`.
fn wait_gen(d: &Daemon, gen: u64, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while d.get_auth("/api/v1/config", TOKEN).map(|(_, c)| c["api"]["drain_timeout_ms"] != 5000 + gen).unwrap_or(true) {
        assert!(std::time::Instant::now() < deadline, "{what}: not applied: {}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn run_status_config_reload_stop_and_no_secret_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let (port, addr) = free_addr();
    let coord = dir.path().join("coord.sqlite");
    let cfg = dir.path().join("site.json");
    let write = |v: &Value| std::fs::write(&cfg, serde_json::to_string_pretty(v).unwrap()).unwrap();
    write(&site(port, coord.to_str().unwrap(), json!({"gen": 1})));
    let log = dir.path().join("mware.log");
    let mut d = Daemon::start(&cfg, "mware1", &addr, log, &[("E2E_TOKEN", TOKEN)]);

    // A single instance with the embedded coordinator is active at once.
    let st = d.wait_status(Duration::from_secs(20), |v| v["state"] == "active");
    assert_eq!(st["instance"], "mware1");
    assert_eq!(st["group"], 1);
    assert_eq!(st["order"], 10);
    assert_eq!(st["server"], "srv1");
    assert_eq!(st["domains"]["rest_of_tree"], true);
    assert!(st["epoch"].as_u64().unwrap() >= 1);
    assert!(st["since_ms"].as_u64().is_some());

    assert_eq!(d.get("/healthz").unwrap().0, 200);
    assert_eq!(d.get("/readyz").unwrap().0, 200);

    // Config: secrets shown as ***.
    let (code, c) = d.get_auth("/api/v1/config", TOKEN).unwrap();
    assert_eq!(code, 200);
    let text = c.to_string();
    assert!(text.contains("***"), "{text}");
    for s in [SSH_PWD, REPLICA_PWD, STORAGE_PWD, TOKEN] {
        assert!(!text.contains(s), "secret {s} in /api/v1/config");
    }
    assert_eq!(c["api"]["drain_timeout_ms"], 5001);
    assert_eq!(c["servers"][0]["roles"][0]["opts"], "***", "opts is free-form: shown masked in full");

    // Route through the API.
    let (code, r) = d.get("/api/v1/route?domain=Tenant1.Example.RU.").unwrap();
    assert_eq!(code, 200);
    assert_eq!(r["group"], 1);
    assert_eq!(r["instances"][0]["name"], "mware1");
    assert_eq!(d.get("/api/v1/route").unwrap().0, 400);

    // Metrics and OpenAPI.
    let m = http_text::blocking_get_text(&format!("{}/metrics", d.api));
    assert!(m.contains("mware_active 1"), "{m}");
    assert!(m.contains("mware_lease_renewals_total"), "{m}");
    let (code, doc) = d.get("/api/openapi.json").unwrap();
    assert_eq!(code, 200);
    for path in [
        "/api/v1/status",
        "/api/v1/cluster",
        "/api/v1/groups/{group}/switchover",
        "/api/v1/pg",
        "/provision/asterisk/{entity}/{family}/{op}",
        "/api/v1/domains/{domain}/mutexes/{name}/acquire",
    ] {
        assert!(doc["paths"][path].is_object(), "OpenAPI lacks {path}");
    }
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    // Mutating calls need the token.
    let url = format!("{}/api/v1/groups/1/switchover", d.api);
    assert_eq!(post_json(&url, None, &json!({})).unwrap().0, 401);
    assert_eq!(post_json(&url, Some("wrong"), &json!({})).unwrap().0, 401);
    let (code, e) = post_json(&url, Some(TOKEN), &json!({"to": "nobody"})).unwrap();
    assert_eq!(code, 400, "{e}");
    assert!(e["error"].as_str().unwrap().starts_with("to: expected one of"), "{e}");
    // A group with one live member has nobody to hand over to.
    let (code, e) = post_json(&url, Some(TOKEN), &json!({})).unwrap();
    assert_eq!(code, 409, "{e}");

    // SIGHUP with a broken file: refused, old config kept.
    std::fs::write(&cfg, "{\"site\": \"e2e\", \"servers\": [ {\"name\": 5} ]").unwrap();
    d.child.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(1500));
    let (_, c) = d.get_auth("/api/v1/config", TOKEN).unwrap();
    assert_eq!(c["api"]["drain_timeout_ms"], 5001, "broken config must not be applied");
    assert!(d.log_text().contains("new config refused"), "{}", d.log_text());
    assert_eq!(d.get("/api/v1/status").unwrap().1["state"], "active");

    // SIGHUP with a good file: applied.
    write(&site(port, coord.to_str().unwrap(), json!({"gen": 2})));
    d.child.signal(libc::SIGHUP);
    wait_gen(&d, 2, "good config after SIGHUP");

    // A change of the file alone (no signal) is picked up too.
    std::thread::sleep(Duration::from_millis(1100));
    write(&site(port, coord.to_str().unwrap(), json!({"gen": 3})));
    wait_gen(&d, 3, "file change without a signal");

    // SIGTERM: stops within the drain limit, exit code 0.
    d.child.signal(libc::SIGTERM);
    let code = d.child.wait_timeout(Duration::from_secs(8));
    assert_eq!(code, Some(0), "log:\n{}", d.log_text());

    // No secret in any output of the run.
    let out = d.log_text();
    for s in [SSH_PWD, REPLICA_PWD, STORAGE_PWD, TOKEN] {
        assert!(!out.contains(s), "secret {s} leaked into the output");
    }
    // JSON logs: every line is a JSON object.
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        assert!(serde_json::from_str::<Value>(line).is_ok(), "not JSON: {line}");
    }
}

/// Group 1 (mware1, started) serves the rest of the tree; group 2 (mware2, not started)
/// names a Unicode domain. Invalid names are refused with 400 naming the field, never
/// answered with the default group; both forms of the Unicode name route to group 2.
#[test]
fn domain_names_follow_one_rule_in_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (port, addr) = free_addr();
    let (port2, _) = free_addr();
    let coord = dir.path().join("coord.sqlite");
    let cfg = dir.path().join("site.json");
    let site = json!({
        "site": "e2e",
        "coordination": {"backend": "embedded", "path": coord, "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "E2E_TOKEN"},
        "servers": [{"name": "srv1", "ifaces": {"lo": "127.0.0.1"}, "roles": [
            {"name": "mware1", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "api_port": port},
            {"name": "mware2", "roletype": "mware", "iface": "lo", "group": 2, "order": 10, "api_port": port2,
             "include_domains": ["тест.рф", "_sip._udp.example.ru"]}
        ]}]
    });
    std::fs::write(&cfg, site.to_string()).unwrap();
    let d = Daemon::start(&cfg, "mware1", &addr, dir.path().join("mware.log"), &[("E2E_TOKEN", TOKEN)]);
    d.wait_status(Duration::from_secs(20), |v| v["state"] == "active");

    for q in ["тест.рф", "xn--e1aybc.xn--p1ai", "pbx.ТЕСТ.РФ.", "x._sip._udp.example.ru"] {
        let (code, r) = d.get(&format!("/api/v1/route?domain={q}")).unwrap();
        assert_eq!((code, &r["group"]), (200, &json!(2)), "{q}: {r}");
        assert_eq!(r["instances"][0]["name"], "mware2", "{r}");
    }
    let (_, r) = d.get("/api/v1/route?domain=%D1%82%D0%B5%D1%81%D1%82.%D1%80%D1%84").unwrap();
    assert_eq!(r["canonical"], "xn--e1aybc.xn--p1ai", "{r}");
    assert_eq!(d.get("/api/v1/route?domain=example.org").unwrap().1["group"], 1);

    let long = "a".repeat(300);
    for (q, says) in [
        ("bad..domain", "found \"bad..domain\" with an empty label"),
        ("a%00b.ru", "a control character at byte 1"),
        (&*long, "a label of 300 bytes"),
    ] {
        let (code, e) = d.get(&format!("/api/v1/route?domain={q}")).unwrap();
        assert_eq!(code, 400, "{q}: {e}");
        assert_eq!(e["field"], "domain", "{e}");
        assert!(e["error"].as_str().unwrap().contains(says), "{q}: {e}");
        assert!(e.get("group").is_none(), "an invalid name has no group: {e}");
    }

    // Domain paths: a valid name is served (group 1 is active here), also percent-encoded
    // or in Unicode; an invalid one is refused by the routing layer with 400 naming the
    // path segment, not served by the default group.
    let (code, r) = d.get("/api/v1/domains/Example.ORG.").unwrap();
    assert_eq!((code, &r["canonical"]), (200, &json!("example.org")), "{r}");
    let (code, r) = d.get("/api/v1/domains/example%2Eorg").unwrap();
    assert_eq!((code, &r["canonical"]), (200, &json!("example.org")), "{r}");
    for (q, says) in [("bad..domain", "empty label"), ("a%00b.ru", "control character"), (&*long, "300 bytes")] {
        let (code, e) = d.get(&format!("/api/v1/domains/{q}")).unwrap();
        assert_eq!(code, 400, "{q}: {e}");
        assert_eq!(e["field"], "domain", "{e}");
        assert!(e["error"].as_str().unwrap().contains(says), "{q}: {e}");
        assert!(e.get("served_by").is_none(), "{q} must not be served: {e}");
    }
}

mod http_text {

    /// Blocking text GET.
    pub fn blocking_get_text(url: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { ::reqwest::get(url).await.unwrap().text().await.unwrap() })
    }
}
