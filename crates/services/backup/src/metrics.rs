//! Prometheus metrics of the backups, `mware_backup_*`, labelled by target key (from the
//! config: `db1`..., `sync`): never a host, user or path.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// `{target}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// Target key.
    pub target: String,
}

/// The backup metrics, cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Unix time of the target's last success.
    pub last_success: Family<TargetLabels, Gauge>,
    /// Duration of the target's last success, seconds.
    pub duration: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    /// Size of the target's last archive, bytes.
    pub bytes: Family<TargetLabels, Gauge>,
    /// Failed attempts of the target.
    pub failures: Family<TargetLabels, Counter>,
    /// 1 while a run is in progress on this instance.
    pub running: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_backup_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("mware_backup");
        r.register("last_success_timestamp_seconds", "Unix time of the target's last successful backup", m.last_success.clone());
        r.register("last_duration_seconds", "Duration of the target's last successful backup", m.duration.clone());
        r.register("last_size_bytes", "Size of the target's last archive (rsync: of the files copied)", m.bytes.clone());
        r.register("failures", "Failed backup attempts of the target", m.failures.clone());
        r.register("running", "1 while a backup run is in progress on this instance", m.running.clone());
        m
    }

    /// Labels of `target`.
    pub fn of(target: &str) -> TargetLabels {
        TargetLabels { target: target.to_string() }
    }
}
