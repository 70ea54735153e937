//! An operator's eviction of a holder, through the HTTP API on each real coordinator
//! (embedded SQLite, and an etcd started by the test): refused with the field named on bad input and changing
//! nothing; on success the next waiter is granted, the evicted owner's release and
//! renew are refused, and the eviction survives a restart with a new epoch. The
//! holder and waiter gauges fall to 0 when the activity ends.

mod common;

use common::{get, post, Running};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_holder_is_gone_for_good_and_its_waiter_is_granted() {
    let dir = tempfile::tempdir().unwrap();
    eviction(common::embedded(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_holder_is_gone_for_good_on_etcd() {
    let etcd = mware_testkit::etcd::Etcd::start().expect("start etcd");
    eviction(common::etcd(&etcd.endpoint())).await;
}

async fn eviction(settings: mware_coord::Settings) {
    let coord = common::open(settings).await;
    let (m, fence) = common::become_active(&coord, "mware1", 10).await;
    let r = Running::start(common::service(), coord.clone(), fence, m.lease.clone(), "mware1", common::site(json!({}))).await;
    let http = reqwest::Client::new();
    let (s, a) = post(&http, &r.url("d.ru", "/trunk/acquire"), json!({"owner": "dead-script", "ttl_ms": 600000, "wait_ms": 0})).await;
    assert_eq!(s, 200, "{a}");
    let waiter = {
        let (http, url) = (http.clone(), r.url("d.ru", "/trunk/acquire"));
        tokio::spawn(async move { post(&http, &url, json!({"owner": "next", "ttl_ms": 5000, "wait_ms": 20000})).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // Bad input: every problem named, nothing changed.
    let evict = r.url("d.ru", "/trunk/evict");
    let (s, e) = post(&http, &evict, json!({"token": "one"})).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("token")), "{e}");
    assert!(e["error"].as_str().unwrap().contains("invalid reason"), "{e}");
    let (s, e) = post(&http, &evict, json!({"token": a["token"]})).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("reason")), "{e}");
    let (s, e) = post(&http, &evict, json!({"token": 999, "reason": "wrong one"})).await;
    assert_eq!((s, e["field"].as_str()), (409, Some("token")), "{e}");
    let (_, v) = get(&http, &r.url("d.ru", "/trunk")).await;
    assert_eq!(v["holders"][0]["owner"], "dead-script", "{v}");
    assert_eq!(v["waiters"][0]["owner"], "next", "{v}");

    // The eviction: the holder goes, the waiter is granted with a greater token.
    let (s, ev) = post(&http, &evict, json!({"token": a["token"], "reason": "call script died; ticket 4711"})).await;
    assert_eq!(s, 200, "{ev}");
    assert_eq!(ev["evicted"]["owner"], "dead-script");
    assert_eq!(ev["evicted"]["token"], a["token"]);
    let (s, g) = waiter.await.unwrap();
    assert_eq!(s, 200, "{g}");
    assert!(g["token"].as_u64() > a["token"].as_u64());
    // The evicted owner's late calls change nothing.
    let (s, e) = post(&http, &r.url("d.ru", "/trunk/release"), json!({"owner": "dead-script", "token": a["token"]})).await;
    assert_eq!((s, e["field"].as_str()), (409, Some("token")), "{e}");
    let (s, _) = post(&http, &r.url("d.ru", "/trunk/renew"), json!({"owner": "dead-script", "token": a["token"], "ttl_ms": 1000})).await;
    assert_eq!(s, 409);

    // Durable: the next activity restores the waiter's grant, not the evicted one.
    let svc = r.stop().await;
    m.leave().await;
    let (m2, fence2) = common::become_active(&coord, "mware2", 20).await;
    let r = Running::start(svc, coord.clone(), fence2, m2.lease.clone(), "mware2", common::site(json!({}))).await;
    let (_, v) = get(&http, &r.url("d.ru", "/trunk")).await;
    let owners: Vec<_> = v["holders"].as_array().unwrap().iter().map(|h| h["owner"].as_str().unwrap().to_string()).collect();
    assert_eq!(owners, ["next"], "{v}");
    r.stop().await;
}

/// One gauge's value from the registry's text exposition.
fn gauge(reg: &prometheus_client::registry::Registry, name: &str) -> Option<f64> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, reg).unwrap();
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gauges_count_only_while_active() {
    let dir = tempfile::tempdir().unwrap();
    let coord = common::open(common::embedded(dir.path())).await;
    let (_m, fence) = common::become_active(&coord, "mware1", 10).await;
    let mut reg = prometheus_client::registry::Registry::default();
    let svc = mware_mutex::MutexService::new(&mut reg);
    let r = Running::start(svc, coord.clone(), fence, _m.lease.clone(), "mware1", common::site(json!({}))).await;
    let http = reqwest::Client::new();
    let (s, _) = post(&http, &r.url("d.ru", "/a/acquire"), json!({"owner": "x", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    let waiter = {
        let (http, url) = (http.clone(), r.url("d.ru", "/a/acquire"));
        tokio::spawn(async move { post(&http, &url, json!({"owner": "y", "ttl_ms": 1000, "wait_ms": 30000})).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!((gauge(&reg, "mware_mutex_holders"), gauge(&reg, "mware_mutex_waiters")), (Some(1.0), Some(1.0)));
    r.stop().await;
    let (s, _) = waiter.await.unwrap();
    assert_eq!(s, 503, "the waiter is told to retry elsewhere");
    // A passive instance holds nothing: summed over a group, only the active one counts.
    assert_eq!((gauge(&reg, "mware_mutex_holders"), gauge(&reg, "mware_mutex_waiters")), (Some(0.0), Some(0.0)));
    assert_eq!(gauge(&reg, "mware_mutex_journal_entries"), Some(0.0));
}
