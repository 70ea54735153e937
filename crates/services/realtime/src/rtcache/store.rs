//! The sidecar's cache: an in-memory map for serving (hashed, its keys also kept in order), written through
//! to a redb file by one background writer (batched transactions), and loaded
//! from it at start so a restart during an outage still serves.
//!
//! Keys are `PATH?QUERY` + `\n` + `CREDENTIAL` + `\n` + `BODY`, so every entry
//! of one entity and family shares the prefix `.../{entity}/{family}/` and can be
//! invalidated as a range, and an answer is found only by a request presenting the
//! same credential. `CREDENTIAL` is [`Store::credential_key`]: a SHA-256 of the
//! caller's `Authorization` header salted with 32 random bytes kept in the file, so
//! the header is never stored and equal headers hash alike after a restart.
//!
//! The file holds SIP credentials (`auth` answers carry passwords): it is created
//! with mode 0600 (tightened with a warning when it exists wider), its folder 0700.
//! At most `max_entries` answers are kept; beyond that the oldest fetched are
//! dropped.

use crate::error::RealtimeError;
use crate::rtcache::decide::EntryTimes;
use bytes::Bytes;
use redb::{Database, ReadableTable, TableDefinition};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("rtcache_v3");
/// The layout before credentials were part of the key: dropped at open.
const OLD_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("rtcache_v2");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("rtcache_meta");

/// One cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Fetch and expiry times.
    pub times: EntryTimes,
    /// The upstream's body.
    pub body: Bytes,
}

fn encode(e: &Entry) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + e.body.len());
    v.extend_from_slice(&e.times.fetched_ms.to_le_bytes());
    v.extend_from_slice(&e.times.expires_ms.to_le_bytes());
    v.push(e.times.revalidate as u8);
    v.extend_from_slice(&e.body);
    v
}

fn decode(v: &[u8]) -> Option<Entry> {
    if v.len() < 17 {
        return None;
    }
    let fetched_ms = u64::from_le_bytes(v[0..8].try_into().ok()?);
    let expires_ms = u64::from_le_bytes(v[8..16].try_into().ok()?);
    Some(Entry { times: EntryTimes { fetched_ms, expires_ms, revalidate: v[16] != 0 }, body: Bytes::copy_from_slice(&v[17..]) })
}

enum Write {
    Put(String, Entry),
    Del(String),
    DelPrefix(String),
    Flush(mpsc::Sender<()>),
}

/// The entries in memory: a hash map for lookups (a cache hit compares one key, where
/// an ordered map compared a dozen keys sharing their first hundred bytes), the same
/// keys in order for the ranges of a prefix, and their fetch order for eviction.
#[derive(Default)]
struct Mem {
    map: HashMap<Arc<str>, Entry>,
    keys: BTreeSet<Arc<str>>,
    age: BTreeSet<(u64, Arc<str>)>,
}

impl Mem {
    fn remove(&mut self, k: &str) -> Option<Entry> {
        let (key, e) = self.map.remove_entry(k)?;
        self.keys.remove(k);
        self.age.remove(&(e.times.fetched_ms, key));
        Some(e)
    }
    /// Inserts; returns the keys dropped to stay within `cap`.
    fn insert(&mut self, k: String, e: Entry, cap: usize) -> Vec<String> {
        self.remove(&k);
        let key: Arc<str> = k.into();
        self.age.insert((e.times.fetched_ms, key.clone()));
        self.keys.insert(key.clone());
        self.map.insert(key, e);
        let mut dropped = vec![];
        while self.map.len() > cap {
            let Some((_, old)) = self.age.pop_first() else { break };
            self.map.remove(&old);
            self.keys.remove(&old);
            dropped.push(old.to_string());
        }
        dropped
    }
    /// The keys starting with `prefix`.
    fn with_prefix(&self, prefix: &str) -> Vec<Arc<str>> {
        use std::ops::Bound;
        self.keys.range::<str, _>((Bound::Included(prefix), Bound::Unbounded)).take_while(|k| k.starts_with(prefix)).cloned().collect()
    }
}

/// The cache. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    mem: Arc<RwLock<Mem>>,
    tx: Arc<std::sync::Mutex<Option<mpsc::Sender<Write>>>>,
    salt: Arc<[u8; 32]>,
    cap: usize,
}

/// Joins the writer on drop of the last handle.
pub struct StoreWriter(Option<std::thread::JoinHandle<()>>);

fn cache_err(e: impl std::fmt::Display) -> RealtimeError {
    RealtimeError::Cache(e.to_string())
}

