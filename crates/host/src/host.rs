//! The host: starts the wanted services when this instance becomes active and
//! cancels them, against one deadline, as soon as activity is lost.
//!
//! The decision of which services should run is a pure function of the activity
//! and the role ([`desired`]); the loop only applies the difference. The host owns
//! each service's state (see [`StatusHandle`]) and announces activity changes and
//! service state changes on the event channel.

use crate::events::{EventKind, Events};
use crate::service::{LeaseSlot, Service, ServiceContext, StatusHandle};
use crate::state::{ServiceState, ServiceStatus};
use mware_config::Site;
use mware_coord::{Activity, Coordinator, Fence};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Pause before a failed service is started again.
const RESTART_PAUSE: Duration = Duration::from_secs(2);

/// A service with the state the host keeps for it.
struct Hosted {
    svc: Arc<dyn Service>,
    status: StatusHandle,
}

/// Runs services on the active instance.
#[derive(Clone)]
pub struct Host {
    services: Arc<Vec<Hosted>>,
    instance: String,
    coord: Arc<dyn Coordinator>,
    site: watch::Receiver<Arc<Site>>,
    stop_timeout: Duration,
    lease: LeaseSlot,
    events: Events,
}

/// A service as listed in status.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    /// Service name.
    pub name: &'static str,
    /// Its state, owned by the host.
    #[serde(flatten)]
    pub status: ServiceStatus,
    /// The service's own status document.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
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
    /// A host for `instance` with its services (listed explicitly by the binary); service
    /// state changes go out on `events`. `stop_timeout` bounds the stop of all services
    /// together.
    pub fn new(
        services: Vec<Arc<dyn Service>>,
        instance: String,
        coord: Arc<dyn Coordinator>,
        site: watch::Receiver<Arc<Site>>,
        stop_timeout: Duration,
        lease: LeaseSlot,
        events: Events,
    ) -> Self {
        let env =
            crate::service::InstanceEnv { instance: instance.clone(), coord: coord.clone(), site: site.clone(), events: events.clone() };
        for svc in &services {
            svc.attach(&env);
        }
        let services = services.into_iter().map(|svc| Hosted { status: StatusHandle::new(svc.name(), events.clone()), svc }).collect();
        Host { services: Arc::new(services), instance, coord, site, stop_timeout, lease, events }
    }

    /// The services this config asks for, with their status (others are not listed).
    pub fn status(&self) -> Vec<HostStatus> {
        let site = self.site.borrow().clone();
        let Some(p) = site.instance(&self.instance) else { return vec![] };
        self.services
            .iter()
            .filter(|h| h.svc.wanted(p.role))
            .map(|h| HostStatus { name: h.svc.name(), status: h.status.get(), detail: h.svc.status_doc() })
            .collect()
    }

    /// The state of service `name` (`None` for an unknown name).
    pub fn state_of(&self, name: &str) -> Option<ServiceStatus> {
        self.services.iter().find(|h| h.svc.name() == name).map(|h| h.status.get())
    }

    /// The services, for mounting their routes and describing them.
    pub fn services(&self) -> Vec<Arc<dyn Service>> {
        self.services.iter().map(|h| h.svc.clone()).collect()
    }

    /// The event channel.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Follows `activity` until `shutdown`, starting and stopping services.
    pub async fn run(&self, mut activity: watch::Receiver<Activity>, shutdown: CancellationToken) {
        let mut site_rx = self.site.clone();
        let mut running: BTreeMap<&'static str, Running> = BTreeMap::new();
        let mut epoch_running: Option<u64> = None;
        let mut last: Option<Activity> = None;
        let all: Vec<Arc<dyn Service>> = self.services();
        loop {
            let act = activity.borrow_and_update().clone();
            if last.as_ref() != Some(&act) {
                self.events.publish(activity_event(&act));
                last = Some(act.clone());
            }
            let site = site_rx.borrow_and_update().clone();
            let epoch = act.epoch();
            // A new epoch means a new activity: everything restarts with the new fence.
            if epoch != epoch_running && !running.is_empty() {
                let why = if epoch.is_some() { "activity changed (new epoch)" } else { "instance is not active" };
                tracing::info!(reason = why, "stopping all services");
                self.stop_all(&mut running, why).await;
            }
            epoch_running = epoch;
            let want = desired(&all, &site, &self.instance, epoch.is_some());
            let unwanted: BTreeMap<_, _> = {
                let names: Vec<_> = running.keys().filter(|n| !want.contains(n)).copied().collect();
                names.into_iter().filter_map(|n| running.remove(n).map(|r| (n, r))).collect()
            };
            if !unwanted.is_empty() {
                tracing::info!(services = ?unwanted.keys().collect::<Vec<_>>(), "stopping services no longer wanted by the config");
                let mut unwanted = unwanted;
                self.stop_all(&mut unwanted, "not wanted by the config").await;
            }
            // While active, services that will not run say why (the route layer answers
            // with it); while passive, the reason their stop gave stays.
            if epoch.is_some() {
                let why = "not configured for this group";
                for h in self.services.iter().filter(|h| !want.contains(&h.svc.name()) && !running.contains_key(h.svc.name())) {
                    if h.status.get().reason != why {
                        h.status.set(ServiceState::Stopped, why);
                    }
                }
            }
            if let (Some(e), Some(p)) = (epoch, site.instance(&self.instance)) {
                let fence = Fence { group: p.role.group, epoch: e };
                for h in self.services.iter().filter(|h| want.contains(&h.svc.name())) {
                    if !running.contains_key(h.svc.name()) {
                        running.insert(h.svc.name(), self.start(h, fence));
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = activity.changed() => if r.is_err() { break },
                r = site_rx.changed() => if r.is_err() { break },
            }
        }
        self.stop_all(&mut running, "the daemon is stopping").await;
    }

    fn start(&self, h: &Hosted, fence: Fence) -> Running {
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
            status: h.status.clone(),
            events: self.events.clone(),
        };
        let svc = h.svc.clone();
        tracing::info!(service = svc.name(), epoch = fence.epoch, group = fence.group, "starting service");
        let task = tokio::spawn(async move {
            loop {
                ctx.status.set(ServiceState::Starting, format!("starting (epoch {})", fence.epoch));
                let result = svc.run(ctx.clone()).await;
                if ctx.cancel.is_cancelled() {
                    break; // the host sets the stopped state with its reason
                }
                match result {
                    Ok(()) => {
                        ctx.status.set(ServiceState::Stopped, "the service ended its work");
                        break;
                    }
                    Err(e) => {
                        let why = format!("{e:#}");
                        tracing::error!(service = svc.name(), error = %why, "service failed; restarting after a pause");
                        ctx.status.set(ServiceState::Failed, why);
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

    /// Cancels every service in `running` at once and waits for them against one deadline
    /// (`stop_timeout` from now); the ones still running then are aborted.
    async fn stop_all(&self, running: &mut BTreeMap<&'static str, Running>, why: &str) {
        let all = std::mem::take(running);
        for r in all.values() {
            r.cancel.cancel();
        }
        let deadline = Instant::now() + self.stop_timeout;
        for (name, r) in all {
            let abort = r.task.abort_handle();
            let reason = match tokio::time::timeout_at(deadline, r.task).await {
                Ok(_) => why.to_string(),
                Err(_) => {
                    abort.abort();
                    tracing::warn!(
                        service = name,
                        timeout_ms = self.stop_timeout.as_millis() as u64,
                        "service did not stop in time; aborted"
                    );
                    format!("{why}; it did not stop within {} ms and was aborted", self.stop_timeout.as_millis())
                }
            };
            if let Some(h) = self.services.iter().find(|h| h.svc.name() == name) {
                h.status.set(ServiceState::Stopped, reason);
            }
        }
    }
}

fn activity_event(a: &Activity) -> EventKind {
    match a {
        Activity::Active { epoch, reason, .. } => EventKind::Activity { active: true, epoch: Some(*epoch), reason: reason.clone() },
        Activity::Passive { reason } => EventKind::Activity { active: false, epoch: None, reason: reason.clone() },
    }
}
