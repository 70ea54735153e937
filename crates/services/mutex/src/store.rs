//! How the lock table is kept in the coordinator's group KV space.
//!
//! **Records** (what the table's [`Write`]s name):
//! - `mutex/counter`: `{"next_token": N}`, the next token to hand out;
//! - `mutex/h/<domain>/<name>/<token, 20 digits>`: one holder, `{"limit": L, "holder": {...}}`,
//!   or one waiter's line record, `{"limit": L, "holder": {owner, token, 0, 0}, "queued_ttl_ms": T}`
//!   (the token it will be granted with; see [`crate::table`] for why it is written).
//!
//! **Journal.** The group commit writer does not write those keys one by one: each of
//! its batches is *one* value, `mutex/j/<seq, 20 digits>` = `{"next_token": N, "ops":
//! {record key: record or null}}`. The saved state is the records with every journal
//! entry replayed over them in `seq` order ([`load`]). From time to time the writer
//! *folds* acknowledged entries into the records: it writes only their net effect (a
//! holder granted and released between two folds is never written as a record) and
//! then deletes the folded entries with one range delete ([`Base::fold`]).
//!
//! Why: etcd spends about 300 µs of CPU on a transaction plus about 30 µs per key it
//! writes; an uncontended batch of about 31 changes cost 32 keys, it now costs one (etcd
//! CPU per acquire + release pair: about 100 µs before, 60-75 µs after; bench/mutex.md).
//!
//! Why it is safe:
//! - replay is in `seq` order, and `seq` follows the order the table made the changes,
//!   so the last change to a record wins whatever order concurrent writes landed in;
//! - every op sets or deletes a whole record, so replaying an entry over records that
//!   already hold its effect (a fold that stopped before its range delete) changes
//!   nothing; a fold writes its records before it deletes the entries;
//! - only entries acknowledged in an unbroken run from the oldest are folded, so an
//!   entry still in flight is never deleted.
//!
//! Domain and mutex names cannot contain `/` (see [`crate::validate`]).

use crate::table::{HolderView, SavedHolder, Write};
use mware_coord::{CoordError, Coordinator, KvOp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// Prefix of every key of this service.
pub const PREFIX: &str = "mutex/";
/// The token counter record.
pub const COUNTER: &str = "mutex/counter";
/// Prefix of holder records.
pub const HOLDERS: &str = "mutex/h/";
/// Prefix of journal entries.
pub const JOURNAL: &str = "mutex/j/";
/// Most operations in one `kv_apply` (below `mware_coord::MAX_TXN_OPS`, with room to spare).
pub const CHUNK_OPS: usize = 100;
/// A journal entry is split before it grows past this many bytes (the coordinator
/// takes values up to 1 MiB).
const ENTRY_BYTES: usize = 512 * 1024;

#[derive(Serialize, Deserialize)]
struct Counter {
    next_token: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    limit: u32,
    holder: HolderView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queued_ttl_ms: Option<u64>,
}

/// The key of one holder.
pub fn holder_key(domain: &str, name: &str, token: u64) -> String {
    format!("{HOLDERS}{domain}/{name}/{token:020}")
}

/// The key of journal entry `seq`.
pub fn journal_key(seq: u64) -> String {
    format!("{JOURNAL}{seq:020}")
}

/// Changes to records, the last change to a key winning; one batch of the writer.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Batch {
    next_token: u64,
    ops: BTreeMap<String, Option<Record>>,
}

impl Batch {
    /// Adds table writes.
    pub fn add(&mut self, writes: &[Write], next_token: u64) {
        self.next_token = self.next_token.max(next_token);
        for w in writes {
            match w {
                Write::Put { domain, name, limit, holder } => {
                    let rec = Record { limit: *limit, holder: holder.clone(), queued_ttl_ms: None };
                    self.ops.insert(holder_key(domain, name, holder.token), Some(rec));
                }
                Write::Queue { domain, name, limit, owner, token, ttl_ms } => {
                    let holder = HolderView { owner: owner.clone(), token: *token, expires_at_ms: 0, granted_at_ms: 0, unconfirmed: false };
                    let rec = Record { limit: *limit, holder, queued_ttl_ms: Some(*ttl_ms) };
                    self.ops.insert(holder_key(domain, name, *token), Some(rec));
                }
                Write::Delete { domain, name, token } => {
                    self.ops.insert(holder_key(domain, name, *token), None);
                }
            }
        }
    }

    /// Adds a later batch: its changes win.
    pub fn merge(&mut self, later: Batch) {
        self.next_token = self.next_token.max(later.next_token);
        self.ops.extend(later.ops);
    }

    /// Number of records changed.
    pub fn key_count(&self) -> usize {
        self.ops.len()
    }

    /// The counter value this batch makes durable.
    pub fn next_token(&self) -> u64 {
        self.next_token
    }

    /// Splits the batch into journal entries small enough for one value each; every
    /// entry carries the counter.
    pub fn into_entries(self) -> Vec<Batch> {
        let mut out = vec![];
        let mut cur = Batch { next_token: self.next_token, ops: BTreeMap::new() };
        let mut bytes = 0;
        for (k, v) in self.ops {
            let size = k.len() + v.as_ref().map_or(8, |r| r.holder.owner.len() + 120);
            if bytes + size > ENTRY_BYTES && !cur.ops.is_empty() {
                out.push(std::mem::replace(&mut cur, Batch { next_token: self.next_token, ops: BTreeMap::new() }));
                bytes = 0;
            }
            bytes += size;
            cur.ops.insert(k, v);
        }
        out.push(cur);
        out
    }