impl Store {
    /// Opens (or creates, 0600) `dir/rtcache.redb`, loads entries not yet expired at
    /// `now_ms`, the newest `cap` of them.
    pub fn open(dir: &Path, now_ms: u64, cap: usize) -> Result<(Store, StoreWriter), RealtimeError> {
        let io = |what: String| move |source| RealtimeError::Io { what, source };
        mware_coord::fsmode::private_dir(dir).map_err(io(format!("creating {} (0700)", dir.display())))?;
        let path = dir.join("rtcache.redb");
        mware_coord::fsmode::private_file(&path).map_err(io(format!("making {} readable by its owner only", path.display())))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        let db = Database::builder().create_file(file).map_err(cache_err)?;
        let mut mem = Mem::default();
        let mut dropped = vec![];
        let salt: [u8; 32];
        {
            let w = db.begin_write().map_err(cache_err)?;
            w.open_table(TABLE).map_err(cache_err)?;
            w.delete_table(OLD_TABLE).map_err(cache_err)?;
            {
                let mut meta = w.open_table(META).map_err(cache_err)?;
                let kept = meta.get("salt").map_err(cache_err)?.and_then(|v| <[u8; 32]>::try_from(v.value()).ok());
                salt = match kept {
                    Some(s) => s,
                    None => {
                        let s: [u8; 32] = rand::random();
                        meta.insert("salt", s.as_slice()).map_err(cache_err)?;
                        s
                    }
                };
            }
            w.commit().map_err(cache_err)?;
            let r = db.begin_read().map_err(cache_err)?;
            let t = r.open_table(TABLE).map_err(cache_err)?;
            for item in t.iter().map_err(cache_err)? {
                let (k, v) = item.map_err(cache_err)?;
                if let Some(e) = decode(v.value()) {
                    if e.times.expires_ms > now_ms {
                        dropped.extend(mem.insert(k.value().to_string(), e, cap));
                    }
                }
            }
        }
        let (tx, rx) = mpsc::channel::<Write>();
        let handle = std::thread::Builder::new()
            .name("rtcache-redb".into())
            .spawn(move || writer(db, rx))
            .map_err(|source| RealtimeError::Io { what: "starting the cache writer".into(), source })?;
        let store =
            Store { mem: Arc::new(RwLock::new(mem)), tx: Arc::new(std::sync::Mutex::new(Some(tx))), salt: Arc::new(salt), cap: cap.max(1) };
        for k in dropped {
            store.send(Write::Del(k));
        }
        Ok((store, StoreWriter(Some(handle))))
    }

    /// The key part naming a caller's credential: hex of SHA-256(salt, header), or `-`
    /// for a caller without one.
    pub fn credential_key(&self, authorization: Option<&[u8]>) -> String {
        let Some(h) = authorization else { return "-".into() };
        let d = Sha256::new().chain_update(self.salt.as_slice()).chain_update(h).finalize();
        // By hand: a `format!` per byte was 7 % of a cache hit's CPU.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(32);
        for b in d.iter().take(16) {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        out
    }

    fn send(&self, w: Write) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(w);
        }
    }

    /// The entry for `key`.
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.mem.read().unwrap_or_else(|e| e.into_inner()).map.get(key).cloned()
    }

    /// Stores an entry (dropping the oldest beyond the cap).
    pub fn put(&self, key: &str, e: Entry) {
        let dropped = self.mem.write().unwrap_or_else(|e| e.into_inner()).insert(key.to_string(), e.clone(), self.cap);
        self.send(Write::Put(key.to_string(), e));
        for k in dropped {
            self.send(Write::Del(k));
        }
    }

    /// Changes an entry's expiry (if it is still there).
    pub fn extend(&self, key: &str, expires_ms: u64) {
        let updated = {
            let mut m = self.mem.write().unwrap_or_else(|e| e.into_inner());
            m.map.get_mut(key).map(|e| {
                e.times.expires_ms = expires_ms;
                e.clone()
            })
        };
        if let Some(e) = updated {
            self.send(Write::Put(key.to_string(), e));
        }
    }

    /// Removes an entry.
    pub fn remove(&self, key: &str) {
        self.mem.write().unwrap_or_else(|e| e.into_inner()).remove(key);
        self.send(Write::Del(key.to_string()));
    }

    /// Removes every entry whose key starts with `prefix`; returns how many.
    pub fn remove_prefix(&self, prefix: &str) -> usize {
        let n = {
            let mut m = self.mem.write().unwrap_or_else(|e| e.into_inner());
            let keys = m.with_prefix(prefix);
            for k in &keys {
                m.remove(k);
            }
            keys.len()
        };
        self.send(Write::DelPrefix(prefix.to_string()));
        n
    }

    /// Marks every entry whose key starts with `prefix` for revalidation; returns how many.
    pub fn mark_prefix(&self, prefix: &str) -> usize {
        let marked: Vec<(String, Entry)> = {
            let mut m = self.mem.write().unwrap_or_else(|e| e.into_inner());
            let keys = m.with_prefix(prefix);
            keys.into_iter()
                .filter_map(|k| {
                    let e = m.map.get_mut(&k).filter(|e| !e.times.revalidate)?;
                    e.times.revalidate = true;
                    Some((k.to_string(), e.clone()))
                })
                .collect()
        };
        let n = marked.len();
        for (k, e) in marked {
            self.send(Write::Put(k, e));
        }
        n
    }

    /// Drops entries expired at `now_ms`; returns how many.
    pub fn sweep(&self, now_ms: u64) -> usize {
        let expired: Vec<String> = {
            let m = self.mem.read().unwrap_or_else(|e| e.into_inner());
            m.map.iter().filter(|(_, e)| e.times.expires_ms <= now_ms).map(|(k, _)| k.to_string()).collect()
        };
        for k in &expired {
            self.remove(k);
        }
        expired.len()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.mem.read().unwrap_or_else(|e| e.into_inner()).map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every write sent so far is committed to disk.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Write::Flush(tx));
        let _ = rx.recv_timeout(std::time::Duration::from_secs(10));
    }

    /// Stops the writer after it has committed everything queued.
    pub fn close(&self, mut writer: StoreWriter) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = writer.0.take() {
            let _ = h.join();
        }
    }
}

