//! What runs while the service is active: the jobs it serves ([`Active`]), and its three
//! loops: the outbox (hands stored jobs to the transport, then marks them published),
//! the recorder (applies reports and dead letters to the store in batches, acks them
//! after the commit, wakes waiting callers) and the sweeper (ends `expired` the jobs
//! past their deadline).

use crate::error::DevicesError;
use crate::metrics::{reason_label, Metrics, StateLabel};
use crate::section::DeviceManager;
use crate::store::{Change, JobRow, NewJob, Store};
use crate::targets::Policy;
use crate::transport::{Ack, Incoming, Transport};
use backon::{BackoffBuilder, ExponentialBuilder};
use mware_jobs::{now_ms, JobState, Report};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

/// Jobs inserted in one transaction at most (group commit of concurrent submissions).
const INSERT_BATCH: usize = 2000;
/// Jobs handed to the transport at once.
const OUTBOX_BATCH: u32 = 500;
/// Reports applied in one transaction at most.
const RECORD_BATCH: usize = 1024;
/// How long past a job's deadline a late result is still awaited before it is expired.
pub const EXPIRY_GRACE_MS: u64 = 1000;
/// How often ended jobs past `keep_hours` are deleted, and how many at most each time.
const PURGE_EVERY: Duration = Duration::from_secs(60);
const PURGE_BATCH: u32 = 20_000;
/// How often the sweeper looks.
const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// Pauses between tries of a publish or a store write that failed: from 100 ms doubling to
/// 2.5 s, each lengthened by a random share of itself: at most [`STORE_RETRY_MAX`].
const STORE_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(100))
    .with_max_delay(Duration::from_millis(2500))
    .with_jitter()
    .without_max_times();
/// The longest pause between tries of a publish or a store write.
const STORE_RETRY_MAX: Duration = Duration::from_secs(5);

/// The service while it is active here.
pub struct Active {
    /// The store.
    pub store: Arc<Store>,
    /// This activity's epoch (every write is fenced with it).
    pub epoch: u64,
    /// The group's settings.
    pub cfg: DeviceManager,
    /// The target rules of its jobs.
    pub policy: Policy,
    /// Where jobs go.
    pub transport: Transport,
    /// Wakes the outbox.
    pub kick: Notify,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<Option<Change>>>>>,
    /// Satellite (`""`: the pool) → poller → last heartbeat (ms since the Unix epoch).
    pub pollers: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    /// Metrics.
    pub metrics: Metrics,
    inserts: mpsc::Sender<Pending>,
}

/// Jobs of one call waiting for the inserter, and where their ids go.
pub type Pending = (Vec<NewJob>, oneshot::Sender<Result<Vec<String>, DevicesError>>);

impl Active {
    /// A new activity, and the receiving end of its submissions (for [`inserter`]).
    pub fn new(
        store: Arc<Store>,
        epoch: u64,
        cfg: DeviceManager,
        policy: Policy,
        transport: Transport,
        metrics: Metrics,
    ) -> (Active, mpsc::Receiver<Pending>) {
        let (inserts, rx) = mpsc::channel(4096);
        let a = Active {
            store,
            epoch,
            cfg,
            policy,
            transport,
            kick: Notify::new(),
            waiters: Mutex::new(HashMap::new()),
            pollers: Mutex::new(BTreeMap::new()),
            metrics,
            inserts,
        };
        (a, rx)
    }

