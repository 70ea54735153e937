//! mware-callmanager: calls placed and controlled by mware as a SIP third-party call
//! controller (RFC 3725): `POST /api/callmanager/v1/calls` rings `from`, and when it
//! answers connects it with `to`; media flows between the phones, never through mware.
//!
//! Layout: [`ua`] is the SIP user agent (reusable: transport, transactions, legs,
//! dialogs as data); [`decide`] the pure call state machine (event + state -> actions,
//! with the reason in words); `call` the step that acts on it; `store` the calls in the
//! coordinator (fenced); `service` the [`CallsService`] the host runs; `api` the HTTP
//! handlers and their OpenAPI; [`notify`] the voice notifications (`notify_api` their
//! routes); `panels` the console's panels.
#![deny(missing_docs)]

mod api;
pub mod call;
mod cli;
mod conf_api;
pub mod conference;
pub mod decide;
mod error;
mod handle;
mod metrics;
pub mod mixer;
pub mod notify;
mod notify_api;
mod notify_cli;
mod panels;
mod registrar;
pub mod rooms;
mod service;
mod setup;
pub mod store;
pub mod talk;
pub mod talkers;
pub mod ua;
pub mod validate;
mod view;

pub use api::openapi;
pub use error::CallError;
pub use handle::CallsService;
pub use metrics::{Metrics, OutcomeLabel};
pub use mware_sip::section;
pub use mware_sip::SipConfig;

/// The callmanager for the registry: its `sip` section, the service, `mware calls`.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "callmanager",
        sections: vec![mware_config::section::<section::SipConfig>()],
        build: |registry| std::sync::Arc::new(CallsService::new(registry)),
        cli: vec![cli::subcommand(), notify_cli::subcommand()],
    }
}

/// The guard of `m`, also after a thread panicked while holding it (the poisoned data is
/// used as it is, as the rooms, the talk state and the notifications always did).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
