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

/// An lapin error in words (lapin's messages carry no credentials).
pub fn describe(e: &lapin::Error) -> String {
    e.to_string().to_lowercase()
}

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
