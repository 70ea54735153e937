//! The group commit writer and the expiry sweeper.
//!
//! One writer per activity drains every change queued since its last write, applies
//! them in one fenced `kv_apply` (split in chunks the backend accepts), and only then
//! answers all of them. While writes are in flight (a few at once, see [`PIPELINE`])
//! new changes pile up and go in the next one, so the number of coordinator writes
//! follows the coordinator's latency, not the request rate. Changes nobody waits for
//! (`Pending::urgent` false) wait up to [`FLUSH_DELAY`] for company: under contention
//! that halves the writes, and the coordinator's CPU, without delaying any answer.
//!
//! A refused write (`Fenced`) ends the activity at once: the in-memory table may now
//! differ from the durable state, so nothing more is granted; every caller gets a
//! retryable 503 and the next activity restores from the coordinator.

use crate::active::{Active, Kind, Pending};
use crate::error::MutexError;
use crate::store::Batch;
use crate::table::Grant;
use mware_coord::{CoordError, Coordinator, Fence, KvOp};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Coordinator writes in flight at once.
pub(crate) const PIPELINE: usize = 4;
/// Most changes answered by one write.
const MAX_CHANGES: usize = 1024;
/// Most operations in one `kv_apply` (etcd's default `--max-txn-ops` is 128).
const CHUNK_OPS: usize = 100;
/// Pauses between tries of a write the coordinator could not take.
const RETRY_PAUSES_MS: [u64; 4] = [50, 150, 400, 1000];
/// Longest a change nobody waits for (a release, a grant already answered, a line
/// record far from the head of its line) waits for others to share its write.
const FLUSH_DELAY: Duration = Duration::from_millis(2);
/// Longest sleep of the sweeper; it also wakes for the next expiry.
const SWEEP_MAX: Duration = Duration::from_millis(20);

/// Why the writer stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The fence is stale: another instance is active.
    Fenced(String),
    /// The coordinator failed repeatedly.
    Failed(String),
    /// The activity was closed (the instance stops) and every queued change is written.
    Drained,
}

