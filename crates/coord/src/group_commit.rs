//! Group commit of independent fenced writes: many tasks each write their own keys (a
//! call's dialog record, say), and one writer puts everything queued since its last
//! write into the next `kv_apply`, then answers each caller with that write's result.
//!
//! Why: every `kv_apply` is one consensus round (etcd) or one fsync (embedded). With a
//! hundred calls being set up at once, a write per call makes the coordinator's latency
//! the limit of the calls per second; one write per round keeps the number of writes
//! following the coordinator's latency instead of the request rate, and no caller waits
//! longer than one write in flight plus its own.
//!
//! Rules that keep it correct:
//! - a batch holds at most [`MAX_TXN_OPS`] operations (etcd refuses more) and never two
//!   operations on one key (etcd refuses that too, and the second must see the first):
//!   such an operation starts the next batch, so each key's writes keep their order; a
//!   range delete is written alone;
//! - a caller's operations are never split across two batches (their atomicity is kept);
//! - a refused write (`Fenced`) is answered to every caller of that batch, and to all
//!   later ones: the fence does not come back.

use crate::{CoordError, Coordinator, Fence, KvOp, MAX_TXN_OPS};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Writes waiting for the writer, at most: past it callers wait for room (back-pressure).
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<u64, CoordError>>;

/// The handle callers write through; cheap to clone. The writer task ends when the last
/// handle is dropped.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<(Vec<KvOp>, Reply)>,
}

impl GroupCommit {
    /// Starts the writer for `fence` on `coord` (on the current Tokio runtime).
    pub fn spawn(coord: Arc<dyn Coordinator>, fence: Fence) -> GroupCommit {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(coord, fence, rx));
        GroupCommit { tx }
    }

    /// Applies `ops` (fenced, atomically, at most [`MAX_TXN_OPS`] of them) together with
    /// whatever else is queued; the revision of the write that carried them.
    pub async fn apply(&self, ops: Vec<KvOp>) -> Result<u64, CoordError> {
        if ops.is_empty() || ops.len() > MAX_TXN_OPS {
            return Err(CoordError::Invalid(format!("expected 1..={MAX_TXN_OPS} operations in one write, found {}", ops.len())));
        }
        let (done, wait) = oneshot::channel();
        let gone = || CoordError::Unavailable("the group commit writer has stopped".into());
        self.tx.send((ops, done)).await.map_err(|_| gone())?;
        wait.await.map_err(|_| gone())?
    }
}

impl GroupCommit {
    /// Queues `ops` without waiting for room or for the write: `None` when the queue is
    /// full (nothing queued), else the write's outcome to await or drop. Queued in call
    /// order, so a later write of the same key lands after this one. For writes that
    /// only narrow a window (a call's set-up record), never for one an answer waits on.
    pub fn submit(&self, ops: Vec<KvOp>) -> Option<oneshot::Receiver<Result<u64, CoordError>>> {
        if ops.is_empty() || ops.len() > MAX_TXN_OPS {
            return None;
        }
        let (done, wait) = oneshot::channel();
        self.tx.try_send((ops, done)).ok().map(|_| wait)
    }
}

/// The key an operation writes (None: a range, which shares its write with nothing).
fn key(op: &KvOp) -> Option<&str> {
    match op {
        KvOp::Put { key, .. } | KvOp::Delete { key } => Some(key),
        KvOp::DeleteRange { .. } => None,
    }
}

/// Whether a caller's operations hold a range (it is written alone).
fn ranged(ops: &[KvOp]) -> bool {
    ops.iter().any(|o| key(o).is_none())
}

/// Copies an error for each caller of a batch (`CoordError` holds no handle).
fn copy(e: &CoordError) -> CoordError {
    match e {
        CoordError::Unavailable(m) => CoordError::Unavailable(m.clone()),
        CoordError::Fenced { group, held, current } => CoordError::Fenced { group: *group, held: *held, current: *current },
        CoordError::Invalid(m) => CoordError::Invalid(m.clone()),
    }
}

async fn writer(coord: Arc<dyn Coordinator>, fence: Fence, mut rx: mpsc::Receiver<(Vec<KvOp>, Reply)>) {
    let mut held: Option<(Vec<KvOp>, Reply)> = None;
    let mut fenced: Option<CoordError> = None;
    loop {
        let first = match held.take() {
            Some(w) => w,
            None => match rx.recv().await {
                Some(w) => w,
                None => return,
            },
        };
        let alone = ranged(&first.0);
        let mut keys: HashSet<String> = first.0.iter().filter_map(key).map(str::to_string).collect();
        let mut ops = first.0;
        let mut replies = vec![first.1];
        while let Some((more, reply)) = if alone { None } else { rx.try_recv().ok() } {
            let clash = ranged(&more) || more.iter().filter_map(key).any(|k| keys.contains(k));
            if clash || ops.len() + more.len() > MAX_TXN_OPS {
                held = Some((more, reply));
                break;
            }
            keys.extend(more.iter().filter_map(key).map(str::to_string));
            ops.extend(more);
            replies.push(reply);
        }
        let result = match &fenced {
            Some(e) => Err(copy(e)),
            None => coord.kv_apply(&fence, ops).await,
        };
        if let Err(e @ CoordError::Fenced { .. }) = &result {
            fenced = Some(copy(e));
        }
        for r in replies {
            let _ = r.send(result.as_ref().map(|rev| *rev).map_err(copy));
        }
    }
}
