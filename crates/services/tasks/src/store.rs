//! The tasks' durable records in the group's epoch-guarded KV:
//! - `tasks/<name>/state`: the last slot dealt with, the slot waiting in the queue, and
//!   the counter of run ids;
//! - `tasks/<name>/runs/<id>`: one record per run (ids zero-padded so that key order is
//!   run order), the newest `history` kept.
//!
//! A run's start is written (state and run record in one fenced batch) before its
//! process starts, so a slot is claimed once across a failover: the next active
//! instance sees the claim, and a run still marked `running` from an earlier activity
//! is marked `lost` there, never run again.

use mware_coord::{CoordError, Coordinator, Fence, KvOp};
use serde::{Deserialize, Serialize};

/// What is persisted per task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    /// The last slot dealt with (run, skipped, queued or missed), ms since the Unix epoch.
    pub last_slot_ms: u64,
    /// A slot waiting for the running one to end.
    #[serde(default)]
    pub queued_ms: Option<u64>,
    /// The id the next run gets.
    #[serde(default)]
    pub next_id: u64,
}

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// In progress.
    Running,
    /// Exited with 0.
    Ok,
    /// Exited with another code, was ended by a signal, or could not start.
    Failed,
    /// Ran past its timeout; its process group was killed.
    Timeout,
    /// Ended on purpose (overlap `kill`, the instance stopped being active, the task's
    /// config changed).
    Killed,
    /// Its instance died (or lost activity without recording the end) while it ran.
    Lost,
    /// Not run: the previous run was still in progress.
    Skipped,
    /// Not run: no instance could run it in time (a stretch of slots).
    Missed,
}

impl Outcome {
    /// The outcome as a word (metric label, API).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Timeout => "timeout",
            Outcome::Killed => "killed",
            Outcome::Lost => "lost",
            Outcome::Skipped => "skipped",
            Outcome::Missed => "missed",
        }
    }
}

/// One run (or a skipped slot, or a missed stretch) as kept in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Run id, growing per task.
    pub id: u64,
    /// `schedule`, `queue` or `manual`.
    pub trigger: String,
    /// The slot it ran for (a missed stretch: its first slot).
    pub slot_ms: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// The instance that ran (or recorded) it.
    pub instance: String,
    /// That instance's epoch.
    pub epoch: u64,
    /// When it started, ms since the Unix epoch.
    pub started_ms: Option<u64>,
    /// When it ended (or was found lost).
    pub finished_ms: Option<u64>,
    /// How long it ran.
    pub duration_ms: Option<u64>,
    /// Exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// What happened, in words.
    pub reason: String,
    /// The last bytes of its stdout.
    #[serde(default)]
    pub stdout_tail: String,
    /// The last bytes of its stderr.
    #[serde(default)]
    pub stderr_tail: String,
}

/// KV key of a task's state.
pub fn state_key(task: &str) -> String {
    format!("tasks/{task}/state")
}

/// KV prefix of a task's runs.
pub fn runs_prefix(task: &str) -> String {
    format!("tasks/{task}/runs/")
}

/// KV key of one run.
pub fn run_key(task: &str, id: u64) -> String {
    format!("tasks/{task}/runs/{id:020}")
}

/// Reads a task's state (`None` when the task never ran on this group).
pub async fn load_state(c: &dyn Coordinator, group: u32, task: &str) -> Result<Option<TaskState>, CoordError> {
    Ok(c.kv_get(group, &state_key(task)).await?.and_then(|v| serde_json::from_slice(&v.value).ok()))
}

/// Every kept run of a task, oldest first (unreadable records are left out).
pub async fn load_runs(c: &dyn Coordinator, group: u32, task: &str) -> Result<Vec<Run>, CoordError> {
    Ok(c.kv_list(group, &runs_prefix(task)).await?.into_iter().filter_map(|(_, v)| serde_json::from_slice(&v.value).ok()).collect())
}

/// Writes the state and the given runs in one fenced batch, and drops runs older than
/// the newest `keep` (by id), except run `protect` (the one in progress: the next active
/// instance must find it to mark it lost).
pub async fn save(
    c: &dyn Coordinator,
    fence: &Fence,
    task: &str,
    state: &TaskState,
    runs: &[&Run],
    keep: usize,
    protect: Option<u64>,
) -> Result<(), CoordError> {
    let mut ops = vec![KvOp::Put { key: state_key(task), value: serde_json::to_vec(state).unwrap_or_default() }];
    for r in runs {
        ops.push(KvOp::Put { key: run_key(task, r.id), value: serde_json::to_vec(r).unwrap_or_default() });
    }
    let keep_from = state.next_id.saturating_sub(keep as u64);
    match protect.filter(|p| *p < keep_from) {
        Some(p) => {
            if p > 0 {
                ops.push(KvOp::DeleteRange { from: runs_prefix(task), to: run_key(task, p) });
            }
            if p + 1 < keep_from {
                ops.push(KvOp::DeleteRange { from: run_key(task, p + 1), to: run_key(task, keep_from) });
            }
        }
        None if keep_from > 0 => ops.push(KvOp::DeleteRange { from: runs_prefix(task), to: run_key(task, keep_from) }),
        None => {}
    }
    c.kv_apply(fence, ops).await?;
    Ok(())
}
