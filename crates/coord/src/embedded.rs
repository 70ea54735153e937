//! The embedded backend: one SQLite file (WAL, `busy_timeout`) shared by all mware
//! processes of one host.
//!
//! Leases are rows with a wall-clock expiry (ms since the Unix epoch), renewed by the
//! member; a lease is live while `expires_ms > now`. The leader row of a group names its
//! lease; it counts only while that lease is live. Epochs come from a counter that only
//! grows, taken in the same `BEGIN IMMEDIATE` transaction that creates the leader row, and
//! every fenced write checks the leader row (same epoch, lease live) in its own
//! transaction. Watches poll a change log every [`POLL`]. All SQLite work runs on
//! `spawn_blocking`.

use crate::api::*;
use crate::election::{Candidate, SeenLeader, SwitchoverRequest, View};
use crate::member::{self, Backend, LeaseId};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Pauses while another process of the host sets the file up: from 20 ms doubling to 150 ms,
/// each lengthened by a random share of itself (processes started together do not retry in
/// step), 15 s of pauses in all before the start fails.
const SETUP_RETRY: backon::ExponentialBuilder = backon::ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(20))
    .with_max_delay(Duration::from_millis(150))
    .with_jitter()
    .without_max_times()
    .with_total_delay(Some(Duration::from_secs(15)));

