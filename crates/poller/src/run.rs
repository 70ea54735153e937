//! The poller's loop: connect (with backoff), consume, run, report, ack; drain on stop.
//! A job is reported `started` only when it runs longer than [`STARTED_AFTER`].

use backon::{BackoffBuilder, ExponentialBuilder};
use clap::Args;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use mware_jobs::amqp::{self as topo, RESULTS_QUEUE};
use mware_jobs::{execute, now_ms, JobMessage, Report, RunEnv};
use mware_ssh::HostKeyPolicy;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A job still running this long after it started is reported `running`.
pub const STARTED_AFTER: Duration = Duration::from_millis(100);
/// Pauses between reconnects to the broker: from 200 ms doubling to 15 s, each lengthened by
/// a random share of itself so replicas do not reconnect in step: at most [`RECONNECT_MAX`].
const RECONNECT: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(200))
    .with_max_delay(Duration::from_secs(15))
    .with_jitter()
    .without_max_times();
/// The longest pause between reconnects.
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// `mware poller`: runs device jobs taken from RabbitMQ. The broker's URL comes from the
/// environment variable `MWARE_AMQP_DSN` (`amqp://user:pass@host:5672/%2f`), never from
/// the command line.
#[derive(Debug, Clone, Args)]
pub struct PollerArgs {
    /// The satellite whose queue (`mware.jobs.sat.<ID>`) this poller serves; without it,
    /// the pool's (`mware.jobs.pool`). It must be listed in the group's
    /// `devicemanager.satellites` (mware declares the queues).
    #[arg(long, env = "MWARE_POLLER_SATELLITE")]
    pub satellite: Option<String>,
    /// Jobs run at once (the broker's prefetch).
    #[arg(long, env = "MWARE_POLLER_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// OpenSSH known_hosts file with the pinned host keys of the devices `ssh.exec` logs
    /// in to; a device whose key is not there is refused.
    #[arg(long, env = "MWARE_POLLER_KNOWN_HOSTS", default_value = "/var/lib/mware-poller/known_hosts")]
    pub known_hosts: PathBuf,
    /// Learn (append to --known-hosts, log at warn) the key of a device with no entry.
    #[arg(long, env = "MWARE_POLLER_TRUST_ON_FIRST_USE")]
    pub trust_on_first_use: bool,
    /// On SIGTERM, how long to finish the jobs in hand before returning them to the broker.
    #[arg(long, env = "MWARE_POLLER_DRAIN_TIMEOUT_MS", default_value_t = 20_000)]
    pub drain_timeout_ms: u64,
    /// Name shown in results and heartbeats (default: host name and process id).
    #[arg(long, env = "MWARE_POLLER_NAME")]
    pub name: Option<String>,
    /// How often the poller tells mware it is alive.
    #[arg(long, default_value_t = 5_000)]
    pub heartbeat_ms: u64,
}

/// Why the poller stopped.
#[derive(Debug, thiserror::Error)]
pub enum PollerError {
    /// Bad settings.
    #[error("{0}")]
    Config(String),
    /// The broker link failed (the poller reconnects; this ends one session).
    #[error("{0}")]
    Broker(String),
}

impl From<mware_jobs::JobError> for PollerError {
    fn from(e: mware_jobs::JobError) -> Self {
        PollerError::Broker(e.to_string())
    }
}

fn broker(what: &str) -> impl Fn(lapin::Error) -> PollerError + '_ {
    move |e| PollerError::Broker(format!("{what}: {}", topo::describe(&e)))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "poller".into())
}

struct Ctx {
    name: String,
    satellite: Option<String>,
    queue: String,
    env: RunEnv,
}

