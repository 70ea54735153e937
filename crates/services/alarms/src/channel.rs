//! One loop for every channel: take the alarms after the channel's cursor, send them in
//! order, move the cursor over what was sent (the writer persists it), and retry with a
//! growing pause while the far end is down, so the backlog goes out in order once it
//! is back. A far end that asks to wait (Telegram's 429 `retry_after`) is waited for.

use crate::alarm::Alarm;
use crate::metrics::Metrics;
use crate::store::Shared;
use backon::{BackoffBuilder, ExponentialBuilder};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Pauses between tries of a batch the channel refused (unless it says how long to wait):
/// from 200 ms doubling to 5 s, each lengthened by a random share of itself: at most
/// [`SEND_RETRY_MAX`].
const SEND_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(200))
    .with_max_delay(Duration::from_secs(5))
    .with_jitter()
    .without_max_times();
/// The longest pause between tries of a refused batch.
const SEND_RETRY_MAX: Duration = Duration::from_secs(10);

/// Why a send failed.
#[derive(Debug)]
pub struct SendError {
    /// What went wrong, for the log.
    pub reason: String,
    /// The far end asked to wait this long.
    pub retry_after: Option<Duration>,
}

impl SendError {
    /// Any failure.
    pub fn other(e: impl std::fmt::Display) -> Self {
        SendError { reason: e.to_string(), retry_after: None }
    }
}

/// A far end.
#[async_trait::async_trait]
pub trait Sink: Send {
    /// Its name: `snmp:<address>`, `telegram`.
    fn name(&self) -> String;
    /// Most alarms handed over at once.
    fn batch(&self) -> usize {
        256
    }
    /// Sends the alarms in order; `Ok(n)`: the first `n` went out.
    async fn send(&mut self, batch: &[Arc<Alarm>]) -> Result<usize, SendError>;
}

/// Runs one channel until `cancel`.
pub async fn run(mut sink: Box<dyn Sink>, shared: Arc<Shared>, metrics: Metrics, cancel: CancellationToken) {
    let name = sink.name();
    let mut pauses = SEND_RETRY.build();
    loop {
        let written = shared.written.notified();
        tokio::pin!(written);
        written.as_mut().enable();
        let (batch, backlog) = {
            let log = shared.log.lock().unwrap_or_else(|e| e.into_inner());
            (log.after(&name, sink.batch()), log.backlog(&name))
        };
        metrics.backlog(&name, backlog);
        if batch.is_empty() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = written => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let r = tokio::select! {
            _ = cancel.cancelled() => return,
            r = sink.send(&batch) => r,
        };
        match r {
            Ok(n) => {
                pauses = SEND_RETRY.build();
                if n > 0 {
                    let mut log = shared.log.lock().unwrap_or_else(|e| e.into_inner());
                    log.advance(&name, &batch[n - 1].key());
                    metrics.sent(&name, n as u64);
                }
            }
            Err(e) => {
                metrics.failed(&name);
                let wait = e.retry_after.unwrap_or_else(|| pauses.next().unwrap_or(SEND_RETRY_MAX));
                tracing::warn!(channel = %name, reason = %e.reason, backlog, retry_in_ms = wait.as_millis() as u64, "alarms: cannot send; retrying in order");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}
