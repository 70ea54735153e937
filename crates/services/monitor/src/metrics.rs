//! Prometheus metrics of the monitoring service, `mware_monitoring_*`. The label is the
//! probe's name (from the site file, so bounded) and a fixed set of results.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// `{probe}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// Probe name.
    pub probe: String,
}

/// `{probe, result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    /// Probe name.
    pub probe: String,
    /// `ok` or `failed`.
    pub result: String,
}

/// The monitoring metrics, cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    /// 1 when the probe's state is ok, 0 otherwise (unknown, failing).
    pub up: Family<ProbeLabels, Gauge>,
    /// Duration of the last check, seconds.
    pub latency: Family<ProbeLabels, Gauge<f64, AtomicU64>>,
    /// Changes of the probe's state.
    pub changes: Family<ProbeLabels, Counter>,
    /// Checks by result.
    pub checks: Family<CheckLabels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_monitoring_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("mware_monitoring");
        r.register("probe_up", "1 when the probe's state is ok", m.up.clone());
        r.register("probe_latency_seconds", "Duration of the probe's last check", m.latency.clone());
        r.register("probe_changes", "Changes of the probe's state", m.changes.clone());
        r.register("probe_checks", "Checks of the probe by result", m.checks.clone());
        m
    }

    /// Forgets every per-probe series (the probes are being reloaded).
    pub fn clear(&self) {
        self.up.clear();
        self.latency.clear();
    }
}
