//! End-to-end: call tracking on two real `mware run` processes of one group on a real
//! etcd, a real Kamailio (registrar with `WITH_CALLEVENTS`, posting its dialog events to
//! the active instance, and to the other one, `MWARE_EVENTS_URL2`, when the first does
//! not take them) and SIPp phones. A CTI WebSocket client sees a call ring and be
//! answered; an external number at a second Kamailio (presence modules) is busy with a
//! call of its own; kill -9 of the active instance: the next one runs both adapters
//! (WebSocket and gRPC) on the same ports (the client connects again), lists the same
//! live call (read back from the core, not from memory), keeps the static registration
//! bound, subscribes to the external number again and shows it busy (from its server),
//! then idle; the call's end reaches the client and the journal through the second URL;
//! `mware calltracking calls` and `mware registrations list` show the same from a shell.

mod common;

use common::*;
use futures::{SinkExt, StreamExt};
use mware_testkit::etcd::Etcd;
use mware_testkit::sip::{free_sip_port, Kamailio, Phone};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "calltracking-e2e-token";
const DOMAIN: &str = "example.test";

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../services/calltracking/tests/sipp").join(name)
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn ws_connect(port: u16) -> Option<Ws> {
    let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let url = format!("ws://127.0.0.1:{port}/?token={TOKEN}");
    let (mut ws, _) = tokio_tungstenite::client_async(url, s).await.ok()?;
    ws.send(Message::text(json!({"subscribe": {"domain": DOMAIN}}).to_string())).await.ok()?;
    let first = tokio::time::timeout(Duration::from_secs(2), ws.next()).await.ok()??.ok()?;
    first.to_text().ok()?.contains("subscribed").then_some(ws)
}

/// The next call event (changes of the domain's external numbers are skipped).
async fn ws_next(ws: &mut Ws, secs: u64) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(secs), ws.next()).await.expect("a CTI event in time") {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["event"] != "number" {
                    return v;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("CTI connection ended: {other:?}"),
        }
    }
}

fn calls(d: &Daemon) -> Value {
    let (code, v) = d.get_auth(&format!("/api/calltracking/v1/{DOMAIN}/calls"), TOKEN).expect("answer");
    assert_eq!(code, 200, "{v}");
    v
}

