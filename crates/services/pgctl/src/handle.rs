//! [`PgctlService`], the cheap-to-clone handle over the service's shared state: the
//! service loop (`service.rs`) fills it, the HTTP routes (`api.rs`) read it.

use crate::metrics::Metrics;
use crate::status::Statuses;
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::sync::Arc;

/// The pg_controller service. Cheap to clone; build once at daemon start (it registers
/// its metrics).
#[derive(Clone)]
pub struct PgctlService {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) groups: Statuses,
    pub(crate) log_dir: Option<PathBuf>,
    pub(crate) metrics: Metrics,
}

impl PgctlService {
    /// A service logging `pgctrl_<key>.log` into `MWARE_LOG_DIR` (or `var/log`), with its
    /// metrics (`mware_pgctl_*`) registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        PgctlService { inner: Arc::new(Inner { metrics: Metrics::new(registry), ..Inner::default() }) }
    }

    /// A service logging `pgctrl_<key>.log` into `dir` (tests).
    pub fn with_log_dir(registry: &mut Registry, dir: impl Into<PathBuf>) -> Self {
        PgctlService { inner: Arc::new(Inner { log_dir: Some(dir.into()), metrics: Metrics::new(registry), ..Inner::default() }) }
    }

    /// Current status of every running group (what `GET /api/v1/pg` returns).
    pub fn groups(&self) -> Vec<crate::status::GroupStatus> {
        self.inner.groups.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Status of one group.
    pub fn group(&self, key: &str) -> Option<crate::status::GroupStatus> {
        self.inner.groups.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }
}
