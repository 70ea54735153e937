//! [`DevicesService`], the handle, and [`Inner`], the state it shares: the service loop
//! (`service.rs`) sets the activity, the HTTP routes (`api.rs`) read it.

use crate::engine::Active;
use crate::metrics::Metrics;
use prometheus_client::registry::Registry;
use std::sync::{Arc, RwLock};

/// What the service and its handlers share.
pub struct Inner {
    pub(crate) active: RwLock<Option<Arc<Active>>>,
    pub(crate) local: std::sync::atomic::AtomicBool,
    pub(crate) metrics: Metrics,
}

impl Inner {
    /// The running activity, if any.
    pub fn active(&self) -> Option<Arc<Active>> {
        self.active.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set(&self, a: Option<Arc<Active>>) {
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = a;
    }

    /// True when jobs run in-process.
    pub fn local(&self) -> bool {
        self.local.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The `devicemanager` service.
pub struct DevicesService {
    pub(crate) inner: Arc<Inner>,
}

impl DevicesService {
    /// Builds the service and registers its metrics.
    pub fn new(registry: &mut Registry) -> Self {
        DevicesService { inner: Arc::new(Inner { active: RwLock::new(None), local: false.into(), metrics: Metrics::register(registry) }) }
    }
}