/// How often watches look for changes.
const POLL: Duration = Duration::from_millis(75);
/// How many change-log entries are kept for watchers.
const LOG_KEEP: i64 = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS leases(id INTEGER PRIMARY KEY AUTOINCREMENT, expires_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS members(grp INTEGER NOT NULL, instance TEXT NOT NULL, lease INTEGER NOT NULL,
    info TEXT NOT NULL, PRIMARY KEY(grp, instance));
CREATE TABLE IF NOT EXISTS leaders(grp INTEGER PRIMARY KEY, instance TEXT NOT NULL, lease INTEGER NOT NULL,
    epoch INTEGER NOT NULL, since_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv(grp INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    revision INTEGER NOT NULL, PRIMARY KEY(grp, key));
CREATE TABLE IF NOT EXISTS kv_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, grp INTEGER NOT NULL, key TEXT NOT NULL,
    value BLOB, revision INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS config(id INTEGER PRIMARY KEY CHECK (id = 1), text TEXT NOT NULL, revision INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS switchover(grp INTEGER PRIMARY KEY, request TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transitions(grp INTEGER PRIMARY KEY, data TEXT NOT NULL);
INSERT OR IGNORE INTO counters(name, value) VALUES ('election', 0);
CREATE TRIGGER IF NOT EXISTS election_leases AFTER DELETE ON leases
    BEGIN UPDATE counters SET value = value + 1 WHERE name = 'election'; END;
CREATE TRIGGER IF NOT EXISTS election_leaders_in AFTER INSERT ON leaders
    BEGIN UPDATE counters SET value = value + 1 WHERE name = 'election'; END;
CREATE TRIGGER IF NOT EXISTS election_leaders_out AFTER DELETE ON leaders
    BEGIN UPDATE counters SET value = value + 1 WHERE name = 'election'; END;
CREATE TRIGGER IF NOT EXISTS election_members AFTER INSERT ON members
    BEGIN UPDATE counters SET value = value + 1 WHERE name = 'election'; END;
CREATE TRIGGER IF NOT EXISTS election_switchover_in AFTER INSERT ON switchover
    BEGIN UPDATE counters SET value = value + 1 WHERE name = 'election'; END;
CREATE TRIGGER IF NOT EXISTS election_switchover_out AFTER DELETE ON switchover
    BEGIN UPDATE counters SET value = value + 1 WHERE name = 'election'; END;
";

/// How often the election counter is read: the embedded stand-in for a watch of the
/// election keys (one indexed read of one row; see [`Backend::election_changes`]).
const ELECTION_POLL: Duration = Duration::from_millis(10);

/// The embedded coordinator. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedCoordinator {
    settings: Arc<Settings>,
    conn: Arc<Mutex<Connection>>,
}

fn sql(e: rusqlite::Error) -> CoordError {
    CoordError::Unavailable(format!("sqlite: {e}"))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, CoordError> {
    serde_json::to_string(v).map_err(|e| CoordError::Invalid(e.to_string()))
}

fn check_key(key: &str) -> Result<(), CoordError> {
    if key.is_empty() {
        return Err(CoordError::Invalid("expected a non-empty key, found an empty one".into()));
    }
    Ok(())
}

/// Takes the next value of a counter that only grows.
fn next(tx: &rusqlite::Transaction<'_>, name: &str) -> rusqlite::Result<i64> {
    tx.execute("INSERT INTO counters(name, value) VALUES (?1, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1", params![name])?;
    tx.query_row("SELECT value FROM counters WHERE name = ?1", params![name], |r| r.get(0))
}

/// The group's current epoch: a leader row whose lease is live.
fn current_epoch(c: &Connection, group: u32, now: i64) -> rusqlite::Result<Option<u64>> {
    c.query_row(
        "SELECT l.epoch FROM leaders l JOIN leases s ON s.id = l.lease WHERE l.grp = ?1 AND s.expires_ms > ?2",
        params![group, now],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|o| o.map(|e| e as u64))
}

fn fenced(c: &Connection, fence: &Fence, now: i64) -> Result<(), CoordError> {
    let current = current_epoch(c, fence.group, now).map_err(sql)?;
    if current != Some(fence.epoch) {
        return Err(CoordError::Fenced { group: fence.group, held: fence.epoch, current });
    }
    Ok(())
}

fn log(tx: &rusqlite::Transaction<'_>, group: u32, key: &str, value: Option<&[u8]>, rev: i64) -> rusqlite::Result<()> {
    tx.execute("INSERT INTO kv_log(grp, key, value, revision) VALUES (?1, ?2, ?3, ?4)", params![group, key, value, rev])?;
    Ok(())
}

impl EmbeddedCoordinator {
    /// Opens (creating if needed) the SQLite file named by `coordination.path`.
    pub async fn open(settings: Settings) -> Result<Self, CoordError> {
        let path = std::path::PathBuf::from(&settings.coordination.path);
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, CoordError> {
            // The file holds the pushed site file (secrets included): private, and its folder.
            let private = |what: &str, e: std::io::Error| CoordError::Unavailable(format!("cannot make {what} private: {e}"));
            crate::fsmode::private_parent(&path).map_err(|e| private(&format!("the folder of {}", path.display()), e))?;
            crate::fsmode::private_sqlite(&path).map_err(|e| private(&path.display().to_string(), e))?;
            let c = Connection::open(&path).map_err(sql)?;
            c.busy_timeout(Duration::from_secs(5)).map_err(sql)?;
            // Switching a new file to WAL takes an exclusive lock and SQLite answers
            // SQLITE_BUSY at once (without the busy handler) while another process of the
            // same host does the same: retry for a while instead of failing the start.
            let setup = |c: &Connection| -> rusqlite::Result<()> {
                c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
                c.execute_batch("PRAGMA synchronous=NORMAL;")?;
                c.execute_batch(SCHEMA)
            };
            let mut pauses = backon::BackoffBuilder::build(SETUP_RETRY);
            loop {
                match setup(&c) {
                    Ok(()) => break,
                    Err(e) => match (e.sqlite_error_code(), pauses.next()) {
                        (Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked), Some(pause)) => {
                            std::thread::sleep(pause)
                        }
                        _ => return Err(sql(e)),
                    },
                }
            }
            Ok(c)
        })
        .await
        .map_err(|e| CoordError::Unavailable(e.to_string()))??;
        Ok(Self { settings: Arc::new(settings), conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` on the connection on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, CoordError> + Send + 'static,
    ) -> Result<T, CoordError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
        .await
        .map_err(|e| CoordError::Unavailable(format!("sqlite task: {e}")))?
    }

    /// Checks that the file can be read.
    pub(crate) async fn ping(&self) -> Result<(), CoordError> {
        self.with(|c| c.query_row("SELECT count(*) FROM leases", [], |_| Ok(())).map_err(sql)).await
    }

    /// Starts a poller of the change log for `group` under `prefix`.
    fn spawn_watch(&self, group: u32, prefix: String, tx: mpsc::Sender<KvEvent>, mut last: i64) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut broken = false;
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(POLL) => {}
                }
                let p = prefix.clone();
                let r = me
                    .with(move |c| {
                        let min: Option<i64> = c.query_row("SELECT min(seq) FROM kv_log", [], |r| r.get(0)).map_err(sql)?;
                        let mut st = c
                            .prepare_cached(
                                "SELECT seq, key, value, revision FROM kv_log WHERE seq > ?1 AND grp = ?2
                                 AND substr(key, 1, length(?3)) = ?3 ORDER BY seq",
                            )
                            .map_err(sql)?;
                        let rows = st
                            .query_map(params![last, group, p], |r| {
                                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<Vec<u8>>>(2)?, r.get::<_, i64>(3)?))
                            })
                            .map_err(sql)?
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(sql)?;
                        let max: i64 = c.query_row("SELECT coalesce(max(seq), 0) FROM kv_log", [], |r| r.get(0)).map_err(sql)?;
                        Ok((min.is_some_and(|m| m > last + 1), rows, max))
                    })
                    .await;
                let (gap, rows, max) = match r {
                    Ok(x) => x,
                    Err(_) => {
                        broken = true;
                        continue;
                    }
                };
                if broken || gap {
                    broken = false;
                    if tx.send(KvEvent::Resync).await.is_err() {
                        return;
                    }
                }
                for (seq, key, value, revision) in rows {
                    last = seq;
                    let ev = match value {
                        Some(value) => KvEvent::Put { key, value, revision: revision as u64 },
                        None => KvEvent::Delete { key },
                    };
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                last = last.max(max);
            }
        });
    }
}

#[async_trait]
impl Backend for EmbeddedCoordinator {
    async fn register(&self, m: &MemberInfo) -> Result<LeaseId, CoordError> {
        let ttl = self.settings.coordination.lease_ttl_ms as i64;
        let info = json(m)?;
        let (group, instance) = (m.group, m.instance.clone());
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
            let now = now_ms() as i64;
            tx.execute("INSERT INTO leases(expires_ms) VALUES (?1)", params![now + ttl]).map_err(sql)?;
            let lease = tx.last_insert_rowid();
            tx.execute(
                "INSERT OR REPLACE INTO members(grp, instance, lease, info) VALUES (?1, ?2, ?3, ?4)",
                params![group, instance, lease, info],
            )
            .map_err(sql)?;
            tx.execute("DELETE FROM leases WHERE expires_ms <= ?1", params![now]).map_err(sql)?;
            tx.commit().map_err(sql)?;
            Ok(lease)
        })
        .await
    }

    async fn renew(&self, lease: LeaseId) -> Result<bool, CoordError> {
        let ttl = self.settings.coordination.lease_ttl_ms as i64;
        self.with(move |c| {
            let now = now_ms() as i64;
            let n = c
                .execute("UPDATE leases SET expires_ms = ?1 WHERE id = ?2 AND expires_ms > ?3", params![now + ttl, lease, now])
                .map_err(sql)?;
            Ok(n == 1)
        })
        .await
    }

    async fn view(&self, group: u32, lease: Option<LeaseId>) -> Result<View, CoordError> {
        self.with(move |c| {
            let now = now_ms() as i64;
            let leader = c
                .query_row(
                    "SELECT l.instance, l.epoch, l.lease FROM leaders l JOIN leases s ON s.id = l.lease
                     WHERE l.grp = ?1 AND s.expires_ms > ?2",
                    params![group, now],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
                )
                .optional()
                .map_err(sql)?
                .map(|(instance, epoch, l)| SeenLeader { instance, epoch: epoch as u64, mine: lease == Some(l) });
            let mut v = View { leader, ..View::default() };
            let mut st = c
                .prepare_cached("SELECT m.info FROM members m JOIN leases s ON s.id = m.lease WHERE m.grp = ?1 AND s.expires_ms > ?2")
                .map_err(sql)?;
            let infos = st.query_map(params![group, now], |r| r.get::<_, String>(0)).map_err(sql)?;
            for i in infos {
                if let Ok(m) = serde_json::from_str::<MemberInfo>(&i.map_err(sql)?) {
                    v.members.push(Candidate { instance: m.instance, order: m.order, since_ms: m.since_ms });
                }
            }
            let req: Option<String> =
                c.query_row("SELECT request FROM switchover WHERE grp = ?1", params![group], |r| r.get(0)).optional().map_err(sql)?;
            v.switchover = req.and_then(|r| serde_json::from_str::<SwitchoverRequest>(&r).ok());
            Ok(v)
        })
        .await
    }

    async fn campaign(&self, m: &MemberInfo, lease: LeaseId) -> Result<Option<Epoch>, CoordError> {
        let (group, instance) = (m.group, m.instance.clone());
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
            let now = now_ms() as i64;
            let ours: Option<i64> = tx
                .query_row("SELECT id FROM leases WHERE id = ?1 AND expires_ms > ?2", params![lease, now], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            if ours.is_none() || current_epoch(&tx, group, now).map_err(sql)?.is_some() {
                return Ok(None);
            }
            let epoch = next(&tx, "epoch").map_err(sql)?;
            tx.execute(
                "INSERT OR REPLACE INTO leaders(grp, instance, lease, epoch, since_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![group, instance, lease, epoch, now],
            )
            .map_err(sql)?;
            tx.commit().map_err(sql)?;
            Ok(Some(epoch as u64))
        })
        .await
    }

    async fn release(&self, group: u32, epoch: Epoch) -> Result<(), CoordError> {
        self.with(move |c| {
            c.execute("DELETE FROM leaders WHERE grp = ?1 AND epoch = ?2", params![group, epoch as i64]).map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn record(&self, group: u32, t: &Transition) -> Result<(), CoordError> {
        let data = json(t)?;
        self.with(move |c| {
            c.execute("INSERT OR REPLACE INTO transitions(grp, data) VALUES (?1, ?2)", params![group, data]).map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn clear_switchover(&self, group: u32) -> Result<(), CoordError> {
        self.with(move |c| {
            c.execute("DELETE FROM switchover WHERE grp = ?1", params![group]).map_err(sql)?;
            Ok(())
        })
        .await
    }

    /// Every change of a lease's existence, a leader row, a member row or a switchover
    /// request bumps the `election` counter (triggers in the schema, so the companion's
    /// revoke from another process counts too); a poller signals each new value. Lease
    /// expiry writes nothing: the tick still catches it.
    async fn election_changes(&self, _group: u32) -> Option<mpsc::Receiver<()>> {
        let read =
            |c: &mut Connection| c.query_row("SELECT value FROM counters WHERE name = 'election'", [], |r| r.get::<_, i64>(0)).map_err(sql);
        let mut last = self.with(read).await.ok()?;
        let (tx, rx) = mpsc::channel(1);
        let me = self.clone();
        let db = std::path::PathBuf::from(&self.settings.coordination.path);
        let wal = std::path::PathBuf::from(format!("{}-wal", self.settings.coordination.path));
        tokio::spawn(async move {
            let mut seen = file_marks(&db, &wal);
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(ELECTION_POLL) => {}
                }
                // Every commit, of any process, changes the WAL file (or the database file
                // when it is checkpointed): two `stat`s tell whether anything was written
                // at all, and only then is the counter read (a blocking-pool hand-off and
                // a SQLite read, ~50x the cost). A commit hidden by the coarse file clock
                // (same size, same tick) is caught by the next write or the 100 ms tick.
                let marks = file_marks(&db, &wal);
                if marks == seen {
                    continue;
                }
                seen = marks;
                if let Ok(v) = me.with(read).await {
                    if v != last {
                        last = v;
                        let _ = tx.try_send(());
                    }
                }
            }
        });
        Some(rx)
    }

    async fn revoke(&self, lease: LeaseId) -> Result<(), CoordError> {
        self.with(move |c| {
            c.execute("DELETE FROM leases WHERE id = ?1", params![lease]).map_err(sql)?;
            Ok(())
        })
        .await
    }
}

/// What changes when a process commits to the database: the size and modification time of
/// the database file and of its WAL.
fn file_marks(db: &std::path::Path, wal: &std::path::Path) -> [(u64, Option<std::time::SystemTime>); 2] {
    let mark = |p: &std::path::Path| std::fs::metadata(p).map(|m| (m.len(), m.modified().ok())).unwrap_or((0, None));
    [mark(db), mark(wal)]
}

#[path = "embedded_api.rs"]
mod api_impl;
