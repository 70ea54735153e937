//! The daemon's own Prometheus metrics; services register theirs in the same registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Labels for activity transitions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    /// `active` or `passive`.
    pub to: String,
}

/// Labels for forwarded requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ForwardLabels {
    /// `proxied`, `no_active`, `error` (the active instance did not answer), `too_large`
    /// (the body exceeded what is forwarded), `bad_body` (it could not be read).
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
    /// Reads of the groups' active instances from the coordinator made for forwarding
    /// (the rest are answered by a cache of 250 ms).
    pub leader_lookups: Counter,
    /// Requests answered 421 because their Host header is not in `api.allowed_hosts`.
    pub misdirected: Counter,
    /// Config reloads.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Unix time (s) the activity last changed.
    pub last_transition_seconds: Gauge,
    /// Round trip of the last confirmed lease renewal, seconds.
    pub lease_renew_latency: Gauge<f64, AtomicU64>,
    /// Seconds since the lease renewal was last confirmed.
    pub lease_since_renewal: Gauge<f64, AtomicU64>,
    /// Confirmed lease renewals.
    pub lease_renewals: Counter,
    /// Failed lease renewals.
    pub lease_renew_failures: Counter,
    /// The membership's figures, once joined.
    pub lease: Arc<Mutex<Option<Arc<mware_coord::LeaseStats>>>>,
    /// The API server's counters.
    pub http: mware_http::Stats,
    /// API connections open now.
    pub http_open: Gauge,
    /// API connections closed at once at the connection cap.
    pub http_refused: Counter,
    /// API connections closed for being idle.
    pub http_idle_closed: Counter,
    /// API calls answered 503 past the request timeout.
    pub http_request_timeouts: Counter,
    /// 1 while the companion runs and reaches the coordinator (a kill -9 ends the lease at once).
    pub companion_ready: Gauge,
    /// Companions started again after one ended (or could not be started).
    pub companion_restarts: Counter,
    /// The companion's pid (0: none); shown in status, not exported.
    pub companion_pid: Gauge,
}

impl Metrics {
    /// Copies the membership's lease figures into the metrics (called at each scrape).
    pub fn refresh(&self) {
        self.http_open.set(self.http.open() as i64);
        self.http_refused.inc_by(self.http.refused().saturating_sub(self.http_refused.get()));
        self.http_idle_closed.inc_by(self.http.idle_closed().saturating_sub(self.http_idle_closed.get()));
        self.http_request_timeouts.inc_by(self.http.request_timeouts().saturating_sub(self.http_request_timeouts.get()));
        let Some(l) = self.lease.lock().unwrap_or_else(|e| e.into_inner()).clone() else { return };
        self.lease_renew_latency.set(l.last_latency_us.load(Ordering::Relaxed) as f64 / 1e6);
        let last = l.last_confirmed_ms.load(Ordering::Relaxed);
        if last > 0 {
            self.lease_since_renewal.set(mware_coord::now_ms().saturating_sub(last) as f64 / 1e3);
        }
        let r = l.renewals.load(Ordering::Relaxed);
        self.lease_renewals.inc_by(r.saturating_sub(self.lease_renewals.get()));
        let f = l.failures.load(Ordering::Relaxed);
        self.lease_renew_failures.inc_by(f.saturating_sub(self.lease_renew_failures.get()));
    }

    /// Registers the metrics under `mware_`.
    pub fn register(&self, r: &mut Registry) {
        r.register("mware_active", "1 while this instance is active for its group", self.active.clone());
        r.register("mware_epoch", "fencing epoch of the current activity (0 when passive)", self.epoch.clone());
        r.register("mware_activity_transitions", "activity transitions of this instance", self.transitions.clone());
        r.register("mware_forwarded_requests", "requests forwarded to the owning group's active instance", self.forwarded.clone());
        r.register(
            "mware_forward_leader_lookups",
            "reads of the groups' active instances from the coordinator made for forwarding",
            self.leader_lookups.clone(),
        );
        r.register(
            "mware_http_misdirected_requests",
            "API requests answered 421 because their Host header is not in api.allowed_hosts",
            self.misdirected.clone(),
        );
        r.register("mware_config_reloads", "config reloads by result and source", self.reloads.clone());
        r.register("mware_lease_renew_latency_seconds", "round trip of the last confirmed lease renewal", self.lease_renew_latency.clone());
        r.register(
            "mware_lease_seconds_since_renewal",
            "seconds since the lease renewal was last confirmed",
            self.lease_since_renewal.clone(),
        );
        r.register("mware_lease_renewals", "confirmed lease renewals", self.lease_renewals.clone());
        r.register("mware_lease_renew_failures", "failed lease renewals", self.lease_renew_failures.clone());
        r.register("mware_http_connections", "API connections open now", self.http_open.clone());
        r.register(
            "mware_http_connections_refused",
            "API connections closed at once because api.max_connections was reached",
            self.http_refused.clone(),
        );
        r.register(
            "mware_http_idle_closed",
            "API connections closed after api.idle_timeout_ms without a request",
            self.http_idle_closed.clone(),
        );
        r.register(
            "mware_http_request_timeouts",
            "API calls answered 503 after api.request_timeout_ms",
            self.http_request_timeouts.clone(),
        );
        r.register(
            "mware_companion_ready",
            "1 while the companion that revokes this instance's lease when its process dies runs and reaches the coordinator",
            self.companion_ready.clone(),
        );
        r.register("mware_companion_restarts", "companions started again after one ended", self.companion_restarts.clone());
        r.register(
            "mware_last_transition_unixtime",
            "unix time in seconds of the last activity change",
            self.last_transition_seconds.clone(),
        );
    }
}
