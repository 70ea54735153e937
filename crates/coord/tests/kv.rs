//! The epoch-guarded KV and the site config, on both backends (real etcd, a real SQLite
//! file): stale fences are refused, CAS, watches, durability across new clients (and an
//! etcd restart).

use mware_config::{Backend, Coordination};
use mware_coord::*;
use mware_testkit::etcd::Etcd;
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn settings(backend: Backend, etcd: Option<&Etcd>, path: &std::path::Path) -> Settings {
    let c = Coordination {
        backend,
        endpoints: etcd.map(|e| vec![e.endpoint()]).unwrap_or_default(),
        prefix: Some("/t/kv".into()),
        path: path.join("coord.sqlite").display().to_string(),
        ..Default::default()
    };
    Settings { site: "test".into(), coordination: c }
}

async fn open(s: &Settings) -> Arc<dyn Coordinator> {
    match s.coordination.backend {
        Backend::Etcd => Arc::new(EtcdCoordinator::connect(s.clone()).await.unwrap()),
        Backend::Embedded => Arc::new(EmbeddedCoordinator::open(s.clone()).await.unwrap()),
    }
}

fn info(name: &str, order: i64) -> MemberInfo {
    MemberInfo { instance: name.into(), group: 7, order, address: "127.0.0.1:0".into(), version: "test".into(), since_ms: now_ms() }
}

async fn active(m: &mut Membership) -> Epoch {
    tokio::time::timeout(T, m.wait_active()).await.expect("became active in time").unwrap()
}

async fn fenced_writes(c: Arc<dyn Coordinator>) {
    let mut m1 = c.join(info("a1", 10)).await.unwrap();
    let e1 = active(&mut m1).await;
    let f1 = Fence { group: 7, epoch: e1 };
    kv_put(c.as_ref(), &f1, "state", b"one".to_vec()).await.unwrap();
    m1.leave().await;

    let mut m2 = c.join(info("a2", 20)).await.unwrap();
    let e2 = active(&mut m2).await;
    assert!(e2 > e1, "epochs grow: {e1} then {e2}");
    let err = kv_put(c.as_ref(), &f1, "state", b"stale".to_vec()).await.unwrap_err();
    match err {
        CoordError::Fenced { held, current, .. } => assert_eq!((held, current), (e1, Some(e2))),
        e => panic!("expected Fenced, found {e}"),
    }
    assert_eq!(c.kv_get(7, "state").await.unwrap().unwrap().value, b"one", "a refused write changes nothing");
    // A batch is applied whole.
    let f2 = Fence { group: 7, epoch: e2 };
    let ops = vec![
        KvOp::Put { key: "b/1".into(), value: b"x".to_vec() },
        KvOp::Put { key: "b/2".into(), value: b"y".to_vec() },
        KvOp::Delete { key: "state".into() },
    ];
    let rev = c.kv_apply(&f2, ops).await.unwrap();
    let list = c.kv_list(7, "b/").await.unwrap();
    assert_eq!(list.iter().map(|(k, v)| (k.as_str(), v.revision)).collect::<Vec<_>>(), [("b/1", rev), ("b/2", rev)]);
    assert!(c.kv_get(7, "state").await.unwrap().is_none());

    // A range delete removes [from, to) and nothing else, in one operation.
    let ops = (1..=5).map(|i| KvOp::Put { key: format!("r/{i}"), value: vec![b'v'] }).collect();
    c.kv_apply(&f2, ops).await.unwrap();
    c.kv_apply(&f2, vec![KvOp::DeleteRange { from: "r/2".into(), to: "r/4".into() }]).await.unwrap();
    let left: Vec<String> = c.kv_list(7, "r/").await.unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(left, ["r/1", "r/4", "r/5"]);
    let bad = c.kv_apply(&f2, vec![KvOp::DeleteRange { from: "r/4".into(), to: "r/4".into() }]).await.unwrap_err();
    assert!(matches!(bad, CoordError::Invalid(_)), "an empty range is refused: {bad}");
    let stale = c.kv_apply(&f1, vec![KvOp::DeleteRange { from: "r/".into(), to: "r0".into() }]).await.unwrap_err();
    assert!(matches!(stale, CoordError::Fenced { .. }));
    assert_eq!(c.kv_list(7, "r/").await.unwrap().len(), 3, "a refused range delete changes nothing");

    // CAS.
    assert!(c.kv_cas(&f2, "cas", None, b"1".to_vec()).await.unwrap(), "create if absent");
    assert!(!c.kv_cas(&f2, "cas", None, b"2".to_vec()).await.unwrap(), "absent expected, present found");
    let r = c.kv_get(7, "cas").await.unwrap().unwrap().revision;
    assert!(c.kv_cas(&f2, "cas", Some(r), b"3".to_vec()).await.unwrap());
    assert!(!c.kv_cas(&f2, "cas", Some(r), b"4".to_vec()).await.unwrap(), "old revision");
    assert_eq!(c.kv_get(7, "cas").await.unwrap().unwrap().value, b"3");
    let r = c.kv_get(7, "cas").await.unwrap().unwrap().revision;
    assert!(matches!(c.kv_cas(&f1, "cas", Some(r), b"5".to_vec()).await, Err(CoordError::Fenced { .. })));
    m2.leave().await;
}

