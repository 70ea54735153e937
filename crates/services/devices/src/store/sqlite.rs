//! The embedded backend: one SQLite file (WAL, `synchronous = FULL`: a commit is on disk
//! before it returns) next to the coordinator's, used through blocking tasks: one
//! connection for writes, one for reads (WAL lets reads run beside a write). SQLite
//! has one writer at a time, so the owner check in each write transaction
//! (`BEGIN IMMEDIATE`) cannot interleave with a claim.

use super::{decide_claim, decide_fence, expiry_error, job_row, parse_state, Cells, Change, JobRow, JobStore, ListFilter, NewJob};
use crate::error::DevicesError;
use backon::{BackoffBuilder, ExponentialBuilder};
use mware_jobs::JobState;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::sql::LITE as SQL;

/// Pauses while another process switches a new file to WAL: from 20 ms doubling to 150 ms,
/// each lengthened by a random share of itself, 5 s of pauses in all.
const WAL_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(20))
    .with_max_delay(Duration::from_millis(150))
    .with_jitter()
    .without_max_times()
    .with_total_delay(Some(Duration::from_secs(5)));

/// SQLite store.
pub struct LiteStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

fn sql(e: rusqlite::Error) -> DevicesError {
    DevicesError::Store(format!("sqlite: {e}"))
}

impl Cells for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        Ok(self.get::<_, i64>(i)? != 0)
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    job_row(r)
}

fn fence(tx: &rusqlite::Transaction<'_>, epoch: u64) -> Result<(), DevicesError> {
    let e: Option<i64> = tx.query_row(&SQL.owner_epoch, [], |r| r.get(0)).optional().map_err(sql)?;
    decide_fence(e.map(|e| e as u64), epoch)
}

impl LiteStore {
    /// Opens (creates) the file.
    pub async fn open(path: PathBuf) -> Result<LiteStore, DevicesError> {
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<(Connection, Connection), DevicesError> {
            // Job parameters (SNMP communities, passwords) are in it: private, and its folder.
            mware_coord::fsmode::private_parent(&p)
                .and_then(|_| mware_coord::fsmode::private_sqlite(&p))
                .map_err(|e| DevicesError::Store(format!("cannot make {} and its folder private: {e}", p.display())))?;
            let c = Connection::open(&p).map_err(sql)?;
            c.busy_timeout(std::time::Duration::from_secs(10)).map_err(sql)?;
            // Two processes opening a new file at once may see SQLITE_BUSY switching to WAL.
            let mut pauses = WAL_RETRY.build();
            loop {
                match (c.pragma_update(None, "journal_mode", "WAL"), pauses.next()) {
                    (Ok(()), _) => break,
                    (Err(_), Some(pause)) => std::thread::sleep(pause),
                    (Err(e), None) => return Err(sql(e)),
                }
            }
            c.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
            c.execute_batch(&SQL.schema).map_err(sql)?;
            let r = Connection::open(&p).map_err(sql)?;
            r.busy_timeout(std::time::Duration::from_secs(10)).map_err(sql)?;
            Ok((c, r))
        })
        .await
        .map_err(|e| DevicesError::Store(format!("sqlite task: {e}")))??;
        let (conn, reader) = conn;
        Ok(LiteStore { path, conn: Arc::new(Mutex::new(conn)), reader: Arc::new(Mutex::new(reader)) })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DevicesError> + Send + 'static,
    ) -> Result<T, DevicesError> {
        Self::on(self.conn.clone(), f).await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DevicesError> + Send + 'static,
    ) -> Result<T, DevicesError> {
        Self::on(self.reader.clone(), f).await
    }

    async fn on<T: Send + 'static>(
        conn: Arc<Mutex<Connection>>,
        f: impl FnOnce(&mut Connection) -> Result<T, DevicesError> + Send + 'static,
    ) -> Result<T, DevicesError> {
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut c)
        })
        .await
        .map_err(|e| DevicesError::Store(format!("sqlite task: {e}")))?
    }

    async fn write<T: Send + 'static>(
        &self,
        epoch: u64,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, DevicesError> + Send + 'static,
    ) -> Result<T, DevicesError> {
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
            fence(&tx, epoch)?;
            let v = f(&tx)?;
            tx.commit().map_err(sql)?;
            Ok(v)
        })
        .await
    }
}

