//! The service against the real embedded (SQLite) coordinator, through its HTTP API:
//! the safety checker, semaphores, FIFO order, TTL expiry of a crashed holder, restart
//! with a new epoch, a waiter's line record restored as an unconfirmed holder, a lost
//! lease, a stale epoch, and every bad input.

mod common;

use common::{checker, get, post, post_raw, Running};
use serde_json::{json, Value};
use std::time::Duration;

fn limits() -> Value {
    json!({"max_name_len": 32, "max_waiters_per_mutex": 4, "max_mutexes_per_domain": 5, "max_ttl_ms": 600000})
}

async fn start(dir: &std::path::Path) -> (std::sync::Arc<dyn mware_coord::Coordinator>, mware_coord::Membership, Running) {
    start_with(dir, limits()).await
}

/// Stops `r`, leaves with `m`, and starts the same service object (as the host would)
/// in a new activity (new epoch) of mware2.
async fn restart_as_mware2(
    coord: &std::sync::Arc<dyn mware_coord::Coordinator>,
    m: mware_coord::Membership,
    r: Running,
) -> (mware_coord::Membership, Running) {
    let svc = r.stop().await;
    m.leave().await;
    let (m2, fence2) = common::become_active(coord, "mware2", 20).await;
    let r = Running::start(svc, coord.clone(), fence2, m2.lease.clone(), "mware2", common::site(limits())).await;
    (m2, r)
}

