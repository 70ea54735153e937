//! mware-mutex: the critical sections service. Call-handling scripts of a domain
//! enter a named critical section (a mutex, or a counting semaphore with `limit` > 1),
//! wait their turn first in first out or give up after `wait_ms`, and leave it; a
//! holder that neither renews nor releases loses it at its `ttl_ms`.
//!
//! Every grant is durable in the coordinator's epoch-guarded KV before it is answered,
//! so the next active instance restores holders (with their remaining time) and the
//! token counter; tokens only grow and serve as fencing tokens. A waiter's grant is
//! made durable ahead of time (its line record, written while it waits), so a release
//! hands the mutex over without a write; the rules are in [`table`]. Concurrent changes are
//! group-committed: one writer applies everything queued since its last write in one
//! fenced `kv_apply`. A refused (stale-epoch) write stops granting at once.
//!
//! Layout: [`table`] is the pure lock table (decisions, no I/O); `store` the KV
//! layout; `active` and `writer` one activity with its group commit; `service` the
//! [`MutexService`] the host runs; `api` the HTTP handlers and [`openapi`].
#![deny(missing_docs)]

mod active;
mod api;
mod cli;
mod error;
mod handle;
mod metrics;
mod section;
mod service;
mod store;
pub mod table;
pub mod validate;
mod views;
mod write;
mod writer;

pub use api::{openapi, GrantResponse, ListResponse, ReleaseResponse};
pub use error::MutexError;
pub use handle::MutexService;
pub use metrics::Metrics;
pub use section::CriticalSections;

/// The service and its section (`critical_sections`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "mutex",
        sections: vec![mware_config::section::<section::CriticalSections>()],
        build: |registry| std::sync::Arc::new(MutexService::new(registry)),
        cli: vec![cli::subcommand()],
    }
}
