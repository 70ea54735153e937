//! The durable outbox and the one writer of an activity.
//!
//! Alarms are written to the group's KV (fenced) before any channel sees them, in
//! chunks: `alarms/a/<key of the first>` holds up to [`CHUNK`](crate::queue::CHUNK)
//! alarms or about 96 KiB of JSON, and one write carries up to eight chunks (one KV
//! transaction per burst instead of one per alarm, below etcd's request size; see
//! [`crate::queue`]). `alarms/k/<key>` records an acknowledgement or a recovery,
//! `alarms/c/<channel>` each channel's cursor (the last alarm it sent),
//! `alarms/s/<item>` the last state seen of a monitoring item. A channel resumes from
//! its cursor after a failover, so an alarm may be sent twice, always with the same id,
//! and never skipped. Chunks every channel has passed are deleted once more than
//! `history` alarms are kept, unless one of their alarms is an open state change (a
//! monitoring item still failing); open syslog and API alarms older than that go with
//! their chunk.

use crate::alarm::{key_for_id, Ack, Alarm, ALARMS, CURSORS, ITEMS};
use crate::metrics::Metrics;
use crate::queue::{Queue, MAX_ACKS, MAX_EXTRA, PER_WRITE};
use mware_coord::{CoordError, Coordinator, Fence, KvOp};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

/// Acknowledgements and recoveries.
pub const MARKS: &str = "alarms/k/";

/// An alarm in memory: its position in the activity's order and the alarm.
#[derive(Clone)]
struct Entry {
    pos: u64,
    chunk: String,
    alarm: Arc<Alarm>,
}

/// What a channel has sent.
#[derive(Clone, Default)]
struct Cursor {
    key: Option<String>,
    pos: u64,
    dirty: bool,
}

/// The alarms of the group as this activity knows them, shared by the writer, the
/// channels and the API.
#[derive(Default)]
pub struct Log {
    entries: BTreeMap<String, Entry>,
    chunks: BTreeMap<String, usize>,
    cursors: HashMap<String, Cursor>,
    /// Last state of each monitoring item.
    pub items: HashMap<String, String>,
    next_pos: u64,
    /// How many of `entries` are open (kept as they change: counting them would walk the
    /// whole log under the lock the writer needs).
    open: usize,
}

impl Log {
    /// Alarms after the channel's cursor, at most `n`.
    pub fn after(&self, channel: &str, n: usize) -> Vec<Arc<Alarm>> {
        let from = self.cursors.get(channel).and_then(|c| c.key.clone());
        let it: Box<dyn Iterator<Item = (&String, &Entry)>> = match from {
            Some(k) => Box::new(self.entries.range((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))),
            None => Box::new(self.entries.iter()),
        };
        it.take(n).map(|(_, e)| e.alarm.clone()).collect()
    }
    /// Marks everything up to `key` as sent on `channel`.
    pub fn advance(&mut self, channel: &str, key: &str) {
        let pos = self.entries.get(key).map(|e| e.pos + 1);
        let c = self.cursors.entry(channel.to_string()).or_default();
        c.key = Some(key.to_string());
        if let Some(p) = pos {
            c.pos = p;
        }
        c.dirty = true;
    }
    /// Alarms waiting for `channel`.
    pub fn backlog(&self, channel: &str) -> usize {
        self.next_pos.saturating_sub(self.cursors.get(channel).map(|c| c.pos).unwrap_or(0)) as usize
    }
    /// The largest backlog over the channels.
    fn worst_backlog(&self) -> usize {
        self.cursors.keys().map(|c| self.backlog(c)).max().unwrap_or(0)
    }
    /// How many alarms are open.
    pub fn open_count(&self) -> usize {
        self.open
    }
    /// The page of open alarms (oldest first) after the alarm keyed `after`, with the
    /// number of open alarms and the next page's cursor (an alarm id). Walks the log from
    /// the cursor, not from its start.
    pub fn open_page(&self, after: Option<&str>, limit: usize) -> mware_host::Page<Arc<Alarm>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let from = after.map_or(Unbounded, |k| Excluded(k.to_string()));
        let mut it = self.entries.range((from, Unbounded)).filter(|(_, e)| e.alarm.open).map(|(_, e)| e.alarm.clone());
        let items: Vec<_> = it.by_ref().take(limit).collect();
        let next = if it.next().is_some() { items.last().map(|a| a.id.clone()) } else { None };
        mware_host::Page { items, total: self.open, next }
    }
    /// The newest `n` open alarms, newest first.
    pub fn open_newest(&self, n: usize) -> Vec<Arc<Alarm>> {
        self.entries.values().rev().filter(|e| e.alarm.open).take(n).map(|e| e.alarm.clone()).collect()
    }
    /// The newest `n` alarms, newest first.
    pub fn recent(&self, n: usize) -> Vec<Arc<Alarm>> {
        self.entries.values().rev().take(n).map(|e| e.alarm.clone()).collect()
    }
    /// One alarm.
    pub fn get(&self, id: &str) -> Option<Arc<Alarm>> {
        self.entries.get(&key_for_id(id)?).map(|e| e.alarm.clone())
    }
    /// Each channel with its cursor's alarm id and backlog.
    pub fn channels(&self) -> Vec<(String, Option<String>, usize)> {
        let mut v: Vec<_> =
            self.cursors.iter().map(|(c, k)| (c.clone(), k.key.as_deref().and_then(crate::alarm::id_of), self.backlog(c))).collect();
        v.sort();
        v
    }
    fn insert(&mut self, chunk: &str, a: Arc<Alarm>) {
        self.open += usize::from(a.open);
        if let Some(old) = self.entries.insert(a.key(), Entry { pos: self.next_pos, chunk: chunk.to_string(), alarm: a }) {
            self.open -= usize::from(old.alarm.open);
        }
        *self.chunks.entry(chunk.to_string()).or_default() += 1;
        self.next_pos += 1;
    }
    /// Replaces the alarm of an entry (acknowledged or recovered), keeping the count.
    fn replace(&mut self, a: Alarm) {
        if let Some(e) = self.entries.get_mut(&a.key()) {
            self.open = self.open + usize::from(a.open) - usize::from(e.alarm.open);
            e.alarm = Arc::new(a);
        }
    }
    /// Removes an entry, keeping the count.
    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.open -= usize::from(e.alarm.open);
        }
    }
}

