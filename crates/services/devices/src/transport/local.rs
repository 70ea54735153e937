//! Jobs run in this process (no `devicemanager.amqp`): each published job becomes a task,
//! at most `concurrency` at once, running the same [`mware_jobs::execute`] a poller runs
//! and sending the same reports back.

use super::{message, Ack, Incoming};
use crate::store::JobRow;
use mware_jobs::{execute, now_ms, Report, RunEnv};
use std::sync::Arc;
use std::time::Duration;

/// A job still running this long is reported `running` (as a poller does).
const STARTED_AFTER: Duration = Duration::from_millis(100);
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

/// The in-process runner.
pub struct Local {
    env: RunEnv,
    slots: Arc<Semaphore>,
    reports: mpsc::Sender<(Incoming, Ack)>,
    cancel: CancellationToken,
}

/// The poller name in-process jobs report.
pub const LOCAL_POLLER: &str = "in-process";

impl Local {
    /// A runner of `concurrency` jobs at once reporting to `reports`.
    pub fn new(env: RunEnv, concurrency: usize, reports: mpsc::Sender<(Incoming, Ack)>, cancel: CancellationToken) -> Local {
        Local { env, slots: Arc::new(Semaphore::new(concurrency.max(1))), reports, cancel }
    }

    /// Starts a task for each job.
    pub fn publish(&self, jobs: &[JobRow], policy: &crate::targets::Policy) {
        for j in jobs {
            let msg = message(j, policy);
            let (env, slots, reports, cancel) = (self.env.clone(), self.slots.clone(), self.reports.clone(), self.cancel.clone());
            tokio::spawn(async move {
                let work = async {
                    let Ok(_slot) = slots.acquire_owned().await else {
                        return;
                    };
                    let run = execute(&msg, &env);
                    tokio::pin!(run);
                    // As a poller does: `running` only for a job that lasts (STARTED_AFTER).
                    let out = tokio::select! {
                        o = &mut run => o,
                        _ = tokio::time::sleep(STARTED_AFTER) => {
                            let started = Report::Started { id: msg.id.clone(), poller: LOCAL_POLLER.into(), attempt: 1, at_ms: now_ms() };
                            let _ = reports.send((Incoming::Report(started), Ack::None)).await;
                            run.await
                        }
                    };
                    let r = Report::Result {
                        id: msg.id.clone(),
                        poller: LOCAL_POLLER.into(),
                        attempt: 1,
                        state: out.state,
                        result: out.result,
                        error: out.error,
                        at_ms: now_ms(),
                    };
                    let _ = reports.send((Incoming::Report(r), Ack::None)).await;
                };
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = work => {}
                }
            });
        }
    }
}
