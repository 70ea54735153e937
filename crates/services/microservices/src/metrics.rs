//! Prometheus metrics of the microservices, `mware_microservices_*`. Labels are a
//! process's name (from the site file, so bounded).

use crate::logstore::Counters;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// `{process}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProcLabels {
    /// Process name.
    pub process: String,
}

/// The service's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Restarts by policy, per process.
    pub restarts: Family<ProcLabels, Counter>,
    /// The site log's counters.
    pub log: Counters,
    /// UDP mirror: datagrams answered.
    pub mirror_answered: Counter,
    /// UDP mirror: datagrams dropped by a rate limit or the allowed networks.
    pub mirror_dropped: Counter,
    /// Syslog forwarding: messages sent and lines dropped.
    pub syslog: crate::syslog::Counters,
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_microservices_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            restarts: Family::default(),
            log: Counters::default(),
            mirror_answered: Counter::default(),
            mirror_dropped: Counter::default(),
            syslog: Default::default(),
        };
        let r = registry.sub_registry_with_prefix("mware_microservices");
        r.register("restarts", "Restarts of supervised processes by their policy", m.restarts.clone());
        r.register("log_lines_written", "Lines written into this instance's site log", m.log.written.clone());
        r.register("log_lines_lost", "Lines that could not be written into the site log (disk full, I/O error)", m.log.lost.clone());
        r.register("log_stalls", "Times a process's output waited for room in the site log's queue", m.log.stalls.clone());
        r.register("udp_mirror_answered", "UDP mirror: datagrams sent back", m.mirror_answered.clone());
        r.register("udp_mirror_dropped", "UDP mirror: datagrams not answered (rate limits, allowed networks)", m.mirror_dropped.clone());
        r.register("syslog_sent", "Syslog forwarding: messages sent to the receiver", m.syslog.sent.clone());
        r.register(
            "syslog_dropped",
            "Syslog forwarding: lines not forwarded (queue full, receiver down, send error)",
            m.syslog.dropped.clone(),
        );
        m
    }
}
