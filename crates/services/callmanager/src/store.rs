//! The calls in the group's coordinator KV: one key per connected call,
//! `callmanager/calls/{id}`, holding its view and both dialogs. Written fenced before a
//! call is reported connected (and after every change of a dialog: a re-INVITE or INFO
//! raises its CSeq, a transfer replaces a leg), deleted when it ends; read by the next
//! active instance. Writes of concurrent calls share coordinator writes
//! ([`mware_coord::GroupCommit`]): a hundred calls set up at once cost a handful of
//! consensus rounds, not a hundred.

use crate::error::CallError;
use crate::ua::record::DialogRecord;
use crate::view::CallView;
use mware_coord::{Coordinator, Fence, GroupCommit, KvOp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Prefix of the calls in the group's KV space.
pub const PREFIX: &str = "callmanager/calls/";
/// Prefix of the calls being set up: written without waiting when a call starts and when
/// `from` answers, removed in the write that makes the call connected (or when it ends).
/// The next active instance ends what it finds there (see [`crate::setup`]).
pub const SETUP_PREFIX: &str = "callmanager/setup/";

/// Prefix of the conferences: one key per room, written fenced after every change of
/// its participants (the rooms of an activity).
pub const CONF_PREFIX: &str = "callmanager/conferences/";

/// Prefix of the voice notifications: one key per notification, written fenced before
/// each attempt's INVITE and after each attempt ends ([`crate::notify`]).
pub const NOTICE_PREFIX: &str = "callmanager/notifications/";

/// A call being set up, as written to the coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupCall {
    /// The call as the API showed it.
    pub view: CallView,
    /// The dialog with A once A answered (its 2xx not yet ACKed).
    pub a: Option<DialogRecord>,
    /// A's offer (in its 2xx), to answer it with a refusal when A must be ended.
    pub offer_of_a: String,
}

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
    writes: GroupCommit,
}

impl Store {
    /// Writes with `fence` to `coord` (starts the group commit writer: call it inside
    /// the activity's runtime).
    pub fn new(coord: Arc<dyn Coordinator>, fence: Fence) -> Self {
        let writes = GroupCommit::spawn(coord.clone(), fence);
        Store { coord, fence, writes }
    }

    /// Writes (or rewrites) a connected call and removes its set-up record, in one write.
    pub async fn connect(&self, c: &StoredCall) -> Result<(), CallError> {
        let value = serde_json::to_vec(c).map_err(|e| CallError::Coord(e.to_string()))?;
        let ops =
            vec![KvOp::Put { key: format!("{PREFIX}{}", c.view.id), value }, KvOp::Delete { key: format!("{SETUP_PREFIX}{}", c.view.id) }];
        self.writes.apply(ops).await.map(|_| ()).map_err(|e| CallError::Coord(e.to_string()))
    }

    /// Queues the set-up record of a call without waiting (dropped, with a warning, when
    /// the queue is full: it only narrows what a failover during set-up loses).
    pub fn note_setup(&self, c: &SetupCall) {
        let Ok(value) = serde_json::to_vec(c) else { return };
        let op = KvOp::Put { key: format!("{SETUP_PREFIX}{}", c.view.id), value };
        if self.writes.submit(vec![op]).is_none() {
            tracing::warn!(call = %c.view.id, "set-up record not written: the coordinator write queue is full");
        }
    }

    /// Removes a call (both its records).
    pub async fn delete(&self, id: &str) -> Result<(), CallError> {
        let ops = vec![KvOp::Delete { key: format!("{PREFIX}{id}") }, KvOp::Delete { key: format!("{SETUP_PREFIX}{id}") }];
        self.writes.apply(ops).await.map(|_| ()).map_err(|e| CallError::Coord(e.to_string()))
    }

    /// Queues the removal of a call's set-up record without waiting.
    pub fn forget_setup(&self, id: &str) {
        let _ = self.writes.submit(vec![KvOp::Delete { key: format!("{SETUP_PREFIX}{id}") }]);
    }

    /// Writes (or rewrites) conference `id`, fenced.
    pub async fn put_conference<T: Serialize>(&self, id: &str, room: &T) -> Result<(), CallError> {
        let value = serde_json::to_vec(room).map_err(|e| CallError::Coord(e.to_string()))?;
        let op = KvOp::Put { key: format!("{CONF_PREFIX}{id}"), value };
        self.writes.apply(vec![op]).await.map(|_| ()).map_err(|e| CallError::Coord(e.to_string()))
    }

    /// Removes a conference.
    pub async fn delete_conference(&self, id: &str) -> Result<(), CallError> {
        let op = KvOp::Delete { key: format!("{CONF_PREFIX}{id}") };
        self.writes.apply(vec![op]).await.map(|_| ()).map_err(|e| CallError::Coord(e.to_string()))
    }

    /// Every conference of the group (unreadable ones left out).
    pub async fn load_conferences<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, CallError> {
        let rows = self.coord.kv_list(self.fence.group, CONF_PREFIX).await.map_err(|e| CallError::Coord(e.to_string()))?;
        Ok(rows.into_iter().filter_map(|(_, v)| serde_json::from_slice(&v.value).ok()).collect())
    }

    /// Every call of the group being set up when the previous active instance stopped.
    pub async fn load_setup(&self) -> Result<Vec<SetupCall>, CallError> {
        let rows = self.coord.kv_list(self.fence.group, SETUP_PREFIX).await.map_err(|e| CallError::Coord(e.to_string()))?;
        Ok(rows.into_iter().filter_map(|(_, v)| serde_json::from_slice(&v.value).ok()).collect())
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

    /// Writes (or rewrites) notification `id`, fenced; waits for the write.
    pub async fn put_notice<T: Serialize>(&self, id: &str, n: &T) -> Result<(), CallError> {
        let value = serde_json::to_vec(n).map_err(|e| CallError::Coord(e.to_string()))?;
        let op = KvOp::Put { key: format!("{NOTICE_PREFIX}{id}"), value };
        self.writes.apply(vec![op]).await.map(|_| ()).map_err(|e| CallError::Coord(e.to_string()))
    }

    /// Removes a notification.
    pub async fn delete_notice(&self, id: &str) -> Result<(), CallError> {
        let op = KvOp::Delete { key: format!("{NOTICE_PREFIX}{id}") };
        self.writes.apply(vec![op]).await.map(|_| ()).map_err(|e| CallError::Coord(e.to_string()))
    }

    /// Every notification of the group; unreadable entries are named in the second list.
    pub async fn load_notices<T: serde::de::DeserializeOwned>(&self) -> Result<(Vec<T>, Vec<String>), CallError> {
        let rows = self.coord.kv_list(self.fence.group, NOTICE_PREFIX).await.map_err(|e| CallError::Coord(e.to_string()))?;
        let (mut ok, mut bad) = (vec![], vec![]);
        for (key, v) in rows {
            match serde_json::from_slice::<T>(&v.value) {
                Ok(n) => ok.push(n),
                Err(_) => bad.push(key),
            }
        }
        Ok((ok, bad))
    }
}
