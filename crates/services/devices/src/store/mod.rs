//! Where jobs and results live: PostgreSQL when `devicemanager.database` is set, else an
//! embedded SQLite file next to the coordinator's. Both keep the same table and the same
//! rules:
//!
//! - a job is stored (committed, fsynced) before the API answers 202;
//! - `published` is the outbox flag: set once the broker confirmed the message; jobs
//!   still unpublished are published again by the next activation;
//! - a result is recorded only while the job is `queued` or `running`, so a job run
//!   twice (redelivered) is recorded once, whichever result came first;
//! - **fencing**: the active instance writes its coordinator epoch into `dm_owner` when
//!   it starts (refused if a higher epoch is there already), and every write runs in a
//!   transaction that first locks that row (`FOR SHARE` in PostgreSQL, SQLite's one
//!   writer) and checks it still holds the epoch: once a newer instance has claimed,
//!   writes of a stale one are refused, and a claim waits for the stale one's writes in
//!   flight. Two instances overlapping for a moment therefore never both write.

mod pg;
mod sql;
mod sqlite;

use crate::error::DevicesError;
use mware_jobs::JobState;
use serde_json::{Map, Value};

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// `host:port`.
    pub target: String,
    /// Satellite (`None`: pool).
    pub satellite: Option<String>,
    /// Parameters (secrets included: the database is trusted like the site file).
    pub params: Map<String, Value>,
    /// Its time limit from acceptance.
    pub timeout_ms: u64,
    /// The caller's idempotency key.
    pub idempotency_key: Option<String>,
    /// Accepted at, ms since the Unix epoch.
    pub created_ms: u64,
}

/// A stored job.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Target.
    pub target: String,
    /// Satellite.
    pub satellite: Option<String>,
    /// Parameters.
    pub params: Map<String, Value>,
    /// Time limit.
    pub timeout_ms: u64,
    /// State.
    pub state: JobState,
    /// Result (null until done).
    pub result: Value,
    /// Error.
    pub error: Option<String>,
    /// Deliveries started.
    pub attempts: u32,
    /// The poller that recorded the last report.
    pub poller: Option<String>,
    /// Published to the broker (or the in-process queue).
    pub published: bool,
    /// Accepted at.
    pub created_ms: u64,
    /// Must end by.
    pub deadline_ms: u64,
    /// First started at.
    pub started_ms: Option<u64>,
    /// Ended at.
    pub finished_ms: Option<u64>,
}

/// A change a report asks for.
#[derive(Debug, Clone)]
pub enum Change {
    /// A poller started it.
    Started {
        /// Job id.
        id: String,
        /// Attempt number.
        attempt: u32,
        /// Poller.
        poller: String,
        /// When.
        at_ms: u64,
    },
    /// It ended.
    Finished {
        /// Job id.
        id: String,
        /// done, failed or expired.
        state: JobState,
        /// Result.
        result: Value,
        /// Error.
        error: Option<String>,
        /// Attempt number (0: not from a poller, e.g. dead-lettered).
        attempt: u32,
        /// Poller (or `mware` for dead letters).
        poller: String,
        /// When.
        at_ms: u64,
    },
}

/// Filters of a list.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    /// Only this state.
    pub state: Option<JobState>,
    /// Only this satellite (`Some(None)`: the pool).
    pub satellite: Option<Option<String>>,
    /// At most this many, newest first.
    pub limit: u32,
    /// Only jobs older than this `(created_ms, id)`: the last row of the previous page.
    pub after: Option<(i64, String)>,
}

/// What the engine and the API need of a job store. Each backend implements it with the
/// statements of [`sql`], rendered for its dialect; only running them (the driver, its
/// parameter types, its transactions) is written per backend.
#[async_trait::async_trait]
pub trait JobStore: Send + Sync {
    /// Which backend, for status.
    fn describe(&self) -> String;

    /// Claims the jobs for `epoch` of `group` (refused when a newer epoch, or another
    /// group, holds them).
    async fn claim(&self, group: u32, epoch: u64, instance: &str) -> Result<(), DevicesError>;

    /// Inserts jobs (all or none); a job whose idempotency key is stored already is not
    /// inserted again: the stored job's id is returned in its place.
    async fn insert(&self, epoch: u64, jobs: Vec<NewJob>) -> Result<Vec<String>, DevicesError>;

    /// One job.
    async fn get(&self, id: &str) -> Result<Option<JobRow>, DevicesError>;

    /// One page of jobs, newest first, and how many match the filter in all.
    async fn list(&self, f: ListFilter) -> Result<(Vec<JobRow>, u64), DevicesError>;

    /// Queued jobs not yet published, oldest first.
    async fn unpublished(&self, limit: u32) -> Result<Vec<JobRow>, DevicesError>;

    /// Marks jobs published.
    async fn mark_published(&self, epoch: u64, ids: Vec<String>) -> Result<(), DevicesError>;

    /// Applies reports in one transaction; for each, whether it changed the job (a
    /// second result of a job is `false`).
    async fn apply(&self, epoch: u64, changes: Vec<Change>) -> Result<Vec<bool>, DevicesError>;

    /// Ends `expired` every open job whose deadline passed more than `grace_ms` ago;
    /// returns their ids and satellites.
    async fn expire_due(&self, epoch: u64, now_ms: u64, grace_ms: u64) -> Result<Vec<(String, String)>, DevicesError>;

    /// Deletes up to `limit` jobs that ended before `before_ms`; returns how many.
    async fn purge(&self, epoch: u64, before_ms: u64, limit: u32) -> Result<u64, DevicesError>;

