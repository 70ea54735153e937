//! One run: the start recorded (fenced) with the temporary names it will write, then each
//! target in turn (PostgreSQL archives, then the `:SYNC` folder), each uploaded under its
//! temporary name and put in place only once complete and verified. The first failure
//! aborts the whole run: its temporary file is removed, the previous good copy stays,
//! and the result is recorded with the reason.

use crate::config::{Plan, SendMode, TargetSpec, What};
use crate::error::{BackupError, Result};
use crate::metrics::Metrics;
use crate::store::{self, Outcome, RunRecord, State, Temp};
use crate::{pg, storage, sync, template};
use chrono::{Local, NaiveDate};
use mware_coord::{now_ms, Coordinator, Fence};
use mware_host::{EventKind, Events};
use mware_ssh::{HostKeyPolicy, Session};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The run in progress, as shown in status.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Run id.
    pub run_id: String,
    /// Started by an operator.
    pub manual: bool,
    /// Targets of the run.
    pub targets: Vec<String>,
    /// The target being copied.
    pub target: String,
    /// When the run started, ms since the Unix epoch.
    pub started_ms: u64,
    /// When the current target started.
    pub target_started_ms: u64,
    /// Bytes sent of the current target.
    #[serde(skip)]
    pub bytes: Arc<AtomicU64>,
}

/// Where the service keeps the run in progress (shared with the API).
pub type Live = Arc<Mutex<Option<Progress>>>;

/// Everything a run needs besides the plan.
#[derive(Clone)]
pub struct Runner {
    /// The coordinator.
    pub coord: Arc<dyn Coordinator>,
    /// This activity's fence.
    pub fence: Fence,
    /// This instance.
    pub instance: String,
    /// Host keys.
    pub keys: HostKeyPolicy,
    /// The run in progress.
    pub live: Live,
    /// Metrics.
    pub metrics: Metrics,
    /// Events.
    pub events: Events,
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The run record (with its result and reason).
    pub record: RunRecord,
}

/// One target of a run: where its copy goes and the temporary name it is written under.
struct Step<'a> {
    spec: &'a TargetSpec,
    dir: String,
    temp: Temp,
}

fn fail_reason(key: &str, e: &BackupError) -> String {
    let s = e.to_string();
    if s.contains(&format!("target {key}")) {
        s
    } else {
        format!("target {key}: {s}")
    }
}

impl Runner {
    /// Removes temporary files of earlier runs (a half-done run, leftovers); those that
    /// cannot be removed stay listed for the next time.
    pub async fn clean(&self, plan: &Plan, temps: Vec<Temp>) -> Vec<Temp> {
        let mut left = Vec::new();
        for t in temps {
            let Some(spec) = plan.targets.iter().find(|x| x.key == t.target) else {
                tracing::warn!(target_key = %t.target, path = %t.path, "backup: a leftover of a target no longer configured stays on its storage server");
                continue;
            };
            let done = async {
                let s =
                    spec.storage.target(&self.keys).connect().await.map_err(|e| BackupError::Ssh { what: "cleanup".into(), source: e })?;
                let r = storage::remove(&s, &t.path).await;
                s.close().await;
                r
            }
            .await;
            match done {
                Ok(()) => {
                    tracing::info!(target_key = %t.target, path = %t.path, "backup: removed a leftover temporary copy")
                }
                Err(e) => {
                    tracing::warn!(target_key = %t.target, path = %t.path, "backup: cannot remove a leftover yet: {e}");
                    left.push(t);
                }
            }
        }
        left
    }

    /// Runs the targets of `plan` (only `only` when set) for the window of `day`
    /// (`None`: an operator's run, resolved with today's date). The state is read and
    /// written through the coordinator, fenced.
    pub async fn run(&self, plan: &Plan, only: Option<&str>, day: Option<NaiveDate>) -> Result<Report> {
        let (mut record, steps) = self.plan_run(plan, only, day);
        let bytes = Arc::new(AtomicU64::new(0));
        let mut state = self.record_start(&record, bytes.clone()).await?;
        state.leftovers = self.clean(plan, std::mem::take(&mut state.leftovers)).await;
        let mut failure = None;
        for step in &steps {
            if let Err(reason) = self.copy_target(plan, &mut state, step, &record.id, &bytes).await {
                failure = Some(reason);
                break;
            }
        }
        self.record_finish(&mut state, &mut record, failure, day).await?;
        Ok(Report { record })
    }

