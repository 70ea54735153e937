//! The group's backup history in the coordinator's epoch-guarded KV (one JSON value,
//! `backup/state`), so a restart or a failover forgets nothing: the last window done,
//! the last run and its result, each target's last success and failure, and the run in
//! progress. A run's start is recorded (fenced) before anything is copied, with the
//! temporary names it will use, so the next active instance can clean up a half-done run.

use crate::error::Result;
use chrono::{NaiveDate, NaiveDateTime};
use mware_coord::{Coordinator, Fence, KvOp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// KV key of the state.
pub const KEY: &str = "backup/state";

/// A temporary file or folder a run writes on a storage server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Temp {
    /// The target it belongs to (its storage settings come from the config).
    pub target: String,
    /// Path on the storage server.
    pub path: String,
}

/// A run: its start record, then its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique id (also in temporary names).
    pub id: String,
    /// The instance that ran it.
    pub instance: String,
    /// Its epoch.
    pub epoch: u64,
    /// The window it ran for (`None`: started by an operator).
    pub day: Option<NaiveDate>,
    /// Targets included.
    pub targets: Vec<String>,
    /// Start, ms since the Unix epoch.
    pub started_ms: u64,
    /// Start, local time of the server.
    pub started_local: NaiveDateTime,
    /// End, ms since the Unix epoch.
    #[serde(default)]
    pub finished_ms: Option<u64>,
    /// End, local time.
    #[serde(default)]
    pub finished_local: Option<NaiveDateTime>,
    /// `ok`, `failed` or `interrupted`.
    #[serde(default)]
    pub result: Option<String>,
    /// Why it failed, in words.
    #[serde(default)]
    pub reason: Option<String>,
    /// Temporary names it writes.
    #[serde(default)]
    pub temps: Vec<Temp>,
}

/// One target's last outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// When it ended, ms since the Unix epoch.
    pub at_ms: u64,
    /// The run.
    pub run_id: String,
    /// How long it took, ms.
    #[serde(default)]
    pub duration_ms: u64,
    /// Archive size (rsync: bytes of the files), bytes.
    #[serde(default)]
    pub bytes: u64,
    /// The archive's path on the storage server.
    #[serde(default)]
    pub path: String,
    /// Its sha256 (zip archives).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Where it was taken from (pg: the server and its role).
    #[serde(default)]
    pub source: Option<String>,
    /// Failure: why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A target's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetHistory {
    /// Last success.
    pub last_success: Option<Outcome>,
    /// Last failure.
    pub last_failure: Option<Outcome>,
}

/// Everything kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The window whose scheduled run completed last.
    pub done_day: Option<NaiveDate>,
    /// The last finished run.
    pub last_run: Option<RunRecord>,
    /// The run in progress (or cut short by a failover).
    pub running: Option<RunRecord>,
    /// Temporary files a run could not remove (retried at the next run).
    #[serde(default)]
    pub leftovers: Vec<Temp>,
    /// Per target.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetHistory>,
    /// Complete runs so far (scheduled and by operators).
    #[serde(default)]
    pub complete_runs: u64,
}

impl State {
    /// What the schedule needs.
    pub fn history(&self) -> crate::decide::History {
        let failed_at = self.last_run.as_ref().filter(|r| r.result.as_deref() == Some("failed")).and_then(|r| r.finished_local);
        crate::decide::History { done_day: self.done_day, failed_at }
    }
}

/// Reads the state (default when absent).
pub async fn load(c: &dyn Coordinator, group: u32) -> Result<State> {
    Ok(c.kv_get(group, KEY).await?.and_then(|v| serde_json::from_slice(&v.value).ok()).unwrap_or_default())
}

/// Writes the state, fenced: `Fenced` means this instance is no longer active.
pub async fn save(c: &dyn Coordinator, fence: &Fence, s: &State) -> Result<()> {
    c.kv_apply(fence, vec![KvOp::Put { key: KEY.into(), value: serde_json::to_vec(s).unwrap_or_default() }]).await?;
    Ok(())
}
