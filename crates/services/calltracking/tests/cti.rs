//! The CTI WebSocket adapter: a client subscribed to a domain sees ringing, answered and
//! ended, in order, for a SIPp call through a real Kamailio 5.6 that posts its dialog
//! events to mware; a client that never reads is cut while another keeps its events;
//! an adapter whose port is taken is shown failed and restarted with a backoff, and
//! clients connect once it is free.

mod common;
use common::*;
use futures::{SinkExt, StreamExt};
use mware_testkit::proc::free_port;
use mware_testkit::sip::Phone;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn connect(port: u16, recv_buffer: Option<usize>) -> Ws {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(n) = recv_buffer {
        sock.set_recv_buffer_size(n as u32).unwrap();
    }
    let s = sock.connect(format!("127.0.0.1:{port}").parse().unwrap()).await.expect("connect");
    tokio_tungstenite::client_async(format!("ws://127.0.0.1:{port}/"), s).await.expect("handshake").0
}

async fn subscribe(ws: &mut Ws, what: Value) {
    ws.send(Message::text(json!({"subscribe": what}).to_string())).await.unwrap();
    let v = next(ws).await;
    assert!(v.get("subscribed").is_some(), "{v}");
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame within 5 s") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("closed: {other:?}"),
        }
    }
}

fn section(reg: &Registrar) -> Value {
    json!({"registrar_rpc": reg.rpc_url()})
}

fn site_with_cti(reg: &Registrar, port: u16) -> mware_config::Site {
    let v = json!({
        "site": "t",
        "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
            {"name": "mware1", "roletype": "mware", "iface": "eth0", "group": GROUP, "order": 10,
             "calltracking": section(reg), "cti_adapters": [{"key": "websocket-json", "iface": "default", "port": port}]}
        ]}]
    });
    mware_config::validate(&v.to_string(), &mware_calltracking::plugin().sections).expect("test site").site
}

async fn wait(timeout: Duration, pred: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !pred() {
        assert!(t0.elapsed() < timeout, "condition not met within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_client_sees_ringing_answered_ended_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, _m, fence) = coordinator(dir.path()).await;
    let mut reg = Registrar::new(dir.path(), vec![]);
    let port = free_port();
    let run = start(coord, fence, site_with_cti(&reg, port)).await;
    let api = run.serve_api().await;
    reg.defines = vec!["WITH_CALLEVENTS".into(), format!("MWARE_EVENTS_URL=\"{api}/api/calltracking/v1/events\"")];
    reg.restart();
    let _bob = Phone::start(&scenario("uas_static.xml"), dir.path(), "bob", DOMAIN, reg.sip_port, &["-d", "200"]).expect("bob");
    wait(Duration::from_secs(3), || run.svc_status()["cti_adapters"][0]["state"] == "running").await;
    let mut ws = connect(port, None).await;
    subscribe(&mut ws, json!({"domain": DOMAIN})).await;
    let mut other = connect(port, None).await;
    subscribe(&mut other, json!({"extension": format!("nobody@{DOMAIN}")})).await;
    assert_eq!(run.svc_status()["cti_adapters"][0]["clients"], 2);

    assert_eq!(call_holding(reg.sip_port, "bob", dir.path(), 300), 0);
    let mut seen = vec![];
    for _ in 0..3 {
        let v = next(&mut ws).await;
        assert_eq!((v["from"].as_str(), v["to"].as_str(), v["domain"].as_str()), (Some("caller"), Some("bob"), Some(DOMAIN)), "{v}");
        seen.push((v["event"].as_str().unwrap().to_string(), v["at_ms"].as_u64().unwrap()));
    }
    let events: Vec<&str> = seen.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(events, ["ringing", "answered", "ended"]);
    assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "times in order: {seen:?}");
    // The client following another extension got nothing.
    assert!(tokio::time::timeout(Duration::from_millis(300), other.next()).await.is_err(), "nothing for nobody");
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_and_a_taken_port_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, _m, fence) = coordinator(dir.path()).await;
    let reg = Registrar::new(dir.path(), vec![]);
    let port = free_port();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let run = start(coord, fence, site_with_cti(&reg, port)).await;
    wait(Duration::from_secs(3), || run.svc_status()["cti_adapters"][0]["restarts"].as_u64() >= Some(2)).await;
    let st = run.svc_status();
    assert_eq!(st["cti_adapters"][0]["state"], "failed", "{st}");
    assert!(st["cti_adapters"][0]["reason"].as_str().unwrap().contains("cannot listen"), "{st}");
    let t0 = Instant::now();
    drop(squatter);
    wait(Duration::from_secs(6), || run.svc_status()["cti_adapters"][0]["state"] == "running").await;
    eprintln!("the adapter was back {:?} after its port was freed (pauses at most 5 s)", t0.elapsed());

    let api = run.serve_api().await;
    let mut slow = connect(port, Some(4096)).await;
    subscribe(&mut slow, json!({"domain": DOMAIN})).await;
    let mut fast = connect(port, None).await;
    subscribe(&mut fast, json!({"domain": DOMAIN})).await;
    let reader = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(Ok(m)) = fast.next().await {
            if m.is_text() {
                n += 1;
                if n == 6000 {
                    break;
                }
            }
        }
        (n, fast)
    });
    // 6000 calls ringing (posted as the core posts them), about 1 MB of frames.
    let http = reqwest::Client::new();
    for b in 0..6 {
        let batch: Vec<Value> = (0..1000)
            .map(|i| json!({"event": "ringing", "id": format!("c{b}x{i}"), "from": "caller", "to": format!("u{i}"), "domain": DOMAIN, "code": 180, "at_ms": 1}))
            .collect();
        let r = http.post(format!("{api}/api/calltracking/v1/events")).json(&batch).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let (n, _fast) = tokio::time::timeout(Duration::from_secs(10), reader).await.expect("the reader got them all").unwrap();
    assert_eq!(n, 6000);
    wait(Duration::from_secs(6), || run.svc_status()["cti_adapters"][0]["cut"] == 1).await;
    wait(Duration::from_secs(2), || run.svc_status()["cti_adapters"][0]["clients"] == 1).await; // the reader stays
    assert!(run.metrics().contains("mware_calltracking_cti_cut_total 1"), "{}", run.metrics());
    run.stop().await.unwrap();
}
