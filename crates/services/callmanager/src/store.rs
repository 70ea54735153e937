//! The calls in the group's coordinator KV: one key per connected call,
//! `callmanager/calls/{id}`, holding its view and both dialogs. Written fenced before a
//! call is reported connected (and after every change of a dialog: a re-INVITE or INFO
//! raises its CSeq, a transfer replaces a leg), deleted when it ends; read by the next
//! active instance.

use crate::error::CallError;
use crate::ua::record::DialogRecord;
use crate::view::CallView;
use mware_coord::{Coordinator, Fence, KvOp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Prefix of the calls in the group's KV space.
pub const PREFIX: &str = "callmanager/calls/";

/// A connected call as written to the coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCall {
    /// The call as the API shows it.
    pub view: CallView,
    /// The dialog with A (`from`).
    pub a: DialogRecord,
    /// The dialog with B (`to`).
    pub b: DialogRecord,
    /// The SDP A got (B's answer): answers A's re-INVITEs.
    pub sdp_to_a: String,
    /// The SDP B got (A's offer): answers B's re-INVITEs, base of hold/resume.
    pub sdp_to_b: String,
    /// When the call must end (its `max_duration_s`), ms since the Unix epoch.
    pub end_at_ms: u64,
}

/// Fenced writes of one activity.
#[derive(Clone)]
pub struct Store {
    coord: Arc<dyn Coordinator>,
    fence: Fence,
}

impl Store {
    /// Writes with `fence` to `coord`.
    pub fn new(coord: Arc<dyn Coordinator>, fence: Fence) -> Self {
        Store { coord, fence }
    }

    /// Writes (or rewrites) a call.
    pub async fn put(&self, c: &StoredCall) -> Result<(), CallError> {
        let value = serde_json::to_vec(c).map_err(|e| CallError::Coord(e.to_string()))?;
        let op = KvOp::Put { key: format!("{PREFIX}{}", c.view.id), value };
        self.coord.kv_apply(&self.fence, vec![op]).await.map(|_| ()).map_err(|e| CallError::Coord(e.to_string()))
    }

    /// Removes a call.
    pub async fn delete(&self, id: &str) -> Result<(), CallError> {
        let op = KvOp::Delete { key: format!("{PREFIX}{id}") };
        self.coord.kv_apply(&self.fence, vec![op]).await.map(|_| ()).map_err(|e| CallError::Coord(e.to_string()))
    }

    /// Every call of the group; unreadable entries are named in the second list.
    pub async fn load(&self) -> Result<(Vec<StoredCall>, Vec<String>), CallError> {
        let rows = self.coord.kv_list(self.fence.group, PREFIX).await.map_err(|e| CallError::Coord(e.to_string()))?;
        let (mut ok, mut bad) = (vec![], vec![]);
        for (key, v) in rows {
            match serde_json::from_slice::<StoredCall>(&v.value) {
                Ok(c) => ok.push(c),
                Err(_) => bad.push(key),
            }
        }
        Ok((ok, bad))
    }
}
