//! Prometheus metrics of the service tasks, `mware_tasks_*`. Labels are the task's name
//! (from the site file, so bounded) and a fixed set of outcomes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `{task, outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Task name.
    pub task: String,
    /// `ok`, `failed`, `timeout`, `killed`, `lost`, `skipped` or `missed`.
    pub outcome: String,
}

/// `{task}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// Task name.
    pub task: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new([0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0])
}

/// The tasks' metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Runs by outcome (skipped slots and missed slots counted too).
    pub runs: Family<OutcomeLabels, Counter>,
    /// Duration of finished runs, seconds.
    pub duration: Family<TaskLabels, Histogram, fn() -> Histogram>,
    /// When the last run that exited 0 ended, seconds since the Unix epoch.
    pub last_success: Family<TaskLabels, Gauge>,
    /// 1 while a run is in progress on this instance.
    pub running: Family<TaskLabels, Gauge>,
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_tasks_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            runs: Family::default(),
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            last_success: Family::default(),
            running: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("mware_tasks");
        r.register("runs", "Runs of service tasks by outcome (skipped and missed slots included)", m.runs.clone());
        r.register("run_duration_seconds", "Duration of finished runs of service tasks", m.duration.clone());
        r.register("last_success_timestamp_seconds", "When the last successful run of the task ended", m.last_success.clone());
        r.register("running", "1 while a run of the task is in progress on this instance", m.running.clone());
        m
    }

    /// Counts a run (or slot) with its outcome.
    pub fn outcome(&self, task: &str, outcome: &str, count: u64) {
        self.runs.get_or_create(&OutcomeLabels { task: task.into(), outcome: outcome.into() }).inc_by(count);
    }
}