/// Many writers through one [`GroupCommit`]: every write lands, fewer coordinator writes
/// than callers (callers share revisions), a put then a delete of one key keep their
/// order, and after a takeover every write through the old fence is refused.
async fn group_commit(c: Arc<dyn Coordinator>) {
    let mut m1 = c.join(info("g1", 10)).await.unwrap();
    let f1 = Fence { group: 7, epoch: active(&mut m1).await };
    let gc = GroupCommit::spawn(c.clone(), f1);
    let writes: Vec<_> = (0..300)
        .map(|i| {
            let gc = gc.clone();
            tokio::spawn(async move {
                let put = gc.apply(vec![KvOp::Put { key: format!("gc/{i}"), value: vec![b'x'] }]);
                let rev = put.await.unwrap();
                if i % 2 == 0 {
                    gc.apply(vec![KvOp::Delete { key: format!("gc/{i}") }]).await.unwrap();
                }
                rev
            })
        })
        .collect();
    let mut revs = Vec::new();
    for w in writes {
        revs.push(w.await.unwrap());
    }
    let distinct: std::collections::BTreeSet<u64> = revs.iter().copied().collect();
    assert!(distinct.len() < revs.len(), "300 concurrent puts shared writes: {} revisions", distinct.len());
    let left = c.kv_list(7, "gc/").await.unwrap();
    assert_eq!(left.len(), 150, "each odd key kept, each even key deleted after its put");
    assert!(left.iter().all(|(k, _)| k[3..].parse::<u32>().unwrap() % 2 == 1));
    let too_many = (0..=MAX_TXN_OPS).map(|i| KvOp::Delete { key: format!("gc/{i}") }).collect();
    assert!(matches!(gc.apply(too_many).await, Err(CoordError::Invalid(_))));
    m1.leave().await;
    let mut m2 = c.join(info("g2", 20)).await.unwrap();
    active(&mut m2).await;
    let refused = gc.apply(vec![KvOp::Put { key: "gc/late".into(), value: vec![] }]).await.unwrap_err();
    assert!(matches!(refused, CoordError::Fenced { .. }), "{refused}");
    assert!(c.kv_get(7, "gc/late").await.unwrap().is_none());
    m2.leave().await;
}

async fn watch(c: Arc<dyn Coordinator>) {
    let mut m = c.join(info("w1", 10)).await.unwrap();
    let f = Fence { group: 7, epoch: active(&mut m).await };
    let mut rx = c.kv_watch(7, "w/").await.unwrap();
    kv_put(c.as_ref(), &f, "w/x", b"1".to_vec()).await.unwrap();
    kv_put(c.as_ref(), &f, "other", b"2".to_vec()).await.unwrap();
    kv_delete(c.as_ref(), &f, "w/x").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        match tokio::time::timeout(T, rx.recv()).await.expect("watch event in time").unwrap() {
            KvEvent::Resync => {}
            e => got.push(e),
        }
    }
    assert!(matches!(&got[0], KvEvent::Put { key, value, .. } if key == "w/x" && value == b"1"), "{got:?}");
    assert_eq!(got[1], KvEvent::Delete { key: "w/x".into() });

    let mut cw = c.config_watch().await.unwrap();
    let rev = c.config_put("{\"site\":\"t\"}").await.unwrap();
    assert_eq!(c.config_get().await.unwrap(), Some(("{\"site\":\"t\"}".to_string(), rev)));
    let (text, r) = tokio::time::timeout(T, cw.recv()).await.unwrap().unwrap();
    assert_eq!((text.as_str(), r), ("{\"site\":\"t\"}", rev));
    let view = c.cluster().await.unwrap();
    let g = view.iter().find(|g| g.group == 7).unwrap();
    assert_eq!(g.leader.as_ref().unwrap().instance, "w1");
    assert!(g.last_transition.as_ref().unwrap().reason.contains("became active"), "{:?}", g.last_transition);
    m.leave().await;
}

async fn durable(s: &Settings, etcd: Option<&mut Etcd>) {
    {
        let c = open(s).await;
        let mut m = c.join(info("d1", 10)).await.unwrap();
        let f = Fence { group: 7, epoch: active(&mut m).await };
        kv_put(c.as_ref(), &f, "durable", b"kept".to_vec()).await.unwrap();
        c.config_put("cfg").await.unwrap();
        m.leave().await;
    }
    if let Some(e) = etcd {
        e.restart().unwrap();
    }
    let c = open(s).await;
    assert_eq!(c.kv_get(7, "durable").await.unwrap().unwrap().value, b"kept");
    assert_eq!(c.config_get().await.unwrap().unwrap().0, "cfg");
}

