//! The services this binary hosts: the list lives in `mware-registry` (one line per
//! service, with its sections of the site file); here they are built once at start, each
//! registering its metrics.

use mware_host::Service;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Every service mware can host.
pub fn build(registry: &mut Registry) -> Vec<Arc<dyn Service>> {
    mware_registry::build(registry)
}