/// The activity's shared state.
pub struct Shared {
    /// The log.
    pub log: Mutex<Log>,
    /// Rung when alarms were written.
    pub written: Notify,
}

/// Sent to the writer.
pub enum Cmd {
    /// Write these alarms; answer when they are durable (`false`: refused, the outbox
    /// is full).
    Raise(Vec<Alarm>, Option<oneshot::Sender<bool>>),
    /// Acknowledge an alarm; answers the updated alarm, or `None` if unknown.
    Ack {
        /// The alarm's id.
        id: String,
        /// Who: `api` or `telegram:<chat>`.
        by: String,
        /// The answer.
        reply: oneshot::Sender<Option<Alarm>>,
    },
}

/// Loads the log from the group's KV: the chunks, the marks, the cursors (a channel
/// without one starts after the newest alarm) and the items' states.
pub async fn load(coord: &dyn Coordinator, group: u32, channels: &[String]) -> Result<Log, CoordError> {
    let mut log = Log::default();
    for (k, v) in coord.kv_list(group, ALARMS).await? {
        let chunk = k.trim_start_matches(ALARMS).to_string();
        match serde_json::from_slice::<Vec<Alarm>>(&v.value) {
            Ok(list) => list.into_iter().for_each(|a| log.insert(&chunk, Arc::new(a))),
            Err(e) => tracing::warn!(key = %k, error = %e, "alarms: an unreadable chunk is skipped"),
        }
    }
    for (k, v) in coord.kv_list(group, MARKS).await? {
        let key = k.trim_start_matches(MARKS);
        if let (Some(e), Ok(ack)) = (log.entries.get(key), serde_json::from_slice::<Option<Ack>>(&v.value)) {
            let mut a = (*e.alarm).clone();
            a.open = false;
            a.acked = ack;
            log.replace(a);
        }
    }
    let stored: HashMap<String, String> = coord
        .kv_list(group, CURSORS)
        .await?
        .into_iter()
        .map(|(k, v)| (k.trim_start_matches(CURSORS).to_string(), String::from_utf8_lossy(&v.value).into_owned()))
        .collect();
    let newest = log.entries.keys().next_back().cloned();
    for ch in channels {
        match stored.get(ch) {
            Some(k) => {
                log.advance(ch, k);
                if let Some(c) = log.cursors.get_mut(ch) {
                    c.pos = log.entries.range(..=k.clone()).count() as u64;
                    c.dirty = false;
                }
            }
            None => {
                if let Some(k) = &newest {
                    log.advance(ch, k);
                }
                log.cursors.entry(ch.clone()).or_default();
            }
        }
    }
    for (k, v) in coord.kv_list(group, ITEMS).await? {
        log.items.insert(k.trim_start_matches(ITEMS).to_string(), String::from_utf8_lossy(&v.value).into_owned());
    }
    Ok(log)
}