    /// This batch as journal entry `seq`.
    pub fn journal_op(&self, seq: u64) -> KvOp {
        KvOp::Put { key: journal_key(seq), value: serde_json::to_vec(self).expect("journal entry serialises") }
    }
}

/// What the records (not the journal) hold, as far as folding needs to know.
#[derive(Debug, Default)]
pub struct Base {
    /// Record keys present.
    keys: HashSet<String>,
    /// The counter record's value.
    counter: u64,
}

impl Base {
    /// The operations that make the records show `batch`, in chunks; a deleted record
    /// that is not present costs nothing. The counter only grows.
    pub fn writes(&mut self, batch: Batch) -> Vec<Vec<KvOp>> {
        let mut ops = vec![];
        if batch.next_token > self.counter {
            self.counter = batch.next_token;
            let v = serde_json::to_vec(&Counter { next_token: batch.next_token }).expect("counter serialises");
            ops.push(KvOp::Put { key: COUNTER.to_string(), value: v });
        }
        for (key, v) in batch.ops {
            match v {
                Some(rec) => {
                    let value = serde_json::to_vec(&rec).expect("record serialises");
                    self.keys.insert(key.clone());
                    ops.push(KvOp::Put { key, value });
                }
                None if self.keys.remove(&key) => ops.push(KvOp::Delete { key }),
                None => {}
            }
        }
        ops.chunks(CHUNK_OPS).map(|c| c.to_vec()).collect()
    }

    /// Makes the next [`Base::writes`] write the counter even if unchanged (the first
    /// write of an activity: it checks the fence).
    pub fn rewrite_counter(&mut self) {
        self.counter = 0;
    }

    /// Folds journal entries `from..to` (merged in `seq` order into `net`): their net
    /// effect on the records, then one range delete of the entries.
    pub fn fold(&mut self, net: Batch, from: u64, to: u64) -> Vec<Vec<KvOp>> {
        let mut chunks = self.writes(net);
        let del = KvOp::DeleteRange { from: journal_key(from), to: journal_key(to) };
        match chunks.last_mut() {
            Some(last) if last.len() < CHUNK_OPS => last.push(del),
            _ => chunks.push(vec![del]),
        }
        chunks
    }
}

/// What an earlier activity left.
pub struct Saved {
    /// The next token to hand out.
    pub next_token: u64,
    /// Holders and line records (journal replayed).
    pub holders: Vec<SavedHolder>,
    /// Keys that could not be read (logged, then deleted).
    pub unreadable: Vec<String>,
    /// Counter keys of the earlier layout (`mutex/counter.<slot>`): read, then deleted.
    pub retired: Vec<String>,
    /// The records as stored.
    pub base: Base,
    /// Journal entries found, oldest first `(first, last)` seq, with their merged changes.
    pub journal: Option<(u64, u64, Batch)>,
}

/// Reads the saved state of `group`: the records with the journal replayed over them.
pub async fn load(coord: &dyn Coordinator, group: u32) -> Result<Saved, CoordError> {
    let mut unreadable = vec![];
    let mut retired = vec![];
    let mut base = Base::default();
    let mut records: BTreeMap<String, Record> = BTreeMap::new();
    let mut entries: BTreeMap<u64, Batch> = BTreeMap::new();
    let mut next_token = 1;
    for (key, v) in coord.kv_list(group, PREFIX).await? {
        if key == COUNTER {
            match serde_json::from_slice::<Counter>(&v.value) {
                Ok(c) => {
                    base.counter = c.next_token;
                    next_token = next_token.max(c.next_token);
                }
                Err(_) => unreadable.push(key),
            }
        } else if key.strip_prefix(COUNTER).is_some_and(|r| r.starts_with('.')) {
            match serde_json::from_slice::<Counter>(&v.value) {
                Ok(c) => next_token = next_token.max(c.next_token),
                Err(_) => unreadable.push(key.clone()),
            }
            retired.push(key);
        } else if let Some(seq) = key.strip_prefix(JOURNAL) {
            match (seq.parse::<u64>(), serde_json::from_slice::<Batch>(&v.value)) {
                (Ok(seq), Ok(b)) => {
                    entries.insert(seq, b);
                }
                _ => unreadable.push(key),
            }
        } else if key.starts_with(HOLDERS) {
            match serde_json::from_slice::<Record>(&v.value) {
                Ok(rec) => {
                    base.keys.insert(key.clone());
                    records.insert(key, rec);
                }
                Err(_) => unreadable.push(key),
            }
        } else {
            unreadable.push(key);
        }
    }
    let mut journal: Option<(u64, u64, Batch)> = None;
    for (seq, b) in entries {
        let j = journal.get_or_insert_with(|| (seq, seq, Batch::default()));
        j.1 = seq;
        j.2.merge(b);
    }
    if let Some((_, _, net)) = &journal {
        next_token = next_token.max(net.next_token);
        for (k, v) in &net.ops {
            match v {
                Some(rec) => records.insert(k.clone(), rec.clone()),
                None => records.remove(k),
            };
        }
    }
    let mut holders = Vec::with_capacity(records.len());
    for (key, rec) in records {
        let parts: Vec<&str> = key[HOLDERS.len()..].split('/').collect();
        match parts.as_slice() {
            [domain, name, _token] => holders.push(SavedHolder {
                domain: domain.to_string(),
                name: name.to_string(),
                limit: rec.limit,
                holder: rec.holder,
                queued_ttl_ms: rec.queued_ttl_ms,
            }),
            _ => unreadable.push(key),
        }
    }
    Ok(Saved { next_token, holders, unreadable, retired, base, journal })
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
