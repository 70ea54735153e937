//! mware-host: runs a group's services while this instance is active.
//!
//! A [`Service`] is a long-lived object built once at start (so it can register
//! metrics and mount routes); the [`Host`] calls [`Service::run`] when the
//! instance becomes active for its group, with a [`ServiceContext`] carrying the
//! fencing epoch, and cancels it (with a time limit) when activity is lost.
#![deny(missing_docs)]

mod host;
mod service;

pub use host::{Host, HostStatus};
pub use service::{LeaseSlot, Service, ServiceContext, ServiceState, ServiceStatus, StatusCell};
