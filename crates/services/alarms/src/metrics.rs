//! Prometheus metrics of the alarms service, `mware_alarms_*`. Labels come from a fixed
//! set (transport, reason, source) or from the site file (rule names, channel names made
//! of the managers' addresses), so they are bounded.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `{transport}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Transport {
    /// `udp`, `tcp`.
    pub transport: &'static str,
}

/// `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// Why.
    pub reason: &'static str,
}

/// `{rule}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleL {
    /// Rule name.
    pub rule: String,
}

/// `{channel}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Channel {
    /// `snmp:<address>` or `telegram`.
    pub channel: String,
}

/// `{source}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceL {
    /// `syslog`, `summary`, `monitoring`, `api`.
    pub source: &'static str,
}

/// The metrics, cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    received: Family<Transport, Counter>,
    malformed: Family<Reason, Counter>,
    matched: Family<RuleL, Counter>,
    unmatched: Counter,
    raised: Family<SourceL, Counter>,
    sent: Family<Channel, Counter>,
    failed: Family<Channel, Counter>,
    dropped: Family<Reason, Counter>,
    backlog: Family<Channel, Gauge>,
    refused: Family<Reason, Counter>,
    idle_closed: Counter,
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_alarms_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("mware_alarms");
        r.register("received", "Syslog messages received, by transport", m.received.clone());
        r.register("malformed", "Syslog messages dropped: oversize or unparsable", m.malformed.clone());
        r.register("matched", "Syslog messages a rule matched, by rule", m.matched.clone());
        r.register("unmatched", "Syslog messages no rule matched (dropped)", m.unmatched.clone());
        r.register("raised", "Alarms raised (written to the group's outbox), by source", m.raised.clone());
        r.register("sent", "Alarms sent, by channel", m.sent.clone());
        r.register("send_failed", "Failed sends (retried), by channel", m.failed.clone());
        r.register("dropped", "Alarms not sent: dedupe, rate_limit (summarised later) or outbox_full (lost)", m.dropped.clone());
        r.register("backlog", "Alarms waiting for the channel", m.backlog.clone());
        r.register(
            "syslog_refused",
            "Syslog TCP connections closed at once: per_peer (the address held max_connections_per_peer) or total (max_connections)",
            m.refused.clone(),
        );
        r.register("syslog_idle_closed", "Syslog TCP connections closed after tcp_idle_timeout_ms without data", m.idle_closed.clone());
        m
    }
    /// Messages arrived.
    pub fn received(&self, transport: &'static str, n: u64) {
        if n > 0 {
            self.received.get_or_create(&Transport { transport }).inc_by(n);
        }
    }
    /// A message was dropped as malformed.
    pub fn malformed(&self, reason: &'static str) {
        self.malformed.get_or_create(&Reason { reason }).inc();
    }
    /// A rule matched `n` messages.
    pub fn matched(&self, rule: &str, n: u64) {
        if n > 0 {
            self.matched.get_or_create(&RuleL { rule: rule.to_string() }).inc_by(n);
        }
    }
    /// No rule matched `n` messages.
    pub fn unmatched(&self, n: u64) {
        self.unmatched.inc_by(n);
    }
    /// Alarms raised.
    pub fn raised(&self, source: &'static str, n: u64) {
        self.raised.get_or_create(&SourceL { source }).inc_by(n);
    }
    /// Sent on a channel.
    pub fn sent(&self, channel: &str, n: u64) {
        self.sent.get_or_create(&Channel { channel: channel.to_string() }).inc_by(n);
    }
    /// A send failed.
    pub fn failed(&self, channel: &str) {
        self.failed.get_or_create(&Channel { channel: channel.to_string() }).inc();
    }
    /// `n` not sent.
    pub fn dropped_n(&self, reason: &'static str, n: u64) {
        if n > 0 {
            self.dropped.get_or_create(&Reason { reason }).inc_by(n);
        }
    }
    /// A syslog TCP connection was refused.
    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&Reason { reason }).inc();
    }
    /// A syslog TCP connection was closed for idleness.
    pub fn idle_closed(&self) {
        self.idle_closed.inc();
    }
    /// A channel's backlog.
    pub fn backlog(&self, channel: &str, n: usize) {
        self.backlog.get_or_create(&Channel { channel: channel.to_string() }).set(n as i64);
    }
}
