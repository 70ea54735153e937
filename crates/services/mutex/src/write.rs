//! Fenced coordinator writes of the mutex service, retried a bounded number of times
//! while the coordinator is unavailable, and why the writer stops when they fail.

use backon::{BackoffBuilder, ExponentialBuilder};
use mware_coord::{CoordError, Coordinator, Fence, KvOp};
use std::time::Duration;

/// Pauses between tries of a write the coordinator could not take: four, from 50 ms growing
/// 2.5-fold to 500 ms, each lengthened by a random share of itself (at most 2 s in all).
const WRITE_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(50))
    .with_factor(2.5)
    .with_max_delay(Duration::from_millis(500))
    .with_jitter()
    .with_max_times(4);

/// Why the writer stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The fence is stale: another instance is active.
    Fenced(String),
    /// The coordinator failed repeatedly.
    Failed(String),
    /// The activity was closed (the instance stops) and every queued change is written.
    Drained,
}

/// Why a coordinator write failed for good.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The fence is stale: another instance is active.
    Fenced(String),
    /// The coordinator failed repeatedly, or refused the write as invalid.
    Failed(String),
}

impl From<WriteError> for Stop {
    fn from(e: WriteError) -> Stop {
        match e {
            WriteError::Fenced(e) => Stop::Fenced(e),
            WriteError::Failed(e) => Stop::Failed(e),
        }
    }
}

/// Applies one batch: every chunk, in order, retrying only when the coordinator is
/// unavailable (each op sets a whole value, so a repeated chunk changes nothing).
pub(crate) async fn apply(coord: &dyn Coordinator, fence: &Fence, chunks: Vec<Vec<KvOp>>) -> Result<(), WriteError> {
    for chunk in chunks {
        let mut pauses = WRITE_RETRY.build().enumerate();
        loop {
            match coord.kv_apply(fence, chunk.clone()).await {
                Ok(_) => break,
                Err(e @ CoordError::Fenced { .. }) => return Err(WriteError::Fenced(e.to_string())),
                Err(e @ CoordError::Invalid(_)) => return Err(WriteError::Failed(e.to_string())),
                Err(e) => {
                    let Some((tries, pause)) = pauses.next() else { return Err(WriteError::Failed(e.to_string())) };
                    tracing::warn!(error = %e, attempt = tries + 1, retry_in_ms = pause.as_millis() as u64, "coordinator write failed; retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write the coordinator cannot take is tried four more times, with growing
    /// pauses that stay within 2 s in all, before the writer gives up.
    #[test]
    fn write_retries_are_bounded() {
        let p: Vec<Duration> = WRITE_RETRY.build().collect();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0] >= Duration::from_millis(50) && p[0] < Duration::from_millis(100), "{p:?}");
        assert!(p[2] >= Duration::from_millis(312), "grows: {p:?}");
        assert!(p.iter().sum::<Duration>() <= Duration::from_secs(2), "{p:?}");
    }
}
