//! Prometheus metrics of call tracking, under `mware_calltracking_*` (the `sg` label
//! comes from the site file's list, never from a client).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `sg` label: the sg's name from the site file.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SgLabel {
    /// The sg's name.
    pub sg: String,
}

/// The service's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Static registrations known (stored, not being removed).
    pub statics: Gauge,
    /// Static contacts that answered their last OPTIONS.
    pub reachable: Gauge,
    /// Static contacts bound in the registrar (new ones and ones it had lost).
    pub bound: Counter,
    /// Static contacts bound again because the registrar had lost them.
    pub rebound: Counter,
    /// Whether each sg answers (1) or is lost (0).
    pub sg_up: Family<SgLabel, Gauge>,
    /// Contacts removed from the registrar because the sg they came through was lost.
    pub sg_removed: Family<SgLabel, Counter>,
    /// Cycles that failed (the registrar or the coordinator did not answer).
    pub errors: Counter,
    /// Live calls of the group's domains.
    pub live_calls: Gauge,
    /// Call events that changed a call.
    pub events: Counter,
    /// Call events dropped (another group's domain, past `max_live_calls`, malformed).
    pub events_dropped: Counter,
    /// CTI clients connected now (all adapters).
    pub cti_clients: Gauge,
    /// CTI clients cut for reading too slowly.
    pub cti_cut: Counter,
    /// CTI adapters started again after a failure.
    pub cti_restarts: Counter,
    /// NOTIFYs taken from the servers of external numbers.
    pub external_notifies: Counter,
    /// Subscriptions to external numbers that failed or were ended by the server.
    pub external_failures: Counter,
    /// Subscriptions to external numbers active now.
    pub external_active: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_calltracking_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            statics: Gauge::default(),
            reachable: Gauge::default(),
            bound: Counter::default(),
            rebound: Counter::default(),
            sg_up: Family::default(),
            sg_removed: Family::default(),
            errors: Counter::default(),
            live_calls: Gauge::default(),
            events: Counter::default(),
            events_dropped: Counter::default(),
            cti_clients: Gauge::default(),
            cti_cut: Counter::default(),
            cti_restarts: Counter::default(),
            external_notifies: Counter::default(),
            external_failures: Counter::default(),
            external_active: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("mware_calltracking");
        r.register("static_registrations", "Static registrations known", m.statics.clone());
        r.register("static_reachable", "Static contacts that answered their last OPTIONS", m.reachable.clone());
        r.register("static_bound", "Static contacts bound in the registrar", m.bound.clone());
        r.register("static_rebound", "Static contacts bound again after the registrar lost them", m.rebound.clone());
        r.register("sg_up", "Whether each sg answers OPTIONS (1) or is lost (0)", m.sg_up.clone());
        r.register("sg_contacts_removed", "Contacts removed because their sg was lost", m.sg_removed.clone());
        r.register("errors", "Cycles that failed (registrar or coordinator)", m.errors.clone());
        r.register("live_calls", "Live calls of the group's domains", m.live_calls.clone());
        r.register("events", "Call events that changed a call", m.events.clone());
        r.register(
            "events_dropped",
            "Call events dropped (another group's domain, past max_live_calls, malformed)",
            m.events_dropped.clone(),
        );
        r.register("cti_clients", "CTI clients connected now", m.cti_clients.clone());
        r.register("cti_cut", "CTI clients cut for reading too slowly", m.cti_cut.clone());
        r.register("cti_restarts", "CTI adapters started again after a failure", m.cti_restarts.clone());
        r.register("external_notifies", "NOTIFYs taken from the servers of external numbers", m.external_notifies.clone());
        r.register(
            "external_failures",
            "Subscriptions to external numbers that failed or were ended by the server",
            m.external_failures.clone(),
        );
        r.register("external_active", "Subscriptions to external numbers active now", m.external_active.clone());
        m
    }
}
