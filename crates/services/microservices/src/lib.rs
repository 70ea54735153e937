//! mware-microservices: a supervisor of the product layer's processes, the site's log of
//! their output, and the UDP mirror test service (seed: "a generic log of product layer
//! microservices, collected from standard output messages", "UDP packet mirroring test
//! service").
//!
//! A group's `microservices` section lists processes (argv, env, working folder, where
//! they run, restart policy with backoff and a cap, stop signal and grace, resource
//! limits). Each runs in a process group of its own behind a guard that kills the group
//! when the daemon dies (`PR_SET_PDEATHSIG`); the
//! pure [`decide`] says whether an ended one restarts, after what pause, or is shown
//! failed. Every line of its stdout and stderr goes into the instance's site log
//! ([`logstore`]), back-pressured, never dropped. The UDP mirror ([`mirror`]) echoes
//! datagrams, never larger, within rate limits.
//!
//! Layout: `section` (the site file), [`decide`], `spawn` and `guard`, `supervisor`, `pipe` (a
//! process's output read in batches), [`logstore`],
//! [`group`] (the log across the group's members), `logs_api`, [`syslog`] (forwarding),
//! [`reload`] (a reloaded section applied without a restart),
//! [`mirror`], `handle` ([`MicroService`]), `service`, `api`, `cli` (`mware ms`), [`metrics`].
#![deny(missing_docs)]

mod api;
mod cli;
pub mod decide;
mod error;
mod follow;
pub mod group;
mod guard;
mod handle;
mod logs_api;
pub mod logstore;
pub mod metrics;
pub mod mirror;
mod paths;
mod pipe;
pub mod reload;
mod section;
mod service;
mod spawn;
mod supervisor;
pub mod syslog;

pub use decide::{decide, Decision, Exit, Snapshot};
pub use error::MicroError;
pub use handle::MicroService;
pub use section::{signal, LogConfig, Microservices, MirrorConfig, Process, Restart, RunOn, SyslogConfig, Transport};
pub use supervisor::{Cmd, LastExit, ProcStatus, State};

/// The service and its section (`microservices`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "microservices",
        sections: vec![mware_config::section::<section::Microservices>()],
        build: |registry| std::sync::Arc::new(MicroService::new(registry)),
        cli: cli::subcommands(),
    }
}
