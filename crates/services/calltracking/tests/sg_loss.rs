//! sg loss against real Kamailio 5.6: two edge proxies (`examples/kamailio/sg.cfg`, adding
//! Path) in front of the registrar (`examples/kamailio/kamailio.cfg`); SIPp phones
//! register through sg1, sg2 and directly. kill -9 of sg1: its contacts leave the
//! registrar within `fail_after` × interval + 1 s; the others stay, and a call through
//! sg2 still reaches its phone. The same with WebSocket softphones (SIP over WebSocket,
//! RFC 7118, from `tests/phones/stream_phone.py`): those registered through sg1's
//! WebSocket listener leave with sg1, those through sg2's stay.

mod common;
use common::*;
use mware_testkit::proc::{free_port, Child};
use mware_testkit::sip::{free_sip_port, Kamailio, Phone};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn aors(kam: &Kamailio) -> Vec<String> {
    let mut a = kam.aors().unwrap();
    a.sort();
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_through_a_lost_sg_leave_the_registrar_and_the_others_stay() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registrar::start(dir.path());
    let sg_cfg = repo().join("examples/kamailio/sg.cfg");
    let registrar = format!("REGISTRAR=\"sip:127.0.0.1:{}\"", reg.sip_port);
    let mut sg1 =
        Kamailio::start_on(&sg_cfg, dir.path(), &[&registrar], mware_testkit::sip::free_sip_port(), mware_testkit::proc::free_port())
            .unwrap();
    let sg2 = Kamailio::start_on(&sg_cfg, dir.path(), &[&registrar], mware_testkit::sip::free_sip_port(), mware_testkit::proc::free_port())
        .unwrap();
    let uas = scenario("uas_static.xml");
    let _a1 = Phone::start(&uas, dir.path(), "a1", DOMAIN, sg1.sip_port, &[]).expect("a1 through sg1");
    let _a2 = Phone::start(&uas, dir.path(), "a2", DOMAIN, sg1.sip_port, &[]).expect("a2 through sg1");
    let b1 = Phone::start(&uas, dir.path(), "b1", DOMAIN, sg2.sip_port, &[]).expect("b1 through sg2");
    let _c1 = Phone::start(&uas, dir.path(), "c1", DOMAIN, reg.sip_port, &[]).expect("c1 direct");
    assert_eq!(aors(reg.kam()), ["a1@example.test", "a2@example.test", "b1@example.test", "c1@example.test"]);
    let dump = reg.kam().rpc("ul.dump", json!([])).unwrap().to_string();
    assert!(dump.contains(&format!("127.0.0.1:{};lr", sg1.sip_port)), "the registrar keeps sg1's Path: {dump}");

    let (coord, _m, fence) = coordinator(dir.path()).await;
    let (interval, fail_after) = (300u64, 3u64);
    let section = json!({
        "registrar_rpc": reg.rpc_url(),
        "sg": [{"name": "sg1", "address": format!("sip:127.0.0.1:{}", sg1.sip_port)},
               {"name": "sg2", "address": format!("sip:127.0.0.1:{}", sg2.sip_port)}],
        "sg_check": {"interval_ms": interval, "timeout_ms": 200, "fail_after": fail_after}
    });
    let run = start(coord, fence, site(section)).await;
    wait(Duration::from_secs(3), || {
        run.svc_status()["sg"].as_array().is_some_and(|a| a.len() == 2 && a.iter().all(|s| s["state"] == "up"))
    })
    .await;

    let t0 = Instant::now();
    sg1.kill9();
    let bound = Duration::from_millis(fail_after * interval + 1000);
    loop {
        let a = aors(reg.kam());
        if !a.iter().any(|x| x.starts_with("a1@") || x.starts_with("a2@")) {
            break;
        }
        assert!(t0.elapsed() < bound, "sg1's contacts still there after {:?}: {a:?}", t0.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("sg1's contacts left the registrar {:?} after its kill (bound {bound:?})", t0.elapsed());
    assert_eq!(aors(reg.kam()), ["b1@example.test", "c1@example.test"], "sg2's and the direct contact stay");

    let st = run.svc_status();
    let sg1v = st["sg"].as_array().unwrap().iter().find(|s| s["name"] == "sg1").unwrap().clone();
    assert_eq!((sg1v["state"].as_str(), sg1v["removed"].as_u64()), (Some("lost"), Some(2)), "{st}");
    assert!(run.metrics().contains("mware_calltracking_sg_contacts_removed_total{sg=\"sg1\"} 2"), "{}", run.metrics());
    assert!(run.metrics().contains("mware_calltracking_sg_up{sg=\"sg1\"} 0"), "{}", run.metrics());
    let items = run.items();
    assert!(items.iter().any(|(i, s, r)| i == "sg sg1" && s == "failing" && r.contains("removed 2 contact(s)")), "{items:?}");

    let rc = call(reg.sip_port, "b1", dir.path());
    assert_eq!(rc, 0, "a call through sg2 still reaches b1: {:#?}", b1.messages());
    b1.wait_for("INVITE", Duration::from_secs(2)).unwrap();
    run.stop().await.unwrap();
}

/// An sg with a WebSocket listener on a port of its own; (sg, its WebSocket port).
fn ws_sg(dir: &std::path::Path, registrar: &str) -> (Kamailio, u16) {
    let ws = free_port();
    let defines = [registrar.to_string(), "WITH_WEBSOCKET".into(), format!("WS_PORT={ws}")];
    let defines: Vec<&str> = defines.iter().map(String::as_str).collect();
    let cfg = repo().join("examples/kamailio/sg.cfg");
    let k = Kamailio::start_listening(&cfg, dir, &defines, free_sip_port(), free_port(), &[format!("tcp:127.0.0.1:{ws}")]).expect("sg");
    (k, ws)
}

/// A WebSocket softphone registered as `user` through the sg's WebSocket port; it keeps
/// its connection open while it runs.
fn ws_phone(dir: &std::path::Path, user: &str, ws_port: u16) -> Child {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/phones/stream_phone.py");
    let log = dir.join(format!("{user}.log"));
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.arg(script).args(["ws", "127.0.0.1", &ws_port.to_string(), user, DOMAIN, "600"]);
    let child = Child::spawn(&format!("ws phone {user}"), cmd, &log).expect("python3");
    let t0 = Instant::now();
    loop {
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        if out.contains("registered 200") {
            return child;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{user} did not register over WebSocket: {out}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_contacts_through_a_lost_sg_leave_and_those_through_the_other_stay() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registrar::start(dir.path());
    let registrar = format!("REGISTRAR=\"sip:127.0.0.1:{}\"", reg.sip_port);
    let (mut sg1, ws1) = ws_sg(dir.path(), &registrar);
    let (sg2, ws2) = ws_sg(dir.path(), &registrar);
    let _w1 = ws_phone(dir.path(), "w1", ws1);
    let _w2 = ws_phone(dir.path(), "w2", ws1);
    let _w3 = ws_phone(dir.path(), "w3", ws2);
    let _u1 = Phone::start(&scenario("uas_static.xml"), dir.path(), "u1", DOMAIN, sg1.sip_port, &[]).expect("u1 through sg1 over UDP");
    let _u2 = Phone::start(&scenario("uas_static.xml"), dir.path(), "u2", DOMAIN, sg2.sip_port, &[]).expect("u2 through sg2 over UDP");
    assert_eq!(aors(reg.kam()), ["u1@example.test", "u2@example.test", "w1@example.test", "w2@example.test", "w3@example.test"]);
    let w1 = reg.contacts("w1@example.test");
    assert!(w1.len() == 1 && w1[0].ends_with(";transport=ws"), "a WebSocket contact: {w1:?}");

    let (coord, _m, fence) = coordinator(dir.path()).await;
    let (interval, fail_after) = (300u64, 3u64);
    let section = json!({
        "registrar_rpc": reg.rpc_url(),
        "sg": [{"name": "sg1", "address": format!("sip:127.0.0.1:{}", sg1.sip_port)},
               {"name": "sg2", "address": format!("sip:127.0.0.1:{}", sg2.sip_port)}],
        "sg_check": {"interval_ms": interval, "timeout_ms": 200, "fail_after": fail_after}
    });
    let run = start(coord, fence, site(section)).await;
    wait(Duration::from_secs(3), || {
        run.svc_status()["sg"].as_array().is_some_and(|a| a.len() == 2 && a.iter().all(|s| s["state"] == "up"))
    })
    .await;

    let t0 = Instant::now();
    sg1.kill9();
    let bound = Duration::from_millis(fail_after * interval + 1000);
    loop {
        let a = aors(reg.kam());
        if !a.iter().any(|x| ["w1@", "w2@", "u1@"].iter().any(|p| x.starts_with(p))) {
            break;
        }
        assert!(t0.elapsed() < bound, "sg1's contacts still there after {:?}: {a:?}", t0.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("sg1's WebSocket and UDP contacts left the registrar {:?} after its kill (bound {bound:?})", t0.elapsed());
    assert_eq!(aors(reg.kam()), ["u2@example.test", "w3@example.test"], "sg2's WebSocket and UDP contacts stay");
    let st = run.svc_status();
    let sg1v = st["sg"].as_array().unwrap().iter().find(|s| s["name"] == "sg1").unwrap().clone();
    assert_eq!((sg1v["state"].as_str(), sg1v["removed"].as_u64()), (Some("lost"), Some(3)), "{st}");
    drop(sg2);
    run.stop().await.unwrap();
}

async fn wait(timeout: Duration, pred: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !pred() {
        assert!(t0.elapsed() < timeout, "condition not met within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
