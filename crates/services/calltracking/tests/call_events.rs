//! Call events from a real Kamailio 5.6 (`examples/kamailio/kamailio.cfg` with
//! `WITH_CALLEVENTS`: the dialog module's event routes, posted to mware over HTTP by
//! `http_client` from a timer process) for SIPp calls through it: the live call while
//! it lasts, then the journal of ended calls in the coordinator, bounded; a call to a
//! busy phone ends unanswered with its code; after a restart of the service (a failover)
//! the live call is read back from the core (`dlg.list`).

mod common;
use common::*;
use mware_testkit::sip::Phone;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn wait_for(url: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let v = get(url).await;
        if pred(&v) {
            return v;
        }
        assert!(t0.elapsed() < timeout, "condition not met within {timeout:?}: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_through_kamailio_are_tracked_live_then_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, _m, fence) = coordinator(dir.path()).await;
    let mut reg = Registrar::new(dir.path(), vec![]);
    let section = json!({"registrar_rpc": reg.rpc_url(), "journal_size": 2});
    let run = start(coord.clone(), fence, site(section.clone())).await;
    let api = run.serve_api().await;
    reg.defines = vec!["WITH_CALLEVENTS".into(), format!("MWARE_EVENTS_URL=\"{api}/api/calltracking/v1/events\"")];
    reg.restart();
    let _bob = Phone::start(&scenario("uas_static.xml"), dir.path(), "bob", DOMAIN, reg.sip_port, &["-d", "300"]).expect("bob");
    let calls = format!("{api}/api/calltracking/v1/{DOMAIN}/calls");

    let port = reg.sip_port;
    let d = dir.path().to_path_buf();
    let caller = tokio::task::spawn_blocking(move || call_holding(port, "bob", &d, 2000));
    let v = wait_for(&calls, Duration::from_secs(5), |v| v["live"].as_array().is_some_and(|l| l.len() == 1 && l[0]["state"] == "answered"))
        .await;
    let live = &v["live"][0];
    assert_eq!((live["from"].as_str(), live["to"].as_str()), (Some("caller"), Some("bob")), "{v:#}");
    assert!(live["answered_ms"].as_u64().unwrap() >= live["since_ms"].as_u64().unwrap() + 250, "rang about 300 ms first: {v:#}");

    // A failover while the call is up: a new activity reads it back from the core.
    let run = restart(run, coord.clone(), fence).await;
    let v = get(&calls).await;
    assert_eq!(v["live"].as_array().map(Vec::len), Some(1), "read back from dlg.list: {v:#}");
    assert_eq!((&v["live"][0]["id"], v["live"][0]["state"].as_str()), (&live["id"], Some("answered")), "{v:#}");

    assert_eq!(caller.await.unwrap(), 0, "the call went through");
    let v = wait_for(&calls, Duration::from_secs(3), |v| v["ended"].as_array().is_some_and(|e| e.len() == 1)).await;
    let e = &v["ended"][0];
    assert_eq!(
        (e["id"].clone(), e["answered"].clone(), e["from"].clone(), e["to"].clone()),
        (live["id"].clone(), json!(true), json!("caller"), json!("bob")),
        "{v:#}"
    );
    assert!(v["live"].as_array().unwrap().is_empty(), "{v:#}");

    let _busy = Phone::start(&scenario("uas_busy.xml"), dir.path(), "carol", DOMAIN, reg.sip_port, &["-d", "100"]).expect("carol");
    assert_ne!(call(reg.sip_port, "carol", dir.path()), 0, "carol is busy");
    let v = wait_for(&calls, Duration::from_secs(3), |v| v["ended"].as_array().is_some_and(|e| e.len() == 2)).await;
    assert_eq!(
        (v["ended"][0]["to"].as_str(), v["ended"][0]["answered"].as_bool(), v["ended"][0]["code"].as_u64()),
        (Some("carol"), Some(false), Some(486)),
        "{v:#}"
    );

    // The journal keeps journal_size (2) calls: a third pushes the oldest out.
    assert_eq!(call(reg.sip_port, "bob", dir.path()), 0);
    let v = wait_for(&calls, Duration::from_secs(3), |v| v["ended"][0]["to"] == "bob" && v["ended"][0]["id"] != live["id"]).await;
    assert_eq!(v["ended"].as_array().unwrap().len(), 2, "{v:#}");
    let kept = coord.kv_list(GROUP, mware_calltracking::journal::PREFIX).await.unwrap();
    assert_eq!(kept.len(), 2, "bounded in the coordinator");
    assert!(run.metrics().contains("mware_calltracking_events_total"), "{}", run.metrics());
    run.stop().await.unwrap();
}
