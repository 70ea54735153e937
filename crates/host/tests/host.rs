//! The host against an embedded coordinator: it owns each service's state, announces
//! changes on the event channel, restarts a failed service, and stops every service
//! against one deadline.

use async_trait::async_trait;
use mware_config::{Role, Site};
use mware_coord::Activity;
use mware_host::{EventKind, Events, Host, Service, ServiceContext, ServiceState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A test service: `fail_first` runs end in an error; a run ignores its cancel for
/// `deaf` (a service slow to stop); `wanted` says whether the config asks for it.
struct Probe {
    name: &'static str,
    runs: AtomicUsize,
    fail_first: usize,
    deaf: Duration,
    wanted: bool,
}

#[async_trait]
impl Service for Probe {
    fn name(&self) -> &'static str {
        self.name
    }
    fn wanted(&self, _: &Role) -> bool {
        self.wanted
    }
    async fn run(&self, ctx: ServiceContext) -> anyhow::Result<()> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_first {
            anyhow::bail!("cannot reach the database (run {n})");
        }
        ctx.status.set(ServiceState::Running, "working");
        ctx.cancel.cancelled().await;
        tokio::time::sleep(self.deaf).await;
        Ok(())
    }
}

fn probe(name: &'static str, fail_first: usize, deaf: Duration, wanted: bool) -> Arc<Probe> {
    Arc::new(Probe { name, runs: AtomicUsize::new(0), fail_first, deaf, wanted })
}

fn site(dir: &std::path::Path) -> Site {
    let text = serde_json::json!({
        "site": "t", "coordination": {"backend": "embedded", "path": dir.join("c.sqlite")},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [
            {"name": "m1", "roletype": "mware", "iface": "lo", "group": 1, "order": 10}]}]
    });
    serde_json::from_value(text).unwrap()
}

struct Rig {
    host: Host,
    act: watch::Sender<Activity>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    events: Events,
}

async fn rig(services: Vec<Arc<dyn Service>>, stop_timeout: Duration) -> (Rig, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path());
    let coord = mware_coord::connect(&site).await.unwrap();
    let (_site_tx, site_rx) = watch::channel(Arc::new(site));
    std::mem::forget(_site_tx);
    let events = Events::new("m1", 1);
    let host = Host::new(services, "m1".into(), coord, site_rx, stop_timeout, Default::default(), events.clone());
    let (act, act_rx) = watch::channel(Activity::Passive { reason: "joining".into() });
    let stop = CancellationToken::new();
    let (h, s) = (host.clone(), stop.clone());
    let task = tokio::spawn(async move { h.run(act_rx, s).await });
    (Rig { host, act, stop, task, events }, dir)
}

async fn wait(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "{what} did not happen within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn active(epoch: u64) -> Activity {
    Activity::Active { epoch, since_ms: 0, reason: "won the election".into() }
}

#[tokio::test]
async fn a_failed_service_shows_why_and_is_restarted() {
    let (r, _d) = rig(vec![probe("db", 1, Duration::ZERO, true)], Duration::from_secs(1)).await;
    let mut rx = r.events.subscribe();
    r.act.send_replace(active(3));
    wait("failed state", || r.host.state_of("db").unwrap().state == ServiceState::Failed).await;
    assert!(r.host.state_of("db").unwrap().reason.contains("cannot reach the database"), "{:?}", r.host.state_of("db"));
    wait("restarted after the pause", || r.host.state_of("db").unwrap().state == ServiceState::Running).await;
    // Every change went out on the channel, in order.
    let mut seen = vec![];
    while let Ok(e) = rx.try_recv() {
        seen.push(e.kind.clone());
    }
    let states: Vec<_> = seen
        .iter()
        .filter_map(|k| match k {
            EventKind::Service { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(states, [ServiceState::Starting, ServiceState::Failed, ServiceState::Starting, ServiceState::Running], "{seen:?}");
    assert!(matches!(seen[0], EventKind::Activity { active: true, epoch: Some(3), .. }), "{seen:?}");
    r.stop.cancel();
    r.task.await.unwrap();
}

#[tokio::test]
async fn services_stop_against_one_deadline_not_one_each() {
    let limit = Duration::from_millis(500);
    let deaf = Duration::from_secs(30);
    let svcs: Vec<Arc<dyn Service>> =
        vec![probe("a", 0, deaf, true), probe("b", 0, deaf, true), probe("c", 0, deaf, true), probe("d", 0, deaf, true)];
    let (r, _d) = rig(svcs, limit).await;
    r.act.send_replace(active(1));
    wait("all running", || ["a", "b", "c", "d"].iter().all(|n| r.host.state_of(n).unwrap().state == ServiceState::Running)).await;
    let t0 = Instant::now();
    r.act.send_replace(Activity::Passive { reason: "lease lost".into() });
    wait("all stopped", || ["a", "b", "c", "d"].iter().all(|n| r.host.state_of(n).unwrap().state == ServiceState::Stopped)).await;
    let took = t0.elapsed();
    // One deadline for the four: about 0.5 s, where one limit each would take 2 s.
    assert!(took < Duration::from_millis(1500), "stopping four services that ignore cancel took {took:?}");
    let st = r.host.state_of("a").unwrap();
    assert!(st.reason.contains("aborted") && st.reason.contains("instance is not active"), "{st:?}");
    r.stop.cancel();
    r.task.await.unwrap();
}

#[tokio::test]
async fn a_service_the_group_does_not_configure_says_so() {
    let (r, _d) = rig(vec![probe("on", 0, Duration::ZERO, true), probe("off", 0, Duration::ZERO, false)], Duration::from_secs(1)).await;
    r.act.send_replace(active(1));
    wait("on running", || r.host.state_of("on").unwrap().state == ServiceState::Running).await;
    wait("off says why", || r.host.state_of("off").unwrap().reason == "not configured for this group").await;
    let listed: Vec<_> = r.host.status().into_iter().map(|s| s.name).collect();
    assert_eq!(listed, ["on"], "status lists only the services the config asks for");
    r.stop.cancel();
    r.task.await.unwrap();
    assert_eq!(r.host.state_of("on").unwrap().reason, "the daemon is stopping");
}
