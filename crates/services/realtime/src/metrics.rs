//! Prometheus metrics of the provisioning service and of the rtcache sidecar.
//! Labels hold family, op and outcome only: never a value from a request body.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Family (`endpoint`, ...).
    pub family: String,
    /// Operation.
    pub op: &'static str,
    /// What happened (`ok`, `not_found`, `bad_request`, `unavailable`, `error`, `hit`, `stale`, ...).
    pub outcome: &'static str,
}

/// Labels naming an upstream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The upstream base URL.
    pub upstream: String,
}

/// Labels of an upstream error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamErrorLabels {
    /// The upstream base URL.
    pub upstream: String,
    /// `connect`, `timeout`, `status_5xx`, `other`.
    pub kind: String,
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

/// Provisioning service metrics.
pub struct ProvisioningMetrics {
    requests: Family<RequestLabels, Counter>,
    /// Time spent in the database per request.
    pub db_seconds: Histogram,
}

impl ProvisioningMetrics {
    /// Registers under `mware_provisioning_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = ProvisioningMetrics { requests: Family::default(), db_seconds: latency() };
        let r = registry.sub_registry_with_prefix("mware_provisioning");
        r.register("requests", "Provisioning requests by family, op and outcome", m.requests.clone());
        r.register("db_seconds", "Time spent in PostgreSQL per provisioning request", m.db_seconds.clone());
        m
    }
    /// Counts one request.
    pub fn request(&self, family: &str, op: &'static str, outcome: &'static str) {
        count_request(&self.requests, family, op, outcome);
    }
}

/// rtcache sidecar metrics.
#[derive(Clone)]
pub struct RtcacheMetrics {
    requests: Family<RequestLabels, Counter>,
    /// Answers served from a fresh cache entry.
    pub cache_hits: Counter,
    /// Answers served from a stale entry while it is refreshed in the background.
    pub stale_serves: Counter,
    /// Answers served from the cache because every upstream failed.
    pub errors_served_from_cache: Counter,
    upstream_latency: Family<UpstreamLabels, Histogram>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
}

impl RtcacheMetrics {
    /// Registers under `rtcache_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = RtcacheMetrics {
            requests: Family::default(),
            cache_hits: Counter::default(),
            stale_serves: Counter::default(),
            errors_served_from_cache: Counter::default(),
            upstream_latency: Family::new_with_constructor(latency),
            upstream_errors: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("rtcache");
        r.register("requests", "Requests by family, op and outcome", m.requests.clone());
        r.register("cache_hits", "Answers served from a fresh cache entry", m.cache_hits.clone());
        r.register("stale_serves", "Answers served stale while refreshed in the background", m.stale_serves.clone());
        r.register(
            "errors_served_from_cache",
            "Answers served from the cache because every upstream failed",
            m.errors_served_from_cache.clone(),
        );
        r.register("upstream_latency_seconds", "Upstream response time", m.upstream_latency.clone());
        r.register("upstream_errors", "Upstream failures by kind", m.upstream_errors.clone());
        m
    }
    /// Counts one request.
    pub fn request(&self, family: &str, op: &'static str, outcome: &'static str) {
        count_request(&self.requests, family, op, outcome);
    }
    /// Records one upstream answer time.
    pub fn upstream_latency(&self, upstream: &str, secs: f64) {
        self.upstream_latency.get_or_create(&UpstreamLabels { upstream: upstream.into() }).observe(secs);
    }
    /// Counts one upstream failure.
    pub fn upstream_error(&self, upstream: &str, kind: &str) {
        self.upstream_errors.get_or_create(&UpstreamErrorLabels { upstream: upstream.into(), kind: kind.into() }).inc();
    }
}

/// Counts one request in a requests-by-family/op/outcome family (shared by both services).
fn count_request(requests: &Family<RequestLabels, Counter>, family: &str, op: &'static str, outcome: &'static str) {
    requests.get_or_create(&RequestLabels { family: family.into(), op, outcome }).inc();
}
