//! [`CallTracking`]: the service's handle (cheap to clone), what the HTTP handlers and
//! the loops share: the metrics, the running activity's store and registrar, the OPTIONS
//! results and the sg states.

use crate::metrics::Metrics;
use crate::sg::SgView;
use crate::store::Store;
use crate::views::Probe;
use mware_sip::Registrar;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Call tracking: static registrations and sg loss (see the crate's doc).
#[derive(Clone)]
pub struct CallTracking {
    pub(crate) inner: Arc<Inner>,
}

/// What runs while the instance is active.
#[derive(Clone)]
pub(crate) struct Running {
    /// Fenced writes of this activity.
    pub store: Store,
    /// The registrar.
    pub registrar: Registrar,
    /// Wakes the static registrations' cycle (after a PUT or DELETE).
    pub kick: Arc<Notify>,
    /// The live calls and the journal.
    pub tracker: Arc<crate::tracker::Tracker>,
}

pub(crate) struct Inner {
    pub metrics: Metrics,
    pub running: Mutex<Option<Running>>,
    probes: Mutex<BTreeMap<String, Probe>>,
    sgs: Mutex<BTreeMap<String, SgView>>,
    last_cycle: Mutex<Vec<String>>,
    adapters: Mutex<Vec<Arc<crate::adapter::Adapter>>>,
}

impl CallTracking {
    /// Builds the service, registering its metrics.
    pub fn new(registry: &mut Registry) -> Self {
        CallTracking {
            inner: Arc::new(Inner {
                metrics: Metrics::new(registry),
                running: Mutex::new(None),
                probes: Mutex::new(BTreeMap::new()),
                sgs: Mutex::new(BTreeMap::new()),
                last_cycle: Mutex::new(vec![]),
                adapters: Mutex::new(vec![]),
            }),
        }
    }
}

impl Inner {
    /// The running activity, if any.
    pub fn running(&self) -> Option<Running> {
        self.running.lock().unwrap().clone()
    }

    /// Records an OPTIONS result of the entry `key`; true when reachability changed (or
    /// was unknown).
    pub fn record_probe(&self, key: &str, reachable: bool, answer: String, now_ms: u64) -> bool {
        let mut m = self.probes.lock().unwrap();
        let p = m.entry(key.to_string()).or_insert_with(|| Probe::unknown(now_ms));
        let changed = p.reachable != Some(reachable);
        if changed {
            p.since_ms = now_ms;
        }
        p.reachable = Some(reachable);
        p.last_answer = Some(answer);
        p.checked_ms = Some(now_ms);
        changed
    }

    /// Drops the OPTIONS result of a forgotten entry.
    pub fn forget_probe(&self, key: &str) {
        self.probes.lock().unwrap().remove(key);
    }

    /// Every OPTIONS result, by entry key.
    pub fn probes(&self) -> BTreeMap<String, Probe> {
        self.probes.lock().unwrap().clone()
    }

    /// One entry's OPTIONS result.
    pub fn probe(&self, key: &str) -> Option<Probe> {
        self.probes.lock().unwrap().get(key).cloned()
    }

    /// Replaces an sg's view.
    pub fn set_sg(&self, v: SgView) {
        self.sgs.lock().unwrap().insert(v.name.clone(), v);
    }

    /// Every sg's view.
    pub fn sgs(&self) -> Vec<SgView> {
        self.sgs.lock().unwrap().values().cloned().collect()
    }

    /// One sg's view.
    pub fn sg(&self, name: &str) -> Option<SgView> {
        self.sgs.lock().unwrap().get(name).cloned()
    }

    /// What the last static registrations' cycle did (kept when it did nothing).
    pub fn set_last_cycle(&self, done: Vec<String>) {
        if !done.is_empty() {
            *self.last_cycle.lock().unwrap() = done;
        }
    }

    /// What the last cycle that did something did.
    pub fn last_cycle(&self) -> Vec<String> {
        self.last_cycle.lock().unwrap().clone()
    }

    /// Shows a CTI adapter in status.
    pub fn add_adapter(&self, a: Arc<crate::adapter::Adapter>) {
        self.adapters.lock().unwrap().push(a);
    }

    /// The CTI adapters' views.
    pub fn adapters(&self) -> Vec<crate::adapter::AdapterView> {
        self.adapters.lock().unwrap().iter().map(|a| a.view()).collect()
    }

    /// Clears what belongs to one activity (on stop).
    pub fn stopped(&self) {
        self.adapters.lock().unwrap().clear();
        *self.running.lock().unwrap() = None;
        self.probes.lock().unwrap().clear();
        self.sgs.lock().unwrap().clear();
    }
}
