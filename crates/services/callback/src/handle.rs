//! [`CallbackService`], the cheap-to-clone handle, and [`Inner`], the state it shares:
//! the service loop (`service.rs`) sets the activity, the HTTP routes (`api.rs`) read it.

use crate::active::Active;
use crate::error::CallbackError;
use crate::metrics::Metrics;
use mware_config::Site;
use prometheus_client::registry::Registry;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// The callback orders service. Cheap to clone; build once per daemon.
#[derive(Clone)]
pub struct CallbackService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub metrics: Metrics,
    pub active: RwLock<Option<Arc<Active>>>,
    pub site: RwLock<Option<watch::Receiver<Arc<Site>>>>,
}

impl Inner {
    /// The running activity, or why there is none.
    pub fn active(&self) -> Result<Arc<Active>, CallbackError> {
        match &*self.active.read().unwrap_or_else(|e| e.into_inner()) {
            Some(a) => Ok(a.clone()),
            None => {
                Err(CallbackError::NotRunning("callback orders are not served on this instance (passive, starting or stopping)".into()))
            }
        }
    }

    /// The running site, once the service runs.
    pub fn site(&self) -> Option<Arc<Site>> {
        self.site.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(|s| s.borrow().clone())
    }
}

impl CallbackService {
    /// Builds the service and registers its metrics in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        CallbackService { inner: Arc::new(Inner { metrics: Metrics::new(registry), active: RwLock::new(None), site: RwLock::new(None) }) }
    }
}
