//! The orders in the group's coordinator KV: one key per order, `callback/orders/{id}`,
//! holding the whole order with its attempts. Every change is written fenced (a stale
//! instance's write is refused) through a [`GroupCommit`], so many orders changing at
//! once share coordinator writes. A write is queued while the caller holds the orders'
//! lock, so the writes of one order reach the coordinator in the order they were made.

use crate::error::CallbackError;
use crate::order::Order;
use mware_coord::{Coordinator, Fence, GroupCommit, KvOp};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Prefix of the orders in the group's KV space.
pub const PREFIX: &str = "callback/orders/";

/// A queued write: await it to know it is durable.
pub type Pending = Option<oneshot::Receiver<Result<u64, mware_coord::CoordError>>>;

/// Fenced writes of one activity.
#[derive(Clone)]
pub struct Store {
    coord: Arc<dyn Coordinator>,
    fence: Fence,
    writes: GroupCommit,
}

impl Store {
    /// Writes with `fence` to `coord` (starts the group commit writer: call it inside the
    /// activity's runtime).
    pub fn new(coord: Arc<dyn Coordinator>, fence: Fence) -> Self {
        let writes = GroupCommit::spawn(coord.clone(), fence);
        Store { coord, fence, writes }
    }

    /// Queues the write of `o` (call it under the orders' lock; await [`done`] after).
    pub fn queue_put(&self, o: &Order) -> Pending {
        let value = serde_json::to_vec(o).ok()?;
        self.writes.submit(vec![KvOp::Put { key: format!("{PREFIX}{}", o.id), value }])
    }

    /// Queues the removal of order `id`.
    pub fn queue_delete(&self, id: &str) -> Pending {
        self.writes.submit(vec![KvOp::Delete { key: format!("{PREFIX}{id}") }])
    }

    /// Every order of the group; unreadable entries are named in the second list.
    pub async fn load(&self) -> Result<(Vec<Order>, Vec<String>), CallbackError> {
        let rows = self.coord.kv_list(self.fence.group, PREFIX).await.map_err(|e| CallbackError::Coord(e.to_string()))?;
        let (mut ok, mut bad) = (vec![], vec![]);
        for (key, v) in rows {
            match serde_json::from_slice::<Order>(&v.value) {
                Ok(o) => ok.push(o),
                Err(_) => bad.push(key),
            }
        }
        Ok((ok, bad))
    }
}

/// Waits for a queued write: an error when it was not queued (the queue is full) or the
/// coordinator refused it (fenced: this instance is no longer active).
pub async fn done(p: Pending) -> Result<(), CallbackError> {
    let rx = p.ok_or_else(|| CallbackError::Coord("the coordinator write queue is full".into()))?;
    match rx.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(CallbackError::Coord(e.to_string())),
        Err(_) => Err(CallbackError::Coord("the group commit writer has stopped".into())),
    }
}
