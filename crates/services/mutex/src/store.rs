//! How the lock table is kept in the coordinator's group KV space.
//!
//! - `mutex/counter`: `{"next_token": N}`, the next token to hand out;
//! - `mutex/h/<domain>/<name>/<token, 20 digits>`: one holder, `{"limit": L, "holder": {...}}`,
//!   or one waiter's line record, `{"limit": L, "holder": {owner, token, 0, 0}, "queued_ttl_ms": T}`
//!   (the token it will be granted with; see [`crate::table`] for why it is written).
//!
//! Domain and mutex names cannot contain `/` (see [`crate::validate`]).

use crate::table::{HolderView, SavedHolder, Write};
use mware_coord::{Coordinator, CoordError, KvOp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// Prefix of every key of this service.
pub const PREFIX: &str = "mutex/";
/// The token counter key (slot 0); slot k > 0 is `mutex/counter.k`.
pub const COUNTER: &str = "mutex/counter";

/// The counter key of a writer slot. Each coordinator write in flight owns one slot,
/// so the writes to one counter key never overlap and its value only grows, even when
/// the coordinator applies concurrent writes out of order.
pub fn counter_key(slot: usize) -> String {
    if slot == 0 {
        COUNTER.to_string()
    } else {
        format!("{COUNTER}.{slot}")
    }
}
/// Prefix of holder keys.
pub const HOLDERS: &str = "mutex/h/";

#[derive(Serialize, Deserialize)]
struct Counter {
    next_token: u64,
}

#[derive(Serialize, Deserialize)]
struct Record {
    limit: u32,
    holder: HolderView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queued_ttl_ms: Option<u64>,
}

/// The key of one holder.
pub fn holder_key(domain: &str, name: &str, token: u64) -> String {
    format!("{HOLDERS}{domain}/{name}/{token:020}")
}

/// Writes to apply in one batch, the last write to a key winning (etcd refuses a
/// transaction that names a key twice).
#[derive(Debug, Default)]
pub struct Batch {
    ops: BTreeMap<String, Option<Vec<u8>>>,
    next_token: u64,
}

impl Batch {
    /// Adds table writes.
    pub fn add(&mut self, writes: &[Write], next_token: u64) {
        self.next_token = self.next_token.max(next_token);
        for w in writes {
            match w {
                Write::Put { domain, name, limit, holder } => {
                    self.put(domain, name, Record { limit: *limit, holder: holder.clone(), queued_ttl_ms: None });
                }
                Write::Queue { domain, name, limit, owner, token, ttl_ms } => {
                    let holder = HolderView { owner: owner.clone(), token: *token, expires_at_ms: 0, granted_at_ms: 0, unconfirmed: false };
                    self.put(domain, name, Record { limit: *limit, holder, queued_ttl_ms: Some(*ttl_ms) });
                }
                Write::Delete { domain, name, token } => {
                    self.ops.insert(holder_key(domain, name, *token), None);
                }
            }
        }
    }

    fn put(&mut self, domain: &str, name: &str, rec: Record) {
        let v = serde_json::to_vec(&rec).expect("record serialises");
        self.ops.insert(holder_key(domain, name, rec.holder.token), Some(v));
    }

    /// Whether this batch writes a key of `keys` (writes in flight).
    pub fn touches_any(&self, keys: &HashSet<String>) -> bool {
        self.ops.keys().any(|k| keys.contains(k))
    }

    /// Number of distinct keys written.
    pub fn key_count(&self) -> usize {
        self.ops.len()
    }

    /// The keys written, each once.
    pub fn keys(&self) -> Vec<String> {
        self.ops.keys().cloned().collect()
    }

    /// The operations, split in chunks of at most `chunk` operations; the counter of
    /// `slot` goes in the first chunk so it is durable no later than any token it covers.
    pub fn into_chunks(self, slot: usize, counter_written: u64, chunk: usize) -> Vec<Vec<KvOp>> {
        let mut all: Vec<KvOp> = Vec::with_capacity(self.ops.len() + 1);
        if self.next_token > counter_written {
            let v = serde_json::to_vec(&Counter { next_token: self.next_token }).expect("counter serialises");
            all.push(KvOp::Put { key: counter_key(slot), value: v });
        }
        for (key, v) in self.ops {
            all.push(match v {
                Some(value) => KvOp::Put { key, value },
                None => KvOp::Delete { key },
            });
        }
        all.chunks(chunk.max(1)).map(|c| c.to_vec()).collect()
    }

    /// The counter value this batch makes durable.
    pub fn next_token(&self) -> u64 {
        self.next_token
    }
}

/// What an earlier activity left: the counter and every holder.
pub struct Saved {
    /// The next token to hand out.
    pub next_token: u64,
    /// Holders and line records.
    pub holders: Vec<SavedHolder>,
    /// Keys that could not be read (logged, then deleted).
    pub unreadable: Vec<String>,
}

/// Reads the saved state of `group`.
pub async fn load(coord: &dyn Coordinator, group: u32) -> Result<Saved, CoordError> {
    let mut saved = Saved { next_token: 1, holders: vec![], unreadable: vec![] };
    for (key, v) in coord.kv_list(group, PREFIX).await? {
        if key == COUNTER || key.strip_prefix(COUNTER).is_some_and(|r| r.starts_with('.')) {
            match serde_json::from_slice::<Counter>(&v.value) {
                Ok(c) => saved.next_token = saved.next_token.max(c.next_token),
                Err(_) => saved.unreadable.push(key),
            }
            continue;
        }
        let Some(rest) = key.strip_prefix(HOLDERS) else {
            saved.unreadable.push(key);
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match (parts.as_slice(), serde_json::from_slice::<Record>(&v.value)) {
            ([domain, name, _token], Ok(rec)) => saved.holders.push(SavedHolder {
                domain: domain.to_string(),
                name: name.to_string(),
                limit: rec.limit,
                holder: rec.holder,
                queued_ttl_ms: rec.queued_ttl_ms,
            }),
            _ => saved.unreadable.push(key),
        }
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(token: u64) -> HolderView {
        HolderView { owner: "a".into(), token, expires_at_ms: 5, granted_at_ms: 1, unconfirmed: false }
    }

    #[test]
    fn last_write_to_a_key_wins_and_the_counter_goes_first() {
        let mut b = Batch::default();
        b.add(&[Write::Put { domain: "d".into(), name: "m".into(), limit: 1, holder: h(3) }], 4);
        b.add(&[Write::Delete { domain: "d".into(), name: "m".into(), token: 3 }], 4);
        b.add(&[Write::Put { domain: "d".into(), name: "m".into(), limit: 1, holder: h(4) }], 5);
        assert_eq!(b.key_count(), 2);
        assert_eq!(b.keys().len(), 2);
        let chunks = b.into_chunks(0, 0, 2);
        assert_eq!(chunks.len(), 2);
        assert!(matches!(&chunks[0][0], KvOp::Put { key, .. } if key == COUNTER));
        assert!(matches!(&chunks[0][1], KvOp::Delete { key } if key.ends_with("/00000000000000000003")));
        assert!(matches!(&chunks[1][0], KvOp::Put { key, .. } if key.ends_with("/00000000000000000004")));
    }

    #[test]
    fn counter_is_not_rewritten_when_unchanged() {
        let mut b = Batch::default();
        b.add(&[Write::Delete { domain: "d".into(), name: "m".into(), token: 3 }], 4);
        let chunks = b.into_chunks(1, 4, 64);
        assert_eq!(chunks[0].len(), 1);
    }
}
