//! mware-callback: callback orders. A caller who could not get through leaves an order
//! (`POST /api/callback/v1/orders {domain, number, queue | operator, not_before?,
//! not_after?, note?}`); mware rings a free operator of the queue first, then the
//! customer, and connects them, retrying unanswered attempts within the order's window.
//!
//! An operator is busy while its critical section (the mutex service's, of the order's
//! domain) is held: mware takes it for each attempt and releases it after. Calls are
//! placed and followed through the callmanager's Calls API of the local (active)
//! instance, never by a second SIP stack. Orders are durable and fenced: one coordinator
//! key per order, written through a group commit before each step acts, so a failover
//! in the middle of an attempt neither loses the order nor rings the customer twice for
//! that attempt (see `attempt`).
//!
//! Layout: `section` (the `callback` section and its check), `order` (orders and
//! attempts as stored and shown), [`decide`] (the pure decisions), `attempt` (the step
//! that acts), `active` (one activity: orders in memory, the tick), `store` (the KV),
//! `local` (the local API), `api` (handlers and [`openapi`]), `cli`, `metrics`, `service`.
#![deny(missing_docs)]

mod active;
mod api;
mod attempt;
mod cli;
pub mod decide;
mod error;
mod handle;
mod local;
mod metrics;
pub mod order;
pub mod party;
pub mod section;
mod service;
mod store;
pub mod validate;

pub use api::openapi;
pub use error::CallbackError;
pub use handle::CallbackService;
pub use metrics::Metrics;
pub use section::CallbackConfig;

/// The service and its section (`callback`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "callback",
        sections: vec![mware_config::section::<section::CallbackConfig>()],
        build: |registry| std::sync::Arc::new(CallbackService::new(registry)),
        cli: vec![cli::subcommand()],
    }
}