#[async_trait::async_trait]
impl JobStore for LiteStore {
    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    async fn claim(&self, group: u32, epoch: u64, instance: &str) -> Result<(), DevicesError> {
        let instance = instance.to_string();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
            let cur: Option<(i64, i64)> = tx.query_row(&SQL.owner_for_claim, [], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(sql)?;
            decide_claim(cur.map(|(g, e)| (g as u32, e as u64)), group, epoch, "the devicemanager file")?;
            tx.execute(&SQL.set_owner, params![group as i64, epoch as i64, instance]).map_err(sql)?;
            tx.commit().map_err(sql)
        })
        .await
    }

    async fn insert(&self, epoch: u64, jobs: Vec<NewJob>) -> Result<Vec<String>, DevicesError> {
        self.write(epoch, move |tx| {
            let mut ins = tx.prepare_cached(&SQL.insert).map_err(sql)?;
            let mut ids = vec![];
            for j in &jobs {
                let params = serde_json::to_string(&j.params).unwrap_or_else(|_| "{}".into());
                let n = ins
                    .execute(params![
                        j.id,
                        j.kind,
                        j.target,
                        j.satellite.clone().unwrap_or_default(),
                        params,
                        j.timeout_ms as i64,
                        j.idempotency_key,
                        j.created_ms as i64,
                        (j.created_ms + j.timeout_ms) as i64
                    ])
                    .map_err(sql)?;
                if n == 1 {
                    ids.push(j.id.clone());
                } else {
                    ids.push(tx.query_row(&SQL.id_by_key, [&j.idempotency_key], |r| r.get(0)).map_err(sql)?);
                }
            }
            Ok(ids)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<JobRow>, DevicesError> {
        let id = id.to_string();
        self.read(move |c| c.query_row(&SQL.get, [id], row).optional().map_err(sql)).await
    }

    async fn list(&self, f: ListFilter) -> Result<(Vec<JobRow>, u64), DevicesError> {
        self.read(move |c| {
            let state = f.state.map(|s| s.as_str().to_string());
            let sat = f.satellite.map(Option::unwrap_or_default);
            let (ms, id) = f.after.map_or((None, None), |(m, i)| (Some(m), Some(i)));
            let mut st = c.prepare_cached(&SQL.list).map_err(sql)?;
            let rows = st.query_map(params![state, sat, f.limit as i64, ms, id], row).map_err(sql)?;
            let rows = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)?;
            let total: i64 = c.query_row(&SQL.count, params![state, sat], |r| r.get(0)).map_err(sql)?;
            Ok((rows, total as u64))
        })
        .await
    }

    async fn unpublished(&self, limit: u32) -> Result<Vec<JobRow>, DevicesError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&SQL.unpublished).map_err(sql)?;
            let rows = st.query_map([limit as i64], row).map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn mark_published(&self, epoch: u64, ids: Vec<String>) -> Result<(), DevicesError> {
        self.write(epoch, move |tx| {
            let mut st = tx.prepare_cached(&SQL.mark_published).map_err(sql)?;
            for id in &ids {
                st.execute([id]).map_err(sql)?;
            }
            Ok(())
        })
        .await
    }

    async fn apply(&self, epoch: u64, changes: Vec<Change>) -> Result<Vec<bool>, DevicesError> {
        self.write(epoch, move |tx| {
            let mut out = vec![];
            for ch in &changes {
                let n = match ch {
                    Change::Started { id, attempt, poller, at_ms } => tx
                        .prepare_cached(&SQL.started)
                        .and_then(|mut s| s.execute(params![id, *attempt as i64, poller, *at_ms as i64]))
                        .map_err(sql)?,
                    Change::Finished { id, state, result, error, attempt, poller, at_ms } => {
                        let result = (!result.is_null()).then(|| result.to_string());
                        tx.prepare_cached(&SQL.finished)
                            .and_then(|mut s| s.execute(params![id, state.as_str(), result, error, *attempt as i64, poller, *at_ms as i64]))
                            .map_err(sql)?
                    }
                };
                out.push(n == 1);
            }
            Ok(out)
        })
        .await
    }

    async fn expire_due(&self, epoch: u64, now_ms: u64, grace_ms: u64) -> Result<Vec<(String, String)>, DevicesError> {
        self.write(epoch, move |tx| {
            let due: Vec<(String, String, i64, i64, String)> = {
                let mut st = tx.prepare_cached(&SQL.due).map_err(sql)?;
                let rows = st
                    .query_map(params![grace_ms as i64, now_ms as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                    .map_err(sql)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)?
            };
            let mut out = vec![];
            for (id, state, deadline, timeout, sat) in due {
                let err = expiry_error(&state, deadline as u64, timeout as u64);
                tx.execute(&SQL.expire, params![id, err, now_ms as i64]).map_err(sql)?;
                out.push((id, sat));
            }
            Ok(out)
        })
        .await
    }

    async fn purge(&self, epoch: u64, before_ms: u64, limit: u32) -> Result<u64, DevicesError> {
        self.write(epoch, move |tx| {
            let n = tx.execute(&SQL.purge, params![before_ms as i64, limit as i64]).map_err(sql)?;
            Ok(n as u64)
        })
        .await
    }

    async fn requeue_open(&self, epoch: u64) -> Result<u64, DevicesError> {
        self.write(epoch, |tx| {
            let n = tx.execute(&SQL.requeue_open, []).map_err(sql)?;
            Ok(n as u64)
        })
        .await
    }

    async fn open_counts(&self) -> Result<Vec<(String, JobState, u64)>, DevicesError> {
        self.read(|c| {
            let mut st = c.prepare_cached(&SQL.open_counts).map_err(sql)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, parse_state(&r.get::<_, String>(1)?), r.get::<_, i64>(2)? as u64)))
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mware_jobs::now_ms;

    fn job(id: &str, key: Option<&str>) -> NewJob {
        NewJob {
            id: id.into(),
            kind: "tcp.check".into(),
            target: "h:1".into(),
            satellite: None,
            params: Default::default(),
            timeout_ms: 1000,
            idempotency_key: key.map(str::to_string),
            created_ms: now_ms(),
        }
    }

    fn finish(id: &str, attempt: u32) -> Change {
        Change::Finished {
            id: id.into(),
            state: JobState::Done,
            result: serde_json::json!({"n": attempt}),
            error: None,
            attempt,
            poller: format!("p{attempt}"),
            at_ms: now_ms(),
        }
    }

    #[tokio::test]
    async fn fenced_idempotent_and_purged() {
        let dir = tempfile::tempdir().unwrap();
        let s = LiteStore::open(dir.path().join("dm.sqlite")).await.unwrap();
        s.claim(5, 10, "a").await.unwrap();
        assert_eq!(s.insert(10, vec![job("j1", Some("k")), job("j2", None)]).await.unwrap(), ["j1", "j2"]);
        // The same idempotency key answers the first job's id, nothing stored again.
        assert_eq!(s.insert(10, vec![job("j3", Some("k"))]).await.unwrap(), ["j1"]);
        // A result is recorded once: the second one changes nothing.
        assert_eq!(s.apply(10, vec![finish("j1", 1), finish("j1", 2)]).await.unwrap(), [true, false]);
        let j1 = s.get("j1").await.unwrap().unwrap();
        assert_eq!((j1.state, j1.result["n"].as_u64(), j1.poller.as_deref()), (JobState::Done, Some(1), Some("p1")));
        // A newer epoch claims: the old one's writes are refused, an older claim too.
        s.claim(5, 11, "b").await.unwrap();
        assert!(matches!(s.apply(10, vec![finish("j2", 1)]).await, Err(DevicesError::Fenced { mine: 10, theirs: 11 })));
        assert!(matches!(s.claim(5, 9, "c").await, Err(DevicesError::Fenced { .. })));
        assert!(s.claim(6, 12, "d").await.is_err(), "another group's jobs");
        // Only ended jobs past the limit are deleted.
        assert_eq!(s.purge(11, now_ms() + 1, 100).await.unwrap(), 1);
        assert!(s.get("j1").await.unwrap().is_none());
        assert_eq!(s.get("j2").await.unwrap().unwrap().state, JobState::Queued);
    }

    #[tokio::test]
    async fn the_list_pages_by_created_then_id_with_its_total() {
        let dir = tempfile::tempdir().unwrap();
        let s = LiteStore::open(dir.path().join("dm.sqlite")).await.unwrap();
        crate::store::check_paging(&s, |id| job(id, None)).await;
    }
}
