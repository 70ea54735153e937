//! The broker's topology and how to reach it (RabbitMQ, AMQP 0-9-1, through lapin on
//! tokio).
//!
//! - `mware.jobs.sat.<id>`: one quorum queue per satellite; `mware.jobs.pool`: jobs with
//!   no satellite. Durable, persistent messages, a delivery limit (`x-delivery-limit`):
//!   a job whose poller died or returned it that many times is dead-lettered through
//!   `mware.dlx` to `mware.jobs.dead`, as is a message whose deadline (`expiration`)
//!   passed in the queue.
//! - `mware.results`: reports from the pollers, consumed by the active mware instance.
//! - mware declares all of them ([`declare_all`], when its service starts); a poller
//!   only checks that its queue and the results queue exist ([`check_exists`]), so the
//!   queues' arguments have one author.

use crate::error::JobError;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::{Duration, Instant};

/// Jobs with no satellite.
pub const POOL_QUEUE: &str = "mware.jobs.pool";
/// Reports back to mware.
pub const RESULTS_QUEUE: &str = "mware.results";
/// Jobs dead-lettered (too many deliveries, or their deadline passed in the queue).
pub const DEAD_QUEUE: &str = "mware.jobs.dead";
/// The dead-letter exchange.
pub const DLX: &str = "mware.dlx";

/// The queue of a satellite (`None`: the pool).
pub fn job_queue(satellite: Option<&str>) -> String {
    match satellite {
        Some(s) => format!("mware.jobs.sat.{s}"),
        None => POOL_QUEUE.to_string(),
    }
}

/// True when `id` may name a satellite (and so a queue): 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn is_satellite_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub use crate::error::describe;

/// Connects to `dsn` (`amqp://user:pass@host:5672/%2f`) on the current tokio runtime;
/// `name` shows in RabbitMQ's connection list. Errors never carry the DSN.
pub async fn connect(dsn: &str, name: &str) -> Result<Connection, JobError> {
    let props = ConnectionProperties::default()
        .with_connection_name(name.into())
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    Connection::connect(dsn, props)
        .await
        .map_err(|e| JobError::Amqp(format!("cannot connect to the broker at {}: {}", mware_config::mask_url_userinfo(dsn), describe(&e))))
}

fn job_queue_args(max_deliveries: u32) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    t.insert("x-delivery-limit".into(), AMQPValue::LongInt(max_deliveries as i32));
    t.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(DLX.into()));
    t.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(DEAD_QUEUE.into()));
    t
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() }
}

/// Declares every queue and the dead-letter exchange (idempotent with the same
/// arguments; a queue declared earlier with another delivery limit is refused by the
/// broker, and the error says so).
pub async fn declare_all(ch: &Channel, satellites: &[String], max_deliveries: u32) -> Result<(), JobError> {
    ch.exchange_declare(DLX, ExchangeKind::Direct, ExchangeDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
        .await?;
    let mut quorum = FieldTable::default();
    quorum.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    ch.queue_declare(DEAD_QUEUE, durable(), quorum.clone()).await?;
    ch.queue_bind(DEAD_QUEUE, DLX, DEAD_QUEUE, QueueBindOptions::default(), FieldTable::default()).await?;
    ch.queue_declare(RESULTS_QUEUE, durable(), quorum).await?;
    let queues = std::iter::once(None).chain(satellites.iter().map(|s| Some(s.as_str())));
    for q in queues {
        let name = job_queue(q);
        ch.queue_declare(&name, durable(), job_queue_args(max_deliveries)).await.map_err(|e| {
            JobError::Amqp(format!(
                "cannot declare {name} (declared before with other arguments? the delivery limit is {max_deliveries}): {}",
                describe(&e)
            ))
        })?;
    }
    Ok(())
}

/// Checks that `queue` exists (a passive declare); returns its ready messages and
/// consumers.
pub async fn check_exists(ch: &Channel, queue: &str) -> Result<(u32, u32), JobError> {
    let q = ch
        .queue_declare(queue, QueueDeclareOptions { passive: true, durable: true, ..Default::default() }, FieldTable::default())
        .await
        .map_err(|e| {
            JobError::Amqp(format!("queue {queue} does not exist (mware declares it when its devicemanager starts): {}", describe(&e)))
        })?;
    Ok((q.message_count(), q.consumer_count()))
}

/// Properties of a persistent JSON message; `expiration_ms` lets the broker drop (and
/// dead-letter) it when it waited that long.
pub fn persistent(expiration_ms: Option<u64>) -> BasicProperties {
    let p = BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into());
    match expiration_ms {
        Some(ms) => p.with_expiration(ms.max(1).to_string().into()),
        None => p,
    }
}