/// What the writer was built with.
pub struct Writer {
    /// The coordinator.
    pub coord: Arc<dyn Coordinator>,
    /// This activity's fence.
    pub fence: Fence,
    /// The shared log.
    pub shared: Arc<Shared>,
    /// Alarms kept once sent.
    pub history: usize,
    /// Most alarms waiting.
    pub max_outbox: usize,
    /// Metrics.
    pub metrics: Metrics,
}

/// One write of the [`Writer`]: its ops, and what changes in the log once it is durable.
#[derive(Default)]
struct PlannedWrite {
    ops: Vec<KvOp>,
    /// Acknowledged alarms, with who waits for them.
    acks: Vec<(Alarm, oneshot::Sender<Option<Alarm>>)>,
    /// Open alarms an `ok` of their item closes.
    closes: Vec<Alarm>,
    /// The alarms written, and the chunks they go in (first key, how many).
    alarms: Vec<Arc<Alarm>>,
    placed: Vec<(String, usize)>,
    /// Dirty cursors written (channel, key).
    cursors: Vec<(String, String)>,
    /// Chunks deleted.
    trim: Vec<String>,
}

impl PlannedWrite {
    /// The item states the alarms set, and the open alarms (at most 16) an `ok` closes.
    fn item_states(&mut self, log: &Log) {
        for a in &self.alarms {
            if let (Some(item), Some(state)) = (&a.item, &a.state) {
                self.ops.push(KvOp::Put { key: format!("{ITEMS}{item}"), value: state.clone().into_bytes() });
                if state == "ok" {
                    let open = log.entries.values().filter(|e| e.alarm.open && e.alarm.item.as_ref() == Some(item));
                    for e in open.take(16usize.saturating_sub(self.closes.len())) {
                        self.closes.push((*e.alarm).clone());
                    }
                }
            }
        }
    }
}

/// Takes queued acknowledgements (up to [`MAX_EXTRA`] in all with `extra`): those of an
/// alarm not acknowledged yet are returned; the others are answered at once.
fn take_acks(log: &Log, q: &mut Queue, extra: &mut usize) -> Vec<(Alarm, oneshot::Sender<Option<Alarm>>)> {
    let mut acks = Vec::new();
    while *extra < MAX_EXTRA {
        let Some((id, by, reply)) = q.acks.pop_front() else { break };
        match log.get(&id) {
            Some(a) if a.acked.is_none() => {
                let mut a = (*a).clone();
                a.open = false;
                a.acked = Some(Ack { by, at_ms: mware_coord::now_ms() });
                *extra += 1;
                acks.push((a, reply));
            }
            other => {
                let _ = reply.send(other.map(|a| (*a).clone()));
            }
        }
    }
    acks
}

