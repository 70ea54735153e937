//! The PostgreSQL backend (tokio-postgres, one connection reopened when it drops; every
//! write is one transaction that first locks the owner row, see the module above).

use super::{decide_claim, decide_fence, expiry_error, job_row, parse_state, Cells, Change, JobRow, JobStore, ListFilter, NewJob};
use crate::error::DevicesError;
use mware_config::Secret;
use tokio::sync::Mutex;
use tokio_postgres::{Client, Row, Transaction};

use super::sql::PG as SQL;

/// PostgreSQL store: one connection for writes (a transaction at a time), one for reads.
pub struct PgStore {
    dsn: Secret,
    writer: Mutex<Option<Client>>,
    reader: Mutex<Option<std::sync::Arc<Client>>>,
}

fn db(e: tokio_postgres::Error) -> DevicesError {
    // tokio-postgres's messages (and the server's) name no password.
    let mut msg = e.to_string();
    if let Some(d) = e.as_db_error() {
        msg = format!("{} ({})", d.message(), d.code().code());
    } else if let Some(src) = std::error::Error::source(&e) {
        msg = format!("{msg}: {src}");
    }
    DevicesError::Store(format!("postgresql: {msg}"))
}

impl Cells for Row {
    type Error = tokio_postgres::Error;
    fn int(&self, i: usize) -> Result<Option<i64>, Self::Error> {
        // `attempts` is an INTEGER (int4), the times BIGINT.
        self.try_get::<_, Option<i64>>(i).or_else(|_| Ok(self.try_get::<_, Option<i32>>(i)?.map(i64::from)))
    }
    fn text(&self, i: usize) -> Result<Option<String>, Self::Error> {
        self.try_get(i)
    }
    fn flag(&self, i: usize) -> Result<bool, Self::Error> {
        self.try_get(i)
    }
}

fn rows(rows: &[Row]) -> Result<Vec<JobRow>, DevicesError> {
    rows.iter().map(|r| job_row(r).map_err(db)).collect()
}

/// Locks the owner row and checks this instance still holds `epoch`.
async fn fence(tx: &Transaction<'_>, epoch: u64) -> Result<(), DevicesError> {
    let r = tx.query_opt(&SQL.owner_epoch, &[]).await.map_err(db)?;
    decide_fence(r.map(|r| r.get::<_, i64>(0) as u64), epoch)
}

async fn connect(dsn: &Secret) -> Result<Client, DevicesError> {
    let (client, conn) = mware_pg::connect(dsn.expose(), None, "devicemanager.database's sslrootcert").await.map_err(|e| match e {
        mware_pg::ConnectError::Db(e) => db(e),
        mware_pg::ConnectError::Setup(e) => DevicesError::Store(format!("devicemanager.database: {e}")),
    })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %db(e), "devicemanager database connection closed");
        }
    });
    Ok(client)
}

impl PgStore {
    /// Connects and creates the tables.
    pub async fn open(dsn: &Secret) -> Result<PgStore, DevicesError> {
        let c = connect(dsn).await?;
        c.batch_execute(&SQL.schema).await.map_err(db)?;
        Ok(PgStore { dsn: dsn.clone(), writer: Mutex::new(Some(c)), reader: Mutex::new(None) })
    }