/// Applies one batch: every chunk, in order, retrying only when the coordinator is
/// unavailable (each op sets a whole value, so a repeated chunk changes nothing).
pub(crate) async fn apply(coord: &dyn Coordinator, fence: &Fence, chunks: Vec<Vec<KvOp>>) -> Result<(), Stop> {
    for chunk in chunks {
        let mut tries = 0;
        loop {
            match coord.kv_apply(fence, chunk.clone()).await {
                Ok(_) => break,
                Err(e @ CoordError::Fenced { .. }) => return Err(Stop::Fenced(e.to_string())),
                Err(e @ CoordError::Invalid(_)) => return Err(Stop::Failed(e.to_string())),
                Err(e) if tries < RETRY_PAUSES_MS.len() => {
                    tracing::warn!(error = %e, attempt = tries + 1, "coordinator write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(RETRY_PAUSES_MS[tries])).await;
                    tries += 1;
                }
                Err(e) => return Err(Stop::Failed(e.to_string())),
            }
        }
    }
    Ok(())
}

/// A batch being written.
struct Flight {
    slot: usize,
    keys: Vec<String>,
    items: Vec<Pending>,
    next_token: u64,
    result: Result<(), Stop>,
}

fn fail(items: Vec<Pending>, reason: &str) {
    for p in items {
        if let Some(d) = p.done {
            let _ = d.send(Err(MutexError::NotRunning(reason.to_string())));
        }
    }
}

fn stop_reason(stop: &Stop) -> String {
    match stop {
        Stop::Fenced(e) => format!("stopped granting: {e}"),
        Stop::Failed(e) => format!("stopped granting: coordinator write failed: {e}"),
        Stop::Drained => "stopped granting: this instance stops".to_string(),
    }
}

/// Runs the writer until the channel closes or a write is refused.
///
/// Up to [`PIPELINE`] batches are in flight at once. A batch that writes a key another
/// batch in flight also writes waits for it, so the writes of one key (a waiter's line
/// record, its grant, its release) are applied in order and a deleted record never
/// comes back. Batches on different keys of one mutex may land in any order: a
/// release may land after the grant that followed it, so a restore can see more holders
/// than the limit, and then grants nobody until they are gone (see [`crate::table`]).
/// Each batch in flight owns a counter slot (see [`crate::store::counter_key`]).
pub(crate) async fn run(
    active: Arc<Active>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    coord: Arc<dyn Coordinator>,
    fence: Fence,
    counter: u64,
) -> Stop {
    let mut slot_written = [counter; PIPELINE];
    let mut free: Vec<usize> = (0..PIPELINE).rev().collect();
    let mut busy: HashSet<String> = HashSet::new();
    let mut flights: JoinSet<Flight> = JoinSet::new();
    // Changes taken from the queue, not yet in a batch; `urgent` once one of them has
    // somebody waiting on it, `flush_at` when the oldest of them must go anyway.
    let mut gather: Vec<Pending> = vec![];
    let mut urgent = false;
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut held: Option<(Batch, Vec<Pending>)> = None;
    let mut stop: Option<Stop> = None;
    loop {
        let closing = active.closed.is_cancelled();
        if stop.is_none() && held.is_none() && !gather.is_empty() && !free.is_empty() {
            let due = urgent || closing || gather.len() >= MAX_CHANGES || flush_at.is_some_and(|t| t <= tokio::time::Instant::now());
            if due {
                let items = std::mem::take(&mut gather);
                (urgent, flush_at) = (false, None);
                let mut batch = Batch::default();
                for p in &items {
                    batch.add(&p.fx.writes, p.fx.next_token);
                }
                if batch.key_count() == 0 && slot_written.iter().all(|w| *w >= batch.next_token()) {
                    answer(&active, items);
                } else {
                    held = Some((batch, items));
                }
            }
        }
        if stop.is_none() {
            if let Some((b, _)) = &held {
                if !free.is_empty() && !b.touches_any(&busy) {
                    let (batch, items) = held.take().expect("held");
                    let slot = free.pop().expect("free slot");
                    let keys = batch.keys();
                    busy.extend(keys.iter().cloned());
                    let next_token = batch.next_token();
                    let chunks = batch.into_chunks(slot, slot_written[slot], CHUNK_OPS);
                    active.metrics.writes.inc();
                    active.metrics.batch_size.observe(items.len() as f64);
                    let (coord, fence) = (coord.clone(), fence);
                    let took = active.metrics.write_seconds.clone();
                    flights.spawn(async move {
                        let t0 = std::time::Instant::now();
                        let result = apply(&*coord, &fence, chunks).await;
                        took.observe(t0.elapsed().as_secs_f64());
                        Flight { slot, keys, items, next_token, result }
                    });
                    continue;
                }
            }
        }
        if let Some(s) = &stop {
            if flights.is_empty() {
                let reason = stop_reason(s);
                if let Some((_, items)) = held.take() {
                    fail(items, &reason);
                }
                fail(std::mem::take(&mut gather), &reason);
                rx.close();
                while let Ok(p) = rx.try_recv() {
                    fail(vec![p], &reason);
                }
                return stop.expect("stop");
            }
        }
        // Closed while stopping: write what is queued (releases, line records), then end.
        if closing && stop.is_none() && held.is_none() && gather.is_empty() && flights.is_empty() && rx.is_empty() {
            return Stop::Drained;
        }
        let take = stop.is_none() && gather.len() < MAX_CHANGES;
        let flush = flush_at.filter(|_| held.is_none() && !free.is_empty());
        tokio::select! {
            _ = active.closed.cancelled(), if !closing => {}
            _ = tokio::time::sleep_until(flush.unwrap_or_else(tokio::time::Instant::now)), if flush.is_some() => {}
            Some(done) = flights.join_next(), if !flights.is_empty() => {
                let f = match done {
                    Ok(f) => f,
                    Err(e) => {
                        stop.get_or_insert(Stop::Failed(format!("writer task failed: {e}")));
                        active.close("stopped granting: writer task failed");
                        continue;
                    }
                };
                free.push(f.slot);
                for k in &f.keys {
                    busy.remove(k);
                }
                match f.result {
                    Ok(()) => {
                        slot_written[f.slot] = slot_written[f.slot].max(f.next_token);
                        answer(&active, f.items);
                    }
                    Err(s) => {
                        let reason = stop_reason(&s);
                        active.close(&reason);
                        fail(f.items, &reason);
                        stop.get_or_insert(s);
                    }
                }
            }
            p = rx.recv(), if take => {
                let Some(first) = p else {
                    stop = Some(Stop::Failed("the change queue closed".into()));
                    continue;
                };
                gather.push(first);
                while gather.len() < MAX_CHANGES {
                    match rx.try_recv() {
                        Ok(p) => gather.push(p),
                        Err(_) => break,
                    }
                }
                urgent = urgent || gather.iter().any(|p| p.urgent);
                flush_at.get_or_insert_with(|| tokio::time::Instant::now() + FLUSH_DELAY);
            }
        }
    }
}

/// Answers every change of a durable batch and tells the table which line records are
/// durable; grants on the spot nobody takes are released.
fn answer(active: &Active, items: Vec<Pending>) {
    let mut abandoned: Vec<Grant> = vec![];
    let mut queued = vec![];
    for p in items {
        queued.extend(p.fx.queued);
        if let Some(d) = p.done {
            let taken = d.send(Ok(())).is_ok();
            if p.kind == Kind::Acquire {
                if taken {
                    active.metrics.grants.inc_by(p.fx.grants.len() as u64);
                } else {
                    abandoned.extend(p.fx.grants);
                }
            }
        }
    }
    active.records_durable(queued);
    active.release_abandoned(abandoned);
}

/// Drops lapsed holders as their time comes, until the activity ends.
pub(crate) async fn sweep(active: Arc<Active>) {
    loop {
        let next = active.sweep();
        let now = mware_coord::now_ms();
        let pause = next.map_or(SWEEP_MAX, |at| Duration::from_millis(at.saturating_sub(now)).min(SWEEP_MAX));
        tokio::select! {
            _ = active.closed.cancelled() => return,
            _ = tokio::time::sleep(pause.max(Duration::from_millis(1))) => {}
        }
    }
}
