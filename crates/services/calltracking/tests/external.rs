//! External numbers (RFC 4235): a second Kamailio 5.6 with its presence modules
//! (`examples/kamailio/presence.cfg`) is the registrar of another site's domain and
//! publishes its calls' dialog states. mware subscribes to one of its numbers; a SIPp
//! phone there goes ringing, busy (a call in progress) and idle again, and the cache,
//! the API and a CTI WebSocket client follow. The subscription is refreshed before it
//! expires; a new activity (a failover) subscribes again and keeps serving the state;
//! a server that does not answer shows the subscription failed, retried.

mod common;
use common::*;
use futures::{SinkExt, StreamExt};
use mware_testkit::proc::free_port;
use mware_testkit::sip::{free_sip_port, Kamailio, Phone};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const OTHER: &str = "other.test";
const NUMBER: &str = "sip:201@other.test";

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

fn site_with(reg: &Registrar, external: Value, cti_port: u16) -> mware_config::Site {
    let v = json!({
        "site": "t",
        "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
            {"name": "mware1", "roletype": "mware", "iface": "eth0", "group": GROUP, "order": 10,
             "calltracking": {"registrar_rpc": reg.rpc_url(), "external": external},
             "cti_adapters": [{"key": "websocket-json", "iface": "default", "port": cti_port}]}
        ]}]
    });
    mware_config::validate(&v.to_string(), &mware_calltracking::plugin().sections).expect("test site").site
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Waits until the number's view satisfies `pred`; the view.
async fn wait_number(url: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let v = get(url).await;
        let n = v["numbers"].as_array().and_then(|l| l.iter().find(|n| n["number"] == NUMBER)).cloned().unwrap_or(Value::Null);
        if pred(&n) {
            return n;
        }
        assert!(t0.elapsed() < timeout, "condition not met within {timeout:?}: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A call from a SIPp caller at the other site to 201 there, held `hold_ms`.
fn call_201(port: u16, dir: &std::path::Path, hold_ms: u64) -> i32 {
    std::process::Command::new("/usr/bin/sipp")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-sf")
        .arg(mware_testkit::sip::scenario("uac.xml"))
        .args(["-s", "201", "-key", "domain", OTHER, "-d", &hold_ms.to_string(), "-i", "127.0.0.1", "-p"])
        .arg(free_sip_port().to_string())
        .args(["-m", "1", "-timeout", "15", "-timeout_error", "-nostdin"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("sipp")
        .code()
        .unwrap_or(-1)
}

async fn cti(port: u16) -> Ws {
    let t0 = Instant::now();
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
            match tokio_tungstenite::client_async(format!("ws://127.0.0.1:{port}/"), s).await {
                Ok((ws, _)) => return ws,
                Err(e) => assert!(t0.elapsed() < Duration::from_secs(5), "CTI adapter: {e}"),
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "CTI adapter: no connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next frame, as JSON, within 10 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("closed: {other:?}"),
        }
    }
}

/// Frames until one says `state`; the states seen on the way.
async fn until_state(ws: &mut Ws, state: &str) -> Vec<String> {
    let mut seen = vec![];
    loop {
        let v = next(ws).await;
        assert_eq!((v["event"].as_str(), v["id"].as_str()), (Some("number"), Some(NUMBER)), "{v}");
        let s = v["state"].as_str().unwrap().to_string();
        seen.push(s.clone());
        if s == state {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_phone_goes_busy_and_idle_and_the_cache_follows_through_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, _m, fence) = coordinator(dir.path()).await;
    let reg = Registrar::start(dir.path());
    let other = Kamailio::start_presence(&repo().join("examples/kamailio/presence.cfg"), dir.path(), OTHER).expect("presence kamailio");
    // 201 answers after ringing 500 ms and holds the call until the caller's BYE.
    let _p201 = Phone::start(&scenario("uas_static.xml"), dir.path(), "201", OTHER, other.sip_port, &["-d", "500"]).expect("201");
    let cti_port = free_port();
    let external = json!({"listen": "127.0.0.1:0", "expires_s": 10,
        "numbers": [{"domain": DOMAIN, "number": NUMBER, "server": other.uri()}]});
    let run = start(coord.clone(), fence, site_with(&reg, external, cti_port)).await;
    let api = run.serve_api().await;
    let url = format!("{api}/api/calltracking/v1/{DOMAIN}/numbers");

    // Subscribed: the first NOTIFY says nothing is going on.
    let n = wait_number(&url, Duration::from_secs(10), |n| n["state"] == "idle" && n["subscription"] == "active").await;
    assert_eq!(
        (n["domain"].as_str(), n["server"].as_str(), n["dialogs"].as_u64()),
        (Some(DOMAIN), Some(other.uri().as_str()), Some(0)),
        "{n}"
    );
    let mut ws = cti(cti_port).await;
    ws.send(Message::text(json!({"subscribe": {"number": NUMBER}}).to_string())).await.unwrap();
    assert_eq!(next(&mut ws).await["subscribed"]["number"], NUMBER);
    assert_eq!(next(&mut ws).await["state"], "idle", "a number's subscriber gets its state at once");

    // A call in progress at the other site: ringing, then busy while it lasts, then idle.
    let (port, d) = (other.sip_port, dir.path().to_path_buf());
    let caller = tokio::task::spawn_blocking(move || call_201(port, &d, 3000));
    let busy = wait_number(&url, Duration::from_secs(10), |n| n["state"] == "busy").await;
    assert_eq!(busy["dialogs"], 1, "{busy}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let still = wait_number(&url, Duration::from_secs(1), |n| n["state"] == "busy").await;
    assert_eq!(still["since_ms"], busy["since_ms"], "the state keeps its start: {still}");
    assert!(still["age_ms"].as_u64().unwrap() >= 900, "the state's age grows: {still}");
    assert_eq!(caller.await.unwrap(), 0, "the call went through");
    let idle = wait_number(&url, Duration::from_secs(10), |n| n["state"] == "idle").await;
    assert!(idle["since_ms"].as_u64() > busy["since_ms"].as_u64(), "{idle}");
    let seen = until_state(&mut ws, "idle").await;
    assert_eq!(seen, ["ringing", "busy", "idle"], "the CTI client saw every change, in order");

    // Refreshed before expiry (10 s asked; the refresh goes at 7.5 s): still active after 12 s.
    let n = wait_number(&url, Duration::from_secs(15), |n| n["refreshes"].as_u64() >= Some(1)).await;
    assert_eq!(n["subscription"], "active", "{n}");
    assert!(n["expires_ms"].as_u64().unwrap() > mware_config::now_ms(), "{n}");
    let st = run.svc_status();
    assert_eq!(st["external"][0]["number"], NUMBER, "status shows it: {st}");
    let m = run.metrics();
    assert!(m.contains("mware_calltracking_external_active 1"), "{m}");
    assert!(!m.contains("mware_calltracking_external_notifies_total 0"), "{m}");

    // A failover: the next activity subscribes again; the server's first NOTIFY gives the
    // state (busy: a call is in progress while it takes over), and changes keep coming.
    let (port, d) = (other.sip_port, dir.path().to_path_buf());
    let caller = tokio::task::spawn_blocking(move || call_201(port, &d, 4000));
    wait_number(&url, Duration::from_secs(10), |n| n["state"] == "busy").await;
    let run = restart(run, coord.clone(), fence).await;
    let n = wait_number(&url, Duration::from_secs(10), |n| n["subscription"] == "active").await;
    assert_eq!((n["state"].as_str(), n["refreshes"].as_u64()), (Some("busy"), Some(0)), "read from the server, not memory: {n}");
    assert_eq!(caller.await.unwrap(), 0);
    wait_number(&url, Duration::from_secs(10), |n| n["state"] == "idle").await;
    let mut ws = cti(cti_port).await;
    ws.send(Message::text(json!({"subscribe": {"domain": DOMAIN}}).to_string())).await.unwrap();
    assert!(next(&mut ws).await.get("subscribed").is_some());
    let (port, d) = (other.sip_port, dir.path().to_path_buf());
    let caller = tokio::task::spawn_blocking(move || call_201(port, &d, 500));
    let seen = until_state(&mut ws, "idle").await;
    assert_eq!(seen, ["ringing", "busy", "idle"], "a domain's subscriber gets its numbers' changes");
    assert_eq!(caller.await.unwrap(), 0);
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_answer_shows_the_subscription_failed_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, _m, fence) = coordinator(dir.path()).await;
    let reg = Registrar::start(dir.path());
    // A UDP socket that never answers: the server is down.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = format!("sip:{}", silent.local_addr().unwrap());
    let external = json!({"numbers": [{"domain": DOMAIN, "number": NUMBER, "server": server}]});
    let run = start(coord, fence, site_with(&reg, external, free_port())).await;
    let api = run.serve_api().await;
    let url = format!("{api}/api/calltracking/v1/{DOMAIN}/numbers");
    let n = wait_number(&url, Duration::from_secs(15), |n| n["subscription"] == "failed").await;
    assert_eq!(n["state"], "unknown", "{n}");
    assert!(n["last_answer"].as_str().unwrap().contains("no answer to SUBSCRIBE within 8 s; subscribing again"), "{n}");
    // It retransmitted on timer E (0, 0.5, 1.5, 3.5, 7.5 s), then subscribes again.
    silent.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 4096];
    for i in 0..6 {
        let (len, _) = silent.recv_from(&mut buf).unwrap_or_else(|e| panic!("SUBSCRIBE number {}: {e}", i + 1));
        assert!(buf[..len].starts_with(b"SUBSCRIBE sip:201@other.test SIP/2.0\r\n"), "{}", String::from_utf8_lossy(&buf[..len]));
    }
    assert!(run.metrics().contains("mware_calltracking_external_failures_total 1"), "{}", run.metrics());
    run.stop().await.unwrap();
}
