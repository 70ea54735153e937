//! mware-devices: the `devicemanager` service (`/api/devicemanager/v1/...`): device jobs
//! accepted through the API, stored before they are answered, and run by remote pollers
//! that take them from RabbitMQ (`mware poller`, crate `mware-poller`), or in-process
//! when the group's section sets no broker.
//!
//! Accepted means kept: a job is committed to the store (PostgreSQL, or an embedded
//! SQLite file) before the 202; the outbox publishes it with a broker confirm and marks
//! it published, so an activity that died in between publishes it again; results are
//! recorded once per job whatever the redeliveries; every write is fenced by the
//! coordinator's epoch (see the `store` module). Job kinds live in `mware-jobs`.
#![deny(missing_docs)]

mod api;
mod engine;
mod error;
mod handle;
mod metrics;
mod section;
mod service;
mod store;
mod targets;
mod transport;
mod validate;

pub use api::openapi;
pub use error::DevicesError;
pub use handle::DevicesService;
pub use section::DeviceManager;
pub use service::sqlite_path;

/// The service and its section (`devicemanager`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "devicemanager",
        sections: vec![mware_config::section::<section::DeviceManager>()],
        build: |registry| std::sync::Arc::new(DevicesService::new(registry)),
        cli: vec![],
    }
}
