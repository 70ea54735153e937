//! The `Service` trait and what a running service is given.

use async_trait::async_trait;
use mware_config::{Role, Site};
use mware_coord::{Coordinator, Fence, LeaseStats};
use serde::Serialize;
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
}

/// Where the daemon puts the lease of its current membership (a new one after it joins
/// again); the host hands it to the services it starts.
pub type LeaseSlot = Arc<Mutex<Option<Arc<LeaseStats>>>>;

impl ServiceContext {
    /// This instance's role in the current config.
    pub fn role(&self) -> Option<Role> {
        self.site.borrow().instance(&self.instance).map(|p| p.role.clone())
    }
}

/// A service's state as shown in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Not running (instance passive or service not wanted).
    Stopped,
    /// Starting (restoring state, connecting).
    Starting,
    /// Doing its work.
    Running,
    /// Running, but with nothing to do (e.g. no valid pg group); the reason says why.
    Idle,
    /// Failed; the host restarts it after a pause. The reason says why.
    Failed,
}

/// State plus the last reason in words.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// State.
    pub state: ServiceState,
    /// Last reason, in words.
    pub reason: String,
    /// When the state was entered, ms since the Unix epoch.
    pub since_ms: u64,
}

/// A cheap shared cell for a service's status.
#[derive(Debug, Clone)]
pub struct StatusCell(Arc<Mutex<ServiceStatus>>);

impl Default for StatusCell {
    fn default() -> Self {
        StatusCell(Arc::new(Mutex::new(ServiceStatus {
            state: ServiceState::Stopped,
            reason: "instance is not active".into(),
            since_ms: mware_coord::now_ms(),
        })))
    }
}

impl StatusCell {
    /// Sets state and reason (the time changes only when the state does).
    pub fn set(&self, state: ServiceState, reason: impl Into<String>) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if s.state != state {
            s.since_ms = mware_coord::now_ms();
        }
        s.state = state;
        s.reason = reason.into();
    }
    /// A copy of the current status.
    pub fn get(&self) -> ServiceStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A service hosted on the active instance of a group.
///
/// Built once at daemon start (register metrics, build routes there); [`Service::run`] is
/// called on each activation and must return soon after `ctx.cancel` fires.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// Short stable name (`mutex`, `pgctl`, `provisioning`).
    fn name(&self) -> &'static str;
    /// Whether this role's config asks for the service.
    fn wanted(&self, role: &Role) -> bool;
    /// HTTP routes, mounted for the daemon's whole life; handlers answer 503 while not running.
    fn router(&self) -> axum::Router {
        axum::Router::new()
    }
    /// Does the work until `ctx.cancel`. An error is logged, shown in status, and the host
    /// restarts the service after a pause while the instance stays active.
    async fn run(&self, ctx: ServiceContext) -> anyhow::Result<()>;
    /// Current state and reason.
    fn status(&self) -> ServiceStatus;
}
