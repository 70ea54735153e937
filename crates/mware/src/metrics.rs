//! The daemon's own Prometheus metrics; services register theirs in the same registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels for activity transitions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    /// `active` or `passive`.
    pub to: String,
}

/// Labels for forwarded requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ForwardLabels {
    /// `proxied`, `no_active`, `error`.
    pub outcome: String,
}

/// Labels for config reloads.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `applied` or `refused`.
    pub result: String,
    /// `file`, `sighup` or `coordinator`.
    pub source: String,
}

/// The daemon's metrics.
#[derive(Clone, Default)]
pub struct Metrics {
    /// 1 while this instance is active for its group.
    pub active: Gauge,
    /// Epoch of the current activity (0 when passive).
    pub epoch: Gauge,
    /// Activity transitions.
    pub transitions: Family<TransitionLabels, Counter>,
    /// Requests for other groups or instances.
    pub forwarded: Family<ForwardLabels, Counter>,
    /// Config reloads.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Unix time (s) the activity last changed.
    pub last_transition_seconds: Gauge,
}

impl Metrics {
    /// Registers the metrics under `mware_`.
    pub fn register(&self, r: &mut Registry) {
        r.register("mware_active", "1 while this instance is active for its group", self.active.clone());
        r.register("mware_epoch", "fencing epoch of the current activity (0 when passive)", self.epoch.clone());
        r.register("mware_activity_transitions", "activity transitions of this instance", self.transitions.clone());
        r.register("mware_forwarded_requests", "requests forwarded to the owning group's active instance", self.forwarded.clone());
        r.register("mware_config_reloads", "config reloads by result and source", self.reloads.clone());
        r.register(
            "mware_last_transition_unixtime",
            "unix time in seconds of the last activity change",
            self.last_transition_seconds.clone(),
        );
    }
}
