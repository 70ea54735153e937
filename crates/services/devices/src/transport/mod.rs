//! How jobs reach whoever runs them and how their reports come back: RabbitMQ
//! ([`amqp`]) or, without a broker, tasks of this process ([`local`]). Both publish a
//! batch of stored jobs and push what comes back into the same channel of
//! [`Incoming`]s, which the recorder applies to the store: one path either way.

pub mod amqp;
pub mod local;

use crate::error::DevicesError;
use crate::store::JobRow;
use crate::targets::Policy;
use mware_jobs::Report;

/// Something that came back.
pub enum Incoming {
    /// A poller's report.
    Report(Report),
    /// The broker dead-lettered this job (`reason`: `delivery_limit`, `expired`, ...).
    Dead {
        /// Job id.
        id: String,
        /// The broker's reason.
        reason: String,
        /// Deliveries it had.
        attempts: u32,
    },
    /// A message that is not ours (logged where it was read): acked in its turn.
    Ignored,
}

/// How to acknowledge an [`Incoming`] once it is stored.
pub enum Ack {
    /// Nothing to acknowledge (in-process).
    None,
    /// A broker delivery on the channel of one consumer (`0`: results, `1`: dead letters).
    Amqp(u8, lapin::acker::Acker),
}

impl Ack {
    /// Acknowledges this delivery and every earlier one of its channel at once (the
    /// broker forgets them). Only for the last of a run of deliveries of one channel that
    /// are all stored: each consumer has a channel of its own and its deliveries reach the
    /// recorder in order.
    pub async fn ack_through(self) {
        if let Ack::Amqp(_, a) = self {
            if let Err(e) = a.ack(lapin::options::BasicAckOptions { multiple: true }).await {
                tracing::warn!(error = %mware_jobs::amqp::describe(&e), "devicemanager: cannot ack a report (it comes again: recorded once)");
            }
        }
    }

    /// Gives it back to the broker (it comes again).
    pub async fn nack(self) {
        if let Ack::Amqp(_, a) = self {
            let _ = a.nack(lapin::options::BasicNackOptions { requeue: true, multiple: false }).await;
        }
    }
}

/// Where jobs go.
pub enum Transport {
    /// In-process.
    Local(local::Local),
    /// RabbitMQ.
    Amqp(amqp::Amqp),
}

/// One job queue as the broker sees it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct QueueInfo {
    /// Messages ready in the queue.
    pub depth: u32,
    /// Consumers (pollers connected now).
    pub consumers: u32,
}

impl Transport {
    /// Hands `jobs` over; returns once each is confirmed (by the broker) or queued.
    pub async fn publish(&self, jobs: &[JobRow], policy: &Policy) -> Result<(), DevicesError> {
        match self {
            Transport::Local(l) => {
                l.publish(jobs, policy);
                Ok(())
            }
            Transport::Amqp(a) => a.publish(jobs, policy).await,
        }
    }

    /// The queue of a satellite (`None`: the pool), when the broker can say.
    pub async fn queue(&self, satellite: Option<&str>) -> Option<QueueInfo> {
        match self {
            Transport::Local(_) => None,
            Transport::Amqp(a) => a.queue(satellite).await,
        }
    }

    /// True when jobs can be handed over now.
    pub fn connected(&self) -> bool {
        match self {
            Transport::Local(_) => true,
            Transport::Amqp(a) => a.connected(),
        }
    }
}

/// The message of a stored job, with the target rules of its satellite.
pub fn message(j: &JobRow, policy: &Policy) -> mware_jobs::JobMessage {
    mware_jobs::JobMessage {
        id: j.id.clone(),
        kind: j.kind.clone(),
        target: j.target.clone(),
        params: j.params.clone(),
        deadline_ms: j.deadline_ms,
        rules: policy.rules(j.satellite.as_deref()),
    }
}
