//! [`BackupService`], the cheap-to-clone handle over the service's shared state, with
//! what the API shows ([`View`]) and an operator's [`RunRequest`]: the service loop
//! (`service.rs`) fills them, the HTTP routes (`api.rs`) read them.

use crate::config::Plan;
use crate::decide::Decision;
use crate::metrics::Metrics;
use crate::run::Live;
use crate::store::State;
use mware_ssh::HostKeyPolicy;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// An operator's request for a run now.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Only this target (`None`: all).
    pub target: Option<String>,
}

/// What the API shows besides the coordinator's history.
#[derive(Default, Clone)]
pub(crate) struct View {
    pub plan: Option<Plan>,
    pub keys: Option<HostKeyPolicy>,
    pub problems: Vec<String>,
    pub next: Option<Decision>,
    pub state: State,
}

/// The backup service. Cheap to clone; build once at daemon start (it registers its
/// metrics).
#[derive(Clone)]
pub struct BackupService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) metrics: Metrics,
    pub(crate) live: Live,
    pub(crate) view: Mutex<View>,
    pub(crate) trigger: Mutex<Option<mpsc::Sender<RunRequest>>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl BackupService {
    /// A service with its metrics (`mware_backup_*`) registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        BackupService {
            inner: Arc::new(Inner {
                metrics: Metrics::new(registry),
                live: Live::default(),
                view: Mutex::new(View::default()),
                trigger: Mutex::new(None),
            }),
        }
    }

    /// Asks for a run now (outside the window too). `Err((http status, reason))` when a
    /// run is in progress, the target is unknown or the service does not run here.
    pub fn request_run(&self, target: Option<String>) -> Result<(), (u16, String)> {
        if let Some(p) = lock(&self.inner.live).as_ref() {
            return Err((409, format!("expected no run in progress, found run {} (target {})", p.run_id, p.target)));
        }
        if let Some(t) = &target {
            let view = lock(&self.inner.view);
            let keys: Vec<String> = view.plan.as_ref().map(|p| p.targets.iter().map(|x| x.key.clone()).collect()).unwrap_or_default();
            if !keys.contains(t) {
                return Err((
                    404,
                    format!(
                        "target: expected one of {}, found {t:?}",
                        if keys.is_empty() { "(none configured)".into() } else { keys.join(", ") }
                    ),
                ));
            }
        }
        let tx = lock(&self.inner.trigger).clone().ok_or((503, "the backup service is not running here".to_string()))?;
        tx.try_send(RunRequest { target }).map_err(|_| (409, "expected no run pending, found one already requested".to_string()))
    }
}