async fn start_with(
    dir: &std::path::Path,
    limits: Value,
) -> (std::sync::Arc<dyn mware_coord::Coordinator>, mware_coord::Membership, Running) {
    let coord = common::open(common::embedded(dir)).await;
    let (m, fence) = common::become_active(&coord, "mware1", 10).await;
    let r = Running::start(common::service(), coord.clone(), fence, m.lease.clone(), "mware1", common::site(limits)).await;
    (coord, m, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checker_mutex_and_semaphore_hold_their_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, _m, r) = start_with(dir.path(), json!({})).await;
    for (name, limit) in [("one", 1u32), ("three", 3)] {
        let cfg = checker::Config {
            bases: vec![r.base.clone()],
            domain: "tenant1.example.ru".into(),
            name: name.into(),
            clients: 8,
            limit,
            duration: Duration::from_secs(3),
            hold: Duration::from_millis(2),
            ttl_ms: 30_000,
            wait_ms: 20_000,
            token: None,
        };
        let rep = tokio::time::timeout(Duration::from_secs(60), checker::run(cfg)).await.expect("checker ends");
        assert!(rep.unexpected.is_empty(), "{} unexpected answers, first: {:?}", rep.unexpected.len(), rep.unexpected.first());
        assert_eq!(rep.unavailable, 0);
        assert!(rep.holds.len() >= 20, "only {} holds in 3 s", rep.holds.len());
        checker::check(&rep.holds, limit).unwrap_or_else(|e| panic!("{name}: {e}"));
        if limit > 1 {
            // The semaphore really lets several in at once (not just one at a time).
            assert!(checker::check(&rep.holds, 1).is_err(), "a limit-3 semaphore never had 2 holders");
        }
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_order_and_see_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, _m, r) = start(dir.path()).await;
    let http = reqwest::Client::new();
    let acq = r.url("d.ru", "/q/acquire");
    let (s, a) = post(&http, &acq, json!({"owner": "first", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200, "{a}");
    let mut waiters = vec![];
    for i in 0..3 {
        let (h2, acq2) = (http.clone(), acq.clone());
        waiters.push(tokio::spawn(async move {
            let (s, v) = post(&h2, &acq2, json!({"owner": format!("w{i}"), "ttl_ms": 60000, "wait_ms": 20000})).await;
            assert_eq!(s, 200, "{v}");
            (i, v["token"].as_u64().unwrap(), std::time::Instant::now())
        }));
        // Queue them one after the other.
        let want = i + 1;
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let (_, v) = get(&http, &r.url("d.ru", "/q")).await;
                if v["waiters"].as_array().map_or(0, |w| w.len()) == want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("waiter queued");
    }
    let (_, v) = get(&http, &r.url("d.ru", "/q")).await;
    let order: Vec<_> = v["waiters"].as_array().unwrap().iter().map(|w| w["owner"].as_str().unwrap().to_string()).collect();
    assert_eq!(order, ["w0", "w1", "w2"]);
    assert_eq!(v["holders"][0]["owner"], "first");
    // Release down the line; each release hands over to the next in order.
    let mut token = a["token"].as_u64().unwrap();
    let mut owner = "first".to_string();
    for w in waiters {
        let (s, v) = post(&http, &r.url("d.ru", "/q/release"), json!({"owner": owner, "token": token})).await;
        assert_eq!(s, 200, "{v}");
        let (i, t, _) = w.await.unwrap();
        assert!(t > token, "tokens grow: {t} after {token}");
        owner = format!("w{i}");
        token = t;
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_holder_loses_the_lock_at_its_ttl_and_the_waiter_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, _m, r) = start(dir.path()).await;
    let http = reqwest::Client::new();
    let acq = r.url("d.ru", "/x/acquire");
    let (s, _) = post(&http, &acq, json!({"owner": "crashed", "ttl_ms": 300, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    // The holder never renews nor releases. A waiter gets it once the ttl is over.
    let t0 = std::time::Instant::now();
    let (s, v) = post(&http, &acq, json!({"owner": "next", "ttl_ms": 5000, "wait_ms": 10000})).await;
    assert_eq!(s, 200, "{v}");
    assert!(t0.elapsed() >= Duration::from_millis(200), "granted before the holder's ttl ran out");
    // The crashed holder's late release changes nothing.
    let (s, e) = post(&http, &r.url("d.ru", "/x/release"), json!({"owner": "crashed", "token": 1})).await;
    assert_eq!(s, 409, "{e}");
    assert_eq!(e["field"], "token");
    let (_, v) = get(&http, &r.url("d.ru", "/x")).await;
    assert_eq!(v["holders"][0]["owner"], "next");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_a_new_epoch_restores_holders_and_tokens_keep_growing() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, m, r) = start(dir.path()).await;
    let http = reqwest::Client::new();
    let (s, a) = post(&http, &r.url("d.ru", "/keep/acquire"), json!({"owner": "a", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    let (s, b) = post(&http, &r.url("d.ru", "/gone/acquire"), json!({"owner": "b", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    let (s, _) = post(&http, &r.url("d.ru", "/gone/release"), json!({"owner": "b", "token": b["token"]})).await;
    assert_eq!(s, 200);
    let (_m2, r) = restart_as_mware2(&coord, m, r).await;
    let (_, v) = get(&http, &r.url("d.ru", "/keep")).await;
    assert_eq!(v["holders"][0]["owner"], "a", "{v}");
    assert_eq!(v["holders"][0]["token"], a["token"]);
    assert_eq!(v["holders"][0]["expires_at_ms"], a["expires_at_ms"], "remaining time is kept");
    let (s, _) = get(&http, &r.url("d.ru", "/gone")).await;
    assert_eq!(s, 404, "a released mutex stays released");
    let (s, c) = post(&http, &r.url("d.ru", "/gone/acquire"), json!({"owner": "c", "ttl_ms": 1000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    assert!(c["token"].as_u64() > b["token"].as_u64(), "token {} after {}", c["token"], b["token"]);
    // The restored holder can still release with its token.
    let (s, v) = post(&http, &r.url("d.ru", "/keep/release"), json!({"owner": "a", "token": a["token"]})).await;
    assert_eq!(s, 200, "{v}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiters_line_record_survives_a_restart_as_an_unconfirmed_holder() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, m, r) = start(dir.path()).await;
    let http = reqwest::Client::new();
    let (s, a) = post(&http, &r.url("d.ru", "/m/acquire"), json!({"owner": "a", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    let url = r.url("d.ru", "/m/acquire");
    let h2 = http.clone();
    let waiting = tokio::spawn(async move { post(&h2, &url, json!({"owner": "b", "ttl_ms": 30000, "wait_ms": 20000})).await });
    // b is in line; its line record is written while it waits.
    let b_token = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let (_, v) = get(&http, &r.url("d.ru", "/m")).await;
            if let Some(t) = v["waiters"][0]["token"].as_u64() {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("b queued");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let restored_at = mware_coord::now_ms();
    let (_m2, r) = restart_as_mware2(&coord, m, r).await;
    let (s, e) = waiting.await.unwrap();
    assert_eq!(s, 503, "the waiter is told to retry: {e}");
    let (_, v) = get(&http, &r.url("d.ru", "/m")).await;
    let holders = v["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 2, "a and b (who may have been handed the mutex): {v}");
    assert_eq!(holders[0]["owner"], "a");
    assert_eq!(holders[0]["unconfirmed"], true);
    assert_eq!(holders[1]["owner"], "b");
    assert_eq!(holders[1]["token"], b_token);
    assert_eq!(holders[1]["unconfirmed"], true);
    let b_expires = holders[1]["expires_at_ms"].as_u64().unwrap();
    assert!(b_expires >= restored_at + 30000 - 50, "one ttl from the restore: {b_expires} vs {restored_at}");
    // Nobody else gets it while either may hold it.
    let (s, _) = post(&http, &r.url("d.ru", "/m/acquire"), json!({"owner": "c", "ttl_ms": 1000, "wait_ms": 0})).await;
    assert_eq!(s, 409);
    // b asks again: it is not inside, so its record goes, but a may still hold the mutex.
    let (s, _) = post(&http, &r.url("d.ru", "/m/acquire"), json!({"owner": "b", "ttl_ms": 1000, "wait_ms": 0})).await;
    assert_eq!(s, 409);
    let (s, v) = post(&http, &r.url("d.ru", "/m/release"), json!({"owner": "a", "token": a["token"]})).await;
    assert_eq!(s, 200, "{v}");
    let (s, g) = post(&http, &r.url("d.ru", "/m/acquire"), json!({"owner": "b", "ttl_ms": 1000, "wait_ms": 0})).await;
    assert_eq!(s, 200, "{g}");
    assert!(g["token"].as_u64().unwrap() > b_token, "a new token, never the old one again: {g}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_makes_the_service_refuse_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (_coord, m, r) = start(dir.path()).await;
    let http = reqwest::Client::new();
    let (s, g) = post(&http, &r.url("d.ru", "/m/acquire"), json!({"owner": "a", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    let lease = m.lease.clone();
    m.leave().await;
    assert!(!lease.active_now());
    // Past its lease an instance decides nothing, even what needs no write.
    for (path, body) in [
        ("/n/acquire", json!({"owner": "b", "ttl_ms": 60000, "wait_ms": 0})),
        ("/m/release", json!({"owner": "a", "token": g["token"]})),
        ("/m/renew", json!({"owner": "a", "token": g["token"], "ttl_ms": 1000})),
    ] {
        let (s, e) = post(&http, &r.url("d.ru", path), body).await;
        assert_eq!(s, 503, "{path}: {e}");
        assert_eq!(e["retryable"], true);
        assert!(e["error"].as_str().unwrap().contains("lease"), "{e}");
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_epoch_makes_the_service_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let coord = common::open(common::embedded(dir.path())).await;
    let (m, fence) = common::become_active(&coord, "mware1", 10).await;
    // A lease that still looks valid: a process that checked it just before it was
    // paused. The coordinator's fence is then what refuses its writes.
    let forged = std::sync::Arc::new(mware_coord::LeaseStats::default());
    forged.set_active_until(Some(std::time::Instant::now() + Duration::from_secs(3600)));
    let r = Running::start(common::service(), coord.clone(), fence, forged, "mware1", common::site(limits())).await;
    let http = reqwest::Client::new();
    let (s, _) = post(&http, &r.url("d.ru", "/m/acquire"), json!({"owner": "a", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    // Another instance becomes active while this service still runs with the old fence.
    m.leave().await;
    let (_m2, _f2) = common::become_active(&coord, "mware2", 20).await;
    let (s, e) = post(&http, &r.url("d.ru", "/n/acquire"), json!({"owner": "b", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 503, "{e}");
    assert_eq!(e["retryable"], true);
    assert!(e["error"].as_str().unwrap().contains("stale"), "{e}");
    // From then on nothing is granted or even read here.
    let (s, _) = post(&http, &r.url("d.ru", "/o/acquire"), json!({"owner": "b", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 503);
    let (s, _) = get(&http, &r.url("d.ru", "/m")).await;
    assert_eq!(s, 503);
    assert_eq!(r.status.get().state, mware_host::ServiceState::Failed);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_naming_the_field_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, _m, r) = start(dir.path()).await;
    let http = reqwest::Client::new();
    let ok = json!({"owner": "a", "ttl_ms": 1000, "wait_ms": 0});
    let cases: Vec<(String, Value, u16, &str)> = vec![
        (r.url("bad..domain", "/m/acquire"), ok.clone(), 400, "domain"),
        (r.url("-x.ru", "/m/acquire"), ok.clone(), 400, "domain"),
        (r.url("d.ru", &format!("/{}/acquire", "n".repeat(33))), ok.clone(), 400, "name"),
        (r.url("d.ru", "/a%20b/acquire"), ok.clone(), 400, "name"),
        (r.url("d.ru", "/m/acquire"), json!({"owner": "a", "ttl_ms": 0, "wait_ms": 0}), 400, "ttl_ms"),
        (r.url("d.ru", "/m/acquire"), json!({"owner": "a", "ttl_ms": 600001, "wait_ms": 0}), 400, "ttl_ms"),
        (r.url("d.ru", "/m/acquire"), json!({"owner": "a", "ttl_ms": 10, "wait_ms": -1}), 400, "wait_ms"),
        (r.url("d.ru", "/m/acquire"), json!({"ttl_ms": 10, "wait_ms": 0}), 400, "owner"),
        (r.url("d.ru", "/m/acquire"), json!({"owner": "a", "ttl_ms": 10, "wait_ms": 0, "limit": 0}), 400, "limit"),
        (r.url("d.ru", "/m/release"), json!({"owner": "a", "token": "x"}), 400, "token"),
        (r.url("d.ru", "/m/renew"), json!({"owner": "a", "token": 1}), 400, "ttl_ms"),
    ];
    for (url, body, status, field) in cases {
        let (s, e) = post(&http, &url, body.clone()).await;
        assert_eq!((s, e["field"].as_str()), (status, Some(field)), "{url} {body}: {e}");
        assert!(e["error"].as_str().unwrap().contains(field), "{e}");
    }
    let (s, e) = post_raw(&http, &r.url("d.ru", "/m/acquire"), "{\"owner\": ").await;
    assert_eq!((s, e["field"].as_str()), (400, Some("body")), "{e}");
    let (_, list) = get(&http, &r.url("d.ru", "")).await;
    assert_eq!(list["mutexes"], json!([]), "bad input changed nothing");

    // Wrong owner and wrong token on a real grant: clear errors, grant untouched.
    let (_, g) = post(&http, &r.url("d.ru", "/m/acquire"), ok.clone()).await;
    let t = g["token"].as_u64().unwrap();
    let (s, e) = post(&http, &r.url("d.ru", "/m/release"), json!({"owner": "z", "token": t})).await;
    assert_eq!((s, e["field"].as_str()), (403, Some("owner")), "{e}");
    let (s, e) = post(&http, &r.url("d.ru", "/m/renew"), json!({"owner": "a", "token": t + 100, "ttl_ms": 5000})).await;
    assert_eq!((s, e["field"].as_str()), (409, Some("token")), "{e}");
    let (_, v) = get(&http, &r.url("d.ru", "/m")).await;
    assert_eq!(v["holders"][0]["expires_at_ms"], g["expires_at_ms"]);
    // A semaphore limit that differs from the existing one.
    let (s, e) = post(&http, &r.url("d.ru", "/m/acquire"), json!({"owner": "b", "ttl_ms": 10, "wait_ms": 0, "limit": 2})).await;
    assert_eq!((s, e["field"].as_str()), (409, Some("limit")), "{e}");
    // Busy: 409 with the holder.
    let (s, e) = post(&http, &r.url("d.ru", "/m/acquire"), json!({"owner": "b", "ttl_ms": 10, "wait_ms": 0})).await;
    assert_eq!(s, 409);
    assert_eq!(e["holders"][0]["owner"], "a");
    // Limits from the config: mutexes per domain (5) and waiters per mutex (4) give 429.
    for i in 1..5 {
        let (s, _) = post(&http, &r.url("d.ru", &format!("/m{i}/acquire")), ok.clone()).await;
        assert_eq!(s, 200);
    }
    let (s, e) = post(&http, &r.url("d.ru", "/m5/acquire"), ok.clone()).await;
    assert_eq!(s, 429, "{e}");
    let mut waiting = vec![];
    for i in 0..4 {
        let (http, url) = (http.clone(), r.url("d.ru", "/m/acquire"));
        waiting
            .push(tokio::spawn(async move { post(&http, &url, json!({"owner": format!("w{i}"), "ttl_ms": 10, "wait_ms": 3000})).await }));
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while get(&http, &r.url("d.ru", "/m")).await.1["waiters"].as_array().map_or(0, |w| w.len()) < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("4 waiters queued");
    let (s, e) = post(&http, &r.url("d.ru", "/m/acquire"), json!({"owner": "w9", "ttl_ms": 10, "wait_ms": 3000})).await;
    assert_eq!(s, 429, "{e}");
    for w in waiting {
        let (s, _) = w.await.unwrap();
        assert!(s == 200 || s == 409, "waiter answered {s}");
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_running_answers_503_retryable() {
    let svc = common::service();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = mware_host::Service::routes(&svc).into_router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let http = reqwest::Client::new();
    let (s, e) =
        post(&http, &format!("{base}/api/v1/domains/d.ru/mutexes/m/acquire"), json!({"owner": "a", "ttl_ms": 10, "wait_ms": 0})).await;
    assert_eq!(s, 503);
    assert_eq!(e["retryable"], true);
    assert!(e["error"].as_str().unwrap().contains("not running"), "{e}");
    server.abort();
}

#[test]
fn the_checker_catches_overlaps_and_token_disorder() {
    use checker::{check, Hold};
    let h = |client, token, granted_us, released_us| Hold { client, token, granted_us, released_us };
    assert!(check(&[h(0, 1, 0, 10), h(1, 2, 10, 20)], 1).is_ok());
    assert!(check(&[h(0, 1, 0, 10), h(1, 2, 9, 20)], 1).is_err(), "overlap");
    assert!(check(&[h(0, 2, 0, 10), h(1, 1, 11, 20)], 1).is_err(), "token went down");
    assert!(check(&[h(0, 1, 0, 10), h(1, 1, 10, 20)], 1).is_err(), "token reused");
    assert!(check(&[h(0, 1, 0, 10), h(1, 2, 5, 20), h(2, 3, 6, 8)], 2).is_err(), "three at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_gets_a_retryable_503_when_activity_ends() {
    let dir = tempfile::tempdir().unwrap();
    let coord = common::open(common::embedded(dir.path())).await;
    let (_m, fence) = common::become_active(&coord, "mware1", 10).await;
    let mut reg = prometheus_client::registry::Registry::default();
    let svc = mware_mutex::MutexService::new(&mut reg);
    let r = Running::start(svc, coord.clone(), fence, _m.lease.clone(), "mware1", common::site(limits())).await;
    let http = reqwest::Client::new();
    let acq = r.url("d.ru", "/w/acquire");
    let (s, _) = post(&http, &acq, json!({"owner": "a", "ttl_ms": 60000, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    let (h2, acq2) = (http.clone(), acq.clone());
    let waiter = tokio::spawn(async move { post(&h2, &acq2, json!({"owner": "b", "ttl_ms": 1000, "wait_ms": 30000})).await });
    tokio::time::timeout(Duration::from_secs(10), async {
        while get(&http, &r.url("d.ru", "/w")).await.1["waiters"].as_array().map_or(0, |w| w.len()) < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("waiter queued");
    // Metrics count the grant and the wait.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    assert!(text.contains("mware_mutex_grants_total 1"), "{text}");
    assert!(text.contains("mware_mutex_waits_total 1"), "{text}");
    assert!(text.contains("mware_mutex_holders 1"), "{text}");
    // Activity ends (the host cancels the service): the waiter is told to retry elsewhere.
    let server = r.server;
    r.cancel.cancel();
    r.task.await.unwrap().unwrap();
    let (s, e) = tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("waiter answered").unwrap();
    assert_eq!(s, 503, "{e}");
    assert_eq!(e["retryable"], true);
    server.abort();
}

#[test]
fn openapi_lists_every_route() {
    let doc = serde_json::to_value(mware_mutex::openapi()).unwrap();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for p in [
        "/api/v1/domains/{domain}/mutexes",
        "/api/v1/domains/{domain}/mutexes/{name}",
        "/api/v1/domains/{domain}/mutexes/{name}/acquire",
        "/api/v1/domains/{domain}/mutexes/{name}/release",
        "/api/v1/domains/{domain}/mutexes/{name}/renew",
        "/api/v1/domains/{domain}/mutexes/{name}/evict",
    ] {
        assert!(paths.iter().any(|k| k.as_str() == p), "{p} missing from {paths:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloaded_limits_apply_to_the_next_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, _m, r) = start(dir.path()).await;
    let http = reqwest::Client::new();
    let body = json!({"owner": "a", "ttl_ms": 1000, "wait_ms": 0});
    let (s, _) = post(&http, &r.url("d.ru", "/tenletters/acquire"), body.clone()).await;
    assert_eq!(s, 200);
    r.site.send(std::sync::Arc::new(common::site(json!({"max_name_len": 8})))).unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (s, e) = post(&http, &r.url("d.ru", "/ninechars/acquire"), body.clone()).await;
            if s == 400 {
                assert_eq!(e["field"], "name", "{e}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("new max_name_len in force");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_holder_keeps_the_lock_past_its_first_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, _m, r) = start(dir.path()).await;
    let http = reqwest::Client::new();
    let (s, g) = post(&http, &r.url("d.ru", "/r/acquire"), json!({"owner": "a", "ttl_ms": 400, "wait_ms": 0})).await;
    assert_eq!(s, 200);
    let (s, n) = post(&http, &r.url("d.ru", "/r/renew"), json!({"owner": "a", "token": g["token"], "ttl_ms": 10000})).await;
    assert_eq!(s, 200, "{n}");
    assert_eq!(n["token"], g["token"]);
    assert!(n["expires_at_ms"].as_u64() > g["expires_at_ms"].as_u64());
    assert!(n["expires_at"].as_str().map(|t| t.ends_with('Z') && t.contains('T')).unwrap_or(false), "{n}");
    // Well past the first ttl the lock is still held: a waiter gives up with 409.
    let (s, e) = post(&http, &r.url("d.ru", "/r/acquire"), json!({"owner": "b", "ttl_ms": 1000, "wait_ms": 1000})).await;
    assert_eq!(s, 409, "{e}");
    assert_eq!(e["holders"][0]["owner"], "a");
    r.stop().await;
}
