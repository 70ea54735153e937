//! mware-jobs: the device jobs of mware's devicemanager, shared by the service (which
//! accepts, stores and publishes them) and the poller (which runs them).
//!
//! - **Kinds**, one module each under `kinds/` ([`Kind`], listed in [`kinds::ALL`]):
//!   `tcp.check`, `http.request`, `snmp.get`, `snmp.walk`, `snmp.set`, `ssh.exec`. A kind
//!   checks its parameters (every problem, with its field) and runs against a target;
//!   adding a kind is one module and one line in that list.
//! - **The wire format** ([`JobMessage`] to the pollers, [`Report`] back), JSON.
//! - **The broker's topology** ([`amqp`]): queue names, their arguments, connecting with
//!   the tokio executor; mware declares every queue, a poller only checks that they exist.
//! - **Running a job** ([`execute`]): within its deadline, with the parameters a kind
//!   declares secret never in a result, an error or a log line.
//! - **Target rules** ([`TargetRules`]): which targets a job may reach, checked when it is
//!   submitted and again after DNS resolution by whoever runs it.
#![deny(missing_docs)]

pub mod amqp;
mod dest;
mod error;
mod exec;
pub mod kinds;
mod rules;
mod spec;
mod target;
mod wire;

pub use dest::{Dest, RunEnv};
pub use error::JobError;
pub use exec::{execute, Outcome};
pub use kinds::{check_job, find as find_kind, Kind};
pub use rules::{SiteEndpoint, TargetRules, Verdict};
pub use spec::{found, Problem, Problems, Target};
pub use target::TargetPattern;
pub use wire::{now_ms, JobMessage, JobState, Report};
