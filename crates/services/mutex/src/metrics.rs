//! Prometheus metrics of the service (no labels: domains and names are unbounded).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The service's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Grants answered (on the spot or after a wait).
    pub grants: Counter,
    /// Acquires that had to queue.
    pub waits: Counter,
    /// Waits that ran out without a grant.
    pub timeouts: Counter,
    /// Holders dropped because they neither renewed nor released in time.
    pub expiries: Counter,
    /// Holders removed by an operator (`evict`).
    pub evictions: Counter,
    /// Time from queueing to grant, seconds.
    pub wait_seconds: Histogram,
    /// Current holders.
    pub holders: Gauge,
    /// Callers waiting in line now, over all mutexes.
    pub waiters: Gauge,
    /// Coordinator writes (each carries a whole batch).
    pub writes: Counter,
    /// Changes per coordinator write.
    pub batch_size: Histogram,
    /// Time one coordinator write took (all its chunks, retries included), seconds.
    pub write_seconds: Histogram,
    /// Hand-overs to a waiter whose line record was not durable yet, so its answer
    /// waited for a write (the others are answered at once). Growing fast means the
    /// coordinator writes too slowly for the line to stay ahead.
    pub handovers_after_record: Counter,
    /// Journal entries written and not folded into the records yet.
    pub journal_entries: Gauge,
    /// Folds of journal entries into the records.
    pub folds: Counter,
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_mutex_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            grants: Counter::default(),
            waits: Counter::default(),
            timeouts: Counter::default(),
            expiries: Counter::default(),
            evictions: Counter::default(),
            wait_seconds: Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
            holders: Gauge::default(),
            waiters: Gauge::default(),
            writes: Counter::default(),
            batch_size: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
            handovers_after_record: Counter::default(),
            write_seconds: Histogram::new([0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.25, 1.0]),
            journal_entries: Gauge::default(),
            folds: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("mware_mutex");
        r.register("grants", "Critical section grants answered", m.grants.clone());
        r.register("waits", "Acquires that had to queue behind holders", m.waits.clone());
        r.register("timeouts", "Waits that ran out without a grant", m.timeouts.clone());
        r.register("expiries", "Holders dropped at the end of their ttl", m.expiries.clone());
        r.register("evictions", "Holders removed by an operator's evict call", m.evictions.clone());
        r.register("wait_seconds", "Time from queueing to grant", m.wait_seconds.clone());
        r.register("holders", "Current holders over all mutexes", m.holders.clone());
        r.register("waiters", "Callers waiting in line now, over all mutexes", m.waiters.clone());
        r.register("coord_writes", "Coordinator writes made by the group commit", m.writes.clone());
        r.register("batch_changes", "Changes carried by one coordinator write", m.batch_size.clone());
        r.register("coord_write_seconds", "Time one coordinator write of the group commit took", m.write_seconds.clone());
        r.register(
            "handovers_after_record",
            "Hand-overs to a waiter that waited for its line record to be written",
            m.handovers_after_record.clone(),
        );
        r.register("journal_entries", "Journal entries in the coordinator not folded into the records yet", m.journal_entries.clone());
        r.register("folds", "Folds of journal entries into the holder records", m.folds.clone());
        m
    }

    /// An instance holds nothing once its activity has ended: summed over the instances
    /// of a group, the gauges then count the active one only.
    pub fn activity_ended(&self) {
        for g in [&self.holders, &self.waiters, &self.journal_entries] {
            g.set(0);
        }
    }
}