    /// Marks every open job unpublished, so the outbox hands it over again (in-process
    /// runs died with the process that ran them).
    async fn requeue_open(&self, epoch: u64) -> Result<u64, DevicesError>;

    /// Open jobs per satellite (`""`: the pool) and state.
    async fn open_counts(&self) -> Result<Vec<(String, JobState, u64)>, DevicesError>;
}

/// The store of this group's jobs: PostgreSQL or SQLite behind one [`JobStore`].
pub struct Store(Box<dyn JobStore>);

impl Store {
    /// Opens (and creates the table of) the PostgreSQL database at `dsn`.
    pub async fn postgres(dsn: &mware_config::Secret) -> Result<Store, DevicesError> {
        Ok(Store(Box::new(pg::PgStore::open(dsn).await?)))
    }

    /// Opens (and creates) the SQLite file at `path`.
    pub async fn sqlite(path: std::path::PathBuf) -> Result<Store, DevicesError> {
        Ok(Store(Box::new(sqlite::LiteStore::open(path).await?)))
    }
}

impl std::ops::Deref for Store {
    type Target = dyn JobStore;
    fn deref(&self) -> &(dyn JobStore + 'static) {
        self.0.as_ref()
    }
}

/// The columns of one row as the backends' drivers give them, so a [`JobRow`] is read
/// from either the same way.
pub(crate) trait Cells {
    /// The driver's error.
    type Error;
    /// An integer column (`BIGINT`/`INTEGER`).
    fn int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    /// A text column.
    fn text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    /// A flag (PostgreSQL `BOOLEAN`, SQLite `INTEGER` 0/1).
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
}

/// A job read from the columns of [`sql`]'s `COLS`, in their order.
pub(crate) fn job_row<C: Cells>(c: &C) -> Result<JobRow, C::Error> {
    let int = |i| -> Result<u64, C::Error> { Ok(c.int(i)?.unwrap_or(0) as u64) };
    let opt = |i| -> Result<Option<u64>, C::Error> { Ok(c.int(i)?.map(|v| v as u64)) };
    let text = |i| -> Result<String, C::Error> { Ok(c.text(i)?.unwrap_or_default()) };
    Ok(JobRow {
        id: text(0)?,
        kind: text(1)?,
        target: text(2)?,
        satellite: Some(text(3)?).filter(|s| !s.is_empty()),
        params: serde_json::from_str(&text(4)?).unwrap_or_default(),
        timeout_ms: int(5)?,
        state: parse_state(&text(6)?),
        result: c.text(7)?.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default(),
        error: c.text(8)?,
        attempts: int(9)? as u32,
        poller: c.text(10)?,
        published: c.flag(11)?,
        created_ms: int(12)?,
        deadline_ms: int(13)?,
        started_ms: opt(14)?,
        finished_ms: opt(15)?,
    })
}

/// The message of a job that expired in the store.
pub(crate) fn expiry_error(row_state: &str, deadline_ms: u64, timeout_ms: u64) -> String {
    let at = humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(deadline_ms));
    match row_state {
        "running" => format!("no result by its deadline {at} (timeout_ms {timeout_ms}): its poller started it but did not report back"),
        _ => format!("no poller took it by its deadline {at} (timeout_ms {timeout_ms})"),
    }
}

pub(crate) fn parse_state(s: &str) -> JobState {
    JobState::parse(s).unwrap_or(JobState::Failed)
}

/// Whether an instance of `group` at `epoch` may claim a store whose owner row holds
/// `current` (group, epoch); `store` names the store in the error.
pub(crate) fn decide_claim(current: Option<(u32, u64)>, group: u32, epoch: u64, store: &str) -> Result<(), DevicesError> {
    match current {
        Some((grp, _)) if grp != group => {
            Err(DevicesError::Store(format!("{store} holds the jobs of group {grp}: each group needs a store of its own")))
        }
        Some((_, theirs)) if theirs > epoch => Err(DevicesError::Fenced { mine: epoch, theirs }),
        _ => Ok(()),
    }
}

/// Whether a write at `epoch` may go on, the owner row holding `owner` (0 when none).
pub(crate) fn decide_fence(owner: Option<u64>, epoch: u64) -> Result<(), DevicesError> {
    match owner {
        Some(e) if e == epoch => Ok(()),
        other => Err(DevicesError::Fenced { mine: epoch, theirs: other.unwrap_or(0) }),
    }
}

/// The paging check both backends run: five jobs of one millisecond (the id breaks the
/// tie) read two at a time come newest first, each once, with the total on every page.
#[cfg(test)]
pub(crate) async fn check_paging(s: &dyn JobStore, job: impl Fn(&str) -> NewJob) {
    s.claim(5, 10, "a").await.unwrap();
    let mut jobs: Vec<_> = ["j1", "j2", "j3", "j4", "j5"].into_iter().map(job).collect();
    for j in &mut jobs {
        j.created_ms = 1000;
    }
    s.insert(10, jobs).await.unwrap();
    let (mut seen, mut after) = (vec![], None);
    loop {
        let (rows, total) = s.list(ListFilter { state: None, satellite: None, limit: 2, after: after.clone() }).await.unwrap();
        assert_eq!(total, 5);
        let Some(last) = rows.last() else { break };
        after = Some((last.created_ms as i64, last.id.clone()));
        seen.extend(rows.into_iter().map(|r| r.id));
    }
    assert_eq!(seen, ["j5", "j4", "j3", "j2", "j1"], "newest first, each once");
}