    /// The run's record (id, targets, temporary names) and its steps, one per target.
    fn plan_run<'a>(&self, plan: &'a Plan, only: Option<&str>, day: Option<NaiveDate>) -> (RunRecord, Vec<Step<'a>>) {
        let started_local = Local::now().naive_local();
        let started_ms = now_ms();
        let id = format!("{}-e{}", started_local.format("%Y%m%dT%H%M%S"), self.fence.epoch);
        let date = day.unwrap_or(started_local.date());
        let steps: Vec<Step> = plan
            .targets
            .iter()
            .filter(|t| only.is_none_or(|o| o == t.key))
            .map(|t| {
                let dir = template::resolve(t.storage.path.as_deref(), date);
                let temp = Temp { target: t.key.clone(), path: storage::join(&dir, &storage::temp_name(&t.file_name(), &id)) };
                Step { spec: t, dir, temp }
            })
            .collect();
        let record = RunRecord {
            id,
            instance: self.instance.clone(),
            epoch: self.fence.epoch,
            day,
            targets: steps.iter().map(|s| s.spec.key.clone()).collect(),
            started_ms,
            started_local,
            finished_ms: None,
            finished_local: None,
            result: None,
            reason: None,
            temps: steps.iter().map(|s| s.temp.clone()).collect(),
        };
        (record, steps)
    }

    /// Records the run as running (fenced) and shows it in status; the state read.
    async fn record_start(&self, record: &RunRecord, bytes: Arc<AtomicU64>) -> Result<State> {
        let mut state = store::load(&*self.coord, self.fence.group).await?;
        state.running = Some(record.clone());
        store::save(&*self.coord, &self.fence, &state).await?;
        tracing::info!(run = %record.id, targets = ?record.targets, "backup: run started");
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = Some(Progress {
            run_id: record.id.clone(),
            manual: record.day.is_none(),
            targets: record.targets.clone(),
            target: String::new(),
            started_ms: record.started_ms,
            target_started_ms: record.started_ms,
            bytes,
        });
        self.metrics.running.set(1);
        Ok(state)
    }

    /// Copies one target and records its outcome in `state`; the reason when it failed
    /// (its temporary file is removed, or listed as a leftover).
    async fn copy_target(
        &self,
        plan: &Plan,
        state: &mut State,
        step: &Step<'_>,
        id: &str,
        bytes: &Arc<AtomicU64>,
    ) -> std::result::Result<(), String> {
        let t = step.spec;
        bytes.store(0, Ordering::Relaxed);
        if let Some(p) = self.live.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            p.target = t.key.clone();
            p.target_started_ms = now_ms();
        }
        let t0 = Instant::now();
        // Nothing was written when the storage server cannot be reached: no cleanup.
        let (result, wrote) = match t.storage.target(&self.keys).connect().await {
            Ok(s) => (self.target(plan, t, s, &step.dir, &step.temp.path, id, bytes.clone()).await, true),
            Err(e) => (Err(BackupError::Ssh { what: format!("target {}: storage server", t.key), source: e }), false),
        };
        match result {
            Ok(o) => {
                self.target_done(state, t, id, o, t0);
                Ok(())
            }
            Err(e) => {
                let reason = self.target_failed(state, step, id, &e, t0);
                if wrote {
                    state.leftovers.extend(self.clean(plan, vec![step.temp.clone()]).await);
                }
                Err(reason)
            }
        }
    }

    /// Whether the last outcome of `key` in `state` is a failure.
    fn was_failing(state: &State, key: &str) -> bool {
        state.targets.get(key).is_some_and(|h| h.last_failure.as_ref().map(|f| f.at_ms) > h.last_success.as_ref().map(|s| s.at_ms))
    }

    /// Records a target copied: its success, metrics, and an event if it was failing.
    fn target_done(&self, state: &mut State, t: &TargetSpec, id: &str, mut o: Outcome, t0: Instant) {
        let was_failing = Self::was_failing(state, &t.key);
        let l = Metrics::of(&t.key);
        o.duration_ms = t0.elapsed().as_millis() as u64;
        o.run_id = id.to_string();
        self.metrics.last_success.get_or_create(&l).set((o.at_ms / 1000) as i64);
        self.metrics.duration.get_or_create(&l).set(t0.elapsed().as_secs_f64());
        self.metrics.bytes.get_or_create(&l).set(o.bytes as i64);
        tracing::info!(run = %id, target_key = %t.key, bytes = o.bytes, path = %o.path, source = ?o.source, "backup: target done in {:.1} s", t0.elapsed().as_secs_f64());
        state.targets.entry(t.key.clone()).or_default().last_success = Some(o);
        if was_failing {
            self.events.publish(EventKind::Item {
                source: "backup".into(),
                item: t.key.clone(),
                state: "ok".into(),
                reason: "the last backup succeeded".into(),
            });
        }
    }

    /// Records a target failed: its failure, metrics and an event; the reason.
    fn target_failed(&self, state: &mut State, step: &Step<'_>, id: &str, e: &BackupError, t0: Instant) -> String {
        let t = step.spec;
        let reason = fail_reason(&t.key, e);
        tracing::error!(run = %id, target_key = %t.key, "backup: run aborted: {reason}");
        self.metrics.failures.get_or_create(&Metrics::of(&t.key)).inc();
        state.targets.entry(t.key.clone()).or_default().last_failure = Some(Outcome {
            at_ms: now_ms(),
            run_id: id.to_string(),
            duration_ms: t0.elapsed().as_millis() as u64,
            bytes: 0,
            path: storage::join(&step.dir, &t.file_name()),
            sha256: None,
            source: None,
            reason: Some(reason.clone()),
        });
        self.events.publish(EventKind::Item {
            source: "backup".into(),
            item: t.key.clone(),
            state: "failing".into(),
            reason: reason.clone(),
        });
        reason
    }

    /// Records the run finished (fenced) with its result, and clears it from status.
    async fn record_finish(
        &self,
        state: &mut State,
        record: &mut RunRecord,
        failure: Option<String>,
        day: Option<NaiveDate>,
    ) -> Result<()> {
        record.finished_ms = Some(now_ms());
        record.finished_local = Some(Local::now().naive_local());
        record.result = Some(if failure.is_some() { "failed" } else { "ok" }.into());
        record.reason = failure.clone();
        record.temps.clear();
        if failure.is_none() {
            state.complete_runs += 1;
            if day.is_some() {
                state.done_day = day;
            }
        }
        state.running = None;
        state.last_run = Some(record.clone());
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.metrics.running.set(0);
        store::save(&*self.coord, &self.fence, state).await?;
        tracing::info!(run = %record.id, result = ?record.result, "backup: run finished");
        Ok(())
    }

    /// A fenced write just before a copy is put in place: an instance that lost activity
    /// mid-run (its successor may be running) never renames anything.
    async fn still_active(&self, run_id: &str) -> Result<()> {
        let op = mware_coord::KvOp::Put { key: "backup/commit".into(), value: run_id.as_bytes().to_vec() };
        self.coord.kv_apply(&self.fence, vec![op]).await?;
        Ok(())
    }

    /// Copies one target into `dir/tmp` over the storage session `s` and puts it in place
    /// as `dir/<file name>`.
    #[allow(clippy::too_many_arguments)]
    async fn target(
        &self,
        plan: &Plan,
        t: &TargetSpec,
        s: Session,
        dir: &str,
        tmp: &str,
        run_id: &str,
        bytes: Arc<AtomicU64>,
    ) -> Result<Outcome> {
        let final_path = storage::join(dir, &t.file_name());
        let tmp_name = tmp.rsplit('/').next().unwrap_or(tmp).to_string();
        let mut o = Outcome {
            at_ms: 0,
            run_id: run_id.into(),
            duration_ms: 0,
            bytes: 0,
            path: final_path.clone(),
            sha256: None,
            source: None,
            reason: None,
        };
        let result = async {
            match &t.what {
                What::Pg(p) => {
                    let (sent, source) = pg::archive(&t.key, p, &self.keys, &s, dir, tmp, plan.level, bytes).await?;
                    self.still_active(run_id).await?;
                    storage::commit(&s, tmp, &final_path, &sent.sha256).await?;
                    o.bytes = sent.bytes;
                    o.sha256 = Some(sent.sha256);
                    o.source = Some(source);
                }
                What::Sync(sy) if sy.mode == SendMode::Zip => {
                    let sent = sync::zip(sy, &s, dir, tmp, plan.level, bytes).await?;
                    self.still_active(run_id).await?;
                    storage::commit(&s, tmp, &final_path, &sent.sha256).await?;
                    o.bytes = sent.bytes;
                    o.sha256 = Some(sent.sha256);
                }
                What::Sync(sy) => {
                    storage::mkdir(&s, dir).await?;
                    let st = sync::rsync(sy, &t.storage, &self.keys, dir, &tmp_name).await?;
                    bytes.store(st.sent, Ordering::Relaxed);
                    self.still_active(run_id).await?;
                    storage::commit_dir(&s, tmp, &final_path, run_id).await?;
                    o.bytes = st.total;
                }
            }
            Ok::<(), BackupError>(())
        }
        .await;
        s.close().await;
        result?;
        o.at_ms = now_ms();
        Ok(o)
    }
}

/// Records a run found half-done (its instance lost activity): `interrupted`, not a
/// failure of the backup, so the schedule runs it again at once. Returns its temporary
/// names to clean up.
pub fn interrupted(state: &mut State, by: &str) -> Vec<Temp> {
    let Some(mut r) = state.running.take() else {
        return vec![];
    };
    let temps = std::mem::take(&mut r.temps);
    r.result = Some("interrupted".into());
    r.reason = Some(format!("instance {} (epoch {}) lost activity mid-run; {by} cleaned up its temporary copies", r.instance, r.epoch));
    r.finished_ms = Some(now_ms());
    r.finished_local = Some(Local::now().naive_local());
    state.last_run = Some(r);
    temps
}