    async fn reader(&self) -> Result<std::sync::Arc<Client>, DevicesError> {
        let mut slot = self.reader.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = std::sync::Arc::new(connect(&self.dsn).await?);
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn writer(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, DevicesError> {
        let mut slot = self.writer.lock().await;
        if slot.as_ref().is_none_or(|c| c.is_closed()) {
            *slot = Some(connect(&self.dsn).await?);
        }
        Ok(slot)
    }
}

#[async_trait::async_trait]
impl JobStore for PgStore {
    fn describe(&self) -> String {
        "postgresql".into()
    }

    async fn claim(&self, group: u32, epoch: u64, instance: &str) -> Result<(), DevicesError> {
        let mut g = self.writer().await?;
        let c = g.as_mut().expect("connected");
        let tx = c.transaction().await.map_err(db)?;
        let cur = tx.query_opt(&SQL.owner_for_claim, &[]).await.map_err(db)?;
        let cur = cur.map(|r| (r.get::<_, i64>(0) as u32, r.get::<_, i64>(1) as u64));
        decide_claim(cur, group, epoch, "devicemanager.database")?;
        tx.execute(&SQL.set_owner, &[&(group as i64), &(epoch as i64), &instance]).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn insert(&self, epoch: u64, jobs: Vec<NewJob>) -> Result<Vec<String>, DevicesError> {
        let mut g = self.writer().await?;
        let c = g.as_mut().expect("connected");
        let tx = c.transaction().await.map_err(db)?;
        fence(&tx, epoch).await?;
        let ins = tx.prepare(&SQL.insert).await.map_err(db)?;
        let mut ids = Vec::with_capacity(jobs.len());
        for j in &jobs {
            let params = serde_json::to_string(&j.params).unwrap_or_else(|_| "{}".into());
            let sat = j.satellite.clone().unwrap_or_default();
            let n = tx
                .execute(
                    &ins,
                    &[
                        &j.id,
                        &j.kind,
                        &j.target,
                        &sat,
                        &params,
                        &(j.timeout_ms as i64),
                        &j.idempotency_key,
                        &(j.created_ms as i64),
                        &((j.created_ms + j.timeout_ms) as i64),
                    ],
                )
                .await
                .map_err(db)?;
            if n == 1 {
                ids.push(j.id.clone());
            } else {
                let r = tx.query_one(&SQL.id_by_key, &[&j.idempotency_key]).await.map_err(db)?;
                ids.push(r.get(0));
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(ids)
    }

    async fn get(&self, id: &str) -> Result<Option<JobRow>, DevicesError> {
        let c = self.reader().await?;
        let r = c.query_opt(&SQL.get, &[&id]).await.map_err(db)?;
        r.as_ref().map(|r| job_row(r).map_err(db)).transpose()
    }

    async fn list(&self, f: ListFilter) -> Result<(Vec<JobRow>, u64), DevicesError> {
        let c = self.reader().await?;
        let state = f.state.map(|s| s.as_str().to_string());
        let sat = f.satellite.clone().map(Option::unwrap_or_default);
        let (ms, id) = f.after.map_or((None, None), |(m, i)| (Some(m), Some(i)));
        let found = c.query(&SQL.list, &[&state, &sat, &(f.limit as i64), &ms, &id]).await.map_err(db)?;
        let total: i64 = c.query_one(&SQL.count, &[&state, &sat]).await.map_err(db)?.get(0);
        Ok((rows(&found)?, total as u64))
    }

    async fn unpublished(&self, limit: u32) -> Result<Vec<JobRow>, DevicesError> {
        let c = self.reader().await?;
        rows(&c.query(&SQL.unpublished, &[&(limit as i64)]).await.map_err(db)?)
    }

    async fn mark_published(&self, epoch: u64, ids: Vec<String>) -> Result<(), DevicesError> {
        let mut g = self.writer().await?;
        let c = g.as_mut().expect("connected");
        let tx = c.transaction().await.map_err(db)?;
        fence(&tx, epoch).await?;
        tx.execute(&SQL.mark_published, &[&ids]).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn apply(&self, epoch: u64, changes: Vec<Change>) -> Result<Vec<bool>, DevicesError> {
        let mut g = self.writer().await?;
        let c = g.as_mut().expect("connected");
        let tx = c.transaction().await.map_err(db)?;
        fence(&tx, epoch).await?;
        let mut out = Vec::with_capacity(changes.len());
        for ch in &changes {
            let n = match ch {
                Change::Started { id, attempt, poller, at_ms } => {
                    tx.execute(&SQL.started, &[id, &(*attempt as i32), poller, &(*at_ms as i64)]).await.map_err(db)?
                }
                Change::Finished { id, state, result, error, attempt, poller, at_ms } => {
                    let result = (!result.is_null()).then(|| result.to_string());
                    tx.execute(&SQL.finished, &[id, &state.as_str(), &result, error, &(*attempt as i32), poller, &(*at_ms as i64)])
                        .await
                        .map_err(db)?
                }
            };
            out.push(n == 1);
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn expire_due(&self, epoch: u64, now_ms: u64, grace_ms: u64) -> Result<Vec<(String, String)>, DevicesError> {
        let mut g = self.writer().await?;
        let c = g.as_mut().expect("connected");
        let tx = c.transaction().await.map_err(db)?;
        fence(&tx, epoch).await?;
        let due = tx.query(&SQL.due, &[&(grace_ms as i64), &(now_ms as i64)]).await.map_err(db)?;
        let mut out = vec![];
        for r in &due {
            let id: String = r.get(0);
            let err = expiry_error(r.get(1), r.get::<_, i64>(2) as u64, r.get::<_, i64>(3) as u64);
            tx.execute(&SQL.expire, &[&id, &err, &(now_ms as i64)]).await.map_err(db)?;
            out.push((id, r.get(4)));
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn purge(&self, epoch: u64, before_ms: u64, limit: u32) -> Result<u64, DevicesError> {
        let mut g = self.writer().await?;
        let c = g.as_mut().expect("connected");
        let tx = c.transaction().await.map_err(db)?;
        fence(&tx, epoch).await?;
        let n = tx.execute(&SQL.purge, &[&(before_ms as i64), &(limit as i64)]).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(n)
    }

    async fn requeue_open(&self, epoch: u64) -> Result<u64, DevicesError> {
        let mut g = self.writer().await?;
        let c = g.as_mut().expect("connected");
        let tx = c.transaction().await.map_err(db)?;
        fence(&tx, epoch).await?;
        let n = tx.execute(&SQL.requeue_open, &[]).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(n)
    }

    async fn open_counts(&self) -> Result<Vec<(String, mware_jobs::JobState, u64)>, DevicesError> {
        let c = self.reader().await?;
        let rows = c.query(&SQL.open_counts, &[]).await.map_err(db)?;
        Ok(rows.iter().map(|r| (r.get(0), parse_state(r.get(1)), r.get::<_, i64>(2) as u64)).collect())
    }
}

#[cfg(test)]
mod tests {
    //! Against the machine's PostgreSQL on 5432, in a database of the test's own.
    use super::*;
    use mware_jobs::{now_ms, JobState};

    async fn fresh_db() -> (Secret, String) {
        let admin = connect(&Secret::new("host=127.0.0.1 port=5432 user=postgres dbname=postgres")).await.expect("postgresql on 5432");
        // Tests run in parallel threads: a counter keeps two databases of one millisecond apart.
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("mware_dm_unit_{}_{}_{n}", std::process::id(), now_ms() % 1_000_000);
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        (Secret::new(format!("host=127.0.0.1 port=5432 user=postgres dbname={name}")), name)
    }

    async fn drop_db(name: &str) {
        let admin = connect(&Secret::new("host=127.0.0.1 port=5432 user=postgres dbname=postgres")).await.unwrap();
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }

    fn job(id: &str) -> NewJob {
        NewJob {
            id: id.into(),
            kind: "tcp.check".into(),
            target: "h:1".into(),
            satellite: Some("sat1".into()),
            params: Default::default(),
            timeout_ms: 1000,
            idempotency_key: None,
            created_ms: now_ms(),
        }
    }

    #[tokio::test]
    async fn two_instances_overlapping_never_both_write() {
        let (dsn, name) = fresh_db().await;
        let old = PgStore::open(&dsn).await.unwrap();
        old.claim(5, 10, "a10").await.unwrap();
        old.insert(10, vec![job("j1"), job("j2")]).await.unwrap();
        // The next active instance claims with its higher epoch while the old one still runs.
        let new = PgStore::open(&dsn).await.unwrap();
        new.claim(5, 11, "a20").await.unwrap();
        let done = |id: &str| Change::Finished {
            id: id.into(),
            state: JobState::Done,
            result: serde_json::json!({}),
            error: None,
            attempt: 1,
            poller: "p".into(),
            at_ms: now_ms(),
        };
        assert!(matches!(old.apply(10, vec![done("j1")]).await, Err(DevicesError::Fenced { mine: 10, theirs: 11 })));
        assert!(matches!(old.insert(10, vec![job("j3")]).await, Err(DevicesError::Fenced { .. })));
        assert!(matches!(old.expire_due(10, now_ms() + 10_000, 0).await, Err(DevicesError::Fenced { .. })));
        assert!(matches!(old.claim(5, 10, "a10").await, Err(DevicesError::Fenced { .. })));
        assert_eq!(new.apply(11, vec![done("j1"), done("j1")]).await.unwrap(), [true, false]);
        let unpublished: Vec<String> = new.unpublished(10).await.unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(unpublished, ["j2"], "j1 ended; j2 still waits for the outbox");
        assert!(new.claim(6, 12, "x").await.is_err(), "another group's jobs");
        drop((old, new));
        drop_db(&name).await;
    }

    #[tokio::test]
    async fn the_list_pages_by_created_then_id_with_its_total() {
        let (dsn, name) = fresh_db().await;
        let s = PgStore::open(&dsn).await.unwrap();
        crate::store::check_paging(&s, job).await;
        drop_db(&name).await;
    }
}
