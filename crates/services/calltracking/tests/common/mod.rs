//! Test support: a real Kamailio (examples/kamailio) on ports the test keeps (so it can
//! be restarted on them), SIPp phones, the embedded coordinator with this test as the
//! active member, and the call tracking service run with that fence.
#![allow(dead_code)]

use mware_calltracking::CallTracking;
use mware_config::{Backend, Coordination, Site};
use mware_coord::{Coordinator, EmbeddedCoordinator, Fence, MemberInfo, Membership, Settings};
use mware_host::{Service, ServiceContext, ServiceState};
use mware_testkit::proc::free_port;
use mware_testkit::sip::{free_sip_port, Kamailio};
use prometheus_client::registry::Registry;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const DOMAIN: &str = "example.test";
pub const GROUP: u32 = 1;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)
}

/// The registrar: Kamailio with the reference config on ports chosen once.
pub struct Registrar {
    pub kam: Option<Kamailio>,
    pub sip_port: u16,
    pub http_port: u16,
    pub dir: PathBuf,
    pub defines: Vec<String>,
}

impl Registrar {
    pub fn start(dir: &std::path::Path) -> Registrar {
        let mut r = Registrar::new(dir, vec![]);
        r.restart();
        r
    }

    /// Ports chosen, not started yet; `defines` as Kamailio's `-A` values.
    pub fn new(dir: &std::path::Path, defines: Vec<String>) -> Registrar {
        Registrar { kam: None, sip_port: free_sip_port(), http_port: free_port(), dir: dir.to_path_buf(), defines }
    }

    /// Starts it (again) on its ports (after [`Registrar::kill9`]).
    pub fn restart(&mut self) {
        let cfg = repo().join("examples/kamailio/kamailio.cfg");
        let defines: Vec<&str> = self.defines.iter().map(String::as_str).collect();
        self.kam = Some(Kamailio::start_on(&cfg, &self.dir, &defines, self.sip_port, self.http_port).expect("kamailio"));
    }

    pub fn kill9(&mut self) {
        if let Some(mut k) = self.kam.take() {
            k.kill9();
        }
    }

    pub fn kam(&self) -> &Kamailio {
        self.kam.as_ref().expect("running")
    }

    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/RPC", self.http_port)
    }

    /// The contacts of `aor` now.
    pub fn contacts(&self, aor: &str) -> Vec<String> {
        match self.kam().rpc("ul.lookup", serde_json::json!(["location", aor])) {
            Ok(v) => {
                v["Contacts"].as_array().into_iter().flatten().filter_map(|c| c["Contact"]["Address"].as_str().map(String::from)).collect()
            }
            Err(_) => vec![],
        }
    }

    /// Waits until `pred(contacts of aor)` holds; how long it took.
    pub fn wait_contacts(&self, aor: &str, timeout: Duration, pred: impl Fn(&[String]) -> bool) -> Duration {
        let t0 = Instant::now();
        loop {
            let c = self.contacts(aor);
            if pred(&c) {
                return t0.elapsed();
            }
            assert!(t0.elapsed() < timeout, "{aor}: condition not met within {timeout:?}; contacts {c:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A site with one instance whose group has this `calltracking` section.
pub fn site(section: Value) -> Site {
    let v = serde_json::json!({
        "site": "t",
        "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
            {"name": "mware1", "roletype": "mware", "iface": "eth0", "group": GROUP, "order": 10,
             "calltracking": section}
        ]}]
    });
    mware_config::validate(&v.to_string(), &mware_calltracking::plugin().sections).expect("test site").site
}

/// An embedded coordinator in `dir`, with this test active in the group.
pub async fn coordinator(dir: &std::path::Path) -> (Arc<dyn Coordinator>, Membership, Fence) {
    let c = Coordination { backend: Backend::Embedded, path: dir.join("coord.sqlite").display().to_string(), ..Default::default() };
    let coord: Arc<dyn Coordinator> =
        Arc::new(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c }).await.expect("coordinator"));
    let info = MemberInfo {
        instance: "mware1".into(),
        group: GROUP,
        order: 10,
        address: "127.0.0.1:1".into(),
        version: "test".into(),
        since_ms: mware_coord::now_ms(),
    };
    let mut m = coord.join(info).await.expect("join");
    let epoch = tokio::time::timeout(Duration::from_secs(30), m.wait_active()).await.expect("active in 30 s").expect("activity");
    (coord, m, Fence { group: GROUP, epoch })
}