    /// Stores jobs (durably, through the [`inserter`]); returns their ids.
    pub async fn submit(&self, jobs: Vec<NewJob>) -> Result<Vec<String>, DevicesError> {
        let mine: Vec<(String, Option<&'static str>)> =
            jobs.iter().map(|j| (j.id.clone(), mware_jobs::find_kind(&j.kind).map(|k| k.name()))).collect();
        let (tx, rx) = oneshot::channel();
        let stopping = || DevicesError::Unavailable("devicemanager is stopping on this instance".into());
        self.inserts.send((jobs, tx)).await.map_err(|_| stopping())?;
        let ids = rx.await.map_err(|_| stopping())??;
        // A job whose idempotency key was stored before answers the earlier id: not counted.
        for ((id, kind), got) in mine.iter().zip(&ids) {
            if let (true, Some(k)) = (id == got, kind) {
                self.metrics.accepted.get_or_create(&crate::metrics::KindLabel { kind: k }).inc();
            }
        }
        Ok(ids)
    }

    /// The job, once it has ended or `wait` has passed.
    pub async fn wait(&self, id: &str, wait: Duration) -> Result<Option<JobRow>, DevicesError> {
        let rx = (!wait.is_zero()).then(|| {
            let (tx, rx) = oneshot::channel();
            self.waiters.lock().unwrap_or_else(|e| e.into_inner()).entry(id.to_string()).or_default().push(tx);
            rx
        });
        let row = self.store.get(id).await?;
        match (row, rx) {
            (Some(mut r), Some(rx)) if !r.state.is_final() => {
                let woken = tokio::time::timeout(wait, rx).await;
                self.forget_closed(id);
                match woken {
                    // The recorder committed this end: the row is the one read plus it.
                    Ok(Ok(Some(Change::Finished { state, result, error, attempt, poller, at_ms, .. }))) => {
                        r.state = state;
                        r.result = result;
                        r.error = error;
                        r.attempts = r.attempts.max(attempt);
                        r.poller = Some(poller);
                        r.finished_ms = Some(at_ms);
                        r.published = true;
                        Ok(Some(r))
                    }
                    _ => self.store.get(id).await,
                }
            }
            (row, _) => {
                self.forget_closed(id);
                Ok(row)
            }
        }
    }

    fn forget_closed(&self, id: &str) {
        let mut w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = w.get_mut(id) {
            list.retain(|t| !t.is_closed());
            if list.is_empty() {
                w.remove(id);
            }
        }
    }

    /// Wakes the callers waiting for `id` with its end when known (`None`: read it again).
    fn ended(&self, id: &str, state: JobState, end: Option<&Change>) {
        self.metrics.finished.get_or_create(&StateLabel { state: state.as_str() }).inc();
        if let Some(list) = self.waiters.lock().unwrap_or_else(|e| e.into_inner()).remove(id) {
            for t in list {
                let _ = t.send(end.cloned());
            }
        }
    }
}

/// The inserter: stores the jobs of every call waiting at that moment in one
/// transaction (one fsync for all of them), answers each call with its ids once committed,
/// and wakes the outbox.
pub async fn inserter(a: Arc<Active>, mut rx: mpsc::Receiver<Pending>, cancel: CancellationToken) -> Result<(), DevicesError> {
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            p = rx.recv() => match p { Some(p) => p, None => return Ok(()) },
        };
        let mut n = first.0.len();
        let mut batch = vec![first];
        while n < INSERT_BATCH {
            match rx.try_recv() {
                Ok(p) => {
                    n += p.0.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let mut jobs = Vec::with_capacity(n);
        let mut answers = Vec::with_capacity(batch.len());
        for (j, tx) in batch {
            answers.push((j.len(), tx));
            jobs.extend(j);
        }
        match a.store.insert(a.epoch, jobs).await {
            Ok(ids) => {
                let mut rest = ids.into_iter();
                for (len, tx) in answers {
                    let _ = tx.send(Ok(rest.by_ref().take(len).collect()));
                }
                a.kick.notify_one();
            }
            Err(e) => {
                for (_, tx) in answers {
                    let _ = tx.send(Err(e.clone()));
                }
                if matches!(e, DevicesError::Fenced { .. }) {
                    return Err(e);
                }
            }
        }
    }
}

/// The outbox: stored jobs not yet published are handed to the transport, oldest first,
/// and marked published once confirmed. Ends only with the activity or on a fence.
pub async fn outbox(a: Arc<Active>, cancel: CancellationToken) -> Result<(), DevicesError> {
    let mut pauses = STORE_RETRY.build();
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        let rows = match a.store.unpublished(OUTBOX_BATCH).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "devicemanager: cannot read the outbox");
                sleep_or(&cancel, Duration::from_secs(1)).await;
                continue;
            }
        };
        if rows.is_empty() {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = a.kick.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        if !a.transport.connected() {
            sleep_or(&cancel, Duration::from_millis(200)).await;
            continue;
        }
        match a.transport.publish(&rows, &a.policy).await {
            Ok(()) => {
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let n = ids.len() as u64;
                match a.store.mark_published(a.epoch, ids).await {
                    Ok(()) => {
                        a.metrics.published.inc_by(n);
                    }
                    Err(e @ DevicesError::Fenced { .. }) => return Err(e),
                    // Published but not marked: they are published again (and recorded once).
                    Err(e) => {
                        tracing::warn!(error = %e, "devicemanager: published jobs not marked so");
                    }
                }
                pauses = STORE_RETRY.build();
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = rows.len(), "devicemanager: cannot publish; trying again");
                sleep_or(&cancel, pauses.next().unwrap_or(STORE_RETRY_MAX)).await;
            }
        }
    }
}

