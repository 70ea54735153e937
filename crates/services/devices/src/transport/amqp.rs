//! The broker link of the active instance: declares the topology, publishes jobs with
//! publisher confirms (persistent, expiring at the job's deadline), and consumes the
//! results queue and the dead-letter queue into the recorder. Reconnects with backoff
//! ([`RECONNECT`]); deliveries not yet acked when a link drops come again
//! from the broker and are recorded once.

use super::{message, Ack, Incoming, QueueInfo};
use crate::error::DevicesError;
use crate::metrics::Metrics;
use crate::store::JobRow;
use backon::{BackoffBuilder, ExponentialBuilder};
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use mware_config::Secret;
use mware_jobs::amqp::{self as topo, DEAD_QUEUE, RESULTS_QUEUE};
use mware_jobs::{now_ms, JobMessage, Report};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Reports taken from the broker before they are acked (the recorder batches them).
const PREFETCH: u16 = 1024;
/// Pauses between reconnects: from 200 ms doubling to 5 s, each lengthened by a random share
/// of itself: at most [`RECONNECT_MAX`].
const RECONNECT: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(200))
    .with_max_delay(Duration::from_secs(5))
    .with_jitter()
    .without_max_times();
/// The longest pause between reconnects.
const RECONNECT_MAX: Duration = Duration::from_secs(10);

struct Link {
    conn: Arc<Connection>,
    publish: Channel,
}

struct Shared {
    link: RwLock<Option<Arc<Link>>>,
    last_error: Mutex<Option<String>>,
    metrics: Metrics,
}

/// The broker link (cheap to clone).
#[derive(Clone)]
pub struct Amqp(Arc<Shared>);

/// What the link needs to know.
pub struct Settings {
    /// The DSN (`devicemanager.amqp`).
    pub dsn: Secret,
    /// Configured satellites (their queues are declared).
    pub satellites: Vec<String>,
    /// The queues' delivery limit.
    pub max_deliveries: u32,
    /// This instance, for the connection's name.
    pub instance: String,
}

impl Amqp {
    /// Starts the link's supervisor (it runs until `cancel`).
    pub fn start(settings: Settings, reports: mpsc::Sender<(Incoming, Ack)>, cancel: CancellationToken, metrics: Metrics) -> Amqp {
        let a = Amqp(Arc::new(Shared { link: RwLock::new(None), last_error: Mutex::new(None), metrics }));
        let me = a.clone();
        tokio::spawn(async move { me.supervise(settings, reports, cancel).await });
        a
    }

