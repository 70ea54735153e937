//! The safety checker across a change of activity, in one process: two instances of the
//! service share one embedded coordinator; mid-run the active one loses its leadership
//! while still running (like an instance that has not noticed yet), the other one takes
//! over and restores. Clients retry over both instances. No two holds may overlap and
//! tokens must keep growing across the change.

mod common;

use common::{checker, Running};
use mware_coord::{Fence, MemberInfo};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_overlap_and_growing_tokens_across_a_change_of_activity() {
    let dir = tempfile::tempdir().unwrap();
    let coord = common::open(common::embedded(dir.path())).await;
    let (m1, fence1) = common::become_active(&coord, "mware1", 10).await;
    let r1 = Running::start(common::service(), coord.clone(), fence1, m1.lease.clone(), "mware1", common::site(json!({}))).await;
    let mut m2 = coord
        .join(MemberInfo {
            instance: "mware2".into(),
            group: common::GROUP,
            order: 20,
            address: "127.0.0.1:2".into(),
            version: "test".into(),
            since_ms: mware_coord::now_ms(),
        })
        .await
        .unwrap();
    // The second instance serves its routes (503 while not running).
    let svc2 = common::service();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base2 = format!("http://{}", listener.local_addr().unwrap());
    let router = mware_host::Service::routes(&svc2).into_router();
    let server2 = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let cfg = checker::Config {
        bases: vec![r1.base.clone(), base2.clone()],
        domain: "tenant1.example.ru".into(),
        name: "failover".into(),
        clients: 8,
        limit: 1,
        duration: Duration::from_secs(5),
        hold: Duration::from_millis(2),
        ttl_ms: 2_000,
        wait_ms: 3_000,
        token: None,
    };
    let run = tokio::spawn(checker::run(cfg));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // mware1 loses leadership; its service keeps running with the old fence.
    m1.leave().await;
    let epoch2 = tokio::time::timeout(Duration::from_secs(30), m2.wait_active()).await.expect("mware2 takes over").unwrap();
    assert!(epoch2 > fence1.epoch);
    let (site_tx, site_rx) = tokio::sync::watch::channel(std::sync::Arc::new(common::site(json!({}))));
    let cancel2 = tokio_util::sync::CancellationToken::new();
    let ctx2 = mware_host::ServiceContext::new(
        "mutex",
        "mware2",
        Fence { group: common::GROUP, epoch: epoch2 },
        coord.clone(),
        site_rx,
        cancel2.clone(),
        m2.lease.clone(),
    );
    let s2 = svc2.clone();
    let task2 = tokio::spawn(async move { mware_host::Service::run(&s2, ctx2).await });

    let rep = tokio::time::timeout(Duration::from_secs(60), run).await.expect("checker ends").unwrap();
    assert!(rep.unexpected.is_empty(), "{:?}", rep.unexpected.first());
    assert!(rep.unavailable > 0, "the change of activity was not seen by any client");
    let before = rep.holds.iter().filter(|h| h.granted_us < 1_500_000).count();
    let after = rep.holds.iter().filter(|h| h.granted_us > 2_000_000).count();
    assert!(before > 5 && after > 5, "grants before {before}, after {after}");
    checker::check(&rep.holds, 1).unwrap();
    cancel2.cancel();
    task2.await.unwrap().unwrap();
    drop(site_tx);
    r1.stop().await;
    server2.abort();
}
