//! Prometheus metrics of the users services, `mware_users_*`. Labels come from fixed sets
//! (endpoint names, status codes, limit kinds, mail outcomes), never from a client.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `{endpoint, status}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReqLabels {
    /// A fixed endpoint name (`login`, `recovery` …).
    pub endpoint: &'static str,
    /// The HTTP status answered.
    pub status: u16,
}

/// `{limit}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// `ip`, `login` or `address`.
    pub limit: &'static str,
}

/// `{outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailLabels {
    /// `sent`, `retry` or `failed`.
    pub outcome: &'static str,
}

/// The service's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Requests answered, per endpoint and status.
    pub requests: Family<ReqLabels, Counter>,
    /// Requests refused by an abuse limit.
    pub refused: Family<LimitLabels, Counter>,
    /// Alarm events raised by limits tripping repeatedly.
    pub limit_alarms: Counter,
    /// Attempts to send a mail, per outcome.
    pub mails: Family<MailLabels, Counter>,
    /// Mails waiting in the outbox (as last seen by the sender).
    pub outbox_pending: Gauge,
    /// Failed logins.
    pub login_failures: Counter,
    /// `refused` of each limit (`ip`, `login`, `address`), taken from the family once:
    /// a refusal counts without a lookup.
    refused_by: [Counter; 3],
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_users_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let refused = Family::<LimitLabels, Counter>::default();
        let by = |limit| refused.get_or_create(&LimitLabels { limit }).clone();
        let refused_by = [by("ip"), by("login"), by("address")];
        let m = Metrics {
            requests: Family::default(),
            refused,
            refused_by,
            limit_alarms: Counter::default(),
            mails: Family::default(),
            outbox_pending: Gauge::default(),
            login_failures: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("mware_users");
        r.register("requests", "Requests answered by the users services, per endpoint and status", m.requests.clone());
        r.register("refused", "Requests refused by an abuse limit (429), per limit", m.refused.clone());
        r.register("limit_alarms", "Alarm events raised because a limit tripped repeatedly for one key", m.limit_alarms.clone());
        r.register("mails", "Attempts to hand a mail of the outbox to the relay, per outcome", m.mails.clone());
        r.register("outbox_pending", "Mails waiting in the outbox", m.outbox_pending.clone());
        r.register("login_failures", "Logins refused (unknown login or wrong password)", m.login_failures.clone());
        m
    }

    /// Counts one request refused by the `kind` limit.
    pub fn refused(&self, kind: crate::limits::Kind) {
        self.refused_by[kind as usize].inc();
    }

    /// Counts one mail attempt.
    pub fn mail(&self, outcome: &'static str) {
        self.mails.get_or_create(&MailLabels { outcome }).inc();
    }

    /// Counts one answer.
    pub fn answered(&self, endpoint: &'static str, status: u16) {
        self.requests.get_or_create(&ReqLabels { endpoint, status }).inc();
    }
}
