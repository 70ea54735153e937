//! The rtcache sidecar in front of the real provisioning service and
//! PostgreSQL: an outage of the source never deletes an object, a real "not
//! found" does, the cache survives a restart of the sidecar during the outage
//! (redb), writes pass through or answer -1, and bad field names are refused.

mod common;

use common::{bounded, Ast, ProvServer, TestDb, E1};
use mware_realtime::rtcache::{serve, RtcacheArgs};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Sidecar {
    url: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn sidecar(upstreams: Vec<String>, dir: &std::path::Path, max: u64, stale: u64) -> Sidecar {
    let args = RtcacheArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        upstream: upstreams,
        object_lifetime_maximum: Some(max),
        object_lifetime_stale: Some(stale),
        cache_dir: Some(dir.to_path_buf()),
        upstream_timeout_ms: Some(1000),
        ..Default::default()
    };
    let cfg = args.resolve().expect("valid args");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move { serve(listener, cfg, s).await.expect("sidecar serves") });
    Sidecar { url, stop, task }
}

impl Sidecar {
    async fn shutdown(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task).await.expect("sidecar stops").unwrap();
    }
    async fn get(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.url)).await.unwrap().text().await.unwrap()
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_keeps_objects_until_maximum_and_only_not_found_removes() {
    bounded(120, async {
        let db = TestDb::create("cache").await;
        let dir = tempfile::tempdir().unwrap();
        let mut up = ProvServer::start(&db.config(), 0).await;
        let dead = format!("http://127.0.0.1:{}", mware_testkit::free_port());
        // object_lifetime_maximum = 6 s, object_lifetime_stale = 1 s; the first upstream is down.
        let sc = sidecar(vec![dead.clone(), up.url()], dir.path(), 6, 1).await;
        let ep = Ast::new(&sc.url, E1, "endpoint");
        let direct = Ast::new(&up.url(), E1, "endpoint");

        for (id, ctx) in [("1001", "a"), ("1002", "b"), ("1003", "c")] {
            assert_eq!(ep.store(&[("id", id), ("context", ctx)]).await, (200, "1".into()), "store passes through");
        }
        let one = (200, "id=1001&context=a\n".to_string());
        let two = (200, "id=1002&context=b\n".to_string());
        let all = (200, "id=1001&context=a\nid=1002&context=b\nid=1003&context=c\n".to_string());
        assert_eq!(ep.single(&[("id", "1001")]).await, one);
        assert_eq!(ep.single(&[("id", "1002")]).await, two);
        assert_eq!(ep.single(&[("id", "1003")]).await, (200, "id=1003&context=c\n".into()));
        assert_eq!(ep.multi(&[("id LIKE", "%")]).await, all);

        // A write through the sidecar invalidates the entity+family at once, even fresh entries.
        assert_eq!(ep.update("id", "1001", &[("context", "a2")]).await, (200, "1".into()));
        let one = (200, "id=1001&context=a2\n".to_string());
        assert_eq!(ep.single(&[("id", "1001")]).await, one);

        // Deleted at the source (not through the sidecar): once stale, the refresh sees
        // the real "not found" and the object disappears.
        assert_eq!(direct.destroy("id", "1003", &[]).await, (200, "1".into()));
        let mut gone = false;
        for _ in 0..40 {
            if ep.single(&[("id", "1003")]).await == (200, String::new()) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(gone, "a true not-found removes the object");
        assert_eq!(ep.multi(&[("id LIKE", "%")]).await, (200, "id=1001&context=a2\nid=1002&context=b\n".into()));
        let all = (200, "id=1001&context=a2\nid=1002&context=b\n".to_string());
        // Bad field names are refused (the upstream's 400 is passed on, never cached).
        assert_eq!(ep.single(&[("id; DROP TABLE ps_endpoints; --", "1")]).await, (400, "".into()));
        assert_eq!(ep.store(&[("id", "9"), ("id) VALUES ('x'); DROP TABLE ps_endpoints; --", "1")]).await, (400, "-1".into()));
        // Refresh the two objects we keep using, then note when they were fetched.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(ep.single(&[("id", "1002")]).await, two);
        assert_eq!(ep.multi(&[("id LIKE", "%")]).await, all);
        tokio::time::sleep(Duration::from_millis(300)).await; // background refreshes land

        // A write just before the outage marks the family for revalidation; it must not
        // leave the objects unservable when the source then goes away.
        assert_eq!(ep.update("id", "1002", &[("context", "b")]).await, (200, "1".into()));

        // Outage: the provisioning server goes away completely.
        up.kill().await;
        let outage = std::time::Instant::now();
        for _ in 0..3 {
            assert_eq!(ep.single(&[("id", "1001")]).await, one, "served during the outage");
            assert_eq!(ep.multi(&[("id LIKE", "%")]).await, all, "multi served during the outage");
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        assert_eq!(ep.store(&[("id", "1004")]).await, (502, "-1".into()), "writes answer -1");
        assert_eq!(ep.update("id", "1001", &[("context", "x")]).await, (502, "-1".into()));
        assert_eq!(ep.destroy("id", "1001", &[]).await, (502, "-1".into()));
        assert_eq!(ep.single(&[("id", "7777")]).await, (502, "".into()), "never fetched: failure, not 'not found'");
        let m = sc.get("/metrics").await;
        assert!(metric(&m, "rtcache_errors_served_from_cache") >= 3.0, "{m}");
        assert!(metric(&m, "rtcache_upstream_errors") >= 1.0, "{m}");
        let status: serde_json::Value = serde_json::from_str(&sc.get("/status").await).unwrap();
        assert!(status["upstreams"][1]["consecutive_failures"].as_u64().unwrap() >= 1, "{status}");

        // Restart the sidecar during the outage: the cache comes back from disk.
        sc.shutdown().await;
        let sc = sidecar(vec![dead.clone(), up.url()], dir.path(), 6, 1).await;
        let ep = Ast::new(&sc.url, E1, "endpoint");
        assert_eq!(ep.single(&[("id", "1001")]).await, one, "served after restart");
        assert_eq!(ep.multi(&[("id LIKE", "%")]).await, all, "multi served after restart");

        // Keep asking for 1001 past object_lifetime_maximum: each failed refresh extends it.
        // 1002 is not asked for during the outage and expires at object_lifetime_maximum.
        while outage.elapsed() < Duration::from_secs(8) {
            assert_eq!(ep.single(&[("id", "1001")]).await, one, "an object in use stays while the source is down");
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        assert_eq!(ep.single(&[("id", "1002")]).await, (502, "".into()), "past object_lifetime_maximum it fails");

        // Source back on the same address: fresh answers again.
        let up2 = ProvServer::start(&db.config(), up.addr.port()).await;
        assert_eq!(ep.single(&[("id", "1002")]).await, two);
        assert_eq!(ep.store(&[("id", "1004")]).await, (200, "1".into()));
        sc.shutdown().await;
        drop(up2);
        assert_eq!(
            db.client().await.query_one("SELECT count(*) FROM ps_endpoints", &[]).await.unwrap().get::<_, i64>(0),
            3,
            "table intact: 1001, 1002, 1004"
        );
    })
    .await;
}
