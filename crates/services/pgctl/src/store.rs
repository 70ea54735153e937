//! The group's durable state in the coordinator's epoch-guarded KV: which server was
//! master last, and the intent of an action in flight (so the next active instance can
//! reconcile an interrupted failover instead of promoting twice). Also the published
//! master record `pg/<key>/master` that other software watches.

use crate::error::Result;
use mware_coord::{Coordinator, Fence, KvOp};
use serde::{Deserialize, Serialize};

/// An action recorded before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// `promote` or `rebuild`.
    pub action: String,
    /// Server name (`pg_host:pg_port`).
    pub target: String,
    /// Epoch of the instance that recorded it.
    pub epoch: u64,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
}

/// What is persisted per group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    /// Name of the server that was master last.
    pub last_master: Option<String>,
    /// Action in flight.
    pub intent: Option<Intent>,
}

/// The published master of a group (`pg/<key>/master`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterRecord {
    /// Server name (`pg_host:pg_port`).
    pub name: String,
    /// PostgreSQL host.
    pub host: String,
    /// PostgreSQL port.
    pub port: u16,
    /// Since when, ms since the Unix epoch.
    pub since_ms: u64,
}

/// KV key of the persisted state.
pub fn state_key(group_key: &str) -> String {
    format!("pgctl/{group_key}/state")
}

/// KV key of the published master.
pub fn master_key(group_key: &str) -> String {
    format!("pg/{group_key}/master")
}

/// Reads the persisted state (default when absent or unreadable as JSON).
pub async fn load(c: &dyn Coordinator, group: u32, key: &str) -> Result<Persisted> {
    Ok(c.kv_get(group, &state_key(key)).await?.and_then(|v| serde_json::from_slice(&v.value).ok()).unwrap_or_default())
}

/// Reads the published master.
pub async fn load_master(c: &dyn Coordinator, group: u32, key: &str) -> Result<Option<MasterRecord>> {
    Ok(c.kv_get(group, &master_key(key)).await?.and_then(|v| serde_json::from_slice(&v.value).ok()))
}

/// Writes the state (and the master record when given) in one fenced batch. A
/// `Fenced` error means this instance is no longer active: do not act.
pub async fn save(c: &dyn Coordinator, fence: &Fence, key: &str, p: &Persisted, master: Option<&MasterRecord>) -> Result<()> {
    let mut ops = vec![KvOp::Put { key: state_key(key), value: serde_json::to_vec(p).unwrap_or_default() }];
    if let Some(m) = master {
        ops.push(KvOp::Put { key: master_key(key), value: serde_json::to_vec(m).unwrap_or_default() });
    }
    c.kv_apply(fence, ops).await?;
    Ok(())
}