/// A prefix holding more than a gRPC message's default 4 MiB (an alarms outbox with a
/// long backlog: 80 values of 100 KiB) lists whole, in key order.
async fn large_list(c: Arc<dyn Coordinator>) {
    let mut m = c.join(info("big", 10)).await.unwrap();
    let f = Fence { group: 7, epoch: active(&mut m).await };
    for batch in 0..10 {
        let ops = (0..8)
            .map(|i| {
                let n = batch * 8 + i;
                KvOp::Put { key: format!("big/{n:03}"), value: vec![b'a' + (n % 26) as u8; 100 << 10] }
            })
            .collect();
        c.kv_apply(&f, ops).await.unwrap();
    }
    let list = c.kv_list(7, "big/").await.unwrap();
    assert_eq!(list.len(), 80, "every key of an 8 MB prefix");
    for (n, (k, v)) in list.iter().enumerate() {
        assert_eq!(k, &format!("big/{n:03}"), "in key order");
        assert!(v.value.len() == 100 << 10 && v.value.iter().all(|&b| b == b'a' + (n % 26) as u8), "{k}: its value whole");
    }
    m.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_kv() {
    let mut etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = settings(Backend::Etcd, Some(&etcd), dir.path());
    fenced_writes(open(&s).await).await;
    group_commit(open(&s).await).await;
    watch(open(&s).await).await;
    large_list(open(&s).await).await;
    durable(&s, Some(&mut etcd)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_kv() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(Backend::Embedded, None, dir.path());
    fenced_writes(open(&s).await).await;
    group_commit(open(&s).await).await;
    watch(open(&s).await).await;
    large_list(open(&s).await).await;
    durable(&s, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_with_auth() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let mut etcd = Etcd::start().unwrap();
    let mut admin = etcd_client::Client::connect([etcd.endpoint()], None).await.unwrap();
    admin.user_add("root", "rootpw", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.role_add("mware").await.unwrap();
    let perm = etcd_client::Permission::read_write("/t/auth").with_prefix();
    admin.role_grant_permission("mware", perm).await.unwrap();
    admin.user_add("mware", "s3cret-pw", None).await.unwrap();
    admin.user_grant_role("mware", "mware").await.unwrap();
    admin.auth_enable().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(Backend::Etcd, Some(&etcd), dir.path());
    s.coordination.prefix = Some("/t/auth".into());
    s.coordination.user = Some("mware".into());
    s.coordination.password = Some(mware_config::Secret::new("s3cret-pw"));
    assert!(!format!("{s:?}").contains("s3cret-pw"), "settings print the password");
    let c = open(&s).await;
    let mut m = c.join(info("auth1", 10)).await.unwrap();
    let f = Fence { group: 7, epoch: active(&mut m).await };
    kv_put(c.as_ref(), &f, "k", b"v".to_vec()).await.unwrap();
    assert_eq!(c.kv_get(7, "k").await.unwrap().unwrap().value, b"v");
    // etcd forgets auth tokens when it restarts: the client authenticates again.
    tokio::task::block_in_place(|| etcd.restart()).unwrap();
    let ok = tokio::time::timeout(T, async {
        loop {
            let epoch = m.activity.borrow().epoch();
            if let Some(epoch) = epoch {
                if kv_put(c.as_ref(), &Fence { group: 7, epoch }, "k", b"after".to_vec()).await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "no fenced write went through after the etcd restart");
    m.leave().await;

    s.coordination.password = Some(mware_config::Secret::new("wrong-pw"));
    let err = EtcdCoordinator::connect(s.clone()).await.err().expect("a wrong password is refused");
    assert!(!err.to_string().contains("wrong-pw"), "{err}");
    // Outside the granted prefix: refused.
    s.coordination.password = Some(mware_config::Secret::new("s3cret-pw"));
    s.coordination.prefix = Some("/elsewhere".into());
    let c = open(&s).await;
    assert!(c.join(info("auth2", 10)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_watch_resyncs_after_restart() {
    let mut etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = settings(Backend::Etcd, Some(&etcd), dir.path());
    let c = open(&s).await;
    let mut rx = c.kv_watch(7, "r/").await.unwrap();
    tokio::task::block_in_place(|| etcd.restart()).unwrap();
    let ev = tokio::time::timeout(T, rx.recv()).await.expect("an event in time").unwrap();
    assert_eq!(ev, KvEvent::Resync, "the watch says it was re-opened");
    let mut m = c.join(info("r1", 10)).await.unwrap();
    let f = Fence { group: 7, epoch: active(&mut m).await };
    kv_put(c.as_ref(), &f, "r/x", b"1".to_vec()).await.unwrap();
    let ev = tokio::time::timeout(T, rx.recv()).await.expect("an event in time").unwrap();
    assert!(matches!(&ev, KvEvent::Put { key, .. } if key == "r/x"), "{ev:?}");
    m.leave().await;
}
