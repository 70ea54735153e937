//! [`UsersService`]: the service's cheap-to-clone handle. While the service runs (on the
//! group's active instance) it holds a [`Running`]: the directory, the store, the hasher,
//! the policy, the limiters and the queue of recovery requests; the routes answer 503
//! otherwise (the host does that before a handler is reached).

use crate::directory::Directory;
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::password::{Hasher, Policy};
use crate::section::Users;
use crate::store::Store;
use mware_host::Events;
use prometheus_client::registry::Registry;
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, Notify};

/// A recovery request waiting for the background step (the answer was given already,
/// the same whether the login exists or not).
#[derive(Debug)]
pub struct RecoveryJob {
    /// The domain.
    pub domain: String,
    /// The login as given.
    pub login: String,
    /// The language of the mail.
    pub lang: crate::templates::Lang,
}

/// What a running service uses.
pub struct Running {
    /// The section.
    pub cfg: Users,
    /// The user store.
    pub dir: Arc<dyn Directory>,
    /// Tokens and outbox.
    pub store: Store,
    /// Password hashes.
    pub hasher: Hasher,
    /// New-password policy.
    pub policy: Policy,
    /// Abuse limits.
    pub limits: Limiter,
    /// Tripped limits to keep for the next active instance ([`crate::trips`]).
    pub trips: mpsc::Sender<crate::limits::Trip>,
    /// Wakes the outbox's sender.
    pub wake: Arc<Notify>,
    /// Recovery requests for the background step (bounded).
    pub recovery: mpsc::Sender<RecoveryJob>,
    /// The instance's events (alarms when a limit trips repeatedly).
    pub events: Events,
    /// Logins through identity providers waiting for their callback.
    pub oidc: crate::oidc::flow::Flows,
}

/// The users service. Cheap to clone; build once at daemon start.
#[derive(Clone)]
pub struct UsersService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) running: RwLock<Option<Arc<Running>>>,
    pub(crate) metrics: Metrics,
}

impl UsersService {
    /// A service with its metrics registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        UsersService { inner: Arc::new(Inner { running: RwLock::new(None), metrics: Metrics::new(registry) }) }
    }

    /// The running state, when the service runs here.
    pub fn running(&self) -> Option<Arc<Running>> {
        self.inner.running.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_running(&self, r: Option<Arc<Running>>) {
        *self.inner.running.write().unwrap_or_else(|e| e.into_inner()) = r;
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}