/// The attempt number of a delivery: 1 + the broker's `x-delivery-count` (quorum queues).
pub fn attempt(props: &BasicProperties) -> u32 {
    let count = props.headers().as_ref().and_then(|h| h.inner().get("x-delivery-count").cloned());
    let n = match count {
        Some(AMQPValue::LongLongInt(n)) => n as u32,
        Some(AMQPValue::LongInt(n)) => n as u32,
        Some(AMQPValue::LongUInt(n)) => n,
        Some(AMQPValue::ShortInt(n)) => n as u32,
        _ => 0,
    };
    n + 1
}

/// Why a message was dead-lettered (`x-first-death-reason`: `expired`, `delivery_limit`,
/// `rejected`, ...).
pub fn death_reason(props: &BasicProperties) -> Option<String> {
    let h = props.headers().as_ref()?;
    match h.inner().get("x-first-death-reason")? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(ShortString::as_str(s).to_string()),
        _ => None,
    }
}

/// How often a broker link that keeps failing is logged: the first failure at once, then
/// one line per this period with the number of attempts (lapin's own per-attempt errors
/// are off in the daemon's default log filter).
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(30);

/// Decides which failures of a reconnect loop are logged: the first one, then at most
/// one per `every`, each carrying how many failed since the last line.
#[derive(Debug)]
pub struct FailureLog {
    every: Duration,
    last: Option<Instant>,
    unlogged: u32,
}

impl FailureLog {
    /// A log of failures, one line per `every` at most.
    pub fn new(every: Duration) -> Self {
        FailureLog { every, last: None, unlogged: 0 }
    }
    /// One more failure at `now`: `Some(n)` when it is to be logged, `n` counting it and
    /// the failures not logged before it.
    pub fn failed(&mut self, now: Instant) -> Option<u32> {
        self.unlogged += 1;
        if self.last.is_some_and(|l| now.duration_since(l) < self.every) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
    /// The link is up: the next failure is logged at once. Returns the failures not logged.
    pub fn recovered(&mut self) -> u32 {
        self.last = None;
        std::mem::take(&mut self.unlogged)
    }
}

#[cfg(test)]
mod failure_log_tests {
    use super::*;

    #[test]
    fn the_first_failure_then_one_line_per_period_with_the_count() {
        let t0 = Instant::now();
        let mut f = FailureLog::new(Duration::from_secs(30));
        assert_eq!(f.failed(t0), Some(1));
        let logged: Vec<Option<u32>> = (1..=9).map(|i| f.failed(t0 + Duration::from_secs(i * 4))).collect();
        // 4 s apart: 4..28 s are quiet, 32 s and 36 s: the first logs the 8 since t0.
        assert_eq!(logged.iter().filter(|x| x.is_some()).count(), 1, "{logged:?}");
        assert_eq!(logged[7], Some(8));
        assert_eq!(f.failed(t0 + Duration::from_secs(40)), None);
        assert_eq!(f.recovered(), 2);
        assert_eq!(f.failed(t0 + Duration::from_secs(41)), Some(1), "after a recovery the next failure is logged at once");
    }
}