fn apply(db: &Database, batch: Vec<Write>) -> Result<Vec<mpsc::Sender<()>>, RealtimeError> {
    let mut done = Vec::new();
    let w = db.begin_write().map_err(cache_err)?;
    {
        let mut t = w.open_table(TABLE).map_err(cache_err)?;
        for op in batch {
            match op {
                Write::Put(k, e) => {
                    t.insert(k.as_str(), encode(&e).as_slice()).map_err(cache_err)?;
                }
                Write::Del(k) => {
                    t.remove(k.as_str()).map_err(cache_err)?;
                }
                Write::DelPrefix(p) => {
                    let keys: Vec<String> = t
                        .range(p.as_str()..)
                        .map_err(cache_err)?
                        .map_while(|r| r.ok().map(|(k, _)| k.value().to_string()))
                        .take_while(|k| k.starts_with(&p))
                        .collect();
                    for k in keys {
                        t.remove(k.as_str()).map_err(cache_err)?;
                    }
                }
                Write::Flush(tx) => done.push(tx),
            }
        }
    }
    w.commit().map_err(cache_err)?;
    Ok(done)
}

fn writer(db: Database, rx: mpsc::Receiver<Write>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        match apply(&db, batch) {
            Ok(done) => done.into_iter().for_each(|tx| {
                let _ = tx.send(());
            }),
            Err(e) => tracing::error!(error = %e, "rtcache: could not write the cache file"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_invalidates_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let e = |b: &'static str| Entry { times: EntryTimes { fetched_ms: 1, expires_ms: 1_000, revalidate: false }, body: Bytes::from(b) };
        let (s, w) = Store::open(dir.path(), 0, 100).unwrap();
        s.put("/p/e1/endpoint/single?\nid=1", e("id=1\n"));
        s.put("/p/e1/endpoint/multi?\nid%20LIKE=%25", e("id=1\n"));
        s.put("/p/e1/aor/single?\nid=1", e("id=1\n"));
        s.put(
            "/p/old/aor/single?\nid=1",
            Entry { times: EntryTimes { fetched_ms: 0, expires_ms: 5, revalidate: false }, body: Bytes::new() },
        );
        assert_eq!(s.mark_prefix("/p/e1/endpoint/"), 2);
        assert!(s.get("/p/e1/endpoint/multi?\nid%20LIKE=%25").unwrap().times.revalidate);
        assert!(!s.get("/p/e1/aor/single?\nid=1").unwrap().times.revalidate);
        assert_eq!(s.remove_prefix("/p/e1/endpoint/"), 2);
        s.close(w);
        let (s, w) = Store::open(dir.path(), 10, 100).unwrap();
        assert_eq!(s.len(), 1, "expired and invalidated entries are gone after reopen");
        assert_eq!(s.get("/p/e1/aor/single?\nid=1").unwrap().body, Bytes::from("id=1\n"));
        s.close(w);
    }

    #[test]
    fn the_oldest_are_dropped_beyond_the_cap_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let e = |at: u64| Entry { times: EntryTimes { fetched_ms: at, expires_ms: u64::MAX, revalidate: false }, body: Bytes::from("x") };
        let (s, w) = Store::open(&dir.path().join("c"), 0, 3).unwrap();
        for (k, at) in [("a", 5), ("b", 1), ("c", 3), ("d", 4)] {
            s.put(k, e(at));
        }
        assert_eq!(s.len(), 3);
        assert!(s.get("b").is_none(), "the oldest fetched went first");
        s.put("a", e(0));
        s.put("e", e(9));
        assert!(s.get("a").is_none(), "a refetch counts from its new fetch time");
        let cred = s.credential_key(Some(b"Basic YTpi"));
        assert_eq!(cred.len(), 32);
        assert_ne!(cred, s.credential_key(Some(b"Basic YTpj")));
        assert_eq!(s.credential_key(None), "-");
        s.close(w);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("c/rtcache.redb")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (s2, w) = Store::open(&dir.path().join("c"), 0, 2).unwrap();
        assert_eq!(s2.len(), 2, "a smaller cap at open keeps the newest");
        assert_eq!(s2.credential_key(Some(b"Basic YTpi")), cred, "the salt is kept in the file");
        s2.close(w);
    }
}
