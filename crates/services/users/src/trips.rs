//! Tripped abuse limits kept in the group's database (`limit_trips`), so that forcing a
//! failover does not reset a lockout: the active instance writes each [`Trip`] off the
//! request's path (a bounded queue to one writer; a refused request only enqueues, once a
//! minute per key), and the next active instance [`load`]s the trips not yet over at start
//! and puts them back into its limiter. A row holds the limit, a 64-bit hash of the key
//! and the time its bucket is full again; rows past that time are deleted.

use crate::error::Result;
use crate::limits::{Kind, Limiter, Trip};
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Trips waiting to be written at most (past it a trip is dropped and counted as such in
/// the log: the key is still refused here, only a failover in the next instant forgets it).
pub const QUEUE: usize = 4096;

/// The trips not yet over, each put back into `limits`; returns how many.
pub async fn load(pool: &Pool, limits: &Limiter) -> Result<usize> {
    let c = pool.get().await?;
    c.execute("DELETE FROM limit_trips WHERE full_at <= now()", &[]).await?;
    let rows =
        c.query("SELECT kind, key_hash, extract(epoch FROM full_at - now())::float8 FROM limit_trips WHERE full_at > now()", &[]).await?;
    let mut n = 0;
    for r in rows {
        let (kind, key, secs): (String, i64, f64) = (r.get(0), r.get(1), r.get(2));
        if let Some(kind) = Kind::from_label(&kind) {
            limits.restore(kind, key as u64, Duration::from_secs_f64(secs.max(0.0)));
            n += 1;
        }
    }
    Ok(n)
}

/// Writes one trip (a later `full_at` wins).
async fn write(pool: &Pool, t: &Trip) -> Result<()> {
    let c = pool.get().await?;
    let secs = t.full_in.as_secs_f64();
    c.execute(
        "INSERT INTO limit_trips (kind, key_hash, full_at) VALUES ($1, $2, now() + make_interval(secs => $3)) \
         ON CONFLICT (kind, key_hash) DO UPDATE SET full_at = GREATEST(limit_trips.full_at, EXCLUDED.full_at)",
        &[&t.kind.label(), &(t.key as i64), &secs],
    )
    .await?;
    Ok(())
}

/// Writes the trips of `rx` until `cancel`; a trip that cannot be written is tried again
/// a few times (the database may be restarting), then given up with a warning.
pub async fn run(pool: Pool, mut rx: mpsc::Receiver<Trip>, cancel: CancellationToken) {
    let mut swept = tokio::time::Instant::now();
    loop {
        let t = tokio::select! {
            t = rx.recv() => match t { Some(t) => t, None => return },
            _ = cancel.cancelled() => return,
        };
        let mut tries = 0;
        while let Err(e) = write(&pool, &t).await {
            tries += 1;
            if tries >= 5 || cancel.is_cancelled() {
                tracing::warn!(error = %e, limit = t.kind.label(), "users: a tripped limit could not be kept for the next active instance");
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * tries)).await;
        }
        if swept.elapsed() > Duration::from_secs(600) {
            swept = tokio::time::Instant::now();
            if let Ok(c) = pool.get().await {
                let _ = c.execute("DELETE FROM limit_trips WHERE full_at <= now()", &[]).await;
            }
        }
    }
}
