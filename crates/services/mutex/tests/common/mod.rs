//! Test support: a real coordinator (embedded SQLite or etcd), a member that becomes
//! active, the service run with that member's fence, and its HTTP API on loopback.
#![allow(dead_code)]

pub mod checker;

use mware_config::{Backend, Coordination, Site};
use mware_coord::{Coordinator, EmbeddedCoordinator, EtcdCoordinator, Fence, MemberInfo, Membership, Settings};
use mware_host::{Service, ServiceContext, ServiceState};
use mware_mutex::MutexService;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const GROUP: u32 = 1;

/// The site of the tests, with these critical sections limits.
pub fn site(limits: Value) -> Site {
    let v = json!({
        "site": "t",
        "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
            {"name": "mware1", "roletype": "mware", "iface": "eth0", "group": GROUP, "order": 10,
             "critical_sections": limits},
            {"name": "mware2", "roletype": "mware", "iface": "eth0", "group": GROUP, "order": 20,
             "critical_sections": limits}
        ]}]
    });
    serde_json::from_value(v).expect("test site")
}

/// Coordination settings for the embedded backend in `dir`.
pub fn embedded(dir: &std::path::Path) -> Settings {
    let c = Coordination { backend: Backend::Embedded, path: dir.join("coord.sqlite").display().to_string(), ..Default::default() };
    Settings { site: "t".into(), coordination: c }
}

/// Coordination settings for an etcd endpoint.
pub fn etcd(endpoint: &str) -> Settings {
    let c = Coordination { backend: Backend::Etcd, endpoints: vec![endpoint.to_string()], ..Default::default() };
    Settings { site: "t".into(), coordination: c }
}

/// Opens the backend.
pub async fn open(s: Settings) -> Arc<dyn Coordinator> {
    match s.coordination.backend {
        Backend::Embedded => Arc::new(EmbeddedCoordinator::open(s).await.expect("open embedded")),
        Backend::Etcd => Arc::new(EtcdCoordinator::connect(s).await.expect("connect etcd")),
    }
}

/// Joins as `instance` and waits until active; returns the membership and its fence.
pub async fn become_active(coord: &Arc<dyn Coordinator>, instance: &str, order: i64) -> (Membership, Fence) {
    let info = MemberInfo {
        instance: instance.into(),
        group: GROUP,
        order,
        address: "127.0.0.1:1".into(),
        version: "test".into(),
        since_ms: mware_coord::now_ms(),
    };
    let mut m = coord.join(info).await.expect("join");
    let epoch = tokio::time::timeout(Duration::from_secs(30), m.wait_active()).await.expect("became active within 30 s").expect("activity");
    (m, Fence { group: GROUP, epoch })
}

/// A service run: the service, its HTTP address, the run's cancel token and task.
pub struct Running {
    pub svc: MutexService,
    pub base: String,
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub server: tokio::task::JoinHandle<()>,
    /// Sends a reloaded site config to the running service.
    pub site: watch::Sender<Arc<Site>>,
    /// The service's state, as the host would keep it.
    pub status: mware_host::StatusHandle,
}

impl Running {
    /// Starts `svc` with `fence` and serves its routes; waits until it answers.
    pub async fn start(
        svc: MutexService,
        coord: Arc<dyn Coordinator>,
        fence: Fence,
        lease: Arc<mware_coord::LeaseStats>,
        instance: &str,
        site: Site,
    ) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = svc.routes().into_router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let (site_tx, rx) = watch::channel(Arc::new(site));
        let cancel = CancellationToken::new();
        let ctx = ServiceContext::new("mutex", instance, fence, coord, rx, cancel.clone(), lease);
        let status = ctx.status.clone();
        let s2 = svc.clone();
        let task = tokio::spawn(async move { s2.run(ctx).await });
        let r = Running { svc, base, cancel, task, server, site: site_tx, status: status.clone() };
        tokio::time::timeout(Duration::from_secs(20), async {
            while status.get().state != ServiceState::Running {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("service running within 20 s");
        r
    }

    /// Cancels the run and waits for it.
    pub async fn stop(self) -> MutexService {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("stops in time").unwrap().unwrap();
        self.server.abort();
        self.svc
    }

    pub fn url(&self, domain: &str, rest: &str) -> String {
        format!("{}/api/v1/domains/{domain}/mutexes{rest}", self.base)
    }
}

/// A new service with its own registry.
pub fn service() -> MutexService {
    MutexService::new(&mut Registry::default())
}

/// POSTs JSON; returns the status and the JSON answer.
pub async fn post(c: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let r = c.post(url).json(&body).send().await.expect("request");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// POSTs raw bytes.
pub async fn post_raw(c: &reqwest::Client, url: &str, body: &'static str) -> (u16, Value) {
    let r = c.post(url).header("content-type", "application/json").body(body).send().await.expect("request");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// GETs JSON.
pub async fn get(c: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = c.get(url).send().await.expect("request");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}
