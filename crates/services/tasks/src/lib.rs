//! mware-tasks: service tasks, scheduled service scripts that run on the active instance
//! of a group (seed: "Service Tasks (run scheduled service scripts)").
//!
//! Each task of the group's `service_tasks` has a cron schedule (seconds allowed), an
//! argv, a timeout, an overlap policy, env and a working directory. A loop per task asks
//! the pure [`decide`] what to do (its `Display` is the reason in words) and acts:
//! a run's start is a fenced record in the coordinator, written before its process
//! starts, so a slot runs once even across a failover; a run whose instance died is
//! marked `lost` by the next active instance, not run twice; slots that passed while
//! no instance was active are recorded as missed, never replayed. A run lives in a
//! process group of its own (`mware_host::exec`); a timeout kills the group. The tails of stdout
//! and stderr are kept in the history, every line in `task_<name>.log`.
//!
//! Layout: [`decide`] (pure scheduler),
//! [`store`] (KV records), `runner` (one task's loop), `service` ([`TasksService`]),
//! `api` (`/api/v1/tasks...`), [`metrics`] (`mware_tasks_*`).
#![deny(missing_docs)]

mod api;
mod cli;
pub mod decide;
mod error;
mod handle;
pub mod metrics;
mod restore;
mod runner;
mod section;
mod service;
pub mod store;
mod tasklog;
mod view;

pub use decide::{decide, decide_manual, Decision, Manual, Missed, Schedule, Snapshot, GRACE_MS};
pub use error::TasksError;
pub use handle::TasksService;
pub use runner::{TaskStatus, TAIL_BYTES};
pub use section::{schedule, Overlap, ServiceTask, ServiceTasks};
pub use store::{Outcome, Run};

/// The service and its section (`service_tasks`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "tasks",
        sections: vec![mware_config::section::<section::ServiceTasks>()],
        build: |registry| std::sync::Arc::new(TasksService::new(registry)),
        cli: vec![cli::subcommand()],
    }
}
