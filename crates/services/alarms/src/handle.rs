//! [`AlarmsService`], the cheap-to-clone handle over the service's shared state, and the
//! [`Handle`] of a running activity: the service loop (`service.rs`) fills them, the
//! HTTP routes (`api.rs`) read them.

use crate::intake::Maker;
use crate::metrics::Metrics;
use crate::store::{Cmd, Shared};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What the API reaches while an activity runs.
#[derive(Clone)]
pub(crate) struct Handle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) writer: mpsc::Sender<Cmd>,
    pub(crate) maker: Arc<Maker>,
}

/// The alarms service. Cheap to clone; build once at daemon start.
#[derive(Clone)]
pub struct AlarmsService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) metrics: Metrics,
    pub(crate) active: Mutex<Option<Handle>>,
}

impl AlarmsService {
    /// The service, its metrics (`mware_alarms_*`) registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        AlarmsService { inner: Arc::new(Inner { metrics: Metrics::new(registry), active: Mutex::new(None) }) }
    }
    pub(crate) fn active(&self) -> Option<Handle> {
        self.inner.active.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}
