//! mware-poller: the remote worker of device jobs (`mware poller --satellite ID`).
//!
//! It connects out to RabbitMQ only (`MWARE_AMQP_DSN`; it opens no port), takes jobs
//! from its satellite's queue (`mware.jobs.sat.<id>`, or `mware.jobs.pool` without
//! `--satellite`) with a prefetch of `--concurrency`, runs each with
//! [`mware_jobs::execute`] (which resolves the target and checks every address against
//! the target rules the job carries before connecting), publishes the result to
//! `mware.results` with a publisher confirm and only then acks the job. A poller that dies mid-job leaves its jobs
//! unacked: the broker gives them to another replica (and dead-letters a job after
//! `devicemanager.max_deliveries` deliveries). It reconnects with backoff; on SIGTERM it
//! stops taking jobs, finishes those it has within `--drain-timeout-ms`, and returns the
//! rest to the broker by closing its connection.
#![deny(missing_docs)]

mod run;

pub use run::{run, PollerArgs, PollerError, STARTED_AFTER};
