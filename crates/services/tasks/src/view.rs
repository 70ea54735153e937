//! What a task's loop shares with the service and the API: its status, the requests it
//! takes, and what it is given.

use crate::metrics::Metrics;
use crate::tasklog::TaskLog;
use mware_coord::{Coordinator, Fence};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// A task as shown in `GET /api/v1/tasks`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    /// Name.
    pub name: String,
    /// Cron expression.
    pub schedule: String,
    /// The program, then `***` for each argument: the list is public (the console reads it
    /// without a token) and arguments can carry passwords, so they are redacted like `env`.
    pub command: Vec<String>,
    /// Overlap policy.
    pub overlap: String,
    /// Time limit, seconds.
    pub timeout_s: u64,
    /// The next slot, ms since the Unix epoch.
    pub next_ms: Option<u64>,
    /// The run in progress.
    pub running: Option<RunningView>,
    /// A slot waiting for the run in progress.
    pub queued_ms: Option<u64>,
    /// The scheduler's last decision, in words.
    pub reason: String,
}

/// An argv as the public list shows it: the program, then `***` for each argument.
pub fn redacted_argv(argv: &[String]) -> Vec<String> {
    argv.iter().enumerate().map(|(i, a)| if i == 0 { a.clone() } else { "***".to_string() }).collect()
}

/// The run in progress.
#[derive(Debug, Clone, Serialize)]
pub struct RunningView {
    /// Run id.
    pub id: u64,
    /// Started, ms since the Unix epoch.
    pub started_ms: u64,
}

/// Every task's status, by name.
pub type Statuses = Arc<Mutex<BTreeMap<String, TaskStatus>>>;

/// Answer to a manual run request: the run id and what happened, in words.
pub type ManualAnswer = Result<(u64, String), String>;

/// A request to a task's loop.
pub enum Request {
    /// Run now (`POST /api/v1/tasks/{name}/run`).
    RunNow(oneshot::Sender<ManualAnswer>),
}

/// What a task's loop needs.
#[derive(Clone)]
pub struct TaskCtx {
    /// The coordinator.
    pub coord: Arc<dyn Coordinator>,
    /// This activity's fence.
    pub fence: Fence,
    /// This instance's name.
    pub instance: String,
    /// Stops the loop (activity lost, task removed or changed).
    pub cancel: CancellationToken,
    /// Metrics.
    pub metrics: Metrics,
    /// Where statuses go.
    pub statuses: Statuses,
    /// The task's log.
    pub log: TaskLog,
}

#[cfg(test)]
mod tests {
    #[test]
    fn arguments_are_redacted_the_program_is_not() {
        let argv: Vec<String> = ["/usr/bin/pg_dump", "--password=s3cret", "db"].map(String::from).to_vec();
        assert_eq!(super::redacted_argv(&argv), ["/usr/bin/pg_dump", "***", "***"]);
        assert!(super::redacted_argv(&[]).is_empty());
    }
}
