//! Hostile inputs against the rtcache sidecar (issue 13): a cached answer is never
//! served to a request presenting another credential or none, even while every
//! upstream is down; the Authorization header is passed through and never stored in
//! clear; the cache file is 0600; hostile family names keep `/metrics` bounded; the
//! entry cap holds; an upstream URL's userinfo shows nowhere; bad settings (a
//! timeout of 0, a lifetime whose milliseconds overflow) are refused; a client sending
//! its headers one byte a second is disconnected; the serving threads share one port and
//! one connection cap.

mod common;

use common::{bounded, cred, Ast, ProvServer, TestDb, E1, E2};
use mware_realtime::codec::encode;
use mware_realtime::rtcache::{serve, RtcacheArgs};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Sidecar {
    url: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn sidecar(args: RtcacheArgs) -> Sidecar {
    let cfg = args.resolve().expect("valid args");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move { serve(listener, cfg, s).await.expect("sidecar serves") });
    Sidecar { url, stop, task }
}

fn args(upstream: String, dir: &std::path::Path) -> RtcacheArgs {
    RtcacheArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        upstream: vec![upstream],
        object_lifetime_maximum: Some(300),
        object_lifetime_stale: Some(1),
        cache_dir: Some(dir.to_path_buf()),
        upstream_timeout_ms: Some(1000),
        ..Default::default()
    }
}

impl Sidecar {
    async fn get(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.url)).await.unwrap().text().await.unwrap()
    }
    async fn shutdown(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task).await.expect("sidecar stops").unwrap();
    }
}

