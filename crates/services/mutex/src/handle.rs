//! [`MutexService`], the cheap-to-clone handle, and [`Inner`], the state it shares: the
//! service loop (`service.rs`) sets the activity, the HTTP routes (`api.rs`) read it.

use crate::active::Active;
use crate::metrics::Metrics;
use prometheus_client::registry::Registry;
use std::sync::{Arc, RwLock};

/// The critical sections service. Cheap to clone; build once per daemon.
#[derive(Clone)]
pub struct MutexService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub metrics: Metrics,
    pub active: RwLock<Option<Arc<Active>>>,
}

impl Inner {
    /// The running activity, or why there is none.
    pub fn active(&self) -> Result<Arc<Active>, crate::MutexError> {
        match &*self.active.read().unwrap_or_else(|e| e.into_inner()) {
            Some(a) => Ok(a.clone()),
            None => Err(crate::MutexError::NotRunning("not serving on this instance (passive, starting or stopping)".into())),
        }
    }

    /// Holders, waiters and journal entries while serving (the status document).
    pub(crate) fn status_doc(&self) -> serde_json::Value {
        let Some(a) = self.active.read().unwrap_or_else(|e| e.into_inner()).clone() else {
            return serde_json::Value::Null;
        };
        let (holders, waiters) = {
            let st = a.lock();
            (st.table.holder_count(), st.table.waiter_count())
        };
        serde_json::json!({"holders": holders, "waiters": waiters, "journal_entries": self.metrics.journal_entries.get()})
    }

    pub(crate) fn set_active(&self, a: Option<Arc<Active>>) {
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = a;
    }
}

impl MutexService {
    /// Builds the service and registers its metrics in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        MutexService { inner: Arc::new(Inner { metrics: Metrics::new(registry), active: RwLock::new(None) }) }
    }
}
