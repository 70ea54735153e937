//! The service against a real etcd started by the test: the safety checker, and a
//! restart with a new epoch that restores holders and keeps tokens growing.

mod common;

use common::{checker, get, post, Running};
use mware_testkit::etcd::Etcd;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checker_and_restart_on_etcd() {
    let etcd = Etcd::start().expect("start etcd");
    let coord = common::open(common::etcd(&etcd.endpoint())).await;
    let (m, fence) = common::become_active(&coord, "mware1", 10).await;
    let r = Running::start(common::service(), coord.clone(), fence, m.lease.clone(), "mware1", common::site(json!({}))).await;

    let cfg = checker::Config {
        bases: vec![r.base.clone()],
        domain: "tenant1.example.ru".into(),
        name: "queue-1".into(),
        clients: 8,
        limit: 1,
        duration: Duration::from_secs(3),
        hold: Duration::from_millis(1),
        ttl_ms: 30_000,
        wait_ms: 20_000,
        token: None,
    };
    let rep = tokio::time::timeout(Duration::from_secs(60), checker::run(cfg)).await.expect("checker ends");
    assert!(rep.unexpected.is_empty(), "{:?}", rep.unexpected.first());
    assert_eq!(rep.lost_releases, 0, "grants lost before their release");
    assert!(rep.holds.len() >= 20, "only {} holds in 3 s", rep.holds.len());
    checker::check(&rep.holds, 1).unwrap();
    let last = rep.holds.iter().map(|h| h.token).max().unwrap();

    // A holder survives the change of activity; the counter continues above `last`.
    let http = reqwest::Client::new();
    let (s, a) = post(&http, &r.url("d.ru", "/kept/acquire"), json!({"owner": "a", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200, "{a}");
    let svc = r.stop().await;
    m.leave().await;
    let (_m2, fence2) = common::become_active(&coord, "mware2", 20).await;
    assert!(fence2.epoch > fence.epoch);
    let r = Running::start(svc, coord.clone(), fence2, _m2.lease.clone(), "mware2", common::site(json!({}))).await;
    let (_, v) = get(&http, &r.url("d.ru", "/kept")).await;
    assert_eq!(v["holders"][0]["token"], a["token"], "{v}");
    let (s, b) = post(&http, &r.url("d.ru", "/new/acquire"), json!({"owner": "b", "ttl_ms": 1000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    assert!(b["token"].as_u64().unwrap() > a["token"].as_u64().unwrap().max(last));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_down_means_no_grant_and_a_retryable_503() {
    let mut etcd = Etcd::start().expect("start etcd");
    let coord = common::open(common::etcd(&etcd.endpoint())).await;
    let (_m, fence) = common::become_active(&coord, "mware1", 10).await;
    let r = Running::start(common::service(), coord.clone(), fence, _m.lease.clone(), "mware1", common::site(json!({}))).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let (s, _) = post(&http, &r.url("d.ru", "/m/acquire"), json!({"owner": "a", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    etcd.stop();
    // The grant cannot be made durable: the caller is told to retry, never granted.
    let (s, e) = post(&http, &r.url("d.ru", "/n/acquire"), json!({"owner": "b", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 503, "{e}");
    assert_eq!(e["retryable"], true);
    // The run ends with an error (the host restarts it after a pause, restoring from etcd).
    let url = r.url("d.ru", "/o/acquire");
    let res = tokio::time::timeout(Duration::from_secs(30), r.task).await.expect("run ends");
    assert!(res.unwrap().is_err());
    let (s, _) = post(&http, &url, json!({"owner": "b", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 503);
    r.server.abort();
}

/// Keys under `prefix` in the test group's KV space.
async fn keys(coord: &std::sync::Arc<dyn mware_coord::Coordinator>, prefix: &str) -> Vec<String> {
    coord.kv_list(common::GROUP, prefix).await.unwrap().into_iter().map(|(k, _)| k).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_is_folded_into_records_and_replayed_by_the_next_activity() {
    let etcd = Etcd::start().expect("start etcd");
    let coord = common::open(common::etcd(&etcd.endpoint())).await;
    let (m, fence) = common::become_active(&coord, "mware1", 10).await;
    let r = Running::start(common::service(), coord.clone(), fence, m.lease.clone(), "mware1", common::site(json!({}))).await;
    let http = reqwest::Client::new();
    let (s, a) = post(&http, &r.url("d.ru", "/keep/acquire"), json!({"owner": "a", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    let mut last = 0;
    for _ in 0..20 {
        let (s, g) = post(&http, &r.url("d.ru", "/churn/acquire"), json!({"owner": "c", "ttl_ms": 60000, "wait_ms": 0})).await;
        assert_eq!(s, 200, "{g}");
        last = g["token"].as_u64().unwrap();
        let (s, _) = post(&http, &r.url("d.ru", "/churn/release"), json!({"owner": "c", "token": last})).await;
        assert_eq!(s, 200);
    }
    // Within a few seconds the journal is folded: only the live holder is a record.
    let t0 = std::time::Instant::now();
    while !keys(&coord, "mutex/j/").await.is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(10), "journal not folded: {:?}", keys(&coord, "mutex/j/").await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let records = keys(&coord, "mutex/h/").await;
    assert_eq!(records, [format!("mutex/h/d.ru/keep/{:020}", a["token"].as_u64().unwrap())], "released holders never stay records");

    // Changes made just before the activity ends are still in the journal; the next
    // activity replays them and folds them before it serves.
    let (s, b) = post(&http, &r.url("d.ru", "/late/acquire"), json!({"owner": "b", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    let (s, _) = post(&http, &r.url("d.ru", "/keep/release"), json!({"owner": "a", "token": a["token"]})).await;
    assert_eq!(s, 200);
    let svc = r.stop().await;
    m.leave().await;
    let (m2, fence2) = common::become_active(&coord, "mware2", 20).await;
    let r = Running::start(svc, coord.clone(), fence2, m2.lease.clone(), "mware2", common::site(json!({}))).await;
    assert!(keys(&coord, "mutex/j/").await.is_empty(), "folded on activation");
    let (s, _) = get(&http, &r.url("d.ru", "/keep")).await;
    assert_eq!(s, 404, "the release written last is kept");
    let (_, v) = get(&http, &r.url("d.ru", "/late")).await;
    assert_eq!(v["holders"][0]["token"], b["token"], "{v}");
    let (s, g) = post(&http, &r.url("d.ru", "/churn/acquire"), json!({"owner": "d", "ttl_ms": 1000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    assert!(g["token"].as_u64().unwrap() > b["token"].as_u64().unwrap().max(last), "tokens keep growing: {g}");
    r.stop().await;
    m2.leave().await;
}