async fn seed(db: &TestDb) {
    db.client()
        .await
        .batch_execute(
            "INSERT INTO ps_endpoints (id, domain, context) VALUES ('1001', 't1.example.ru', 'a'), ('2001', 't2.example.ru', 'x');",
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_answer_is_served_only_to_the_same_credential() {
    bounded(60, async {
        let db = TestDb::create("hrc").await;
        seed(&db).await;
        let dir = tempfile::tempdir().unwrap();
        let mut up = ProvServer::start(&db.config(), 0).await;
        let sc = sidecar(args(up.url(), dir.path())).await;
        let alice = (200, "id=1001&context=a\n".to_string());
        let good = Ast::new(&sc.url, E1, "endpoint");
        let (u, p) = cred(E1).unwrap();
        let others = [
            ("none", Ast::with(&sc.url, E1, "endpoint", None)),
            ("wrong password", Ast::with(&sc.url, E1, "endpoint", Some((u.clone(), format!("{p}!"))))),
            ("another entity's", Ast::with(&sc.url, E1, "endpoint", cred(E2))),
        ];
        // Source up: the sidecar passes the credential through; refusals are passed on.
        assert_eq!(good.single(&[("id", "1001")]).await, alice);
        assert_eq!(good.multi(&[("id LIKE", "%")]).await, alice);
        for (what, a) in &others {
            let (code, body, www) = a.post_full("single", "id=1001".into()).await;
            assert_eq!((code, body.as_str()), (401, ""), "{what}");
            assert_eq!(www.as_deref(), Some("Basic realm=\"mware provisioning\""), "{what}");
        }
        assert_eq!(good.single(&[("id", "1001")]).await, alice, "cached, fresh");
        let m = sc.get("/metrics").await;
        assert!(m.contains("rtcache_cache_hits_total 1"), "{m}");

        // Source down: only the cache could answer, and only to the same credential.
        up.kill().await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(good.single(&[("id", "1001")]).await, alice, "served from cache during the outage");
        assert_eq!(good.multi(&[("id LIKE", "%")]).await, alice);
        for (what, a) in &others {
            assert_eq!(a.single(&[("id", "1001")]).await, (502, "".into()), "{what}: never the cached answer");
            assert_eq!(a.multi(&[("id LIKE", "%")]).await, (502, "".into()), "{what}");
        }
        sc.shutdown().await;

        // The header (and the password in it) is never stored in the cache file.
        let file = std::fs::read(dir.path().join("rtcache.redb")).unwrap();
        let b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        };
        for needle in [b64.as_str(), p.as_str(), "Basic "] {
            assert!(!file.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle:?} found in rtcache.redb");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_drops_its_cached_answer() {
    bounded(60, async {
        let db = TestDb::create("hrev").await;
        seed(&db).await;
        let dir = tempfile::tempdir().unwrap();
        let up = ProvServer::start(&db.config(), 0).await;
        let sc = sidecar(args(up.url(), dir.path())).await;
        let good = Ast::new(&sc.url, E1, "endpoint");
        assert_eq!(good.single(&[("id", "1001")]).await, (200, "id=1001&context=a\n".into()));
        // The entity's password is changed at the source: once stale, the refresh is
        // refused and the answer of the old credential is gone.
        let mut cfg = db.config();
        cfg.entities.get_mut(E1).unwrap().password = mware_config::Secret::new("changed");
        up.handle.start(&cfg).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let _ = good.single(&[("id", "1001")]).await; // stale: served once, refreshed in the background
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(good.single(&[("id", "1001")]).await, (401, "".into()));
        let status: serde_json::Value = serde_json::from_str(&sc.get("/status").await).unwrap();
        assert_eq!(status["entries"], 0, "{status}");
        sc.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_file_is_readable_by_its_owner_only() {
    bounded(30, async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        // A file left by an older version with the default mode is tightened too.
        std::fs::create_dir_all(&path).unwrap();
        let f = path.join("rtcache.redb");
        std::fs::write(&f, b"").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let sc = sidecar(args(format!("http://127.0.0.1:{}", mware_testkit::free_port()), &path)).await;
        let _ = sc.get("/status").await;
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        sc.shutdown().await;
        let fresh = dir.path().join("new/cache");
        let sc = sidecar(args(format!("http://127.0.0.1:{}", mware_testkit::free_port()), &fresh)).await;
        let _ = sc.get("/status").await;
        assert_eq!(std::fs::metadata(fresh.join("rtcache.redb")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o700);
        sc.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_families_keep_metrics_bounded_and_the_cap_holds() {
    bounded(90, async {
        let db = TestDb::create("hrfam").await;
        seed(&db).await;
        let dir = tempfile::tempdir().unwrap();
        let up = ProvServer::start(&db.config(), 0).await;
        let mut a = args(up.url(), dir.path());
        a.max_entries = Some(5);
        let sc = sidecar(a).await;
        let http = reqwest::Client::new();
        let (u, p) = cred(E1).unwrap();
        let send = |family: String, body: String| {
            let (http, u, p) = (http.clone(), u.clone(), p.clone());
            let url = format!("{}/provision/asterisk/{E1}/{family}/single", sc.url);
            async move { http.post(url).basic_auth(u, Some(p)).body(body).send().await.unwrap().status().as_u16() }
        };
        assert_eq!(send(encode("a\"} 1\nmware_active 1"), "id=1".into()).await, 400);
        let first = sc.get("/metrics").await;
        for i in 0..150 {
            assert_eq!(send(format!("fam{i}"), "id=1".into()).await, 400);
        }
        let m = sc.get("/metrics").await;
        assert!(!m.lines().any(|l| l.starts_with("mware_active")), "{m}");
        let families: std::collections::BTreeSet<&str> = m.lines().filter_map(|l| l.split("family=\"").nth(1)?.split('"').next()).collect();
        assert_eq!(families.into_iter().collect::<Vec<_>>(), ["other"]);
        assert_eq!(m.lines().count(), first.lines().count(), "no new series");
        eprintln!("rtcache /metrics: {} bytes after one hostile family, {} after 151", first.len(), m.len());
        // 20 distinct cached answers (patterns all matching 1001), at most 5 kept.
        for i in 1..=20 {
            assert_eq!(send("endpoint".into(), format!("id%20LIKE=1{}", "%25".repeat(i))).await, 200);
        }
        let status: serde_json::Value = serde_json::from_str(&sc.get("/status").await).unwrap();
        assert_eq!(status["entries"], 5, "{status}");
        sc.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_urls_userinfo_is_used_and_shown_nowhere() {
    bounded(60, async {
        let db = TestDb::create("hrui").await;
        seed(&db).await;
        let dir = tempfile::tempdir().unwrap();
        let up = ProvServer::start(&db.config(), 0).await;
        let (u, p) = cred(E2).unwrap();
        let with_userinfo = up.url().replacen("http://", &format!("http://{u}:{}@", encode(&p)), 1);
        let dead = format!("http://{u}:{}@127.0.0.1:{}", encode(&p), mware_testkit::free_port());
        let mut a = args(dead, dir.path());
        a.upstream.push(with_userinfo);
        let sc = sidecar(a).await;
        // A caller without a credential gets the sidecar's own (E2's) ...
        let anon = Ast::with(&sc.url, E2, "endpoint", None);
        assert_eq!(anon.single(&[("id", "2001")]).await, (200, "id=2001&context=x\n".into()));
        // ... and a caller's own credential wins over it.
        assert_eq!(Ast::new(&sc.url, E1, "endpoint").single(&[("id", "1001")]).await, (200, "id=1001&context=a\n".into()));
        let shown = format!("{}\n{}", sc.get("/status").await, sc.get("/metrics").await);
        assert!(shown.contains("127.0.0.1"), "{shown}");
        for secret in [p.as_str(), &encode(&p), &format!("{u}:")] {
            assert!(!shown.contains(secret), "{secret:?} shown:\n{shown}");
        }
        sc.shutdown().await;
    })
    .await;
}

#[test]
fn bad_settings_are_refused_before_anything_runs() {
    let ok = RtcacheArgs { upstream: vec!["http://127.0.0.1:1".into()], ..Default::default() };
    assert!(ok.resolve().is_ok());
    let err = |a: RtcacheArgs| a.resolve().unwrap_err().to_string();
    let e = err(RtcacheArgs { upstream_timeout_ms: Some(0), ..ok.clone() });
    assert!(e.contains("upstream_timeout_ms from 1 to 600000"), "{e}");
    let e = err(RtcacheArgs { object_lifetime_maximum: Some(u64::MAX / 999), ..ok.clone() });
    assert!(e.contains("object_lifetime_maximum from 1 to 315360000"), "{e}");
    let e = err(RtcacheArgs { object_lifetime_maximum: Some(0), ..ok.clone() });
    assert!(e.contains("object_lifetime_maximum"), "{e}");
    let e = err(RtcacheArgs { max_entries: Some(0), ..ok.clone() });
    assert!(e.contains("max_entries of at least 1"), "{e}");
    let e = err(RtcacheArgs { family: vec!["a\"}".into()], ..ok.clone() });
    assert!(e.contains("family names"), "{e}");
    let e = err(RtcacheArgs { upstream: vec!["ftp://user:hunter2@host".into()], ..ok.clone() });
    assert!(e.contains("upstream 1 is") && !e.contains("hunter2"), "{e}");
    // The resolved settings print upstreams without their userinfo.
    let cfg = RtcacheArgs { upstream: vec!["http://ast:hunter2@10.0.0.1:8271/".into()], ..ok.clone() }.resolve().unwrap();
    let text = format!("{cfg:?} {}", serde_json::to_string(&cfg).unwrap());
    assert!(text.contains("http://10.0.0.1:8271") && !text.contains("hunter2") && !text.contains("ast:"), "{text}");
    // A request timeout that would cut a lookup trying every upstream.
    let e = err(RtcacheArgs { upstream_timeout_ms: Some(2000), request_timeout_ms: Some(2000), ..ok.clone() });
    assert!(e.contains("request_timeout_ms above upstream_timeout_ms x upstreams (2000 ms)"), "{e}");
    let e = err(RtcacheArgs { max_connections: Some(0), ..ok.clone() });
    assert!(e.contains("max_connections of at least 1"), "{e}");
    let e = err(RtcacheArgs { threads: Some(0), ..ok.clone() });
    assert!(e.contains("expected threads from 1 to 256, found 0"), "{e}");
}

/// `run` listens on the one port with one socket shared by the serving threads
/// (`accept: balanced`, the default) or one per thread (`reuseport`), and the threads
/// share one connection cap: with 3 threads and a cap of 4, four kept-alive connections
/// are served and a fifth is closed at once, whichever thread took it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_threads_share_one_port_and_one_connection_cap() {
    serving_threads_share(None, 1).await;
    serving_threads_share(Some(mware_realtime::rtcache::Accept::Reuseport), 3).await;
}

async fn serving_threads_share(accept: Option<mware_realtime::rtcache::Accept>, sockets: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let stop = CancellationToken::new();
    let a = RtcacheArgs {
        listen: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        threads: Some(3),
        max_connections: Some(4),
        accept,
        ..args("http://127.0.0.1:9".into(), dir.path())
    };
    let task = tokio::spawn(mware_realtime::run_rtcache(a, stop.clone()));
    // The listening sockets on the port, in the kernel's table.
    let hex = format!(":{port:04X} ");
    let mut listening = 0;
    for _ in 0..100 {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        listening = table
            .lines()
            .filter(|l| {
                l.split_whitespace().nth(1).is_some_and(|a| format!("{a} ").ends_with(&hex)) && l.split_whitespace().nth(3) == Some("0A")
            })
            .count();
        if listening == sockets {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listening, sockets, "{accept:?}: listening sockets");
    async fn status(s: &mut tokio::net::TcpStream) -> bool {
        let req = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        if s.write_all(req).await.is_err() {
            return false;
        }
        let mut buf = vec![0u8; 65536];
        matches!(tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await, Ok(Ok(n)) if n > 0 && buf.starts_with(b"HTTP/1.1 200"))
    }
    let mut open = vec![];
    for i in 0..4 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        assert!(status(&mut s).await, "connection {i} within the cap is served");
        open.push(s);
    }
    let mut fifth = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(!status(&mut fifth).await, "a fifth connection is closed at once");
    drop(open.pop());
    let mut served = false;
    for _ in 0..50 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        if status(&mut s).await {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a slot freed by a closed connection serves a new one");
    drop(open);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(15), task).await.expect("the sidecar stops").unwrap().unwrap();
}

/// A client that sends its request head one byte a second is disconnected (the sidecar
/// used to keep such connections forever: axum::serve without timers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_headers_one_byte_a_second_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let car = sidecar(RtcacheArgs { header_read_timeout_ms: Some(1000), ..args("http://127.0.0.1:1".into(), dir.path()) }).await;
    let mut s = tokio::net::TcpStream::connect(car.url.trim_start_matches("http://")).await.unwrap();
    let t0 = std::time::Instant::now();
    let mut cut = None;
    for b in b"POST /provision/asterisk/12:34:56:78:9a:bc/endpoint/single HTTP/1.1\r\nHost: x\r\n\r\n" {
        if s.write_all(&[*b]).await.is_err() {
            cut = Some(t0.elapsed());
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1000), s.read(&mut probe)).await {
            cut = Some(t0.elapsed());
            break;
        }
    }
    let cut = cut.expect("the slow client was never disconnected");
    assert!(cut < Duration::from_secs(6), "disconnected after {cut:?}");
    car.shutdown().await;
}

/// DNS rebinding: a request whose `Host` is not the sidecar's loopback name or address
/// is answered 421; `localhost` and the address are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_header_is_misdirected() {
    let dir = tempfile::tempdir().unwrap();
    let s = sidecar(args("http://127.0.0.1:9".into(), dir.path())).await;
    let port = s.url.rsplit(':').next().unwrap().to_string();
    let get = |host: String| {
        let url = format!("{}/status", s.url);
        async move { reqwest::Client::new().get(url).header("host", host).send().await.unwrap() }
    };
    let r = get("evil.example".into()).await;
    assert_eq!(r.status().as_u16(), 421);
    assert!(r.text().await.unwrap().contains("evil.example"));
    assert_eq!(get(format!("evil.example:{port}")).await.status().as_u16(), 421);
    for ok in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), "[::1]".into()] {
        assert_eq!(get(ok.clone()).await.status().as_u16(), 200, "{ok}");
    }
    s.shutdown().await;
}
