//! The one place where the services are listed. Each is built once at start (it registers
//! its metrics and mounts its routes); the host runs those the role's config asks for while
//! this instance is active.

use mware_host::Service;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Every service mware can host.
pub fn build(registry: &mut Registry) -> Vec<Arc<dyn Service>> {
    vec![
        Arc::new(mware_mutex::MutexService::new(registry)),
        Arc::new(mware_pgctl::PgctlService::new(registry)),
        Arc::new(mware_realtime::ProvisioningService::new(registry)),
    ]
}

/// OpenAPI fragments contributed by the services.
pub fn openapi_parts() -> Vec<utoipa::openapi::OpenApi> {
    vec![mware_mutex::openapi()]
}
