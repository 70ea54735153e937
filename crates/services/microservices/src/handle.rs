//! [`MicroService`]: the service's cheap-to-clone handle and what it holds (the
//! supervised processes, the site's log); the API and the `Service` impl both use it.

use crate::logstore::LogStore;
use crate::metrics::{Metrics, ProcLabels};
use crate::section::{Microservices, Process, RunOn};
use crate::supervisor::{supervise, Cmd, Handle, ProcCtx, ProcStatus, Statuses};
use mware_config::Site;
use mware_host::InstanceEnv;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The microservices service. Cheap to clone; build once at daemon start.
#[derive(Clone)]
pub struct MicroService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) statuses: Statuses,
    pub(crate) senders: Mutex<BTreeMap<String, mpsc::Sender<Cmd>>>,
    pub(crate) env: OnceLock<InstanceEnv>,
    pub(crate) store: OnceLock<LogStore>,
    pub(crate) metrics: Metrics,
    log_dir: Option<PathBuf>,
}

/// The mark of this instance's supervised processes: its site log's folder.
fn owner(store_dir: &std::path::Path) -> String {
    std::fs::canonicalize(store_dir).unwrap_or_else(|_| store_dir.to_path_buf()).display().to_string()
}

/// The log folder: `MWARE_LOG_DIR` or `var/log`.
fn log_dir() -> PathBuf {
    std::env::var_os("MWARE_LOG_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("var/log"))
}

impl MicroService {
    /// A service keeping the site's log under `MWARE_LOG_DIR` (or `var/log`), in
    /// `microservices/<instance>/`, with its metrics registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        Self::build(registry, None)
    }

    /// A service keeping its log under `dir` (tests).
    pub fn with_log_dir(registry: &mut Registry, dir: impl Into<PathBuf>) -> Self {
        Self::build(registry, Some(dir.into()))
    }

    fn build(registry: &mut Registry, log_dir: Option<PathBuf>) -> Self {
        MicroService {
            inner: Arc::new(Inner {
                statuses: Statuses::default(),
                senders: Mutex::default(),
                env: OnceLock::new(),
                store: OnceLock::new(),
                metrics: Metrics::new(registry),
                log_dir,
            }),
        }
    }

    /// Every process supervised on this instance.
    pub fn statuses(&self) -> Vec<ProcStatus> {
        self.inner.statuses.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// The site's log of this instance (once attached).
    pub fn store(&self) -> Option<&LogStore> {
        self.inner.store.get()
    }

    /// Sends an operator's request to process `name`; false when it is not supervised here.
    pub async fn command(&self, name: &str, cmd: Cmd) -> bool {
        let tx = self.inner.senders.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned();
        match tx {
            Some(tx) => tx.send(cmd).await.is_ok(),
            None => false,
        }
    }

    /// Opens the site's log for `instance` (configured by its role's section).
    pub fn open_store(&self, instance: &str, site: &Site) -> Result<(), crate::MicroError> {
        if self.inner.store.get().is_some() {
            return Ok(());
        }
        let cfg = site.instance(instance).and_then(|p| p.role.section::<Microservices>()).unwrap_or_default();
        let dir = self.inner.log_dir.clone().unwrap_or_else(log_dir).join("microservices").join(instance);
        let store = LogStore::open(&dir, &cfg.log, self.inner.metrics.log.clone())
            .map_err(|source| crate::MicroError::Log { dir: dir.display().to_string(), source })?;
        // What a daemon killed -9 here left behind (children of its processes).
        let owner = owner(&dir);
        let left = crate::spawn::sweep(&owner);
        if !left.is_empty() {
            tracing::warn!(pids = ?left, "killed processes left by an earlier run of this instance's supervisor");
        }
        let _ = self.inner.store.set(store);
        Ok(())
    }

    /// Starts the syslog forwarder of the store (once), following `site`.
    pub fn start_forward(&self, instance: &str, site: watch::Receiver<Arc<Site>>) {
        if let Some(store) = self.inner.store.get() {
            if !store.has_tap() {
                let f = crate::syslog::start(instance.to_string(), site, self.inner.metrics.syslog.clone());
                store.set_tap(Box::new(move |l| f.offer(l)));
            }
        }
    }

    /// Supervises the processes of `site` that run on `which`, until `cancel`; then
    /// stops them all.
    pub async fn supervise_set(&self, instance: String, mut site: watch::Receiver<Arc<Site>>, which: RunOn, cancel: CancellationToken) {
        let mut set: BTreeMap<String, Handle> = BTreeMap::new();
        loop {
            let want: Vec<Process> = site
                .borrow()
                .instance(&instance)
                .and_then(|p| p.role.section::<Microservices>())
                .map(|m| m.processes.into_iter().filter(|p| p.run_on == which).collect())
                .unwrap_or_default();
            self.reconcile(&instance, &mut set, &want, &cancel).await;
            tokio::select! {
                _ = cancel.cancelled() => break,
                r = site.changed() => if r.is_err() { break },
            }
        }
        for (_, h) in std::mem::take(&mut set) {
            self.stop_one(h).await;
        }
    }

    async fn stop_one(&self, h: Handle) {
        h.cancel.cancel();
        self.inner.senders.lock().unwrap_or_else(|e| e.into_inner()).remove(&h.cfg.name);
        let _ = h.join.await;
        self.inner.statuses.lock().unwrap_or_else(|e| e.into_inner()).remove(&h.cfg.name);
    }

    async fn reconcile(&self, instance: &str, set: &mut BTreeMap<String, Handle>, want: &[Process], cancel: &CancellationToken) {
        let stale: Vec<String> =
            set.iter().filter(|(n, h)| !want.iter().any(|p| &&p.name == n && *p == h.cfg)).map(|(n, _)| n.clone()).collect();
        for n in stale {
            if let Some(h) = set.remove(&n) {
                tracing::info!(process = %n, "process removed or changed in the site file; stopping it");
                self.stop_one(h).await;
            }
        }
        let Some(store) = self.inner.store.get().cloned() else { return };
        for p in want {
            if set.contains_key(&p.name) {
                continue;
            }
            let (tx, rx) = mpsc::channel(4);
            let child = cancel.child_token();
            self.inner.senders.lock().unwrap_or_else(|e| e.into_inner()).insert(p.name.clone(), tx);
            let cx = ProcCtx {
                cfg: p.clone(),
                instance: instance.to_string(),
                owner: owner(store.dir()),
                store: store.clone(),
                statuses: self.inner.statuses.clone(),
                cancel: child.clone(),
                cmds: rx,
                restarts_total: self.inner.metrics.restarts.get_or_create(&ProcLabels { process: p.name.clone() }).clone(),
            };
            let join = tokio::spawn(supervise(cx));
            set.insert(p.name.clone(), Handle { cfg: p.clone(), cancel: child, join });
        }
    }
}
