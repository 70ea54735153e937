//! Test harness: real PostgreSQL 15 pair, a real sshd (login as postgres with a
//! password, its host key pinned in the test site's known_hosts), the real embedded coordinator, and the `PgctlService` run through
//! `Service::run` with a `ServiceContext` from an active membership.
#![allow(dead_code)]

use mware_config::{Backend, Coordination, Site};
use mware_coord::{Coordinator, EmbeddedCoordinator, Fence, MemberInfo, Membership, Settings};
use mware_host::{Service, ServiceContext};
use mware_pgctl::{GroupStatus, PgctlService};
use mware_testkit::pg::PgInstance;
use mware_testkit::sshd::Sshd;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const GROUP: u32 = 1;

/// JSON of one server of a group.
pub fn server_json(pg: &PgInstance, sshd: &Sshd) -> Value {
    mware_testkit::pg::controller_server_json(pg, sshd)
}

/// A group of two servers with short timings.
pub fn group_json(a: Value, b: Value, promote_after_s: u64) -> Value {
    json!({"key": "main", "servers": [a, b], "promote_after_s": promote_after_s, "check_interval_ms": 300})
}

/// The test site's known_hosts file.
pub fn known_hosts(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("known_hosts")
}

/// Starts sshd and pins its host key in the test site's known_hosts file.
pub fn pinned_sshd(dir: &std::path::Path) -> Sshd {
    let sshd = Sshd::start().expect("sshd");
    sshd.pin_in(&known_hosts(dir)).expect("pin the sshd host key");
    sshd
}

pub fn site(dir: &std::path::Path, groups: Vec<Value>) -> Site {
    serde_json::from_value(site_json(dir, groups)).expect("site parses")
}

/// The site file (JSON) of [`site`].
pub fn site_json(dir: &std::path::Path, groups: Vec<Value>) -> Value {
    json!({
        "site": "t",
        "coordination": {"backend": "embedded", "path": dir.join("coord.sqlite").display().to_string()},
        "ssh": {"known_hosts": known_hosts(dir).display().to_string()},
        "servers": [{"name": "srv1", "ifaces": {"lo": "127.0.0.1"}, "roles": [
            {"name": "mware1", "roletype": "mware", "iface": "lo", "group": GROUP, "order": 10,
             "api_port": 8271, "pg_controller": groups}
        ]}]
    })
}

/// One active mware instance running the service.
pub struct Controller {
    pub svc: PgctlService,
    pub coord: Arc<dyn Coordinator>,
    pub site_tx: watch::Sender<Arc<Site>>,
    pub cancel: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub membership: Option<Membership>,
    pub fence: Fence,
    pub log_dir: std::path::PathBuf,
    /// The registry the service's metrics are in.
    pub registry: prometheus_client::registry::Registry,
}

impl Controller {
    pub async fn start(dir: &std::path::Path, instance: &str, site: Site) -> Controller {
        let c =
            Coordination { backend: Backend::Embedded, path: dir.join("coord.sqlite").display().to_string(), ..Coordination::default() };
        let coord: Arc<dyn Coordinator> =
            Arc::new(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c }).await.expect("coordinator"));
        let info = MemberInfo {
            instance: instance.into(),
            group: GROUP,
            order: 10,
            address: "127.0.0.1:0".into(),
            version: "test".into(),
            since_ms: mware_coord::now_ms(),
        };
        let mut m = coord.join(info).await.expect("join");
        let a = tokio::time::timeout(Duration::from_secs(30), m.wait_active()).await.expect("active in time").expect("activity");
        let fence = Fence { group: GROUP, epoch: a };
        let log_dir = dir.join("log");
        let mut registry = prometheus_client::registry::Registry::default();
        let svc = PgctlService::with_log_dir(&mut registry, &log_dir);
        let (site_tx, site_rx) = watch::channel(Arc::new(site));
        let cancel = CancellationToken::new();
        let ctx = ServiceContext::new("pgctl", "mware1", fence, coord.clone(), site_rx, cancel.clone(), m.lease.clone());
        let s2 = svc.clone();
        let task = tokio::spawn(async move { s2.run(ctx).await });
        Controller { svc, coord, site_tx, cancel, task: Some(task), membership: Some(m), fence, log_dir, registry }
    }

    pub fn group(&self) -> Option<GroupStatus> {
        self.svc.group("main")
    }

    /// Waits until `f` holds for the group status, up to `limit`; panics with the status.
    pub async fn wait_status(&self, limit: Duration, what: &str, f: impl Fn(&GroupStatus) -> bool) -> GroupStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(g) = self.group() {
                if f(&g) {
                    return g;
                }
            }
            if Instant::now() > deadline {
                panic!("{what}: not reached within {limit:?}; status: {:#?}", self.group());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The metrics in Prometheus text format.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("metrics encode");
        out
    }

    pub fn journal(&self) -> String {
        std::fs::read_to_string(self.log_dir.join("pgctrl_main.log")).unwrap_or_default()
    }

    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        if let Some(m) = self.membership.take() {
            m.leave().await;
        }
    }
}

/// Blocking helper run off the async workers.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Waits (polling a blocking check) up to `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !blocking(&mut f) {
        assert!(Instant::now() < deadline, "{what}: not reached within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info").try_init();
}
