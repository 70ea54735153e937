//! The one writer of a monitoring activity: item changes are written to the group's KV
//! in fenced batches (in the order they were sent), and each is announced on the
//! instance's event channel only once its write succeeded. A refused write (a stale
//! epoch) ends the writer: this instance is no longer active and announces nothing more.

use mware_coord::{CoordError, Coordinator, Fence, KvOp};
use mware_host::items::Item;
use mware_host::{EventKind, Events};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Most changes written in one batch: one operation each, under `MAX_TXN_OPS`.
const BATCH: usize = mware_coord::MAX_TXN_OPS - 8;

/// A change to persist: the item, or its removal; and whether to announce it.
#[derive(Debug, Clone)]
pub enum Change {
    /// Write the item; announce it as an `Item` event when `announce`.
    Put {
        /// The item.
        item: Item,
        /// Announce it after the write.
        announce: bool,
    },
    /// Remove the item (no longer configured).
    Delete {
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
    },
}

/// Sends changes to the writer.
pub type Sender = mpsc::Sender<Change>;

/// Runs the writer until the channel closes or `cancel`; `Err` when a write is refused
/// because this instance's epoch is stale.
pub async fn run(
    coord: Arc<dyn Coordinator>,
    fence: Fence,
    events: Events,
    mut rx: mpsc::Receiver<Change>,
    cancel: CancellationToken,
) -> Result<(), CoordError> {
    let mut batch: Vec<Change> = Vec::with_capacity(BATCH);
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            c = rx.recv() => match c { Some(c) => c, None => return Ok(()) },
        };
        batch.clear();
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let ops: Vec<KvOp> = batch
            .iter()
            .map(|c| match c {
                Change::Put { item, .. } => KvOp::Put { key: item.key(), value: serde_json::to_vec(item).unwrap_or_default() },
                Change::Delete { kind, name } => KvOp::Delete { key: mware_host::items::key(kind, name) },
            })
            .collect();
        // A coordinator that does not answer is retried; a refusal ends the activity.
        if !mware_coord::kv_apply_retrying(coord.as_ref(), &fence, ops, &cancel, "monitoring item changes").await? {
            return Ok(());
        }
        for c in &batch {
            if let Change::Put { item, announce: true } = c {
                tracing::info!(item = %format!("{}/{}", item.kind, item.name), state = item.state.as_str(), reason = %item.reason, "monitoring: state changed");
                events.publish(EventKind::Item {
                    source: "monitoring".into(),
                    item: format!("{}/{}", item.kind, item.name),
                    state: item.state.as_str().into(),
                    reason: item.reason.clone(),
                });
            }
        }
    }
}
