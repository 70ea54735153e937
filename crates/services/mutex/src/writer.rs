//! The group commit writer and the expiry sweeper.
//!
//! One writer per activity drains every change queued since its last write, writes
//! them as one journal entry in one fenced `kv_apply` (see [`crate::store`] for the
//! layout and why it is safe), and only then answers all of them. While writes are in
//! flight (a few at once, see [`PIPELINE`]) new changes pile up and go in the next
//! one, so the number of coordinator writes follows the coordinator's latency, not the
//! request rate. Changes nobody waits for (`Pending::urgent` false) wait up to
//! [`FLUSH_DELAY`] for company: under contention that halves the writes, and the
//! coordinator's CPU, without delaying any answer. Acknowledged entries are folded
//! into the records (one fold at a time, beside the journal writes) once
//! [`FOLD_AT`] of them are ready or the oldest is [`FOLD_AFTER`] old.
//!
//! A refused write (`Fenced`) ends the activity at once: the in-memory table may now
//! differ from the durable state, so nothing more is granted; every caller gets a
//! retryable 503 and the next activity restores from the coordinator.

use crate::active::{Active, Kind, Pending};
use crate::error::MutexError;
use crate::store::{Base, Batch};
use crate::table::Grant;
use crate::write::{apply, Stop, WriteError};
use futures::stream::{FuturesUnordered, StreamExt};
use mware_coord::{Coordinator, Fence, KvOp};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Coordinator writes in flight at once. Two measured best: fewer, bigger writes cost
/// etcd less CPU per change, and 4 or 6 were 10-15 % slower in the uncontended bench
/// with no better latency.
pub(crate) const PIPELINE: usize = 2;
/// Most changes answered by one write.
const MAX_CHANGES: usize = 1024;
/// Acknowledged journal entries that make a fold due.
const FOLD_AT: usize = 256;
/// Age of the oldest acknowledged entry that makes a fold due however few there are.
const FOLD_AFTER: Duration = Duration::from_secs(1);
/// Longest a change nobody waits for (a release, a grant already answered, a line
/// record far from the head of its line) waits for others to share its write.
const FLUSH_DELAY: Duration = Duration::from_millis(2);
/// Longest sleep of the sweeper; it also wakes for the next expiry.
const SWEEP_MAX: Duration = Duration::from_millis(20);

/// Where the journal stands when the writer starts.
pub(crate) struct Journal {
    base: Base,
    next_seq: u64,
    /// The counter value already durable.
    token_durable: u64,
}

impl Journal {
    /// After an activation folded everything: records as `base`, the next entry `next_seq`.
    pub fn new(base: Base, next_seq: u64, token_durable: u64) -> Self {
        Journal { base, next_seq, token_durable }
    }
}

/// A write in flight: journal entries answering `items`, or a fold.
struct Flight {
    entries: Vec<(u64, Batch)>,
    items: Vec<Pending>,
    fold: bool,
    result: Result<(), WriteError>,
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

/// Journal entries not folded yet: written and waiting for their acknowledgement, or
/// acknowledged and waiting to be folded. Every entry from `from` to the writer's
/// next seq is in one of the two.
struct Acked {
    /// Lowest entry not folded yet: everything below is in the records.
    from: u64,
    /// Entries written, not acknowledged yet.
    sent: BTreeSet<u64>,
    /// Entries acknowledged, with when.
    entries: BTreeMap<u64, (Batch, tokio::time::Instant)>,
}

impl Acked {
    /// How many entries from `from` on are acknowledged without a gap (up to the first
    /// one still unacknowledged, or `next_seq`), and when the oldest of them was.
    fn ready(&self, next_seq: u64) -> (usize, Option<tokio::time::Instant>) {
        let end = self.sent.first().copied().unwrap_or(next_seq);
        let n = end.saturating_sub(self.from) as usize;
        (n, self.entries.get(&self.from).map(|(_, at)| *at).filter(|_| n > 0))
    }

