//! The host: starts the wanted services when this instance becomes active and
//! cancels them, within a time limit, as soon as activity is lost.
//!
//! The decision of which services should run is a pure function of the activity
//! and the role ([`desired`]); the loop only applies the difference.

use crate::service::{LeaseSlot, Service, ServiceContext, ServiceState, ServiceStatus};
use mware_config::Site;
use mware_coord::{Activity, Coordinator, Fence};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Pause before a failed service is started again.
const RESTART_PAUSE: Duration = Duration::from_secs(2);

/// Runs services on the active instance.
#[derive(Clone)]
pub struct Host {
    services: Arc<Vec<Arc<dyn Service>>>,
    instance: String,
    coord: Arc<dyn Coordinator>,
    site: watch::Receiver<Arc<Site>>,
    stop_timeout: Duration,
    lease: LeaseSlot,
}

/// A service as listed in status.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    /// Service name.
    pub name: &'static str,
    /// Its status.
    #[serde(flatten)]
    pub status: ServiceStatus,
}

struct Running {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Names of the services that should run: all wanted ones while active, none otherwise.
pub fn desired(services: &[Arc<dyn Service>], site: &Site, instance: &str, active: bool) -> Vec<&'static str> {
    let Some(p) = site.instance(instance) else { return vec![] };
    if !active {
        return vec![];
    }
    services.iter().filter(|s| s.wanted(p.role)).map(|s| s.name()).collect()
}

impl Host {
    /// A host for `instance` with its services (listed explicitly by the binary).
    pub fn new(
        services: Vec<Arc<dyn Service>>,
        instance: String,
        coord: Arc<dyn Coordinator>,
        site: watch::Receiver<Arc<Site>>,
        stop_timeout: Duration,
        lease: LeaseSlot,
    ) -> Self {
        Host { services: Arc::new(services), instance, coord, site, stop_timeout, lease }
    }

    /// The services this config asks for, with their status (others are not listed).
    pub fn status(&self) -> Vec<HostStatus> {
        let site = self.site.borrow().clone();
        let Some(p) = site.instance(&self.instance) else { return vec![] };
        self.services
            .iter()
            .filter(|s| s.wanted(p.role))
            .map(|s| HostStatus { name: s.name(), status: s.status() })
            .collect()
    }

    /// The services, for mounting their routes.
    pub fn services(&self) -> &[Arc<dyn Service>] {
        &self.services
    }

    /// Follows `activity` until `shutdown`, starting and stopping services.
    pub async fn run(&self, mut activity: watch::Receiver<Activity>, shutdown: CancellationToken) {
        let mut site_rx = self.site.clone();
        let mut running: BTreeMap<&'static str, Running> = BTreeMap::new();
        let mut epoch_running: Option<u64> = None;
        loop {
            let act = activity.borrow_and_update().clone();
            let site = site_rx.borrow_and_update().clone();
            let epoch = act.epoch();
            // A new epoch means a new activity: everything restarts with the new fence.
            if epoch != epoch_running && !running.is_empty() {
                tracing::info!(reason = "activity changed", "stopping all services");
                self.stop_all(&mut running).await;
            }
            epoch_running = epoch;
            let want = desired(&self.services, &site, &self.instance, epoch.is_some());
            let stop: Vec<_> = running.keys().filter(|n| !want.contains(n)).copied().collect();
            for name in stop {
                if let Some(r) = running.remove(name) {
                    tracing::info!(service = name, "stopping service: no longer wanted by the config");
                    self.stop_one(name, r).await;
                }
            }
            if let (Some(e), Some(p)) = (epoch, site.instance(&self.instance)) {
                let fence = Fence { group: p.role.group, epoch: e };
                for svc in self.services.iter().filter(|s| want.contains(&s.name())) {
                    if !running.contains_key(svc.name()) {
                        running.insert(svc.name(), self.start(svc.clone(), fence));
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = activity.changed() => if r.is_err() { break },
                r = site_rx.changed() => if r.is_err() { break },
            }
        }
        self.stop_all(&mut running).await;
    }

    fn start(&self, svc: Arc<dyn Service>, fence: Fence) -> Running {
        let cancel = CancellationToken::new();
        let ctx = ServiceContext {
            instance: self.instance.clone(),
            fence,
            coord: self.coord.clone(),
            site: self.site.clone(),
            cancel: cancel.clone(),
            // No membership lease known: a default one is never "active now", so services
            // fall back to fenced writes for every decision.
            lease: self.lease.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default(),
        };
        tracing::info!(service = svc.name(), epoch = fence.epoch, group = fence.group, "starting service");
        let task = tokio::spawn(async move {
            loop {
                match svc.run(ctx.clone()).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(service = svc.name(), error = %format!("{e:#}"), "service failed; restarting after a pause");
                        if ctx.cancel.is_cancelled() {
                            break;
                        }
                        tokio::select! {
                            _ = ctx.cancel.cancelled() => break,
                            _ = tokio::time::sleep(RESTART_PAUSE) => {}
                        }
                    }
                }
            }
        });
        Running { cancel, task }
    }

    async fn stop_one(&self, name: &str, r: Running) {
        r.cancel.cancel();
        let abort = r.task.abort_handle();
        if tokio::time::timeout(self.stop_timeout, r.task).await.is_err() {
            tracing::warn!(service = name, timeout_ms = self.stop_timeout.as_millis() as u64, "service did not stop in time; aborted");
            abort.abort();
        }
        if let Some(s) = self.services.iter().find(|s| s.name() == name) {
            if s.status().state != ServiceState::Stopped {
                tracing::debug!(service = name, "stopped");
            }
        }
    }

    async fn stop_all(&self, running: &mut BTreeMap<&'static str, Running>) {
        let all = std::mem::take(running);
        for r in all.values() {
            r.cancel.cancel();
        }
        for (name, r) in all {
            self.stop_one(name, r).await;
        }
    }
}
