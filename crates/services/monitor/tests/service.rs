//! The monitoring service against a real embedded coordinator (SQLite): a probe turns
//! failing after `fail_after` failures and its record is in the coordinator before the
//! event is announced; a failover (new epoch) keeps its state and since when and
//! announces it again; the group's failed service and pgctl's "no master" are recorded;
//! the site's state is the worst item and names it; a group with no active instance is
//! failing with its items stale.

use mware_config::{Backend, Coordination, Site};
use mware_coord::{Coordinator, EmbeddedCoordinator, Fence, MemberInfo, Membership, Settings};
use mware_host::items;
use mware_host::{EventKind, Events, InstanceEnv, Service, ServiceContext, ServiceState};
use mware_monitor::{Health, MonitorService};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const GROUP: u32 = 1;

fn site(flag: &Path) -> Site {
    let probe = json!({"name": "flag", "kind": "command", "command": ["/bin/sh", "-c", format!("exit $(cat {})", flag.display())],
        "interval_ms": 100, "timeout_ms": 100, "fail_after": 3, "recover_after": 2});
    let v = json!({"site": "t", "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
        {"name": "mware1", "roletype": "mware", "iface": "eth0", "group": GROUP, "order": 10, "monitoring": {"probes": [probe]}},
        {"name": "other1", "roletype": "mware", "iface": "eth0", "group": 2, "order": 10, "api_port": 8272, "include_domains": ["x.example"],
         "monitoring": {"probes": [{"name": "far", "kind": "tcp", "target": "127.0.0.1:1"}]}}
    ]}]});
    mware_config::validate(&v.to_string(), &mware_monitor::plugin().sections).expect("test site").site
}

async fn open(dir: &Path) -> Arc<dyn Coordinator> {
    let c = Coordination { backend: Backend::Embedded, path: dir.join("coord.sqlite").display().to_string(), ..Default::default() };
    Arc::new(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c }).await.unwrap())
}

async fn become_active(coord: &Arc<dyn Coordinator>) -> (Membership, Fence) {
    let info = MemberInfo {
        instance: "mware1".into(),
        group: GROUP,
        order: 10,
        address: "127.0.0.1:1".into(),
        version: "t".into(),
        since_ms: mware_coord::now_ms(),
    };
    let mut m = coord.join(info).await.unwrap();
    let epoch = tokio::time::timeout(Duration::from_secs(30), m.wait_active()).await.unwrap().unwrap();
    (m, Fence { group: GROUP, epoch })
}

