//! Health of a server, read over a PostgreSQL connection as the replica user to
//! `pg_database`: recovery or not, timeline, LSNs, streaming replicas and their lag; and
//! for a standby, its version and the promotion trigger file it watches (so a promotion
//! touches the signal file only when the server would see it).
//! Columns a non-superuser cannot see come back as `None`.

use crate::config::ServerSpec;
use crate::error::{PgctlError, Result};
use serde::Serialize;
use std::time::Duration;
use tokio_postgres::Client;

/// What one probe saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    /// `pg_is_in_recovery()`.
    pub in_recovery: bool,
    /// Timeline (master: of its current WAL; standby: received).
    pub timeline: Option<u32>,
    /// Master: current WAL LSN; standby: last replayed LSN.
    pub lsn: Option<u64>,
    /// Standby: last received LSN.
    pub receive_lsn: Option<u64>,
    /// Standby: WAL receiver status (`streaming`, ...), when visible.
    pub wal_receiver: Option<String>,
    /// Master: replicas in state `streaming`.
    pub streaming_replicas: Option<i64>,
    /// Master: the largest replay lag of its replicas, bytes.
    pub replica_lag_bytes: Option<i64>,
    /// Standby: `server_version_num` (e.g. 150020), when read.
    pub server_version_num: Option<u32>,
    /// Standby: `promote_trigger_file` as the server has it (`""` when unset); `None` when
    /// the setting does not exist (PostgreSQL 16+) or could not be read.
    pub promote_trigger_file: Option<String>,
}

/// Parses `X/Y` into a byte position.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

async fn connect(s: &ServerSpec, timeout: Duration) -> Result<Client> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&s.pg_host)
        .port(s.pg_port)
        .user(&s.replica_user)
        .password(s.replica_pwd.expose())
        .dbname(&s.database)
        .application_name("mware-pgctl")
        .ssl_mode(s.ssl_mode)
        .connect_timeout(timeout);
    let fut = cfg.connect(s.tls.clone());
    let (client, conn) = tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| pg_err(s, format!("expected an answer within {} s, found none", timeout.as_secs())))?
        .map_err(|e| pg_err(s, describe(&e)))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn pg_err(s: &ServerSpec, reason: String) -> PgctlError {
    PgctlError::Pg { target: s.name.clone(), reason }
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                text = format!("{text}: {s}");
                src = s.source();
            }
            text
        }
    }
}

/// Probes a server.
pub async fn probe(s: &ServerSpec, timeout: Duration) -> Result<Health> {
    let c = connect(s, timeout).await?;
    let q = |e: tokio_postgres::Error| pg_err(s, describe(&e));
    let run = async {
        let row = c.query_one("SELECT pg_is_in_recovery()", &[]).await.map_err(q)?;
        let mut h = Health { in_recovery: row.get(0), ..Health::default() };
        if h.in_recovery {
            let row = c.query_one("SELECT pg_last_wal_replay_lsn()::text, pg_last_wal_receive_lsn()::text", &[]).await.map_err(q)?;
            h.lsn = row.get::<_, Option<String>>(0).as_deref().and_then(parse_lsn);
            h.receive_lsn = row.get::<_, Option<String>>(1).as_deref().and_then(parse_lsn);
            if let Ok(Some(r)) = c.query_opt("SELECT status, received_tli FROM pg_stat_wal_receiver", &[]).await {
                h.wal_receiver = r.get(0);
                h.timeline = r.get::<_, Option<i32>>(1).map(|t| t as u32);
            }
            // `current_setting(name, true)` is NULL for a setting that does not exist, as
            // `promote_trigger_file` on PostgreSQL 16+.
            if let Ok(r) =
                c.query_one("SELECT current_setting('server_version_num')::int, current_setting('promote_trigger_file', true)", &[]).await
            {
                h.server_version_num = r.get::<_, Option<i32>>(0).map(|v| v as u32);
                h.promote_trigger_file = r.get(1);
            }
        } else {
            let row = c
                .query_one("SELECT pg_current_wal_lsn()::text, substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)", &[])
                .await
                .map_err(q)?;
            h.lsn = row.get::<_, Option<String>>(0).as_deref().and_then(parse_lsn);
            h.timeline = row.get::<_, Option<String>>(1).and_then(|t| u32::from_str_radix(&t, 16).ok());
            if let Ok(r) = c
                .query_one(
                    "SELECT count(*) FILTER (WHERE state = 'streaming'), \
                     max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::bigint FROM pg_stat_replication",
                    &[],
                )
                .await
            {
                h.streaming_replicas = r.get(0);
                h.replica_lag_bytes = r.get(1);
            }
        }
        Ok(h)
    };
    tokio::time::timeout(timeout * 2, run)
        .await
        .map_err(|_| pg_err(s, format!("expected query answers within {} s, found none", (timeout * 2).as_secs())))?
}

/// Checks that `s` accepts writes: it is out of recovery and can assign a transaction id.
pub async fn accepts_writes(s: &ServerSpec, timeout: Duration) -> Result<()> {
    let c = connect(s, timeout).await?;
    let q = |e: tokio_postgres::Error| pg_err(s, describe(&e));
    let row = c.query_one("SELECT pg_is_in_recovery(), txid_current()::text", &[]).await.map_err(q)?;
    if row.get::<_, bool>(0) {
        return Err(PgctlError::Verify {
            what: format!("promoting {}", s.name),
            expected: "a server out of recovery".into(),
            found: "still in recovery".into(),
        });
    }
    Ok(())
}

/// Runs `CHECKPOINT` on `s` as the replica user (PostgreSQL 15: superuser or member of
/// `pg_checkpoint`).
pub async fn checkpoint(s: &ServerSpec, timeout: Duration) -> Result<()> {
    let c = connect(s, timeout).await?;
    tokio::time::timeout(timeout, c.batch_execute("CHECKPOINT"))
        .await
        .map_err(|_| pg_err(s, format!("expected CHECKPOINT to finish within {} s, it did not", timeout.as_secs())))?
        .map_err(|e| pg_err(s, describe(&e)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lsn() {
        assert_eq!(super::parse_lsn("0/3000060"), Some(0x3000060));
        assert_eq!(super::parse_lsn("1/0"), Some(1 << 32));
        assert_eq!(super::parse_lsn("junk"), None);
    }
}