    fn link(&self) -> Option<Arc<Link>> {
        self.0.link.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_link(&self, l: Option<Arc<Link>>) {
        self.0.metrics.broker_up.set(i64::from(l.is_some()));
        *self.0.link.write().unwrap_or_else(|e| e.into_inner()) = l;
    }

    /// True while connected.
    pub fn connected(&self) -> bool {
        self.link().is_some()
    }

    /// The last connection problem, in words.
    pub fn last_error(&self) -> Option<String> {
        self.0.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn supervise(&self, s: Settings, reports: mpsc::Sender<(Incoming, Ack)>, cancel: CancellationToken) {
        let mut pauses = RECONNECT.build();
        let mut failures = mware_jobs::amqp::FailureLog::new(mware_jobs::amqp::FAILURE_LOG_EVERY);
        while !cancel.is_cancelled() {
            let mut up = false;
            let r = self.session(&s, &reports, &cancel, &mut up).await;
            self.set_link(None);
            if up {
                failures.recovered();
                pauses = RECONNECT.build();
            }
            match r {
                Ok(()) => break,
                Err(e) => {
                    if let Some(attempts) = failures.failed(std::time::Instant::now()) {
                        tracing::warn!(error = %e, attempts, "devicemanager: broker link lost; reconnecting (logged at most once per 30 s while it lasts)");
                    }
                    *self.0.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(pauses.next().unwrap_or(RECONNECT_MAX)) => {}
            }
        }
    }

    async fn session(
        &self,
        s: &Settings,
        reports: &mpsc::Sender<(Incoming, Ack)>,
        cancel: &CancellationToken,
        up: &mut bool,
    ) -> Result<(), DevicesError> {
        let conn = Arc::new(topo::connect(s.dsn.expose(), &format!("mware devicemanager ({})", s.instance)).await?);
        let result = async {
            let decl = conn.create_channel().await.map_err(mware_jobs::JobError::from)?;
            topo::declare_all(&decl, &s.satellites, s.max_deliveries).await?;
            let _ = decl.close(200, "declared").await;
            let publish = conn.create_channel().await.map_err(mware_jobs::JobError::from)?;
            publish.confirm_select(ConfirmSelectOptions::default()).await.map_err(mware_jobs::JobError::from)?;
            // One channel per consumer, so the recorder may ack a run of a channel's deliveries at once.
            let (rc, dc) = (conn.create_channel().await.map_err(mware_jobs::JobError::from)?, conn.create_channel().await.map_err(mware_jobs::JobError::from)?);
            rc.basic_qos(PREFETCH, BasicQosOptions::default()).await.map_err(mware_jobs::JobError::from)?;
            dc.basic_qos(PREFETCH, BasicQosOptions::default()).await.map_err(mware_jobs::JobError::from)?;
            let mut results = rc.basic_consume(RESULTS_QUEUE, "mware-results", BasicConsumeOptions::default(), FieldTable::default()).await.map_err(mware_jobs::JobError::from)?;
            let mut dead = dc.basic_consume(DEAD_QUEUE, "mware-dead", BasicConsumeOptions::default(), FieldTable::default()).await.map_err(mware_jobs::JobError::from)?;
            self.set_link(Some(Arc::new(Link { conn: conn.clone(), publish })));
            *self.0.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
            *up = true;
            tracing::info!("devicemanager: connected to the broker, queues declared");
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    d = results.next() => {
                        let d = d.ok_or_else(|| DevicesError::Broker("the results consumer was closed by the broker".into()))?
                            .map_err(|e| DevicesError::Broker(format!("results consumer: {}", topo::describe(&e))))?;
                        match serde_json::from_slice::<Report>(&d.data) {
                            Ok(r) => {
                                if reports.send((Incoming::Report(r), Ack::Amqp(0, d.acker))).await.is_err() {
                                    return Ok(());
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, bytes = d.data.len(), "devicemanager: dropping a message on the results queue that is not a report");
                                if reports.send((Incoming::Ignored, Ack::Amqp(0, d.acker))).await.is_err() {
                                    return Ok(());
                                }
                            }
                        }
                    }
                    d = dead.next() => {
                        let d = d.ok_or_else(|| DevicesError::Broker("the dead-letter consumer was closed by the broker".into()))?
                            .map_err(|e| DevicesError::Broker(format!("dead-letter consumer: {}", topo::describe(&e))))?;
                        let reason = topo::death_reason(&d.properties).unwrap_or_else(|| "unknown".into());
                        match serde_json::from_slice::<JobMessage>(&d.data) {
                            Ok(m) => {
                                let attempts = topo::attempt(&d.properties).saturating_sub(1);
                                if reports.send((Incoming::Dead { id: m.id, reason, attempts }, Ack::Amqp(1, d.acker))).await.is_err() {
                                    return Ok(());
                                }
                            }
                            Err(_) => {
                                if reports.send((Incoming::Ignored, Ack::Amqp(1, d.acker))).await.is_err() {
                                    return Ok(());
                                }
                            }
                        }
                    }
                }
            }
        }
        .await;
        let _ = conn.close(200, "bye").await;
        result
    }

    /// Publishes `jobs` (persistent, each expiring at its deadline) and waits for the
    /// broker's confirms.
    pub async fn publish(&self, jobs: &[JobRow], policy: &crate::targets::Policy) -> Result<(), DevicesError> {
        let link = self.link().ok_or_else(|| {
            DevicesError::Broker(format!("not connected to the broker{}", self.last_error().map(|e| format!(" ({e})")).unwrap_or_default()))
        })?;
        let now = now_ms();
        let mut confirms = Vec::with_capacity(jobs.len());
        for j in jobs {
            let body = serde_json::to_vec(&message(j, policy)).unwrap_or_default();
            let props = topo::persistent(Some(j.deadline_ms.saturating_sub(now)));
            let queue = topo::job_queue(j.satellite.as_deref());
            let c = link
                .publish
                .basic_publish("", &queue, BasicPublishOptions::default(), &body, props)
                .await
                .map_err(|e| DevicesError::Broker(format!("cannot publish to {queue}: {}", topo::describe(&e))))?;
            confirms.push(c);
        }
        for c in confirms {
            match c.await.map_err(|e| DevicesError::Broker(format!("no confirm from the broker: {}", topo::describe(&e))))? {
                Confirmation::Ack(_) => {}
                other => return Err(DevicesError::Broker(format!("the broker did not confirm a job ({other:?})"))),
            }
        }
        Ok(())
    }

    /// A job queue's depth and consumers.
    pub async fn queue(&self, satellite: Option<&str>) -> Option<QueueInfo> {
        let link = self.link()?;
        let ch = link.conn.create_channel().await.ok()?;
        let r = topo::check_exists(&ch, &topo::job_queue(satellite)).await.ok();
        let _ = ch.close(200, "looked").await;
        r.map(|(depth, consumers)| QueueInfo { depth, consumers })
    }
}
