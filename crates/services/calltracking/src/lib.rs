//! mware-calltracking: the site's registrations kept right, its calls followed and
//! streamed to CTI clients, and the states of external numbers (issue 26).
//!
//! - **Static registrations**: accounts that never register (a gateway, an old phone)
//!   get a permanent contact in the registrar (Kamailio usrloc, `ul.add`), from the
//!   site file's `calltracking.static_registrations` or
//!   `PUT /api/registrations/v1/static/{domain}/{user}`. They are stored fenced in the
//!   coordinator, compared with the registrar every `resync_ms` and put back when it
//!   lost them (a restart), removed when the account goes, and checked with SIP OPTIONS
//!   (reachable, since when, the last answer).
//! - **sg loss**: the edge proxies that add a Path header (RFC 3327) are sent OPTIONS;
//!   after `fail_after` failures in a row every contact registered through the lost sg
//!   leaves the registrar (`ul.dump`, `ul.rm_contact`), counted, logged and announced as
//!   a monitoring item.
//! - **Call events**: the core posts ringing/answered/ended/failed
//!   (`POST /api/calltracking/v1/events`); [`calls`] is the pure step, [`tracker`] keeps the
//!   live calls and writes ended ones to a bounded [`journal`] in the coordinator;
//!   [`restore`] reads live calls back from the core (`dlg.list`) when an activity starts.
//! - **CTI**: [`cti`] supervises one adapter per `cti_adapters` entry (restarted with a
//!   backoff); `cti_ws` is the WebSocket JSON adapter, [`cti_grpc`] the gRPC one (slow
//!   clients cut), [`cti_filter`] what a client follows.
//! - **External numbers**: `external` subscribes to the dialog event package (RFC 4235)
//!   of numbers outside the site at their servers ([`subscription`], [`sipmsg`],
//!   [`dialoginfo`]: pure) and keeps their states with their age in [`numbers`], served
//!   by `GET /api/calltracking/v1/{domain}/numbers` and to CTI clients.
//!
//! Layout: `section` (the site file), [`decide`] (pure: the static registrations'
//! actions), `reconcile` (acts on it), [`sg`] (pure decision and the clean-up), `probe`
//! (OPTIONS checks), `loops`, [`store`] (the coordinator), `handle` ([`CallTracking`]),
//! `service`, `api` and `api_calls`, `cli` (`mware registrations`), `cli_calls` (`mware
//! calltracking calls|sg`), `metrics`.
#![deny(missing_docs)]

mod adapter;
mod api;
mod api_calls;
pub mod calls;
mod cli;
mod cli_calls;
pub mod cti;
pub mod cti_filter;
pub mod cti_grpc;
mod cti_ws;
pub mod decide;
pub mod dialoginfo;
mod error;
mod external;
mod handle;
pub mod journal;
mod loops;
pub mod members;
mod metrics;
pub mod numbers;
mod probe;
mod reconcile;
pub mod restore;
pub mod section;
mod service;
pub mod sg;
pub mod sipmsg;
pub mod store;
pub mod subscription;
pub mod tracker;
pub mod validate;
mod views;

pub use adapter::AdapterView;
pub use api::{openapi, PutBody, SgList, StaticList, StaticView};
pub use error::TrackError;
pub use handle::CallTracking;
pub use metrics::Metrics;
pub use section::CallTracking as CallTrackingConfig;
pub use views::Probe;

/// Call tracking for the registry: its `calltracking` section, the service,
/// `mware registrations` and `mware calltracking`.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "calltracking",
        sections: vec![mware_config::section::<section::CallTracking>()],
        build: |registry| std::sync::Arc::new(CallTracking::new(registry)),
        cli: vec![cli::subcommand(), cli_calls::subcommand()],
    }
}
