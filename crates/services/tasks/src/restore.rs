//! The start of a task's loop in a new activity: its state is read back; a run the
//! last activity left `running` is marked `lost` (never run again), a slot it left in
//! the queue is recorded as missed; a task never seen starts from now.

use crate::decide::Missed;
use crate::section::ServiceTask;
use crate::store::{self, Outcome, Run, TaskState};
use crate::view::TaskCtx;
use crate::TasksError;
use mware_coord::now_ms;

/// Loads the task's state; marks runs left `running` by an earlier activity `lost`
/// and a slot left in the queue missed; a task never seen starts from now.
pub(crate) async fn restore(cfg: &ServiceTask, cx: &TaskCtx) -> Result<TaskState, TasksError> {
    let c = cx.coord.as_ref();
    let mut st = match store::load_state(c, cx.fence.group, &cfg.name).await? {
        Some(s) => s,
        None => {
            let s = TaskState { last_slot_ms: now_ms(), queued_ms: None, next_id: 1 };
            store::save(c, &cx.fence, &cfg.name, &s, &[], cfg.history, None).await?;
            return Ok(s);
        }
    };
    let mut changed: Vec<Run> = vec![];
    for mut r in store::load_runs(c, cx.fence.group, &cfg.name).await? {
        if r.outcome == Outcome::Running && r.epoch != cx.fence.epoch {
            r.outcome = Outcome::Lost;
            r.finished_ms = Some(now_ms());
            r.reason = format!("lost: {} (epoch {}) stopped while the run was in progress (it died or lost its activity before it could record the end); not run again", r.instance, r.epoch);
            tracing::warn!(task = %cfg.name, run = r.id, reason = %r.reason, "run lost");
            cx.log.event(r.id, &r.reason);
            cx.metrics.outcome(&cfg.name, "lost", 1);
            changed.push(r);
        }
    }
    if let Some(q) = st.queued_ms.take() {
        let m = Missed { count: 1, first_ms: q, last_ms: q };
        changed.push(record_missed(cfg, cx, &mut st, m, "queued when the instance that queued it stopped"));
    }
    if !changed.is_empty() {
        let refs: Vec<&Run> = changed.iter().collect();
        store::save(c, &cx.fence, &cfg.name, &st, &refs, cfg.history, None).await?;
    }
    Ok(st)
}

/// A history record for a missed stretch (takes a run id).
pub(crate) fn record_missed(cfg: &ServiceTask, cx: &TaskCtx, st: &mut TaskState, m: Missed, why: &str) -> Run {
    let reason = format!("{m} ({why})");
    tracing::warn!(task = %cfg.name, missed = m.count, "{reason}");
    cx.metrics.outcome(&cfg.name, "missed", m.count);
    let id = st.next_id;
    st.next_id += 1;
    cx.log.event(id, &reason);
    Run {
        id,
        trigger: "schedule".into(),
        slot_ms: Some(m.first_ms),
        outcome: Outcome::Missed,
        instance: cx.instance.clone(),
        epoch: cx.fence.epoch,
        started_ms: None,
        finished_ms: None,
        duration_ms: None,
        exit_code: None,
        signal: None,
        reason,
        stdout_tail: String::new(),
        stderr_tail: String::new(),
    }
}
