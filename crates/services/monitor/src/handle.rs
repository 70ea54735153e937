//! [`MonitorService`], the cheap-to-clone handle over the service's shared state: the
//! service loop (`service.rs`) fills it, the HTTP routes (`api.rs`) read it.

use crate::engine::Views;
use crate::metrics::Metrics;
use mware_host::InstanceEnv;
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};

/// The monitoring service. Cheap to clone; build once at daemon start (it registers its
/// metrics).
#[derive(Clone)]
pub struct MonitorService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) env: OnceLock<InstanceEnv>,
    pub(crate) views: Views,
    pub(crate) metrics: Metrics,
}

impl MonitorService {
    /// The service, its metrics (`mware_monitoring_*`) registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        MonitorService { inner: Arc::new(Inner { env: OnceLock::new(), views: Views::default(), metrics: Metrics::new(registry) }) }
    }
}