/// Runs the poller until `cancel` (SIGTERM/SIGINT), reconnecting after every failure.
pub async fn run(args: PollerArgs, cancel: CancellationToken) -> Result<(), PollerError> {
    let dsn = std::env::var("MWARE_AMQP_DSN").map_err(|_| {
        PollerError::Config(
            "expected the broker's URL in the environment variable MWARE_AMQP_DSN (amqp://user:pass@host:5672/%2f), found none".into(),
        )
    })?;
    if !(dsn.starts_with("amqp://") || dsn.starts_with("amqps://")) {
        return Err(PollerError::Config(
            "expected MWARE_AMQP_DSN to be an amqp:// or amqps:// URL, found another value (not shown)".into(),
        ));
    }
    if let Some(s) = &args.satellite {
        if !topo::is_satellite_id(s) {
            return Err(PollerError::Config(format!("--satellite: expected 1 to 64 latin letters, digits, '_' and '-', found {s:?}")));
        }
    }
    if args.concurrency == 0 {
        return Err(PollerError::Config("--concurrency: expected at least 1, found 0".into()));
    }
    let name = args.name.clone().unwrap_or_else(|| format!("{}-{}", host_name(), std::process::id()));
    let ctx = Arc::new(Ctx {
        name,
        satellite: args.satellite.clone(),
        queue: topo::job_queue(args.satellite.as_deref()),
        env: RunEnv::new(HostKeyPolicy { known_hosts: args.known_hosts.clone(), trust_on_first_use: args.trust_on_first_use }),
    });
    tracing::info!(poller = %ctx.name, queue = %ctx.queue, concurrency = args.concurrency, broker = %mware_config::mask_url_userinfo(&dsn), "poller starting");
    let mut pauses = RECONNECT.build();
    let mut failures = mware_jobs::amqp::FailureLog::new(mware_jobs::amqp::FAILURE_LOG_EVERY);
    loop {
        let mut up = false;
        let r = session(&ctx, &args, &dsn, &cancel, &mut up).await;
        if up {
            failures.recovered();
            pauses = RECONNECT.build();
        }
        let pause = pauses.next().unwrap_or(RECONNECT_MAX);
        match r {
            Ok(()) => {
                tracing::info!(poller = %ctx.name, "poller stopped");
                return Ok(());
            }
            Err(e) => {
                if let Some(attempts) = failures.failed(std::time::Instant::now()) {
                    tracing::warn!(poller = %ctx.name, error = %e, attempts, retry_in_ms = pause.as_millis() as u64,
                        "broker link lost; reconnecting (logged at most once per 30 s while it lasts)")
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

async fn session(ctx: &Arc<Ctx>, args: &PollerArgs, dsn: &str, cancel: &CancellationToken, up: &mut bool) -> Result<(), PollerError> {
    let conn = topo::connect(dsn, &format!("mware poller {}", ctx.name)).await?;
    let r = async {
        // A passive declare of a missing queue closes its channel: use one of its own.
        let check = conn.create_channel().await.map_err(broker("channel"))?;
        topo::check_exists(&check, &ctx.queue).await?;
        topo::check_exists(&check, RESULTS_QUEUE).await?;
        let _ = check.close(200, "checked").await;
        let jobs = conn.create_channel().await.map_err(broker("channel"))?;
        jobs.basic_qos(args.concurrency, BasicQosOptions::default()).await.map_err(broker("qos"))?;
        let out = conn.create_channel().await.map_err(broker("channel"))?;
        out.confirm_select(ConfirmSelectOptions::default()).await.map_err(broker("confirm mode"))?;
        let tag = format!("poller-{}", ctx.name);
        let mut consumer = jobs.basic_consume(&ctx.queue, &tag, BasicConsumeOptions::default(), FieldTable::default()).await.map_err(broker("consume"))?;
        *up = true;
        tracing::info!(poller = %ctx.name, queue = %ctx.queue, "connected; taking jobs");
        let mut tasks: JoinSet<Result<(), PollerError>> = JoinSet::new();
        let mut beat = tokio::time::interval(Duration::from_millis(args.heartbeat_ms.max(100)));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = jobs.basic_cancel(&tag, BasicCancelOptions::default()).await;
                    let n = tasks.len();
                    tracing::info!(poller = %ctx.name, jobs = n, "stopping: no new jobs; finishing the jobs in hand");
                    let drain = async { while tasks.join_next().await.is_some() {} };
                    if tokio::time::timeout(Duration::from_millis(args.drain_timeout_ms), drain).await.is_err() {
                        tracing::warn!(poller = %ctx.name, jobs = tasks.len(), "drain time is up: returning the unfinished jobs to the broker");
                        tasks.abort_all();
                    }
                    return Ok(());
                }
                _ = beat.tick() => {
                    let hb = Report::Heartbeat { poller: ctx.name.clone(), satellite: ctx.satellite.clone(), at_ms: now_ms() };
                    // Not persistent, no confirm awaited: a lost heartbeat is replaced by the next.
                    out.basic_publish("", RESULTS_QUEUE, BasicPublishOptions::default(), &serde_json::to_vec(&hb).unwrap_or_default(), BasicProperties::default())
                        .await
                        .map_err(broker("heartbeat"))?;
                }
                d = consumer.next() => {
                    let d = d.ok_or_else(|| PollerError::Broker("the broker closed the job consumer".into()))?.map_err(broker("job consumer"))?;
                    let (ctx, out) = (ctx.clone(), out.clone());
                    tasks.spawn(async move { handle(&ctx, &out, d).await });
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    match done {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Err(e),
                        Err(e) => tracing::error!(poller = %ctx.name, error = %e, "a job task panicked; its job returns to the broker"),
                    }
                }
            }
        }
    }
    .await;
    let _ = conn.close(200, "bye").await;
    r
}

async fn publish(out: &Channel, report: &Report, persistent: bool) -> Result<(), PollerError> {
    let body = serde_json::to_vec(report).unwrap_or_default();
    let props = if persistent { topo::persistent(None) } else { BasicProperties::default() };
    let confirm =
        out.basic_publish("", RESULTS_QUEUE, BasicPublishOptions::default(), &body, props).await.map_err(broker("publish a report"))?;
    if persistent {
        match confirm.await.map_err(broker("confirm of a report"))? {
            Confirmation::Ack(_) => {}
            other => return Err(PollerError::Broker(format!("the broker did not confirm a result ({other:?})"))),
        }
    }
    Ok(())
}

/// Runs one delivery: report started, run, publish the result with a confirm, then ack.
async fn handle(ctx: &Ctx, out: &Channel, d: Delivery) -> Result<(), PollerError> {
    let attempt = topo::attempt(&d.properties);
    let msg: JobMessage = match serde_json::from_slice(&d.data) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(poller = %ctx.name, error = %e, bytes = d.data.len(), "dropping a message that is not a job");
            d.acker.ack(BasicAckOptions::default()).await.map_err(broker("ack"))?;
            return Ok(());
        }
    };
    tracing::debug!(poller = %ctx.name, job = %msg.id, kind = %msg.kind, target = %msg.target, attempt, "job started");
    let run = execute(&msg, &ctx.env);
    tokio::pin!(run);
    // A job still running after STARTED_AFTER is reported `running`; a quicker one goes
    // straight to its result (one message less per job).
    let outcome = tokio::select! {
        o = &mut run => o,
        _ = tokio::time::sleep(STARTED_AFTER) => {
            publish(out, &Report::Started { id: msg.id.clone(), poller: ctx.name.clone(), attempt, at_ms: now_ms() }, false).await?;
            run.await
        }
    };
    tracing::info!(poller = %ctx.name, job = %msg.id, kind = %msg.kind, target = %msg.target, attempt, state = outcome.state.as_str(), "job ended");
    let r = Report::Result {
        id: msg.id.clone(),
        poller: ctx.name.clone(),
        attempt,
        state: outcome.state,
        result: outcome.result,
        error: outcome.error,
        at_ms: now_ms(),
    };
    publish(out, &r, true).await?;
    d.acker.ack(BasicAckOptions::default()).await.map_err(broker("ack"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reconnect pauses start near 200 ms, stay at most 30 s, and two pollers do not
    /// reconnect in step.
    #[test]
    fn reconnect_pauses_capped_and_spread() {
        let a: Vec<Duration> = RECONNECT.build().take(16).collect();
        let b: Vec<Duration> = RECONNECT.build().take(16).collect();
        assert!(a[0] >= Duration::from_millis(200) && a[0] < Duration::from_millis(400), "{a:?}");
        assert!(a.iter().all(|p| *p <= RECONNECT_MAX), "{a:?}");
        assert!(a[10..].iter().all(|p| *p >= Duration::from_secs(15)), "reaches the cap: {a:?}");
        assert_ne!(a, b);
    }
}
