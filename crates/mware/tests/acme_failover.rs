//! End-to-end: the acme service in two real `mware run` daemons of one group (embedded
//! coordinator), against real pebble and BIND 9 (DNS-01). BIND is stopped (SIGSTOP) so
//! the active instance hangs in the middle of its order, after the order is stored and
//! before its challenge is answered; it is killed -9 there. The next instance takes over,
//! finishes **that** order (pebble's log shows one order), and the certificate is shown
//! by `GET /api/v1/certificates` and `mware certs list|show`; `mware certs renew` (operator
//! token) orders a new one.

mod common;

use common::*;
use mware_testkit::bind::Bind;
use mware_testkit::pebble::{Pebble, PebbleOpts};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TOKEN: &str = "acme-e2e-token";

fn wait<T>(what: &str, d: &Daemon, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cert(d: &Daemon) -> Option<Value> {
    match d.get("/api/v1/certificates") {
        Some((200, v)) => v["certificates"].get(0).cloned(),
        _ => None,
    }
}

#[test]
fn kill9_mid_order_the_next_instance_finishes_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let bind = Bind::start("example.com").unwrap();
    let pebble = Pebble::start(&PebbleOpts { dns: Some(bind.addr()), ..PebbleOpts::new(mware_testkit::free_port()) }).unwrap();
    let acme = json!({"directory_url": pebble.directory, "ca_file": pebble.ca_file,
        "dns01": {"server": bind.addr(), "zone": "example.com", "tsig_key_name": bind.key_name, "tsig_key_env": "MWARE_ACME_TSIG", "propagation_s": 0},
        "certificates": [{"name": "wild", "names": ["*.example.com", "example.com"], "challenge": "dns-01"}]});
    let ports = [mware_testkit::free_port(), mware_testkit::free_port()];
    let role = |n: &str, order: i64, port: u16| json!({"name": n, "roletype": "mware", "iface": "lo", "group": 5, "order": order, "api_port": port, "acme": acme});
    std::fs::create_dir_all(dir.path().join("coord")).unwrap();
    let site = json!({
        "site": "ac",
        "coordination": {"backend": "embedded", "path": dir.path().join("coord/coord.sqlite"), "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "MWARE_API_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [role("a10", 10, ports[0]), role("a20", 20, ports[1])]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let env = [("MWARE_API_TOKEN", TOKEN), ("MWARE_ACME_TSIG", bind.secret.as_str())];
    let start = |i: usize, n: &str| Daemon::start(&cfg, n, &format!("127.0.0.1:{}", ports[i]), dir.path().join(format!("{n}.log")), &env);

    // BIND hangs: the first DNS-01 update waits (up to its 10 s limit) mid-order.
    bind.signal(libc::SIGSTOP);
    let mut d10 = start(0, "a10");
    d10.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    let d20 = start(1, "a20");
    d20.wait_status(Duration::from_secs(20), |v| v["state"] == "passive");
    let order = wait("an order in flight on a10", &d10, 30, || cert(&d10).filter(|c| c["order"]["by"] == "a10"));
    assert!(order["certificate"].is_null(), "{order:#}");
    d10.child.kill9();
    let t0 = Instant::now();
    bind.signal(libc::SIGCONT);
    d20.wait_status(Duration::from_secs(20), |v| v["state"] == "active");
    eprintln!("a20 active {:?} after kill -9 of a10", t0.elapsed());

    let c = wait("the certificate on a20", &d20, 60, || cert(&d20).filter(|c| c["certificate"].is_object()));
    eprintln!("certificate held {:?} after kill -9 of a10", t0.elapsed());
    assert_eq!(c["certificate"]["names"], json!(["*.example.com", "example.com"]), "{c:#}");
    assert!(c["order"].is_null() && c["last_error"].is_null(), "{c:#}");
    assert_eq!(pebble.count("Added order"), 1, "one order at the CA:\n{}", pebble.log_text());
    assert!(d20.log_text().contains("finishing the order a10 started"), "{}", d20.log_text());
    assert!(!d20.log_text().contains(&bind.secret) && !d20.log_text().contains("PRIVATE KEY"), "no secret in the log");

    // The CLI against the survivor.
    let out = std::process::Command::new(bin()).args(["certs", "list", "--api", &d20.api]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("wild") && text.contains("ok"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new(bin()).args(["certs", "show", "wild", "--api", &d20.api]).output().unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["certificate"]["serial"], c["certificate"]["serial"]);

    // The console's panel reads the list route and offers the renewal.
    let (_, console) = d20.get("/api/v1/console").unwrap();
    let panel = &console["panels"]["acme"];
    assert_eq!((panel["source"].as_str(), panel["rows"].as_str()), (Some("/api/v1/certificates"), Some("/certificates")), "{console:#}");
    assert_eq!(panel["actions"][0]["path"], "/api/v1/certificates/{/name}/renew");

    // An operator's renewal: refused without the token, then a second order and a new serial.
    let renew = |token: &str| {
        std::process::Command::new(bin())
            .args(["certs", "renew", "wild", "--api", &d20.api])
            .env("MWARE_API_TOKEN", token)
            .output()
            .unwrap()
    };
    assert!(!renew("wrong-token").status.success(), "a renewal needs the operator's token");
    let out = renew(TOKEN);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let old = c["certificate"]["serial"].clone();
    let c2 = wait("the renewed certificate", &d20, 60, || {
        cert(&d20).filter(|x| x["certificate"]["serial"] != old && x["certificate"].is_object())
    });
    assert_eq!(c2["renew_requested"], false, "{c2:#}");
    assert_eq!(pebble.count("Added order"), 2, "one more order for the renewal");
}
