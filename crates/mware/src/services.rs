//! The one place where the services are listed. Each is built once at start (it registers
//! its metrics); its routes, OpenAPI part and status document come from the service
//! itself, and the host runs those the group's config asks for while this instance is
//! active. Adding a service: `crates/services/README.md`.

use mware_host::Service;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Every service mware can host.
pub fn build(registry: &mut Registry) -> Vec<Arc<dyn Service>> {
    vec![
        Arc::new(mware_mutex::MutexService::new(registry)),
        Arc::new(mware_pgctl::PgctlService::new(registry)),
        Arc::new(mware_realtime::ProvisioningService::new(registry)),
        Arc::new(mware_backup::BackupService::new(registry)),
        Arc::new(mware_tasks::TasksService::new(registry)),
        Arc::new(mware_monitor::MonitorService::new(registry)),
        Arc::new(mware_devices::DevicesService::new(registry)),
        Arc::new(mware_alarms::AlarmsService::new(registry)),
        Arc::new(mware_callmanager::CallsService::new(registry)),
    ]
}
