//! The journal of ended calls in the group's coordinator KV, bounded:
//! `calltracking/journal/{ended_ms:016}-{id}`, at most `journal_size` entries; the calls
//! that ended in one batch of events are written fenced together with the removal of the
//! oldest past the bound, in one write. The next active instance reads it as it is.

use crate::calls::EndedCall;
use crate::error::TrackError;
use mware_coord::{Coordinator, Fence, KvOp};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Prefix of the journal in the group's KV space.
pub const PREFIX: &str = "calltracking/journal/";

/// The journal of one activity.
pub struct Journal {
    coord: Arc<dyn Coordinator>,
    fence: Fence,
    size: usize,
    keys: Mutex<VecDeque<String>>,
}

impl Journal {
    /// Opens the group's journal (reads its keys, oldest first).
    pub async fn open(coord: Arc<dyn Coordinator>, fence: Fence, size: usize) -> Result<Journal, TrackError> {
        let mut keys: Vec<String> =
            coord.kv_list(fence.group, PREFIX).await.map_err(|e| TrackError::Coord(e.to_string()))?.into_iter().map(|(k, _)| k).collect();
        keys.sort();
        Ok(Journal { coord, fence, size: size.max(1), keys: Mutex::new(keys.into()) })
    }

    /// Writes ended calls in one fenced write, dropping the oldest past the bound.
    pub async fn push(&self, ended: &[EndedCall]) -> Result<(), TrackError> {
        if ended.is_empty() {
            return Ok(());
        }
        // Past the bound on its own: only the newest `size` are written.
        let ended = &ended[ended.len().saturating_sub(self.size)..];
        let mut keys = self.keys.lock().await;
        let mut ops = Vec::with_capacity(ended.len() * 2);
        let mut new = Vec::with_capacity(ended.len());
        for e in ended {
            let key = format!("{PREFIX}{:016}-{}", e.ended_ms, e.dialog.id);
            let value = serde_json::to_vec(e).map_err(|e| TrackError::Coord(e.to_string()))?;
            ops.push(KvOp::Put { key: key.clone(), value });
            new.push(key);
        }
        let drop = (keys.len() + new.len()).saturating_sub(self.size).min(keys.len());
        ops.extend(keys.iter().take(drop).map(|k| KvOp::Delete { key: k.clone() }));
        self.coord.kv_apply(&self.fence, ops).await.map_err(|e| TrackError::Coord(e.to_string()))?;
        keys.drain(..drop);
        keys.extend(new);
        Ok(())
    }

    /// The ended calls of `domain` that ended at or after `since_ms`, newest first, at
    /// most `limit`.
    pub async fn read(&self, domain: &str, since_ms: u64, limit: usize) -> Result<Vec<EndedCall>, TrackError> {
        let rows = self.coord.kv_list(self.fence.group, PREFIX).await.map_err(|e| TrackError::Coord(e.to_string()))?;
        let mut out: Vec<EndedCall> = rows
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<EndedCall>(&v.value).ok())
            .filter(|e| e.dialog.domain == domain && e.ended_ms >= since_ms)
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.ended_ms));
        out.truncate(limit);
        Ok(out)
    }
}
