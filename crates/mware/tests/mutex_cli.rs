//! End-to-end: `mware mutex list|show|evict` against a real `mware run` on the
//! embedded coordinator: an on-call engineer finds the holder of a mutex whose call
//! script died, evicts it with a reason, and the caller waiting in line gets it. The
//! site has an operator token (`api.operator_token_env`): eviction and switchover
//! refuse the call scripts' token.

mod common;

use common::*;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const TOKEN: &str = "cli-Token-5150";
const OPS_TOKEN: &str = "ops-Token-8086";
const DOMAIN: &str = "calls.example.ru";

fn mware(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("CLI_TOKEN").env_remove("CLI_OPS_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run mware");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn an_operator_finds_and_evicts_a_dead_holder_and_the_waiter_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let (port, addr) = free_addr();
    let cfg = dir.path().join("site.json");
    let site = json!({"site": "cli",
        "coordination": {"backend": "embedded", "path": dir.path().join("coord.sqlite")},
        "api": {"token_env": "CLI_TOKEN", "operator_token_env": "CLI_OPS_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"},
            "roles": [{"name": "m1", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "api_port": port}]}]});
    std::fs::write(&cfg, site.to_string()).unwrap();
    let d = Daemon::start(&cfg, "m1", &addr, dir.path().join("m1.log"), &[("CLI_TOKEN", TOKEN), ("CLI_OPS_TOKEN", OPS_TOKEN)]);
    d.wait_status(Duration::from_secs(20), |v| {
        v["state"] == "active"
            && v["services"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == "mutex" && s["state"] == "running"))
    });
    let url = |op: &str| format!("{}/api/v1/domains/{DOMAIN}/mutexes/trunk/{op}", d.api);
    let (s, held) = post_json(&url("acquire"), Some(TOKEN), &json!({"owner": "dead-script", "ttl_ms": 600000, "wait_ms": 0})).unwrap();
    assert_eq!(s, 200, "{held}");
    let waiter = {
        let u = url("acquire");
        std::thread::spawn(move || post_json(&u, Some(TOKEN), &json!({"owner": "next-call", "ttl_ms": 5000, "wait_ms": 8000})))
    };
    std::thread::sleep(Duration::from_millis(300));
    let api = d.api.as_str();
    let metric = |name: &str| {
        let text = get_text(&format!("{api}/metrics")).expect("metrics");
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    assert_eq!((metric("mware_mutex_holders"), metric("mware_mutex_waiters")), (Some(1.0), Some(1.0)));

    let (ok, out) = mware(&["mutex", "list", "-d", DOMAIN, "--api", api], &[]);
    assert!(ok, "{out}");
    assert!(out.contains("trunk") && out.contains("dead-script (token 1)"), "{out}");
    let (ok, out) = mware(&["mutex", "show", "-d", DOMAIN, "trunk", "--api", api], &[]);
    assert!(ok, "{out}");
    assert!(out.contains("dead-script (token 1)") && out.contains("1. next-call"), "{out}");
    let (ok, out) = mware(&["mutex", "show", "-d", DOMAIN, "trunk", "--api", api, "--json"], &[]);
    assert!(ok && serde_json::from_str::<serde_json::Value>(&out).unwrap()["holders"][0]["owner"] == "dead-script", "{out}");

    // Refused: the call scripts' token (403, for switchover too), no token in the
    // environment, a mutex token that holds nothing.
    let evict = ["mutex", "evict", "-d", DOMAIN, "trunk", "--api", api, "--reason", "script died, ticket 4711", "--token", "1"];
    let (ok, out) = mware(&[&evict[..], &["--token-env", "CLI_TOKEN"]].concat(), &[("CLI_TOKEN", TOKEN)]);
    assert!(!ok && out.contains("403") && out.contains("operator's token"), "{out}");
    let (s, e) = post_json(&format!("{api}/api/v1/groups/1/switchover"), Some(TOKEN), &json!({})).unwrap();
    assert_eq!(s, 403, "{e}");
    let evict = [&evict[..], &["--token-env", "CLI_OPS_TOKEN"]].concat();
    let (ok, out) = mware(&evict, &[]);
    assert!(!ok && out.contains("CLI_OPS_TOKEN"), "{out}");
    let wrong: Vec<&str> = evict.iter().map(|a| if *a == "1" { "7" } else { a }).collect();
    let (ok, out) = mware(&wrong, &[("CLI_OPS_TOKEN", OPS_TOKEN)]);
    assert!(!ok && out.contains("does not hold"), "{out}");

    let (ok, out) = mware(&evict, &[("CLI_OPS_TOKEN", OPS_TOKEN)]);
    assert!(ok, "{out}");
    assert!(out.contains("evicted dead-script (token 1)"), "{out}");
    let (s, got) = waiter.join().unwrap().unwrap();
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["owner"], "next-call");
    let (ok, out) = mware(&["mutex", "show", "-d", DOMAIN, "trunk", "--api", api], &[]);
    assert!(ok && out.contains("next-call (token 2)") && !out.contains("dead-script"), "{out}");
    assert_eq!(metric("mware_mutex_evictions_total"), Some(1.0));
    assert_eq!(metric("mware_mutex_waiters"), Some(0.0));
    let (ok, out) = mware(&["mutex", "show", "-d", DOMAIN, "never-used", "--api", api], &[]);
    assert!(ok && out.contains("is free"), "{out}");
    let log = d.log_text();
    assert!(log.contains("holder evicted by an operator") && log.contains("ticket 4711"), "{log}");
    assert!(!log.contains(TOKEN) && !log.contains(OPS_TOKEN), "a token leaked into the log");
}
