//! Prometheus metrics of the callback service (`mware_callback_*`; labels only from fixed
//! sets: order states, attempt outcomes).

use crate::order::Outcome;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `state` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `waiting`, `calling`, `completed`, `failed`, `cancelled`.
    pub state: String,
}

/// `outcome` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// An attempt's outcome (`connected`, `customer_no_answer`, ...).
    pub outcome: String,
}

/// The service's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Orders held by the active instance, by state.
    pub orders: Family<StateLabel, Gauge>,
    /// Orders accepted.
    pub created: Counter,
    /// Orders completed (an operator connected with the customer).
    pub completed: Counter,
    /// Attempts started (written, call placed).
    pub attempts_started: Counter,
    /// Attempts ended, by outcome.
    pub attempts: Family<OutcomeLabel, Counter>,
    /// Operators skipped because their critical section was held.
    pub busy_skips: Counter,
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_callback_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            orders: Family::default(),
            created: Counter::default(),
            completed: Counter::default(),
            attempts_started: Counter::default(),
            attempts: Family::default(),
            busy_skips: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("mware_callback");
        r.register("orders", "Callback orders held by the active instance, by state", m.orders.clone());
        r.register("created", "Callback orders accepted", m.created.clone());
        r.register("completed", "Callback orders completed (operator and customer connected)", m.completed.clone());
        r.register("attempts_started", "Callback attempts started", m.attempts_started.clone());
        r.register("attempts", "Callback attempts ended, by outcome", m.attempts.clone());
        r.register("busy_skips", "Operators skipped because their critical section was held", m.busy_skips.clone());
        m
    }

    /// An attempt ended with `o`.
    pub fn attempt_ended(&self, o: Outcome) {
        self.attempts.get_or_create(&OutcomeLabel { outcome: o.as_str().into() }).inc();
    }
}