    /// Takes the ready entries, merged in order, and the range they cover.
    fn take(&mut self, n: usize) -> (Batch, u64, u64) {
        let (from, to) = (self.from, self.from + n as u64);
        let mut net = Batch::default();
        for seq in from..to {
            let (b, _) = self.entries.remove(&seq).expect("ready entry");
            net.merge(b);
        }
        self.from = to;
        (net, from, to)
    }
}

/// A write in flight, run inside the writer's task.
type InFlight = futures::future::BoxFuture<'static, Flight>;

/// The write of `batch` (the changes of `items`) as journal entries numbered from
/// `*next_seq` on (one, unless the batch is too big for one value).
fn journal_write(
    active: &Active,
    coord: &Arc<dyn Coordinator>,
    fence: Fence,
    batch: Batch,
    items: Vec<Pending>,
    next_seq: &mut u64,
) -> InFlight {
    let entries: Vec<(u64, Batch)> = batch
        .into_entries()
        .into_iter()
        .map(|b| {
            *next_seq += 1;
            (*next_seq - 1, b)
        })
        .collect();
    let chunks: Vec<Vec<KvOp>> = entries.iter().map(|(seq, b)| vec![b.journal_op(*seq)]).collect();
    active.metrics.writes.inc();
    active.metrics.batch_size.observe(items.len() as f64);
    let coord = coord.clone();
    let took = active.metrics.write_seconds.clone();
    Box::pin(async move {
        let t0 = std::time::Instant::now();
        let result = apply(&*coord, &fence, chunks).await;
        took.observe(t0.elapsed().as_secs_f64());
        Flight { entries, items, fold: false, result }
    })
}

/// What woke the writer up.
enum Wake {
    /// Closed, or a flush or fold came due: look again.
    Tick,
    /// A write in flight ended.
    Landed(Flight),
    /// A change arrived, or `None`: the change queue closed.
    Change(Option<Pending>),
}

/// The writer's state between two turns of its loop.
struct Writer {
    active: Arc<Active>,
    coord: Arc<dyn Coordinator>,
    fence: Fence,
    base: Base,
    next_seq: u64,
    token_durable: u64,
    acked: Acked,
    /// Entries below this are folded and deleted (for the journal gauge).
    fold_done: u64,
    folding: bool,
    /// Writes in flight run inside this task (no task hop per write).
    flights: FuturesUnordered<InFlight>,
    /// Changes taken from the queue, not yet written; `urgent` once one of them has
    /// somebody waiting on it, `flush_at` when the oldest of them must go anyway.
    gather: Vec<Pending>,
    urgent: bool,
    flush_at: Option<tokio::time::Instant>,
    stop: Option<Stop>,
}

/// Runs the writer until the channel closes or a write is refused.
///
/// Up to [`PIPELINE`] journal writes are in flight at once, and they may land in any
/// order: entries are replayed in `seq` order, so the last change to a record wins.
/// Answers go out as each entry is acknowledged: a release may land after the grant
/// that followed it, so a restore can see more holders than the limit, and then grants
/// nobody until they are gone (see [`crate::table`]).
pub(crate) async fn run(
    active: Arc<Active>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    coord: Arc<dyn Coordinator>,
    fence: Fence,
    journal: Journal,
) -> Stop {
    let mut w = Writer::new(active, coord, fence, journal);
    loop {
        let closing = w.active.closed.is_cancelled();
        let now = tokio::time::Instant::now();
        if w.write_gathered_if_due(closing, now) {
            continue;
        }
        w.active.metrics.journal_entries.set((w.next_seq - w.fold_done) as i64);
        let (ready, oldest) = w.acked.ready(w.next_seq);
        // No fold once closing: the next activity folds what is left, and the drain stays short.
        let fold_at = oldest.filter(|_| !w.folding && w.stop.is_none() && !closing).map(|t| t + FOLD_AFTER);
        if ready > 0 && fold_at.is_some_and(|t| ready >= FOLD_AT || t <= now) {
            w.start_fold(ready);
            continue;
        }
        if let Some(stop) = w.finished(&mut rx, closing) {
            return stop;
        }
        let wake = w.next_wake(fold_at.filter(|_| ready > 0));
        match w.wait(&mut rx, closing, now, wake).await {
            Wake::Tick => {}
            Wake::Landed(f) => w.landed(f),
            Wake::Change(p) => w.gather_changes(p, &mut rx),
        }
    }
}

impl Writer {
    fn new(active: Arc<Active>, coord: Arc<dyn Coordinator>, fence: Fence, journal: Journal) -> Self {
        let Journal { base, next_seq, token_durable } = journal;
        Writer {
            active,
            coord,
            fence,
            base,
            next_seq,
            token_durable,
            acked: Acked { from: next_seq, sent: BTreeSet::new(), entries: BTreeMap::new() },
            fold_done: next_seq,
            folding: false,
            flights: FuturesUnordered::new(),
            gather: vec![],
            urgent: false,
            flush_at: None,
            stop: None,
        }
    }

    /// Journal writes in flight (the fold, if any, is the other flight).
    fn journal_writes_in_flight(&self) -> usize {
        self.flights.len() - usize::from(self.folding)
    }

    /// Writes the gathered changes when they are due and the pipeline has room; true
    /// when it took them (written, or answered at once when nothing needs writing).
    fn write_gathered_if_due(&mut self, closing: bool, now: tokio::time::Instant) -> bool {
        if self.stop.is_some() || self.gather.is_empty() || self.journal_writes_in_flight() >= PIPELINE {
            return false;
        }
        let due = self.urgent || closing || self.gather.len() >= MAX_CHANGES || self.flush_at.is_some_and(|t| t <= now);
        if !due {
            return false;
        }
        let items = std::mem::take(&mut self.gather);
        (self.urgent, self.flush_at) = (false, None);
        let mut batch = Batch::default();
        for p in &items {
            batch.add(&p.fx.writes, p.fx.next_token);
        }
        if batch.key_count() == 0 && self.token_durable >= batch.next_token() {
            answer(&self.active, items);
            return true;
        }
        let first = self.next_seq;
        let flight = journal_write(&self.active, &self.coord, self.fence, batch, items, &mut self.next_seq);
        self.flights.push(flight);
        self.acked.sent.extend(first..self.next_seq);
        true
    }

