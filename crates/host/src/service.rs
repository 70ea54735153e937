//! The `Service` trait and what a running service is given.
//!
//! A service describes itself (its routes with their access and scope, its OpenAPI
//! part, its status document) and does its work in [`Service::run`] while the
//! instance is active. Its state (stopped / starting / running / idle / failed, with
//! the reason) is owned by the host, which shows it in status and announces every
//! change on the event channel; the service reports progress through
//! [`ServiceContext::status`].

use crate::events::{EventKind, Events};
use crate::routes::Routes;
use crate::state::{ServiceState, ServiceStatus};
use async_trait::async_trait;
use mware_config::{Role, Site};
use mware_coord::{Coordinator, Fence, LeaseStats};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What a service is given when its instance becomes active.
#[derive(Clone)]
pub struct ServiceContext {
    /// This instance's name.
    pub instance: String,
    /// The fence of this activity: every shared-state write must carry it.
    pub fence: Fence,
    /// The coordinator (epoch-guarded KV, watches).
    pub coord: Arc<dyn Coordinator>,
    /// The running site config; a new value arrives on reload (already validated).
    pub site: watch::Receiver<Arc<Site>>,
    /// Cancelled when activity is lost or the daemon stops: return promptly.
    pub cancel: CancellationToken,
    /// The membership's lease: [`LeaseStats::active_now`] says whether this instance is
    /// surely still active at this instant. A service that answers without a fenced
    /// write (so the coordinator cannot refuse it) must check it first.
    pub lease: Arc<LeaseStats>,
    /// Where the service reports its state; the host owns it.
    pub status: StatusHandle,
    /// The instance's event channel.
    pub events: Events,
}

/// What a service may use on any instance, active or not, for the life of the daemon
/// (given once by [`crate::Service::attach`]): routes marked [`crate::Routes::anywhere`]
/// answer from it.
#[derive(Clone)]
pub struct InstanceEnv {
    /// This instance's name.
    pub instance: String,
    /// The coordinator (reads of any group's KV, the cluster view).
    pub coord: Arc<dyn Coordinator>,
    /// The running site config.
    pub site: watch::Receiver<Arc<Site>>,
    /// The instance's event channel.
    pub events: Events,
}

/// Where the daemon puts the lease of its current membership (a new one after it joins
/// again); the host hands it to the services it starts.
pub type LeaseSlot = Arc<Mutex<Option<Arc<LeaseStats>>>>;

impl ServiceContext {
    /// A context outside a host (a service's own tests, benchmarks): its status is kept
    /// in a handle of its own and its events go nowhere.
    pub fn new(
        name: &'static str,
        instance: impl Into<String>,
        fence: Fence,
        coord: Arc<dyn Coordinator>,
        site: watch::Receiver<Arc<Site>>,
        cancel: CancellationToken,
        lease: Arc<LeaseStats>,
    ) -> Self {
        let events = Events::detached();
        ServiceContext {
            instance: instance.into(),
            fence,
            coord,
            site,
            cancel,
            lease,
            status: StatusHandle::new(name, events.clone()),
            events,
        }
    }

    /// This instance's role in the current config.
    pub fn role(&self) -> Option<Role> {
        self.site.borrow().instance(&self.instance).map(|p| p.role.clone())
    }
}

/// The host-owned state of one service: set by the host (start, stop, failure) and by
/// the service (progress), read by status and by the route layer; every change of
/// state goes out on the event channel. Cheap to clone.
#[derive(Clone)]
pub struct StatusHandle {
    name: &'static str,
    cell: Arc<Mutex<ServiceStatus>>,
    events: Events,
}

impl StatusHandle {
    /// A stopped service `name` announcing its changes on `events`.
    pub fn new(name: &'static str, events: Events) -> Self {
        let cell = ServiceStatus { state: ServiceState::Stopped, reason: "instance is not active".into(), since_ms: mware_coord::now_ms() };
        StatusHandle { name, cell: Arc::new(Mutex::new(cell)), events }
    }

    /// Sets state and reason. A change of state is published as an event and restarts
    /// `since_ms`; a new reason alone is not an event (progress text).
    pub fn set(&self, state: ServiceState, reason: impl Into<String>) {
        let reason = reason.into();
        let changed = {
            let mut s = self.cell.lock().unwrap_or_else(|e| e.into_inner());
            let changed = s.state != state;
            if changed {
                s.since_ms = mware_coord::now_ms();
            }
            s.state = state;
            s.reason.clone_from(&reason);
            changed
        };
        if changed {
            self.events.publish(EventKind::Service { service: self.name.into(), state, reason });
        }
    }

    /// A copy of the current status.
    pub fn get(&self) -> ServiceStatus {
        self.cell.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The service's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// A service hosted on the active instance of a group.
///
/// Built once at daemon start (register metrics there); its routes are mounted for the
/// daemon's whole life and answer 503 with the reason while it is not running.
/// [`Service::run`] is called on each activation and must return soon after
/// `ctx.cancel` fires. Adding a service: `crates/services/README.md`.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// Short stable name (`mutex`, `pgctl`, `provisioning`).
    fn name(&self) -> &'static str;
    /// Whether the group's config (this role's sections, the same on every member) asks
    /// for the service.
    fn wanted(&self, role: &Role) -> bool;
    /// The environment variable holding the service's own bearer token for its
    /// [`crate::Access::OwnToken`] routes, as the group's section `role` names it (none:
    /// those routes take only the operator's token).
    fn token_env(&self, _role: &Role) -> Option<String> {
        None
    }
    /// The HTTP routes, each with its access and scope.
    fn routes(&self) -> Routes {
        Routes::new()
    }
    /// The OpenAPI description of [`Service::routes`] (security entries are added from
    /// each route's [`crate::Access`]).
    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        None
    }
    /// The service's own status document (shown beside its state in `/api/v1/status`).
    fn status_doc(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// How the operator console shows the service: its panels, in the order shown
    /// (none: its state line only).
    fn panels(&self) -> Vec<crate::Panel> {
        Vec::new()
    }
    /// Called once when the host is built, before any route is served: what the service
    /// may use on any instance (for routes marked [`crate::Routes::anywhere`]).
    fn attach(&self, _env: &InstanceEnv) {}
    /// Does the work until `ctx.cancel`; reports progress through `ctx.status`. An error
    /// is logged, shown in status, and the host restarts the service after a pause while
    /// the instance stays active.
    async fn run(&self, ctx: ServiceContext) -> anyhow::Result<()>;
}
