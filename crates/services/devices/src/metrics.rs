//! Prometheus metrics of devicemanager (`mware_devicemanager_*`). Labels come from fixed
//! sets (kinds, states, dead-letter reasons), never from a request.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A job kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// One of the known kinds.
    pub kind: &'static str,
}

/// A final state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// done, failed or expired.
    pub state: &'static str,
}

/// Why a message was dead-lettered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `delivery_limit`, `expired`, `rejected` or `other`.
    pub reason: &'static str,
}

/// The service's metrics.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Jobs accepted (stored), by kind.
    pub accepted: Family<KindLabel, Counter>,
    /// Jobs ended, by state.
    pub finished: Family<StateLabel, Counter>,
    /// Results for a job that had ended already (a redelivered job run twice).
    pub duplicates: Counter,
    /// Jobs published to the broker (or the in-process queue) and confirmed.
    pub published: Counter,
    /// Dead-lettered jobs, by reason.
    pub dead: Family<ReasonLabel, Counter>,
    /// 1 while connected to the broker (always 1 in-process).
    pub broker_up: Gauge,
    /// Reports (started, results, heartbeats) received.
    pub reports: Counter,
    /// Ended jobs deleted after `keep_hours`.
    pub purged: Counter,
}

impl Metrics {
    /// Registers under `mware_devicemanager_*`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("mware_devicemanager");
        r.register("jobs_accepted", "Device jobs accepted (stored before the 202), by kind", m.accepted.clone());
        r.register("jobs_finished", "Device jobs ended, by state (done, failed, expired)", m.finished.clone());
        r.register(
            "duplicate_results",
            "Results of jobs that had ended already (recorded once, the later ones dropped)",
            m.duplicates.clone(),
        );
        r.register("jobs_published", "Jobs published with a confirm from the broker (or queued in-process)", m.published.clone());
        r.register("dead_lettered", "Jobs dead-lettered by the broker, by reason", m.dead.clone());
        r.register("broker_up", "1 while connected to the broker (always 1 when jobs run in-process)", m.broker_up.clone());
        r.register("reports", "Reports received from pollers (started, result, heartbeat)", m.reports.clone());
        r.register("jobs_purged", "Ended jobs deleted after devicemanager.keep_hours", m.purged.clone());
        m
    }
}

/// The label of a dead-letter reason.
pub fn reason_label(reason: &str) -> &'static str {
    match reason {
        "delivery_limit" => "delivery_limit",
        "expired" => "expired",
        "rejected" => "rejected",
        _ => "other",
    }
}