/// The service running with a fence, its context and metrics.
pub struct Running {
    pub svc: CallTracking,
    pub ctx: ServiceContext,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub registry: Registry,
    pub site_tx: watch::Sender<Arc<Site>>,
}

pub async fn start(coord: Arc<dyn Coordinator>, fence: Fence, site: Site) -> Running {
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    let mut registry = Registry::default();
    let svc = CallTracking::new(&mut registry);
    start_with(svc, registry, coord, fence, site).await
}

/// Stops the service and starts a new activity of the same handle (its HTTP routes stay
/// served): what it knows comes back from the coordinator and the core only.
pub async fn restart(run: Running, coord: Arc<dyn Coordinator>, fence: Fence) -> Running {
    let site = (**run.ctx.site.borrow()).clone();
    run.ctx.cancel.cancel();
    run.task.await.expect("join").expect("stopped");
    start_with(run.svc, run.registry, coord, fence, site).await
}

async fn start_with(svc: CallTracking, registry: Registry, coord: Arc<dyn Coordinator>, fence: Fence, site: Site) -> Running {
    let (site_tx, site_rx) = watch::channel(Arc::new(site));
    let ctx = ServiceContext::new("calltracking", "mware1", fence, coord, site_rx, CancellationToken::new(), Arc::new(Default::default()));
    let (s, c) = (svc.clone(), ctx.clone());
    let task = tokio::spawn(async move { s.run(c).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(ctx.status.get().state, ServiceState::Running) {
        assert!(Instant::now() < deadline, "service did not start: {:?}", ctx.status.get());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running { svc, ctx, task, registry, site_tx }
}

impl Running {
    pub async fn stop(self) -> anyhow::Result<()> {
        self.ctx.cancel.cancel();
        self.task.await.expect("join")
    }

    pub fn metrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }

    /// The `Item` events announced so far, as `(item, state, reason)`.
    pub fn items(&self) -> Vec<(String, String, String)> {
        self.ctx
            .events
            .since(0)
            .0
            .iter()
            .filter_map(|e| match &e.kind {
                mware_host::EventKind::Item { item, state, reason, .. } => Some((item.clone(), state.clone(), reason.clone())),
                _ => None,
            })
            .collect()
    }

    /// Serves the service's routes on a loopback port (no auth: the host adds it).
    pub async fn serve_api(&self) -> String {
        let router = self.svc.routes().into_router();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, router).await });
        format!("http://{addr}")
    }
}

/// One call from a SIPp UAC through the proxy to `user@example.test`; SIPp's exit code.
pub fn call(proxy_port: u16, user: &str, dir: &std::path::Path) -> i32 {
    call_holding(proxy_port, user, dir, 100)
}

/// [`call`], holding the answered call `hold_ms` before the caller's BYE.
pub fn call_holding(proxy_port: u16, user: &str, dir: &std::path::Path, hold_ms: u64) -> i32 {
    let out = std::process::Command::new("/usr/bin/sipp")
        .arg(format!("127.0.0.1:{proxy_port}"))
        .arg("-sf")
        .arg(mware_testkit::sip::scenario("uac.xml"))
        .args(["-s", user, "-key", "domain", DOMAIN, "-d", &hold_ms.to_string(), "-i", "127.0.0.1", "-p"])
        .arg(free_sip_port().to_string())
        .args(["-m", "1", "-timeout", "10", "-timeout_error", "-nostdin"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("sipp");
    out.code().unwrap_or(-1)
}

impl Running {
    /// The service's status document.
    pub fn svc_status(&self) -> Value {
        self.svc.status_doc()
    }
}
