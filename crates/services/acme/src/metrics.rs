//! Prometheus metrics of the acme service, `mware_acme_*`. Labels are certificate and
//! target names (from the site file, so bounded) and a fixed set of results.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `{cert}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertLabels {
    /// Certificate name.
    pub cert: String,
}

/// `{cert, target}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// Certificate name.
    pub cert: String,
    /// Target name.
    pub target: String,
}

/// `{cert, result}` (`ok` or `failed`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Certificate name.
    pub cert: String,
    /// `ok` or `failed`.
    pub result: &'static str,
}

/// The service's metrics, cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Expiry of the certificate held, Unix time in seconds.
    pub expiry: Family<CertLabels, Gauge>,
    /// Expiry of the certificate read back from each target, Unix time in seconds.
    pub target_expiry: Family<TargetLabels, Gauge>,
    /// Orders run to their end, by result.
    pub orders: Family<ResultLabels, Counter>,
    /// Deploys, by result.
    pub deploys: Family<ResultLabels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_acme_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("mware_acme");
        r.register("cert_expiry_seconds", "Expiry of the certificate held, Unix time in seconds", m.expiry.clone());
        r.register(
            "target_cert_expiry_seconds",
            "Expiry of the certificate read back from a deploy target, Unix time in seconds",
            m.target_expiry.clone(),
        );
        r.register("orders", "ACME orders run to their end, by result", m.orders.clone());
        r.register("deploys", "Deploys of a certificate to a target, by result", m.deploys.clone());
        m
    }
}