/// The external number's view on `d` (forwarded to the active instance), once `pred` holds.
fn number(d: &Daemon, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        if let Some((200, v)) = d.get_auth(&format!("/api/calltracking/v1/{DOMAIN}/numbers"), TOKEN) {
            if pred(&v["numbers"][0]) {
                return v["numbers"][0].clone();
            }
            assert!(t0.elapsed() < timeout, "the external number never matched: {v}");
        } else {
            assert!(t0.elapsed() < timeout, "no answer about the external number");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A call at the other site to 201@other.test, held `hold_ms`; SIPp's exit code.
fn call_201(sip_port: u16, dir: PathBuf, hold_ms: u64) -> std::thread::JoinHandle<Option<i32>> {
    std::thread::spawn(move || {
        std::process::Command::new("/usr/bin/sipp")
            .arg(format!("127.0.0.1:{sip_port}"))
            .arg("-sf")
            .arg(mware_testkit::sip::scenario("uac.xml"))
            .args(["-s", "201", "-key", "domain", "other.test", "-d", &hold_ms.to_string(), "-i", "127.0.0.1", "-p"])
            .arg(free_sip_port().to_string())
            .args(["-m", "1", "-timeout", "30", "-timeout_error", "-nostdin"])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .code()
    })
}

fn running(v: &Value) -> bool {
    v["state"] == "active"
        && v["services"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == "calltracking" && s["state"] == "running"))
}

#[test]
fn the_next_instance_serves_the_same_live_call_and_runs_the_adapter() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_addr().0, free_addr().0];
    let addrs = ports.map(|p| format!("127.0.0.1:{p}"));
    // The core posts to m10 and, when m10 does not take them (killed), to m20.
    std::env::set_var("MWARE_EVENTS_TOKEN", TOKEN);
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/kamailio/kamailio.cfg");
    let url = format!("MWARE_EVENTS_URL=\"http://{}/api/calltracking/v1/events\"", addrs[0]);
    let url2 = format!("MWARE_EVENTS_URL2=\"http://{}/api/calltracking/v1/events\"", addrs[1]);
    let kam =
        Kamailio::start_on(&cfg, dir.path(), &["WITH_CALLEVENTS", &url, &url2], free_sip_port(), mware_testkit::proc::free_port()).unwrap();
    // Another site's registrar and presence server, with its phone 201 (an external number).
    let presence_cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/kamailio/presence.cfg");
    let other = Kamailio::start_presence(&presence_cfg, dir.path(), "other.test").unwrap();
    let _p201 = Phone::start(&scenario("uas_static.xml"), dir.path(), "201", "other.test", other.sip_port, &["-d", "200"]).unwrap();
    let gw = Phone::listen(&scenario("uas_static.xml"), dir.path(), "gw1", &[]).unwrap();
    let _bob = Phone::start(&scenario("uas_static.xml"), dir.path(), "bob", DOMAIN, kam.sip_port, &["-d", "200"]).unwrap();
    let cti_port = mware_testkit::proc::free_port();
    let grpc_port = mware_testkit::proc::free_port();
    let section = json!({"registrar_rpc": kam.rpc_url(), "resync_ms": 300, "options": {"interval_ms": 500, "timeout_ms": 400},
        "static_registrations": [{"domain": DOMAIN, "user": "gw1", "contact": format!("sip:gw1@127.0.0.1:{}", gw.port)}],
        "external": {"listen": "127.0.0.1:0", "expires_s": 60,
                     "numbers": [{"domain": DOMAIN, "number": "sip:201@other.test", "server": other.uri()}]}});
    let roles: Vec<Value> = (0..2)
        .map(|i| {
            json!({"name": format!("m{}", (i + 1) * 10), "roletype": "mware", "iface": "lo", "group": 1, "order": (i + 1) * 10,
                   "api_port": ports[i], "calltracking": section, "cti_adapters": [{"key": "websocket-json", "iface": "default", "port": cti_port},
                                                                           {"key": "grpc", "iface": "default", "port": grpc_port}]})
        })
        .collect();
    let site = json!({"site": "ct",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "CT_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": roles}]});
    let path = dir.path().join("site.json");
    std::fs::write(&path, site.to_string()).unwrap();
    let start = |i: usize| {
        let name = format!("m{}", (i + 1) * 10);
        Daemon::start(&path, &name, &addrs[i], dir.path().join(format!("{name}.log")), &[("CT_TOKEN", TOKEN)])
    };
    let mut m10 = start(0);
    m10.wait_status(Duration::from_secs(30), running);
    let m20 = start(1);
    m20.wait_status(Duration::from_secs(15), |v| v["state"] == "passive");
    let aor = format!("gw1@{DOMAIN}");
    let bound = |k: &Kamailio| {
        k.rpc("ul.lookup", json!(["location", aor])).map(|v| v.to_string().contains(&format!("127.0.0.1:{}", gw.port))).unwrap_or(false)
    };
    let t0 = Instant::now();
    while !bound(&kam) {
        assert!(t0.elapsed() < Duration::from_secs(5), "the static contact was never bound");
        std::thread::sleep(Duration::from_millis(50));
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut ws = rt.block_on(ws_connect(cti_port)).expect("the CTI adapter on the active instance");
    let (sip, d) = (kam.sip_port, dir.path().to_path_buf());
    let caller = std::thread::spawn(move || {
        let st = std::process::Command::new("/usr/bin/sipp")
            .arg(format!("127.0.0.1:{sip}"))
            .arg("-sf")
            .arg(mware_testkit::sip::scenario("uac.xml"))
            .args(["-s", "bob", "-key", "domain", DOMAIN, "-d", "8000", "-i", "127.0.0.1", "-p"])
            .arg(free_sip_port().to_string())
            .args(["-m", "1", "-timeout", "30", "-timeout_error", "-nostdin"])
            .current_dir(d)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        st.code()
    });
    let ringing = rt.block_on(ws_next(&mut ws, 5));
    let answered = rt.block_on(ws_next(&mut ws, 5));
    assert_eq!((ringing["event"].as_str(), answered["event"].as_str()), (Some("ringing"), Some("answered")), "{ringing} {answered}");
    let id = answered["id"].as_str().unwrap().to_string();
    let before = calls(&m20);
    assert_eq!(before["live"][0]["id"], id.as_str(), "forwarded to the active instance: {before}");

    // The external number: idle, then busy with a call of its own that outlives m10.
    number(&m20, Duration::from_secs(10), |n| n["state"] == "idle" && n["subscription"] == "active");
    let other_call = call_201(other.sip_port, dir.path().to_path_buf(), 6000);
    number(&m20, Duration::from_secs(10), |n| n["state"] == "busy");

    let t_kill = Instant::now();
    let kill_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    m10.child.kill9();
    m20.wait_status(Duration::from_secs(15), running);
    let mut ws = loop {
        if let Some(ws) = rt.block_on(ws_connect(cti_port)) {
            break ws;
        }
        assert!(t_kill.elapsed() < Duration::from_secs(15), "the adapter never came back");
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("the CTI adapter answered on the next instance {:?} after the kill", t_kill.elapsed());
    let after = calls(&m20);
    assert_eq!(after["live"].as_array().map(Vec::len), Some(1), "{after}");
    assert_eq!((after["live"][0]["id"].as_str(), after["live"][0]["state"].as_str()), (Some(id.as_str()), Some("answered")), "{after}");
    assert!(bound(&kam), "the static contact stays bound");
    let n = number(&m20, Duration::from_secs(10), |n| n["subscription"] == "active");
    assert_eq!((n["state"].as_str(), n["refreshes"].as_u64()), (Some("busy"), Some(0)), "subscribed again, busy from the server: {n}");

    let ended = rt.block_on(ws_next(&mut ws, 12));
    assert_eq!(
        (ended["event"].as_str(), ended["id"].as_str(), ended["answered"].as_bool()),
        (Some("ended"), Some(id.as_str()), Some(true)),
        "{ended}"
    );
    assert_eq!(caller.join().unwrap(), Some(0), "the call itself went through");
    let journal = calls(&m20);
    assert_eq!(journal["ended"][0]["id"], id.as_str(), "{journal}");
    assert!(journal["live"].as_array().unwrap().is_empty(), "{journal}");
    let st = m20.wait_status(Duration::from_secs(5), |v| {
        v["services"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == "calltracking" && s["detail"]["static"]["example.test/gw1"]["reachable"] == true)
    });
    assert!(st.to_string().contains("websocket-json"), "{st}");
    let ct = st["services"].as_array().unwrap().iter().find(|s| s["name"] == "calltracking").unwrap();
    let grpc = ct["detail"]["cti_adapters"].as_array().unwrap().iter().find(|a| a["key"] == "grpc").cloned().unwrap_or_default();
    assert_eq!(grpc["state"], "running", "the gRPC adapter runs on the next instance: {ct}");
    assert_eq!(other_call.join().unwrap(), Some(0), "the other site's call went through");
    let n = number(&m20, Duration::from_secs(10), |n| n["state"] == "idle");
    assert!(n["since_ms"].as_u64().unwrap() >= kill_ms, "idle since after the kill: {n}");

    // The same from a shell.
    let out = std::process::Command::new(bin())
        .args(["calltracking", "calls", DOMAIN, "--api", &m20.api, "--token-env", "CT_TOKEN"])
        .env("CT_TOKEN", TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&id) && text.contains("caller -> bob  answered"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(bin())
        .args(["registrations", "list", DOMAIN, "--api", &m20.api, "--token-env", "CT_TOKEN"])
        .env("CT_TOKEN", TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("gw1@example.test") && text.contains("yes"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