    /// Folds the `ready` acknowledged entries into the records, beside the journal writes.
    fn start_fold(&mut self, ready: usize) {
        let (net, from, to) = self.acked.take(ready);
        let chunks = self.base.fold(net, from, to);
        self.folding = true;
        self.active.metrics.folds.inc();
        let coord = self.coord.clone();
        let fence = self.fence;
        self.flights.push(Box::pin(async move {
            let result = apply(&*coord, &fence, chunks).await;
            Flight { entries: vec![], items: vec![], fold: true, result }
        }));
    }

    /// The writer's end, if it has come: stopped with nothing in flight (everything
    /// still queued fails), or closed with everything written.
    fn finished(&mut self, rx: &mut mpsc::UnboundedReceiver<Pending>, closing: bool) -> Option<Stop> {
        if let Some(s) = &self.stop {
            if self.flights.is_empty() {
                let reason = stop_reason(s);
                fail(std::mem::take(&mut self.gather), &reason);
                rx.close();
                while let Ok(p) = rx.try_recv() {
                    fail(vec![p], &reason);
                }
                return self.stop.take();
            }
        }
        // Closed while stopping: write what is queued (releases, line records), then end.
        // Entries not folded yet are replayed by the next activity.
        if closing && self.stop.is_none() && self.gather.is_empty() && self.flights.is_empty() && rx.is_empty() {
            return Some(Stop::Drained);
        }
        None
    }

    /// When to look again without news: the gathered changes' flush (if the pipeline
    /// has room for them) or the due fold, whichever comes first.
    fn next_wake(&self, fold_at: Option<tokio::time::Instant>) -> Option<tokio::time::Instant> {
        let flush = self.flush_at.filter(|_| self.journal_writes_in_flight() < PIPELINE);
        match (flush, fold_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Waits for news: closing, `wake`, a write landing, or a change (while there is
    /// room for more).
    async fn wait(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Pending>,
        closing: bool,
        now: tokio::time::Instant,
        wake: Option<tokio::time::Instant>,
    ) -> Wake {
        let take = self.stop.is_none() && self.gather.len() < MAX_CHANGES;
        tokio::select! {
            _ = self.active.closed.cancelled(), if !closing => Wake::Tick,
            _ = tokio::time::sleep_until(wake.unwrap_or(now)), if wake.is_some() => Wake::Tick,
            Some(f) = self.flights.next(), if !self.flights.is_empty() => Wake::Landed(f),
            p = rx.recv(), if take => Wake::Change(p),
        }
    }

    /// A write landed: acknowledged entries wait for their fold and their changes are
    /// answered; a failed write stops the writer and fails its changes.
    fn landed(&mut self, f: Flight) {
        if f.fold {
            self.folding = false;
            if f.result.is_ok() {
                self.fold_done = self.acked.from;
            }
        }
        match f.result {
            Ok(()) => {
                let at = tokio::time::Instant::now();
                for (seq, b) in f.entries {
                    self.token_durable = self.token_durable.max(b.next_token());
                    self.acked.sent.remove(&seq);
                    self.acked.entries.insert(seq, (b, at));
                }
                answer(&self.active, f.items);
            }
            Err(e) => {
                let s = Stop::from(e);
                let reason = stop_reason(&s);
                self.active.close(&reason);
                fail(f.items, &reason);
                self.stop.get_or_insert(s);
            }
        }
    }

    /// Gathers `first` and whatever else is queued (up to [`MAX_CHANGES`]); `None`
    /// (the queue closed) stops the writer.
    fn gather_changes(&mut self, first: Option<Pending>, rx: &mut mpsc::UnboundedReceiver<Pending>) {
        let Some(first) = first else {
            self.stop = Some(Stop::Failed("the change queue closed".into()));
            return;
        };
        self.gather.push(first);
        while self.gather.len() < MAX_CHANGES {
            match rx.try_recv() {
                Ok(p) => self.gather.push(p),
                Err(_) => break,
            }
        }
        self.urgent = self.urgent || self.gather.iter().any(|p| p.urgent);
        self.flush_at.get_or_insert_with(|| tokio::time::Instant::now() + FLUSH_DELAY);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unbroken_run_of_acknowledged_entries_is_ready() {
        let now = tokio::time::Instant::now();
        let mut a = Acked { from: 5, sent: BTreeSet::from([5, 7]), entries: BTreeMap::new() };
        a.entries.insert(6, (Batch::default(), now));
        assert_eq!(a.ready(8), (0, None), "5 is still in flight");
        a.sent.remove(&5);
        a.entries.insert(5, (Batch::default(), now));
        assert_eq!(a.ready(8), (2, Some(now)), "5 and 6; 7 is in flight");
        let (_, from, to) = a.take(2);
        assert_eq!((from, to, a.from), (5, 7, 7));
        assert_eq!(a.ready(8), (0, None));
        a.sent.remove(&7);
        a.entries.insert(7, (Batch::default(), now));
        assert_eq!(a.ready(8), (1, Some(now)));
    }
}
