//! [`TasksService`], the cheap-to-clone handle over the service's shared state: the
//! service loop (`service.rs`) fills it, the HTTP routes (`api.rs`) read it.

use crate::metrics::Metrics;
use crate::runner::{ManualAnswer, Request, Statuses, TaskStatus};
use crate::section::ServiceTask;
use mware_host::InstanceEnv;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// The service tasks service. Cheap to clone; build once at daemon start (it registers
/// its metrics).
#[derive(Clone)]
pub struct TasksService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) statuses: Statuses,
    pub(crate) senders: Mutex<BTreeMap<String, mpsc::Sender<Request>>>,
    pub(crate) env: OnceLock<InstanceEnv>,
    pub(crate) tasks: Mutex<Vec<ServiceTask>>,
    pub(crate) metrics: Metrics,
    pub(crate) log_dir: Option<PathBuf>,
}

impl TasksService {
    /// A service logging `task_<name>.log` into `MWARE_LOG_DIR` (or `var/log`), with its
    /// metrics (`mware_tasks_*`) registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        Self::build(registry, None)
    }

    /// A service logging into `dir` (tests).
    pub fn with_log_dir(registry: &mut Registry, dir: impl Into<PathBuf>) -> Self {
        Self::build(registry, Some(dir.into()))
    }

    fn build(registry: &mut Registry, log_dir: Option<PathBuf>) -> Self {
        TasksService {
            inner: Arc::new(Inner {
                statuses: Statuses::default(),
                senders: Mutex::default(),
                env: OnceLock::new(),
                tasks: Mutex::default(),
                metrics: Metrics::new(registry),
                log_dir,
            }),
        }
    }

    /// Every running task's status, by name.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        self.inner.statuses.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Asks task `name` to run now; `None` when no such task runs here.
    pub async fn run_now(&self, name: &str) -> Option<ManualAnswer> {
        let tx = self.inner.senders.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned()?;
        let (answer, rx) = oneshot::channel();
        tx.send(Request::RunNow(answer)).await.ok()?;
        rx.await.ok()
    }
}
