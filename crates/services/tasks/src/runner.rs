//! One task on the active instance: a loop that asks [`decide`] what to do, does it
//! (start a run, record a skipped or missed slot, queue a slot, end a run), and waits
//! for the next slot, the end of the run in progress, or a manual run request.
//!
//! Every start is written to the coordinator (fenced) before its process starts; every
//! end is written when it is known. When the activity ends, the run in progress is
//! killed and its end written if the coordinator still takes it; otherwise the next
//! active instance finds it `running` and marks it `lost`.

use crate::decide::{decide, decide_manual, local, Decision, Manual, Running, Schedule, Snapshot};
use crate::metrics::TaskLabels;
use crate::restore::{record_missed, restore};
use crate::section::ServiceTask;
use crate::store::{self, Outcome, Run, TaskState};
use crate::TasksError;
use backon::{BackoffBuilder, ExponentialBuilder};
use mware_coord::now_ms;
use mware_host::exec::{self, Ending, Finished, Spec, StartError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Pauses between tries to record a run that ended: two more tries, from 250 ms doubling,
/// each lengthened by a random share of itself.
const SAVE_RETRY: ExponentialBuilder = ExponentialBuilder::new().with_min_delay(Duration::from_millis(250)).with_jitter().with_max_times(2);

pub use crate::view::{ManualAnswer, Request, RunningView, Statuses, TaskCtx, TaskStatus};

/// Bytes of stdout and stderr kept per run.
pub const TAIL_BYTES: usize = 4096;
/// How long a run ended by the end of activity may take to stop before it is killed.
const STOP_WAIT: Duration = Duration::from_millis(300);

struct Current {
    run: Run,
    kill: CancellationToken,
    handle: JoinHandle<Result<Finished, StartError>>,
}

struct Task {
    cfg: ServiceTask,
    schedule: Schedule,
    cx: TaskCtx,
    st: TaskState,
    current: Option<Current>,
    reason: String,
}

/// Runs task `cfg` until `cx.cancel`. Returns an error when the coordinator refuses a
/// write because this instance is no longer active.
pub async fn run_task(cfg: ServiceTask, cx: TaskCtx, mut rx: mpsc::Receiver<Request>) -> Result<(), TasksError> {
    let schedule = Schedule::parse(&cfg.schedule).map_err(|e| TasksError::Schedule(cfg.name.clone(), e))?;
    let st = restore(&cfg, &cx).await?;
    let mut t = Task { cfg, schedule, cx, st, current: None, reason: String::new() };
    // Requests stop once the service drops the sender (it is stopping this loop): the
    // loop then waits for its cancel; a closed channel must not be waited on, it is
    // always ready (it used to park the loop for good, so a stop hung).
    let mut requests_open = true;
    loop {
        let d = decide(&t.schedule, &t.snapshot());
        let until = match d {
            Decision::Wait { until_ms } => until_ms,
            d => {
                if let Err(e) = t.act(d, "schedule").await {
                    if e.is_fenced() {
                        t.stop("the coordinator refused a write: this instance is no longer active").await;
                        return Err(e);
                    }
                    tracing::warn!(task = %t.cfg.name, error = %e, "cannot record a scheduling step; retrying in 1 s");
                    t.sleep_or_cancel(Duration::from_secs(1)).await;
                }
                if t.cx.cancel.is_cancelled() {
                    t.stop("this instance stopped being active").await;
                    return Ok(());
                }
                continue;
            }
        };
        t.show(until, &d.to_string());
        let sleep = async {
            match until {
                Some(u) => tokio::time::sleep(Duration::from_millis(u.saturating_sub(now_ms()))).await,
                None => std::future::pending().await,
            }
        };
        let ended = async {
            match t.current.as_mut() {
                Some(c) => (&mut c.handle).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = t.cx.cancel.cancelled() => {
                t.stop("this instance stopped being active").await;
                return Ok(());
            }
            _ = sleep => {}
            r = ended => {
                let r = r.unwrap_or_else(|e| Err(StartError { program: "?".into(), source: std::io::Error::other(e.to_string()) }));
                t.finish(r).await.inspect_err(|e| tracing::error!(task = %t.cfg.name, error = %e, "cannot record the end of a run"))?;
            }
            req = rx.recv(), if requests_open => match req {
                Some(Request::RunNow(answer)) => {
                    let a = t.manual().await;
                    if let Err(e) = &a {
                        tracing::info!(task = %t.cfg.name, reason = %e, "manual run refused");
                    }
                    let _ = answer.send(a);
                }
                None => requests_open = false,
            },
        }
    }
}

impl Task {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            now_ms: now_ms(),
            last_slot_ms: self.st.last_slot_ms,
            running: self.current.as_ref().map(|c| Running { id: c.run.id, started_ms: c.run.started_ms.unwrap_or(0) }),
            queued_ms: self.st.queued_ms,
            overlap: self.cfg.overlap,
        }
    }

    /// Publishes the task's status (and logs a new reason once).
    fn show(&mut self, next_ms: Option<u64>, reason: &str) {
        if reason != self.reason {
            tracing::debug!(task = %self.cfg.name, "{reason}");
            self.reason = reason.to_string();
        }
        let s = TaskStatus {
            name: self.cfg.name.clone(),
            schedule: self.cfg.schedule.clone(),
            command: crate::view::redacted_argv(&self.cfg.command),
            overlap: self.cfg.overlap.to_string(),
            timeout_s: self.cfg.timeout_s,
            next_ms,
            running: self.current.as_ref().map(|c| RunningView { id: c.run.id, started_ms: c.run.started_ms.unwrap_or(0) }),
            queued_ms: self.st.queued_ms,
            reason: reason.to_string(),
        };
        self.cx.statuses.lock().unwrap_or_else(|e| e.into_inner()).insert(self.cfg.name.clone(), s);
    }

    async fn sleep_or_cancel(&self, d: Duration) {
        tokio::select! {
            _ = self.cx.cancel.cancelled() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }

    /// Does what a decision other than `Wait` says; the state changes only once written.
    async fn act(&mut self, d: Decision, trigger: &str) -> Result<(), TasksError> {
        tracing::info!(task = %self.cfg.name, "{d}");
        let mut st = self.st.clone();
        let mut records = vec![];
        if let Some(m) = d.missed() {
            records.push(record_missed(&self.cfg, &self.cx, &mut st, m, "no active instance ran the task then"));
        }
        match d {
            Decision::Wait { .. } => {}
            Decision::Missed(m) => {
                st.last_slot_ms = st.last_slot_ms.max(m.last_ms);
                self.save(&st, &records).await?;
            }
            Decision::Skip { slot_ms, .. } => {
                st.last_slot_ms = slot_ms;
                let id = st.next_id;
                st.next_id += 1;
                let mut r = self.new_run(id, trigger, Some(slot_ms), Outcome::Skipped, d.to_string());
                r.started_ms = None;
                records.push(r);
                self.save(&st, &records).await?;
                self.cx.metrics.outcome(&self.cfg.name, "skipped", 1);
            }
            Decision::Queue { slot_ms, .. } => {
                st.last_slot_ms = slot_ms;
                st.queued_ms = Some(slot_ms);
                self.save(&st, &records).await?;
            }
            Decision::KillAndRun { slot_ms, .. } => {
                self.save(&st, &records).await?;
                self.st = st;
                self.end_current(&format!("ended by the slot of {} (overlap kill)", local(slot_ms))).await?;
                self.start(Some(slot_ms), trigger).await?;
                return Ok(());
            }
            Decision::Run { slot_ms, queued, .. } => {
                self.save(&st, &records).await?;
                self.st = st;
                self.start(Some(slot_ms), if queued { "queue" } else { trigger }).await?;
                return Ok(());
            }
        }
        self.st = st;
        Ok(())
    }

    fn new_run(&self, id: u64, trigger: &str, slot_ms: Option<u64>, outcome: Outcome, reason: String) -> Run {
        Run {
            id,
            trigger: trigger.into(),
            slot_ms,
            outcome,
            instance: self.cx.instance.clone(),
            epoch: self.cx.fence.epoch,
            started_ms: Some(now_ms()),
            finished_ms: None,
            duration_ms: None,
            exit_code: None,
            signal: None,
            reason,
            stdout_tail: String::new(),
            stderr_tail: String::new(),
        }
    }

    async fn save(&self, st: &TaskState, runs: &[Run]) -> Result<(), TasksError> {
        let refs: Vec<&Run> = runs.iter().collect();
        let protect = self.current.as_ref().map(|c| c.run.id);
        store::save(self.cx.coord.as_ref(), &self.cx.fence, &self.cfg.name, st, &refs, self.cfg.history, protect).await?;
        Ok(())
    }

    /// Claims a run (fenced write), then starts its process.
    async fn start(&mut self, slot_ms: Option<u64>, trigger: &str) -> Result<u64, TasksError> {
        let mut st = self.st.clone();
        if let Some(s) = slot_ms {
            st.last_slot_ms = st.last_slot_ms.max(s);
        }
        if trigger == "queue" {
            st.queued_ms = None;
        }
        let id = st.next_id;
        st.next_id += 1;
        let reason = match slot_ms {
            Some(s) if trigger != "manual" => format!("running on {} for the slot of {}", self.cx.instance, local(s)),
            _ => format!("running on {}, started on request", self.cx.instance),
        };
        let run = self.new_run(id, trigger, slot_ms, Outcome::Running, reason);
        self.save(&st, std::slice::from_ref(&run)).await?;
        self.st = st;
        let spec = Spec {
            argv: self.cfg.command.clone(),
            env: self.cfg.env.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect(),
            working_dir: self.cfg.working_dir.clone(),
            timeout: Duration::from_secs(self.cfg.timeout_s),
            tail_bytes: TAIL_BYTES,
        };
        let kill = CancellationToken::new();
        let log = self.cx.log.clone();
        log.event(id, &format!("started ({trigger}): {:?}", self.cfg.command));
        tracing::info!(task = %self.cfg.name, run = id, trigger, "run started");
        let on_line: exec::OnLine = Arc::new(move |stream, line| log.output(id, stream, line));
        let k = kill.clone();
        let handle = tokio::spawn(async move { exec::run(&spec, &k, on_line).await });
        self.cx.metrics.running.get_or_create(&TaskLabels { task: self.cfg.name.clone() }).set(1);
        self.current = Some(Current { run, kill, handle });
        Ok(id)
    }

    /// Records the end of the run in progress.
    async fn finish(&mut self, r: Result<Finished, StartError>) -> Result<(), TasksError> {
        let Some(c) = self.current.take() else {
            return Ok(());
        };
        let mut run = c.run;
        let timeout = Duration::from_secs(self.cfg.timeout_s);
        let now = now_ms();
        run.finished_ms = Some(now);
        run.duration_ms = Some(now.saturating_sub(run.started_ms.unwrap_or(now)));
        match r {
            Ok(f) => {
                run.outcome = match f.ending {
                    Ending::TimedOut => Outcome::Timeout,
                    Ending::Killed => Outcome::Killed,
                    Ending::Exited if f.success() => Outcome::Ok,
                    Ending::Exited => Outcome::Failed,
                };
                run.duration_ms = Some(f.duration.as_millis() as u64);
                run.exit_code = f.exit_code;
                run.signal = f.signal;
                let what = f.describe(timeout);
                run.reason = if run.outcome == Outcome::Killed && !run.reason.is_empty() && run.reason.starts_with("ended by") {
                    format!("{}; {what}", run.reason)
                } else {
                    what
                };
                run.stdout_tail = f.stdout_tail;
                run.stderr_tail = f.stderr_tail;
                self.cx.metrics.duration.get_or_create(&TaskLabels { task: self.cfg.name.clone() }).observe(f.duration.as_secs_f64());
            }
            Err(e) => {
                run.outcome = Outcome::Failed;
                run.reason = e.to_string();
            }
        }
        let labels = TaskLabels { task: self.cfg.name.clone() };
        self.cx.metrics.running.get_or_create(&labels).set(0);
        self.cx.metrics.outcome(&self.cfg.name, run.outcome.as_str(), 1);
        if run.outcome == Outcome::Ok {
            self.cx.metrics.last_success.get_or_create(&labels).set((now / 1000) as i64);
        }
        self.cx.log.event(run.id, &format!("{}: {}", run.outcome.as_str(), run.reason));
        tracing::info!(task = %self.cfg.name, run = run.id, outcome = run.outcome.as_str(), reason = %run.reason, "run ended");
        let st = self.st.clone();
        let mut pauses = SAVE_RETRY.build();
        loop {
            let last = self.save(&st, std::slice::from_ref(&run)).await;
            match (&last, pauses.next()) {
                (Err(e), Some(pause)) if !e.is_fenced() => tokio::time::sleep(pause).await,
                _ => return last,
            }
        }
    }

    /// Ends the run in progress (SIGTERM to its group, SIGKILL later) and records it.
    async fn end_current(&mut self, why: &str) -> Result<(), TasksError> {
        let Some(c) = self.current.as_mut() else {
            return Ok(());
        };
        c.run.reason = why.to_string();
        c.kill.cancel();
        let r =
            (&mut c.handle).await.unwrap_or_else(|e| Err(StartError { program: "?".into(), source: std::io::Error::other(e.to_string()) }));
        self.finish(r).await
    }

    /// The activity ended: the run in progress is killed at once; its end is recorded if
    /// the coordinator still takes this instance's writes (a clean stop), else the next
    /// active instance marks it lost.
    async fn stop(&mut self, why: &str) {
        self.cx.statuses.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.cfg.name);
        let Some(c) = self.current.as_mut() else {
            return;
        };
        c.run.reason = format!("ended by {why}");
        c.kill.cancel();
        let r = match tokio::time::timeout(STOP_WAIT, &mut c.handle).await {
            Ok(r) => r.unwrap_or_else(|e| Err(StartError { program: "?".into(), source: std::io::Error::other(e.to_string()) })),
            Err(_) => {
                c.handle.abort(); // drops the run: its process group is killed
                let _ = (&mut c.handle).await;
                Ok(Finished {
                    ending: Ending::Killed,
                    exit_code: None,
                    signal: Some(9),
                    stdout_tail: String::new(),
                    stderr_tail: String::new(),
                    duration: Duration::ZERO,
                })
            }
        };
        let _ = tokio::time::timeout(STOP_WAIT, self.finish(r)).await;
    }

    /// A manual run, by the task's overlap policy.
    async fn manual(&mut self) -> ManualAnswer {
        let running = self.snapshot().running;
        let m = decide_manual(running, self.st.queued_ms.is_some(), self.cfg.overlap);
        let fail = |e: TasksError| e.to_string();
        match m {
            Manual::Refuse { .. } => Err(m.to_string()),
            Manual::Start => self.start(None, "manual").await.map(|id| (id, m.to_string())).map_err(fail),
            Manual::KillAndStart { .. } => {
                self.end_current("ended by a manual run (overlap kill)").await.map_err(fail)?;
                self.start(None, "manual").await.map(|id| (id, m.to_string())).map_err(fail)
            }
            Manual::Queue { .. } => {
                let mut st = self.st.clone();
                st.queued_ms = Some(now_ms());
                self.save(&st, &[]).await.map_err(fail)?;
                self.st = st;
                Ok((self.st.next_id, m.to_string()))
            }
        }
    }
}
