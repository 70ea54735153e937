//! mware-host: runs a group's services while this instance is active.
//!
//! A [`Service`] is a long-lived object built once at start (so it can register
//! metrics); it describes itself: its [`Routes`] (each with its [`Access`] and
//! [`Scope`]), its OpenAPI part and its status document. The [`Host`] calls
//! [`Service::run`] when the instance becomes active for its group, with a
//! [`ServiceContext`] carrying the fencing epoch, and cancels every service against
//! one deadline when activity is lost. The host owns each service's state and puts
//! every change on the instance's [`Events`] channel.
#![deny(missing_docs)]

pub mod events;
pub mod exec;
mod host;
pub mod items;
mod paging;
mod panel;
mod plugin;
mod render;
mod routes;
mod service;
pub mod site;
mod state;

pub use events::{Event, EventKind, Events};
pub use host::{desired, Host, HostStatus};
pub use items::Health;
/// The one error answer of the API, for services' handlers (from `mware-http`).
pub use mware_http::{ApiError, Problem};
pub use paging::{Page, PageError, PageQuery};
pub use panel::{Action, Column, Nested, Panel};
pub use plugin::Plugin;
pub use render::render_json;
pub use routes::{Access, ClientAddr, DomainArg, Gate, ResolvedArg, Resolver, Route, Routes, Scope, Unavailable};
pub use service::{InstanceEnv, LeaseSlot, Service, ServiceContext, StatusHandle};
pub use state::{ServiceState, ServiceStatus};