struct Run {
    svc: MonitorService,
    _site: watch::Sender<Arc<Site>>,
    ctx: ServiceContext,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(coord: Arc<dyn Coordinator>, fence: Fence, site: Site, events: Events) -> Run {
    let svc = MonitorService::new(&mut Default::default());
    let (tx, rx) = watch::channel(Arc::new(site));
    svc.attach(&InstanceEnv { instance: "mware1".into(), coord: coord.clone(), site: rx.clone(), events: events.clone() });
    let mut ctx = ServiceContext::new("monitoring", "mware1", fence, coord, rx, CancellationToken::new(), Default::default());
    ctx.events = events;
    let (s, c) = (svc.clone(), ctx.clone());
    let task = tokio::spawn(async move { s.run(c).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while ctx.status.get().state != ServiceState::Running {
        assert!(Instant::now() < deadline, "{:?}", ctx.status.get());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Run { svc, _site: tx, ctx, task }
}

impl Run {
    async fn stop(self) {
        self.ctx.cancel.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Waits for an `Item` event about `item` in `state`; returns its reason.
async fn item_event(rx: &mut tokio::sync::broadcast::Receiver<Arc<mware_host::Event>>, item: &str, state: &str) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = rx.recv().await.unwrap();
            if let EventKind::Item { source, item: i, state: s, reason } = &e.kind {
                if source == "monitoring" && i == item && s == state {
                    return reason.clone();
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event {item} {state}"))
}

async fn record(coord: &Arc<dyn Coordinator>, kind: &str, name: &str) -> Option<items::Item> {
    items::load(coord.as_ref(), GROUP).await.unwrap().into_iter().find(|i| i.kind == kind && i.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_state_is_persisted_before_it_is_announced_and_survives_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag");
    std::fs::write(&flag, "0").unwrap();
    let coord = open(dir.path()).await;
    let (m1, f1) = become_active(&coord).await;
    let events = Events::new("mware1", GROUP);
    let mut rx = events.subscribe();
    let r = start(coord.clone(), f1, site(&flag), events.clone()).await;
    let why = item_event(&mut rx, "probe/flag", "ok").await;
    assert!(why.starts_with("ok: first check succeeded (exited with 0"), "{why}");

    std::fs::write(&flag, "1").unwrap();
    let why = item_event(&mut rx, "probe/flag", "failing").await;
    // The record was written before the event went out.
    let rec = record(&coord, "probe", "flag").await.unwrap();
    assert_eq!((rec.state, rec.reason.as_str(), rec.instance.as_str()), (Health::Failing, why.as_str(), "mware1"));
    assert!(why.starts_with("failing: 3 checks in a row failed (fail_after 3): /bin/sh exited with 1"), "{why}");
    let since = rec.since_ms;

    // Failover: this activity ends; the next one (new epoch) starts from the record.
    r.stop().await;
    m1.leave().await;
    let (_m2, f2) = become_active(&coord).await;
    let events2 = Events::new("mware1", GROUP);
    let mut rx2 = events2.subscribe();
    let r2 = start(coord.clone(), f2, site(&flag), events2.clone()).await;
    let (past, _) = events2.since(0);
    let restored = past.iter().find_map(|e| match &e.kind {
        EventKind::Item { item, state, reason, .. } if item == "probe/flag" => Some((state.clone(), reason.clone())),
        _ => None,
    });
    let (state, reason) = restored.expect("the restored state is announced");
    assert_eq!(state, "failing");
    assert!(reason.contains(&format!("restored at epoch {}", f2.epoch)), "{reason}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probes = r2.svc.clone();
    let view = mware_host::site::read(coord.as_ref(), &site(&flag)).await.unwrap();
    let p = view.items.iter().find(|i| i.kind == "probe" && i.name == "flag").unwrap();
    assert_eq!((p.state, p.since_ms), (Health::Failing, Some(since)), "since when is kept across the failover");
    drop(probes);

    // It recovers after recover_after successes, in the new activity.
    std::fs::write(&flag, "0").unwrap();
    let why = item_event(&mut rx2, "probe/flag", "ok").await;
    assert!(why.starts_with("ok again after 2 checks in a row succeeded (recover_after 2)"), "{why}");
    r2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_pgctl_and_groups_make_the_site_state() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag");
    std::fs::write(&flag, "0").unwrap();
    let coord = open(dir.path()).await;
    let (_m, f) = become_active(&coord).await;
    let events = Events::new("mware1", GROUP);
    let r = start(coord.clone(), f, site(&flag), events.clone()).await;
    events.publish(EventKind::Service {
        service: "backup".into(),
        state: ServiceState::Failed,
        reason: "pg_basebackup exited with 1".into(),
    });
    events.publish(EventKind::Service { service: "mutex".into(), state: ServiceState::Running, reason: "serving".into() });
    events.publish(EventKind::Item {
        source: "pgctl".into(),
        item: "main".into(),
        state: "failing".into(),
        reason: "no master: both servers unreachable".into(),
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let view = loop {
        let v = mware_host::site::read(coord.as_ref(), &site(&flag)).await.unwrap();
        let has = |k: &str, n: &str| v.items.iter().any(|i| i.kind == k && i.name == n);
        if has("service", "backup")
            && has("pgctl", "main")
            && v.items.iter().any(|i| i.kind == "probe" && i.name == "flag" && i.state == Health::Ok)
        {
            break v;
        }
        assert!(Instant::now() < deadline, "{v:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view.state, Health::Failing);
    let find = |k: &str, n: &str| view.items.iter().find(|i| i.kind == k && i.name == n).unwrap().clone();
    let backup = find("service", "backup");
    assert_eq!((backup.state, backup.group, backup.stale), (Health::Failing, GROUP, false));
    assert_eq!(backup.reason, "failed: pg_basebackup exited with 1");
    assert_eq!(find("service", "mutex").state, Health::Ok);
    assert_eq!(find("pgctl", "main").reason, "no master: both servers unreachable");
    let g1 = find("group", "1");
    assert_eq!(g1.state, Health::Ok);
    assert!(g1.reason.starts_with("mware1 is active (epoch"), "{}", g1.reason);
    // Group 2 has no active instance: failing; its probe was never checked.
    let g2 = find("group", "2");
    assert_eq!(g2.state, Health::Failing);
    assert!(g2.reason.starts_with("group 2 has no active instance"), "{}", g2.reason);
    let far = find("probe", "far");
    assert_eq!((far.state, far.stale), (Health::Unknown, true));
    assert_eq!(view.items[0].state, Health::Failing, "worst first");
    assert!(
        view.summary.starts_with("failing: 3 of ") && view.summary.contains("service backup (group 1)") && view.summary.contains("group 2"),
        "{}",
        view.summary
    );
    // Group 2's monitoring-less state is seen by group 1's monitoring: since when is known.
    assert!(g2.since_ms.is_some(), "{g2:?}");

    // The service runs again: ok.
    events.publish(EventKind::Service { service: "backup".into(), state: ServiceState::Starting, reason: "starting".into() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(record(&coord, "service", "backup").await.unwrap().state, Health::Failing, "a restart alone does not clear the failure");
    events.publish(EventKind::Service { service: "backup".into(), state: ServiceState::Running, reason: "next backup at 03:00".into() });
    let deadline = Instant::now() + Duration::from_secs(5);
    while record(&coord, "service", "backup").await.unwrap().state != Health::Ok {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A service the config no longer asks for leaves the site's state.
    events.publish(EventKind::Service {
        service: "backup".into(),
        state: ServiceState::Stopped,
        reason: "not configured for this group".into(),
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while record(&coord, "service", "backup").await.is_some() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_epoch_records_and_announces_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag");
    std::fs::write(&flag, "1").unwrap();
    let coord = open(dir.path()).await;
    let (m1, old) = become_active(&coord).await;
    m1.leave().await;
    let (_m2, _new) = become_active(&coord).await;
    let events = Events::new("mware1", GROUP);
    let svc = MonitorService::new(&mut Default::default());
    let (_tx, rx) = watch::channel(Arc::new(site(&flag)));
    let _keep = &_tx;
    let mut ctx = ServiceContext::new("monitoring", "mware1", old, coord.clone(), rx, CancellationToken::new(), Default::default());
    ctx.events = events.clone();
    let e = tokio::time::timeout(Duration::from_secs(10), svc.run(ctx)).await.expect("ends").unwrap_err();
    assert!(e.to_string().contains("stale"), "{e}");
    let (past, _) = events.since(0);
    assert!(!past.iter().any(|e| matches!(&e.kind, EventKind::Item { state, .. } if state != "ok" && state != "failing" )));
    assert!(!past.iter().any(|e| matches!(&e.kind, EventKind::Item { item, .. } if item == "group/1")), "{past:?}");
    assert!(record(&coord, "group", "1").await.is_none());
}
