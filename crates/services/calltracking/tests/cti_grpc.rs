//! The gRPC CTI adapter (`cti_adapters` key `grpc`, `proto/cti.proto`) with a tonic
//! client: a client subscribed to a domain sees ringing, answered and ended in order for
//! a SIPp call through a real Kamailio 5.6 that posts its dialog events to mware, a hunt
//! subscriber only the calls to its number; a bad request is refused naming what was
//! expected; a client that never reads is cut while another gets all 6000 events.

mod common;
use common::*;
use mware_calltracking::cti_grpc::pb::cti_client::CtiClient;
use mware_calltracking::cti_grpc::pb::subscribe_request::What;
use mware_calltracking::cti_grpc::pb::{Event, SubscribeRequest};
use mware_testkit::proc::free_port;
use mware_testkit::sip::Phone;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::Streaming;

fn site_with_grpc(reg: &Registrar, port: u16) -> mware_config::Site {
    let v = json!({
        "site": "t",
        "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
            {"name": "mware1", "roletype": "mware", "iface": "eth0", "group": GROUP, "order": 10,
             "calltracking": {"registrar_rpc": reg.rpc_url()},
             "cti_adapters": [{"key": "grpc", "iface": "default", "port": port}]}
        ]}]
    });
    mware_config::validate(&v.to_string(), &mware_calltracking::plugin().sections).expect("test site").site
}

async fn client(port: u16) -> CtiClient<Channel> {
    let t0 = Instant::now();
    loop {
        match CtiClient::connect(format!("http://127.0.0.1:{port}")).await {
            Ok(c) => return c,
            Err(e) => assert!(t0.elapsed() < Duration::from_secs(5), "gRPC adapter: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn subscribe(port: u16, what: What) -> Streaming<Event> {
    client(port).await.subscribe(SubscribeRequest { what: Some(what) }).await.expect("subscribed").into_inner()
}

async fn next(s: &mut Streaming<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(5), s.message()).await.expect("an event within 5 s").expect("no error").expect("open")
}

async fn wait(timeout: Duration, pred: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !pred() {
        assert!(t0.elapsed() < timeout, "condition not met within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_subscriber_sees_ringing_answered_ended_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, _m, fence) = coordinator(dir.path()).await;
    let mut reg = Registrar::new(dir.path(), vec![]);
    let port = free_port();
    let run = start(coord, fence, site_with_grpc(&reg, port)).await;
    let api = run.serve_api().await;
    reg.defines = vec!["WITH_CALLEVENTS".into(), format!("MWARE_EVENTS_URL=\"{api}/api/calltracking/v1/events\"")];
    reg.restart();
    let _bob = Phone::start(&scenario("uas_static.xml"), dir.path(), "bob", DOMAIN, reg.sip_port, &["-d", "200"]).expect("bob");
    wait(Duration::from_secs(3), || run.svc_status()["cti_adapters"][0]["state"] == "running").await;
    let mut domain = subscribe(port, What::Domain(DOMAIN.into())).await;
    let mut hunt = subscribe(port, What::Hunt(format!("bob@{DOMAIN}"))).await;
    let mut nobody = subscribe(port, What::Hunt(format!("nobody@{DOMAIN}"))).await;
    wait(Duration::from_secs(2), || run.svc_status()["cti_adapters"][0]["clients"] == 3).await;

    let bad = client(port).await.subscribe(SubscribeRequest { what: Some(What::Extension("bob".into())) }).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    assert!(bad.message().contains("expected extension as user@domain, found \"bob\""), "{bad:?}");
    let none = client(port).await.subscribe(SubscribeRequest { what: None }).await.unwrap_err();
    assert_eq!(none.code(), tonic::Code::InvalidArgument, "{none:?}");

    assert_eq!(call_holding(reg.sip_port, "bob", dir.path(), 300), 0);
    for s in [&mut domain, &mut hunt] {
        let mut seen = vec![];
        for _ in 0..3 {
            let e = next(s).await;
            assert_eq!((e.from.as_str(), e.to.as_str(), e.domain.as_str()), ("caller", "bob", DOMAIN), "{e:?}");
            seen.push((e.event, e.at_ms));
        }
        let events: Vec<&str> = seen.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(events, ["ringing", "answered", "ended"]);
        assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "times in order: {seen:?}");
    }
    assert!(tokio::time::timeout(Duration::from_millis(300), nobody.message()).await.is_err(), "nothing for another number");
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_client_that_never_reads_is_cut_and_another_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, _m, fence) = coordinator(dir.path()).await;
    let reg = Registrar::new(dir.path(), vec![]);
    let port = free_port();
    let run = start(coord, fence, site_with_grpc(&reg, port)).await;
    let api = run.serve_api().await;
    wait(Duration::from_secs(3), || run.svc_status()["cti_adapters"][0]["state"] == "running").await;
    // Subscribed with small HTTP/2 windows (16 KB; hyper's default is 2 MB per stream),
    // and never polled again: flow control stops the server's sends.
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .initial_stream_window_size(16 * 1024)
        .initial_connection_window_size(16 * 1024)
        .connect()
        .await
        .expect("connect");
    let _slow = CtiClient::new(channel).subscribe(SubscribeRequest { what: Some(What::Domain(DOMAIN.into())) }).await.unwrap();
    let mut fast = subscribe(port, What::Domain(DOMAIN.into())).await;
    wait(Duration::from_secs(2), || run.svc_status()["cti_adapters"][0]["clients"] == 2).await;
    let reader = tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok(Some(_)) = fast.message().await {
            n += 1;
            if n == 6000 {
                break;
            }
        }
        (n, fast)
    });
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
    wait(Duration::from_secs(2), || run.svc_status()["cti_adapters"][0]["clients"] == 1).await;
    assert!(run.metrics().contains("mware_calltracking_cti_cut_total 1"), "{}", run.metrics());
    run.stop().await.unwrap();
}
