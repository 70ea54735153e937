//! Shared by the acme tests: an embedded coordinator, this test's activity (a fence), the
//! service started on a site built around an `acme` section, waiting for a stored state,
//! and reading files and certificates on the local disk (the test sshd runs here).
#![allow(dead_code)]

use mware_acme::store::{self, CertRec};
use mware_acme::AcmeService;
use mware_config::{Backend, Coordination, Site};
use mware_coord::{Coordinator, EmbeddedCoordinator, Fence, MemberInfo, Membership, Settings};
use mware_host::{Events, InstanceEnv, Service, ServiceContext, ServiceState};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const GROUP: u32 = 1;

/// A site with one instance `mware1` on 127.0.0.1 carrying `acme`, SSH host keys pinned in
/// `known_hosts`.
pub fn site(acme: Value, known_hosts: &Path) -> Site {
    let v = json!({"site": "t", "ssh": {"known_hosts": known_hosts}, "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
        {"name": "mware1", "roletype": "mware", "iface": "eth0", "group": GROUP, "order": 10, "acme": acme}
    ]}]});
    mware_config::validate(&v.to_string(), &mware_acme::plugin().sections).unwrap_or_else(|e| panic!("test site: {e:#?}")).site
}

/// The embedded coordinator in `dir/coord/` (it makes its folder private: a folder of its own).
pub async fn open(dir: &Path) -> Arc<dyn Coordinator> {
    let c = Coordination {
        backend: Backend::Embedded,
        path: dir.join("coord").join("coord.sqlite").display().to_string(),
        ..Default::default()
    };
    Arc::new(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c }).await.unwrap())
}

pub async fn become_active(coord: &Arc<dyn Coordinator>, instance: &str) -> (Membership, Fence) {
    let info = MemberInfo {
        instance: instance.into(),
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

pub struct Run {
    pub svc: AcmeService,
    pub site: watch::Sender<Arc<Site>>,
    pub ctx: ServiceContext,
    pub events: Events,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts the service as `mware1` with `fence`; waits until it runs.
pub async fn start(coord: Arc<dyn Coordinator>, fence: Fence, site: Site) -> Run {
    start_with(coord, fence, site, &mut Default::default()).await
}

/// As [`start`], the metrics registered in `registry`.
pub async fn start_with(
    coord: Arc<dyn Coordinator>,
    fence: Fence,
    site: Site,
    registry: &mut prometheus_client::registry::Registry,
) -> Run {
    let svc = AcmeService::new(registry);
    let events = Events::new("mware1", GROUP);
    let (tx, rx) = watch::channel(Arc::new(site));
    svc.attach(&InstanceEnv { instance: "mware1".into(), coord: coord.clone(), site: rx.clone(), events: events.clone() });
    let mut ctx = ServiceContext::new("acme", "mware1", fence, coord, rx, CancellationToken::new(), Default::default());
    ctx.events = events.clone();
    let (s, c) = (svc.clone(), ctx.clone());
    let task = tokio::spawn(async move { s.run(c).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    while ctx.status.get().state != ServiceState::Running {
        assert!(!task.is_finished(), "the service ended: {:?}", ctx.status.get());
        assert!(Instant::now() < deadline, "{:?}", ctx.status.get());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Run { svc, site: tx, ctx, events, task }
}

impl Run {
    pub async fn stop(self) {
        self.ctx.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task).await.expect("stops in time").unwrap().unwrap();
    }
}

/// Waits (up to `secs`) until the record of `cert` satisfies `ok`; returns it.
pub async fn wait_rec(coord: &Arc<dyn Coordinator>, cert: &str, secs: u64, ok: impl Fn(&CertRec) -> bool) -> CertRec {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = store::load(coord.as_ref(), GROUP, cert).await.unwrap();
        if ok(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{cert}: not reached within {secs} s; record: last_error {:?}, order {:?}, deploys {:?}",
            r.last_error,
            r.order.as_ref().map(|o| &o.url),
            r.deploys
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Splits a PEM chain into its leaf and the rest; checks the chain with `openssl verify`
/// against `root_pem`. Returns openssl's output.
pub fn verify_chain(chain_pem: &str, root_pem: &str, dir: &Path) -> String {
    let blocks: Vec<&str> = chain_pem.split_inclusive("-----END CERTIFICATE-----").filter(|b| b.contains("BEGIN")).collect();
    assert!(blocks.len() >= 2, "expected a leaf and its intermediate, found {} certificates", blocks.len());
    std::fs::write(dir.join("leaf.pem"), blocks[0].trim_start()).unwrap();
    std::fs::write(dir.join("rest.pem"), blocks[1..].concat()).unwrap();
    std::fs::write(dir.join("root.pem"), root_pem).unwrap();
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(["verify", "-CAfile", "root.pem", "-untrusted", "rest.pem", "leaf.pem"])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openssl verify: {text}");
    text
}

/// `(mode, uid, gid)` of a file.
pub fn stat(p: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

/// uid and gid of an OS user (from `id`).
pub fn ids(user: &str) -> (u32, u32) {
    let n = |flag: &str| {
        let o = std::process::Command::new("id").args([flag, user]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().unwrap()
    };
    (n("-u"), n("-g"))
}

/// A folder the test sshd's user may write into.
pub fn target_dir(parent: &Path, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}
