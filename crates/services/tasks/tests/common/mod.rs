//! Test support: a real embedded coordinator (SQLite) in a temporary folder, a member
//! that becomes active, and the tasks service run with that member's fence.
#![allow(dead_code)]

use mware_config::{Backend, Coordination, Site};
use mware_coord::{Coordinator, EmbeddedCoordinator, Fence, MemberInfo, Membership, Settings};
use mware_host::{Service, ServiceContext, ServiceState};
use mware_tasks::{Run, TasksService};
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const GROUP: u32 = 1;

/// The site of the tests with these tasks.
pub fn site(tasks: Value) -> Site {
    let v = json!({
        "site": "t",
        "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
            {"name": "mware1", "roletype": "mware", "iface": "eth0", "group": GROUP, "order": 10, "service_tasks": tasks}
        ]}]
    });
    mware_config::validate(&v.to_string(), &mware_tasks::plugin().sections).expect("test site").site
}

/// An embedded coordinator in `dir`.
pub async fn open(dir: &std::path::Path) -> Arc<dyn Coordinator> {
    let c = Coordination { backend: Backend::Embedded, path: dir.join("coord.sqlite").display().to_string(), ..Default::default() };
    Arc::new(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c }).await.expect("open embedded"))
}

/// Joins as mware1 and waits until active.
pub async fn become_active(coord: &Arc<dyn Coordinator>) -> (Membership, Fence) {
    let info = MemberInfo {
        instance: "mware1".into(),
        group: GROUP,
        order: 10,
        address: "127.0.0.1:1".into(),
        version: "test".into(),
        since_ms: mware_coord::now_ms(),
    };
    let mut m = coord.join(info).await.expect("join");
    let epoch = tokio::time::timeout(Duration::from_secs(30), m.wait_active()).await.expect("active within 30 s").expect("activity");
    (m, Fence { group: GROUP, epoch })
}

/// A running service.
pub struct Running {
    pub svc: TasksService,
    pub ctx: ServiceContext,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub registry: Registry,
    pub site_tx: watch::Sender<Arc<Site>>,
}

/// Starts the service for `site` with `fence`.
pub async fn start(coord: Arc<dyn Coordinator>, fence: Fence, site: Site, logs: &std::path::Path) -> Running {
    let mut registry = Registry::default();
    let svc = TasksService::with_log_dir(&mut registry, logs);
    let (site_tx, site_rx) = watch::channel(Arc::new(site));
    svc.attach(&mware_host::InstanceEnv {
        instance: "mware1".into(),
        coord: coord.clone(),
        site: site_rx.clone(),
        events: mware_host::Events::detached(),
    });
    let ctx = ServiceContext::new("tasks", "mware1", fence, coord, site_rx, CancellationToken::new(), Arc::new(Default::default()));
    let s = svc.clone();
    let c = ctx.clone();
    let task = tokio::spawn(async move { s.run(c).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(ctx.status.get().state, ServiceState::Running | ServiceState::Idle) {
        assert!(Instant::now() < deadline, "service did not start: {:?}", ctx.status.get());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running { svc, ctx, task, registry, site_tx }
}

impl Running {
    /// Stops the service and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.ctx.cancel.cancel();
        self.task.await.expect("join")
    }

    /// The metrics text.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }
}

/// The kept runs of `task`, oldest first.
pub async fn runs(coord: &Arc<dyn Coordinator>, task: &str) -> Vec<Run> {
    mware_tasks::store::load_runs(coord.as_ref(), GROUP, task).await.expect("runs")
}

/// Waits until `pred(runs)` holds, up to `timeout`; returns the runs.
pub async fn wait_runs(coord: &Arc<dyn Coordinator>, task: &str, timeout: Duration, pred: impl Fn(&[Run]) -> bool) -> Vec<Run> {
    let deadline = Instant::now() + timeout;
    loop {
        let r = runs(coord, task).await;
        if pred(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "condition not met within {timeout:?}; runs: {r:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Counts runs of `outcome`.
pub fn count(runs: &[Run], outcome: &str) -> usize {
    runs.iter().filter(|r| r.outcome.as_str() == outcome).count()
}