impl Writer {
    /// Runs until the channel closes or `cancel`; `Err` when the store refused a write
    /// (this instance is no longer active).
    pub async fn run(self, mut rx: mpsc::Receiver<Cmd>, cancel: CancellationToken) -> Result<(), CoordError> {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut q = Queue::default();
        loop {
            if q.alarms.is_empty() && q.acks.is_empty() {
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    c = rx.recv() => match c { Some(c) => self.take(&mut q, c), None => return Ok(()) },
                    _ = tick.tick() => {}
                }
            }
            while q.alarms.len() < PER_WRITE && q.acks.len() < MAX_ACKS {
                match rx.try_recv() {
                    Ok(c) => self.take(&mut q, c),
                    Err(_) => break,
                }
            }
            self.write(&mut q, &cancel).await?;
        }
    }

    fn take(&self, q: &mut Queue, c: Cmd) {
        match c {
            Cmd::Raise(v, reply) => {
                let waiting = self.shared.log.lock().unwrap_or_else(|e| e.into_inner()).worst_backlog() + q.alarms.len();
                if waiting + v.len() > self.max_outbox {
                    self.metrics.dropped_n("outbox_full", v.len() as u64);
                    tracing::warn!(alarms = v.len(), max = self.max_outbox, "alarms: outbox full; alarms dropped");
                    if let Some(r) = reply {
                        let _ = r.send(false);
                    }
                    return;
                }
                q.enqueued += v.len() as u64;
                q.alarms.extend(v.into_iter().map(Arc::new));
                if let Some(r) = reply {
                    q.replies.push_back((q.enqueued, r));
                }
            }
            Cmd::Ack { id, by, reply } => q.acks.push_back((id, by, reply)),
        }
    }

    async fn write(&self, q: &mut Queue, cancel: &CancellationToken) -> Result<(), CoordError> {
        let mut w = self.plan_write(q);
        if w.ops.is_empty() {
            return Ok(());
        }
        let ops = std::mem::take(&mut w.ops);
        if !mware_coord::kv_apply_retrying(self.coord.as_ref(), &self.fence, ops, cancel, "alarms").await? {
            return Ok(());
        }
        let n = w.alarms.len() as u64;
        let acks = self.apply_written(w);
        for (a, r) in acks {
            let _ = r.send(Some(a));
        }
        q.written += n;
        while q.replies.front().is_some_and(|(upto, _)| *upto <= q.written) {
            if let Some((_, r)) = q.replies.pop_front() {
                let _ = r.send(true);
            }
        }
        if n > 0 {
            self.shared.written.notify_waiters();
        }
        Ok(())
    }

    /// The next write: acknowledgements, alarms (in chunks) with the item states they
    /// set and the open alarms an `ok` closes, dirty cursors, and chunks to trim.
    fn plan_write(&self, q: &mut Queue) -> PlannedWrite {
        let log = self.shared.log.lock().unwrap_or_else(|e| e.into_inner());
        let mut w = PlannedWrite::default();
        let mut extra = 0;
        w.acks = take_acks(&log, q, &mut extra);
        let (chunks, alarms) = crate::queue::take_chunks(q, &mut extra);
        w.alarms = alarms;
        w.item_states(&log);
        for a in &w.acks {
            w.ops.push(KvOp::Put { key: format!("{MARKS}{}", a.0.key()), value: serde_json::to_vec(&a.0.acked).unwrap_or_default() });
        }
        for a in &w.closes {
            w.ops.push(KvOp::Put { key: format!("{MARKS}{}", a.key()), value: b"null".to_vec() });
        }
        for c in chunks {
            w.ops.push(KvOp::Put { key: format!("{ALARMS}{}", c.first), value: c.json });
            w.placed.push((c.first, c.n));
        }
        w.cursors = log.cursors.iter().filter(|(_, c)| c.dirty).filter_map(|(n, c)| Some((n.clone(), c.key.clone()?))).collect();
        for (n, k) in &w.cursors {
            w.ops.push(KvOp::Put { key: format!("{CURSORS}{n}"), value: k.clone().into_bytes() });
        }
        w.trim = self.trimmable(&log);
        for chunk in &w.trim {
            w.ops.push(KvOp::Delete { key: format!("{ALARMS}{chunk}") });
        }
        w
    }

    /// Brings the log in line with a durable write; the acknowledgements to answer.
    fn apply_written(&self, w: PlannedWrite) -> Vec<(Alarm, oneshot::Sender<Option<Alarm>>)> {
        let mut log = self.shared.log.lock().unwrap_or_else(|e| e.into_inner());
        for (name, key) in &w.cursors {
            if let Some(c) = log.cursors.get_mut(name) {
                c.dirty = c.key.as_deref() != Some(key);
            }
        }
        for a in w.closes.into_iter().chain(w.acks.iter().map(|a| a.0.clone())) {
            log.replace(Alarm { open: false, ..a });
        }
        let mut alarms = w.alarms.into_iter();
        for (first, n) in &w.placed {
            for a in alarms.by_ref().take(*n) {
                if let (Some(item), Some(state)) = (&a.item, &a.state) {
                    log.items.insert(item.clone(), state.clone());
                }
                log.insert(first, a);
            }
        }
        for chunk in w.trim {
            log.chunks.remove(&chunk);
            // A chunk's alarms are contiguous from its first key.
            let keys: Vec<String> =
                log.entries.range(chunk.clone()..).take_while(|(_, e)| e.chunk == chunk).map(|(k, _)| k.clone()).collect();
            for k in keys {
                log.remove(&k);
            }
        }
        w.acks
    }

    /// Chunks every channel has passed, oldest first, while more than `history` alarms
    /// are kept, none of whose alarms is an open state change; at most 24 per write.
    fn trimmable(&self, log: &Log) -> Vec<String> {
        let slowest = log.cursors.values().map(|c| c.key.clone()).min().flatten();
        let mut kept = log.entries.len();
        let mut out = Vec::new();
        for (chunk, n) in &log.chunks {
            if kept <= self.history || out.len() >= 24 {
                break;
            }
            let last = log.entries.range(chunk.clone()..).take_while(|(_, e)| &e.chunk == chunk).last();
            let Some((last_key, _)) = last else { continue };
            let passed = log.cursors.is_empty() || slowest.as_ref().is_some_and(|s| s >= last_key);
            if !passed {
                break;
            }
            // An open state change is kept (there are as many as items at most); open
            // syslog and API alarms past the history go, or a flood would grow it forever.
            if log.entries.range(chunk.clone()..=last_key.clone()).any(|(_, e)| e.alarm.open && e.alarm.item.is_some()) {
                continue;
            }
            kept -= n;
            out.push(chunk.clone());
        }
        out
    }
}
