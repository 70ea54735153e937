//! The SQL of the job store, written once for both backends. Statements are templates
//! with PostgreSQL's `$n` placeholders and a few tokens; [`Dialect`] renders them: the
//! differences (placeholders, integer and boolean types, `GREATEST`/`MAX`, row locks,
//! casts, the id list of `mark_published`) stand only here.

use std::sync::LazyLock;

/// The database a statement is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// tokio-postgres.
    Pg,
    /// rusqlite.
    Lite,
}

/// Token → (PostgreSQL, SQLite).
const TOKENS: &[(&str, &str, &str)] = &[
    ("{int8}", "BIGINT", "INTEGER"),
    ("{bool}", "BOOLEAN NOT NULL DEFAULT false", "INTEGER NOT NULL DEFAULT 0"),
    ("{unpublished}", "NOT published", "published = 0"),
    ("{published}", "published", "published = 1"),
    ("{true}", "true", "1"),
    ("{false}", "false", "0"),
    ("{max}", "GREATEST", "MAX"),
    ("{share}", " FOR SHARE", ""),
    ("{update}", " FOR UPDATE", ""),
    ("{text}", "::text", ""),
    ("{in_ids}", "= ANY($1)", "= $1"),
];

impl Dialect {
    /// `template` in this dialect.
    pub fn render(self, template: &str) -> String {
        let mut s = template.to_string();
        for (token, pg, lite) in TOKENS {
            s = s.replace(token, if self == Dialect::Pg { pg } else { lite });
        }
        if self == Dialect::Lite {
            s = s.replace('$', "?");
        }
        s
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dm_owner (k INTEGER PRIMARY KEY, grp {int8} NOT NULL, epoch {int8} NOT NULL, instance TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dm_jobs (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, satellite TEXT NOT NULL,
  params TEXT NOT NULL, timeout_ms {int8} NOT NULL, idempotency_key TEXT UNIQUE,
  state TEXT NOT NULL, result TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0, poller TEXT,
  published {bool}, created_ms {int8} NOT NULL, deadline_ms {int8} NOT NULL,
  started_ms {int8}, finished_ms {int8});
CREATE INDEX IF NOT EXISTS dm_jobs_open ON dm_jobs (deadline_ms) WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS dm_jobs_outbox ON dm_jobs (created_ms) WHERE {unpublished} AND state = 'queued';
CREATE INDEX IF NOT EXISTS dm_jobs_created ON dm_jobs (created_ms);
CREATE INDEX IF NOT EXISTS dm_jobs_finished ON dm_jobs (finished_ms) WHERE state IN ('done', 'failed', 'expired');
";

/// The columns of a [`super::JobRow`], in the order both backends read them.
const COLS: &str = "id, kind, target, satellite, params, timeout_ms, state, result, error, attempts, poller, published, created_ms, deadline_ms, started_ms, finished_ms";

/// Every statement of the store, rendered for one dialect.
pub struct Statements {
    /// Creates the tables and indexes.
    pub schema: String,
    /// The owner row, locked for the claim: `grp, epoch`.
    pub owner_for_claim: String,
    /// The owner's epoch, locked for a write.
    pub owner_epoch: String,
    /// Sets the owner: `$1` group, `$2` epoch, `$3` instance.
    pub set_owner: String,
    /// Inserts a job unless its idempotency key is known.
    pub insert: String,
    /// The id of the job with idempotency key `$1`.
    pub id_by_key: String,
    /// One job by id.
    pub get: String,
    /// Jobs by optional state `$1` and satellite `$2`, newest first, `$3` at most, after the
    /// cursor `($4 created_ms, $5 id)` when given (keyset paging: stable while jobs arrive).
    pub list: String,
    /// How many jobs the filter of `list` (`$1`, `$2`) matches in all.
    pub count: String,
    /// Queued jobs not yet published, oldest first, `$1` at most.
    pub unpublished: String,
    /// Marks ids published (PostgreSQL: an array `$1`; SQLite: one id `$1` per call).
    pub mark_published: String,
    /// A job started.
    pub started: String,
    /// A job ended.
    pub finished: String,
    /// Open jobs past their deadline plus `$1` at `$2`.
    pub due: String,
    /// Expires one job: `$1` id, `$2` error, `$3` time.
    pub expire: String,
    /// Deletes ended jobs finished before `$1`, `$2` at most.
    pub purge: String,
    /// Puts every published open job back in the outbox.
    pub requeue_open: String,
    /// Open jobs counted by satellite and state.
    pub open_counts: String,
}

impl Statements {
    fn new(d: Dialect) -> Statements {
        let r = |t: &str| d.render(t);
        Statements {
            schema: r(SCHEMA),
            owner_for_claim: r("SELECT grp, epoch FROM dm_owner WHERE k = 1{update}"),
            owner_epoch: r("SELECT epoch FROM dm_owner WHERE k = 1{share}"),
            set_owner: r("INSERT INTO dm_owner (k, grp, epoch, instance) VALUES (1, $1, $2, $3) \
                 ON CONFLICT (k) DO UPDATE SET grp = $1, epoch = $2, instance = $3"),
            insert: r(
                "INSERT INTO dm_jobs (id, kind, target, satellite, params, timeout_ms, idempotency_key, state, created_ms, deadline_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9) ON CONFLICT (idempotency_key) DO NOTHING",
            ),
            id_by_key: r("SELECT id FROM dm_jobs WHERE idempotency_key = $1"),
            get: r(&format!("SELECT {COLS} FROM dm_jobs WHERE id = $1")),
            list: r(&format!(
                "SELECT {COLS} FROM dm_jobs WHERE ($1{{text}} IS NULL OR state = $1) AND ($2{{text}} IS NULL OR satellite = $2) \
                 AND (CAST($4 AS {{int8}}) IS NULL OR created_ms < $4 OR (created_ms = $4 AND id < CAST($5 AS TEXT))) \
                 ORDER BY created_ms DESC, id DESC LIMIT $3"
            )),
            count: r("SELECT COUNT(*) FROM dm_jobs WHERE ($1{text} IS NULL OR state = $1) AND ($2{text} IS NULL OR satellite = $2)"),
            unpublished: r(&format!("SELECT {COLS} FROM dm_jobs WHERE {{unpublished}} AND state = 'queued' ORDER BY created_ms LIMIT $1")),
            mark_published: r("UPDATE dm_jobs SET published = {true} WHERE id {in_ids}"),
            started: r(
                "UPDATE dm_jobs SET state = 'running', attempts = {max}(attempts, $2), poller = $3, started_ms = COALESCE(started_ms, $4) \
                 WHERE id = $1 AND state IN ('queued', 'running')",
            ),
            finished: r(
                "UPDATE dm_jobs SET state = $2, result = $3, error = $4, attempts = {max}(attempts, $5), poller = $6, finished_ms = $7, \
                 published = {true} WHERE id = $1 AND state IN ('queued', 'running')",
            ),
            due: r("SELECT id, state, deadline_ms, timeout_ms, satellite FROM dm_jobs \
                 WHERE state IN ('queued', 'running') AND deadline_ms + $1 < $2{update}"),
            expire: r("UPDATE dm_jobs SET state = 'expired', error = $2, finished_ms = $3 WHERE id = $1"),
            purge: r("DELETE FROM dm_jobs WHERE id IN \
                 (SELECT id FROM dm_jobs WHERE state IN ('done', 'failed', 'expired') AND finished_ms < $1 LIMIT $2)"),
            requeue_open: r(
                "UPDATE dm_jobs SET published = {false}, state = 'queued' WHERE state IN ('queued', 'running') AND {published}",
            ),
            open_counts: r("SELECT satellite, state, count(*) FROM dm_jobs WHERE state IN ('queued', 'running') GROUP BY satellite, state"),
        }
    }
}

/// The statements for PostgreSQL.
pub static PG: LazyLock<Statements> = LazyLock::new(|| Statements::new(Dialect::Pg));
/// The statements for SQLite.
pub static LITE: LazyLock<Statements> = LazyLock::new(|| Statements::new(Dialect::Lite));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialects_differ_only_where_the_tokens_say() {
        assert_eq!(LITE.started.replace('?', "$").replace("MAX(", "GREATEST("), PG.started);
        assert_eq!(LITE.owner_epoch, "SELECT epoch FROM dm_owner WHERE k = 1");
        assert_eq!(PG.owner_epoch, "SELECT epoch FROM dm_owner WHERE k = 1 FOR SHARE");
        assert!(!LITE.schema.contains('{') && !PG.schema.contains('{') && !LITE.list.contains("::"));
    }
}