async fn sleep_or(cancel: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// The change an incoming report asks for (heartbeats change no job).
fn change(a: &Active, inc: &Incoming) -> Option<Change> {
    match inc {
        Incoming::Report(Report::Started { id, poller, attempt, at_ms }) => {
            Some(Change::Started { id: id.clone(), attempt: *attempt, poller: poller.clone(), at_ms: *at_ms })
        }
        Incoming::Report(Report::Result { id, poller, attempt, state, result, error, at_ms }) => {
            let state = if state.is_final() { *state } else { JobState::Failed };
            Some(Change::Finished {
                id: id.clone(),
                state,
                result: result.clone(),
                error: error.clone(),
                attempt: *attempt,
                poller: poller.clone(),
                at_ms: *at_ms,
            })
        }
        Incoming::Report(Report::Heartbeat { poller, satellite, at_ms }) => {
            let mut p = a.pollers.lock().unwrap_or_else(|e| e.into_inner());
            let sat = satellite.clone().unwrap_or_default();
            // Bounded: only configured satellites (and the pool) are kept, 256 pollers each.
            if sat.is_empty() || a.cfg.satellites.contains(&sat) {
                let m = p.entry(sat).or_default();
                if m.len() < 256 || m.contains_key(poller) {
                    m.insert(poller.clone(), *at_ms);
                }
            }
            None
        }
        Incoming::Ignored => None,
        Incoming::Dead { id, reason, attempts } => {
            a.metrics.dead.get_or_create(&crate::metrics::ReasonLabel { reason: reason_label(reason) }).inc();
            let (state, error) = match reason.as_str() {
                "expired" => (JobState::Expired, "its deadline passed while it waited in the queue: no poller took it".to_string()),
                "delivery_limit" => (
                    JobState::Failed,
                    format!(
                        "given up after {} deliveries (devicemanager.max_deliveries): each poller that took it died or gave it back",
                        a.cfg.max_deliveries
                    ),
                ),
                other => (JobState::Failed, format!("dead-lettered by the broker ({other})")),
            };
            Some(Change::Finished {
                id: id.clone(),
                state,
                result: serde_json::Value::Null,
                error: Some(error),
                attempt: *attempts,
                poller: "broker".into(),
                at_ms: now_ms(),
            })
        }
    }
}

/// The recorder: applies what comes back in batches (one transaction each), acks after
/// the commit, wakes waiters. A store error keeps the batch and tries again.
pub async fn recorder(a: Arc<Active>, mut rx: mpsc::Receiver<(Incoming, Ack)>, cancel: CancellationToken) -> Result<(), DevicesError> {
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            m = rx.recv() => match m { Some(m) => m, None => return Ok(()) },
        };
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        a.metrics.reports.inc_by(batch.len() as u64);
        let changes: Vec<Change> = batch.iter().filter_map(|(inc, _)| change(&a, inc)).collect();
        let mut pauses = STORE_RETRY.build();
        let applied = loop {
            if changes.is_empty() {
                break vec![];
            }
            match a.store.apply(a.epoch, changes.clone()).await {
                Ok(v) => break v,
                Err(e @ DevicesError::Fenced { .. }) => {
                    for (_, ack) in batch {
                        ack.nack().await;
                    }
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(error = %e, reports = changes.len(), "devicemanager: cannot record reports; trying again");
                    if cancel.is_cancelled() {
                        return Ok(());
                    }
                    sleep_or(&cancel, pauses.next().unwrap_or(STORE_RETRY_MAX)).await;
                }
            }
        };
        for (ch, changed) in changes.iter().zip(applied) {
            if let Change::Finished { id, state, .. } = ch {
                if changed {
                    a.ended(id, *state, Some(ch));
                } else {
                    a.metrics.duplicates.inc();
                }
            }
        }
        // The last delivery of each channel acks every earlier one of that channel.
        let mut last: [Option<Ack>; 2] = [None, None];
        for (_, ack) in batch {
            if let Ack::Amqp(ch, _) = &ack {
                let i = usize::from(*ch).min(1);
                last[i] = Some(ack);
            }
        }
        for ack in last.into_iter().flatten() {
            ack.ack_through().await;
        }
    }
}

/// The sweeper: every half second, ends `expired` the open jobs whose deadline passed
/// (with [`EXPIRY_GRACE_MS`] for a result on its way); every minute, deletes the jobs
/// that ended more than `keep_hours` ago (a batch at a time).
pub async fn sweeper(a: Arc<Active>, cancel: CancellationToken) -> Result<(), DevicesError> {
    let mut last_purge = std::time::Instant::now();
    loop {
        sleep_or(&cancel, SWEEP_EVERY).await;
        if cancel.is_cancelled() {
            return Ok(());
        }
        match a.store.expire_due(a.epoch, now_ms(), EXPIRY_GRACE_MS).await {
            Ok(ids) => {
                for (id, _) in ids {
                    a.ended(&id, JobState::Expired, None);
                }
            }
            Err(e @ DevicesError::Fenced { .. }) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "devicemanager: cannot expire overdue jobs"),
        }
        if last_purge.elapsed() >= PURGE_EVERY {
            last_purge = std::time::Instant::now();
            let before = now_ms().saturating_sub(a.cfg.keep_hours.saturating_mul(3_600_000));
            match a.store.purge(a.epoch, before, PURGE_BATCH).await {
                Ok(n) => {
                    a.metrics.purged.inc_by(n);
                }
                Err(e @ DevicesError::Fenced { .. }) => return Err(e),
                Err(e) => tracing::warn!(error = %e, "devicemanager: cannot delete old jobs"),
            }
        }
    }
}
