//! [`BackupService`]: the `backup` service of mware. On the active instance of a group
//! whose role has `backup_controller`, it cleans up a run its predecessor left half-done,
//! then loops: decide from the schedule and the history in the coordinator, run or wait
//! (at most a minute, so config changes and operators' requests are seen), with the
//! decision's reason in the service status.

use crate::config::{self, Plan};
use crate::decide::{decide, Decision};
use crate::error::BackupError;
use crate::handle::{lock, BackupService, RunRequest, View};
use crate::run::{interrupted, Runner};
use crate::section::BackupController;
use crate::store::{self, State};
use async_trait::async_trait;
use chrono::{Local, NaiveDate, NaiveDateTime};
use mware_config::Role;
use mware_coord::CoordError;
use mware_host::{Service, ServiceContext, ServiceState};
use mware_ssh::HostKeyPolicy;
use std::ops::ControlFlow;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest wait between two decisions.
const TICK: Duration = Duration::from_secs(60);

impl BackupService {
    /// The document of `GET /api/v1/backups`: targets with their last success and failure,
    /// the next run, a run in progress.
    pub fn document(&self) -> serde_json::Value {
        crate::api::document(self)
    }

    fn set_view(&self, f: impl FnOnce(&mut View)) {
        f(&mut lock(&self.inner.view));
    }

    async fn wait_config(ctx: &mut ServiceContext) -> bool {
        tokio::select! {
            _ = ctx.cancel.cancelled() => false,
            r = ctx.site.changed() => r.is_ok(),
        }
    }

    /// One pass: returns `Ok(false)` to stop (cancelled or fenced).
    async fn step(&self, ctx: &mut ServiceContext, rx: &mut mpsc::Receiver<RunRequest>) -> anyhow::Result<bool> {
        let Some(bc) = ctx.role().and_then(|r| r.section::<BackupController>()) else {
            ctx.status.set(ServiceState::Idle, "no backup_controller section; waiting for a config change");
            return Ok(Self::wait_config(ctx).await);
        };
        let keys = HostKeyPolicy::from(&ctx.site.borrow().ssh);
        let plan = match config::plan(&bc) {
            Ok(p) => p,
            Err(problems) => return Ok(self.plan_refused(ctx, problems).await),
        };
        self.set_view(|v| {
            v.plan = Some(plan.clone());
            v.keys = Some(keys.clone());
            v.problems.clear();
        });
        let runner = self.runner(ctx, keys);
        let mut state = store::load(&*ctx.coord, ctx.fence.group).await?;
        if state.running.is_some() {
            if let Err(e) = clean_half_done(ctx, &runner, &plan, &mut state).await {
                return fenced_or(e);
            }
        }
        let now = Local::now().naive_local();
        let d = decide(now, &plan.schedule, &state.history());
        self.set_view(|v| {
            v.state = state.clone();
            v.next = Some(d.clone());
        });
        let failed = state.last_run.as_ref().filter(|r| r.result.as_deref() == Some("failed"));
        let prefix = failed.map(|r| format!("the last backup failed: {}; ", r.reason.clone().unwrap_or_default())).unwrap_or_default();
        let request = match wait_for_run(ctx, rx, d, now, &prefix).await {
            ControlFlow::Break(go_on) => return Ok(go_on),
            ControlFlow::Continue(request) => request,
        };
        let Some((only, day)) = request else {
            return Ok(true);
        };
        if day.is_none() {
            ctx.status.set(ServiceState::Running, format!("{prefix}running a backup an operator asked for"));
        }
        self.run_now(ctx, &runner, &plan, only, day).await
    }

    /// Shows why the settings cannot run, then waits for a config change (true) or the
    /// end of the activity (false).
    async fn plan_refused(&self, ctx: &mut ServiceContext, problems: Vec<String>) -> bool {
        ctx.status.set(ServiceState::Idle, format!("backup_controller cannot run: {}; waiting for a config change", problems.join("; ")));
        self.set_view(|v| {
            v.plan = None;
            v.problems = problems;
        });
        Self::wait_config(ctx).await
    }

    /// The runner of this activity.
    fn runner(&self, ctx: &ServiceContext, keys: HostKeyPolicy) -> Runner {
        Runner {
            coord: ctx.coord.clone(),
            fence: ctx.fence,
            instance: ctx.instance.clone(),
            keys,
            live: self.inner.live.clone(),
            metrics: self.inner.metrics.clone(),
            events: ctx.events.clone(),
        }
    }

    /// Runs the targets `only` (all when `None`) for `day` (`None`: an operator's run);
    /// `Ok(false)` when cancelled or fenced.
    async fn run_now(
        &self,
        ctx: &mut ServiceContext,
        runner: &Runner,
        plan: &Plan,
        only: Option<String>,
        day: Option<NaiveDate>,
    ) -> anyhow::Result<bool> {
        let result = tokio::select! {
            r = runner.run(plan, only.as_deref(), day) => r,
            _ = ctx.cancel.cancelled() => {
                *lock(&self.inner.live) = None;
                self.inner.metrics.running.set(0);
                return Ok(false);
            }
        };
        match result {
            Ok(report) => {
                let r = &report.record;
                if r.result.as_deref() == Some("failed") {
                    ctx.status.set(ServiceState::Running, format!("the last backup failed: {}", r.reason.clone().unwrap_or_default()));
                }
                Ok(true)
            }
            Err(e) => {
                *lock(&self.inner.live) = None;
                self.inner.metrics.running.set(0);
                fenced_or(e)
            }
        }
    }
}

/// Records the run a predecessor left half-done as interrupted and removes its
/// temporary files (those that cannot be removed stay listed as leftovers).
async fn clean_half_done(ctx: &ServiceContext, runner: &Runner, plan: &Plan, state: &mut State) -> Result<(), BackupError> {
    let temps = interrupted(state, &ctx.instance);
    tracing::warn!(instance = %ctx.instance, "backup: found a half-done run: {}", state.last_run.as_ref().and_then(|r| r.reason.clone()).unwrap_or_default());
    let left = runner.clean(plan, temps).await;
    state.leftovers.extend(left);
    store::save(&*ctx.coord, &ctx.fence, state).await
}

/// Shows the decision and, to wait, waits for its time, an operator's request or a
/// config change: `Continue` with the run to make now, if any (targets, scheduled day);
/// `Break` to end the pass (true: go on, false: stop).
async fn wait_for_run(
    ctx: &mut ServiceContext,
    rx: &mut mpsc::Receiver<RunRequest>,
    d: Decision,
    now: NaiveDateTime,
    prefix: &str,
) -> ControlFlow<bool, Option<(Option<String>, Option<NaiveDate>)>> {
    match d {
        Decision::Run { day, why } => {
            ctx.status.set(ServiceState::Running, format!("{prefix}running the scheduled backup: {why}"));
            ControlFlow::Continue(Some((None, Some(day))))
        }
        Decision::WaitUntil { at, why } => {
            ctx.status.set(ServiceState::Running, format!("{prefix}{why}"));
            let wait = (at - now).to_std().unwrap_or(Duration::ZERO).clamp(Duration::from_secs(1), TICK);
            tokio::select! {
                _ = ctx.cancel.cancelled() => ControlFlow::Break(false),
                r = ctx.site.changed() => ControlFlow::Break(r.is_ok()),
                req = rx.recv() => ControlFlow::Continue(req.map(|r| (r.target, None))),
                _ = tokio::time::sleep(wait) => ControlFlow::Continue(None),
            }
        }
    }
}

/// A fenced write means this instance lost activity: stop quietly; anything else fails
/// the service (the host restarts it).
fn fenced_or(e: BackupError) -> anyhow::Result<bool> {
    match e {
        BackupError::Coord(CoordError::Fenced { .. }) => Ok(false),
        other => Err(other.into()),
    }
}

#[async_trait]
impl Service for BackupService {
    fn name(&self) -> &'static str {
        "backup"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<BackupController>().is_some()
    }

    fn routes(&self) -> mware_host::Routes {
        crate::api::routes(self.clone())
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        Some(crate::api::openapi())
    }

    fn status_doc(&self) -> serde_json::Value {
        crate::api::summary(self)
    }

    fn panels(&self) -> Vec<mware_host::Panel> {
        use mware_host::{Action, Column, Panel};
        vec![Panel {
            title: "Backups",
            source: "/api/v1/backups",
            rows: "/targets",
            total: "",
            columns: vec![
                Column::text("target", "/key"),
                Column::text("kind", "/kind"),
                Column::text("path", "/path"),
                Column::fmt("last success", "/last_success/at_ms", "ms_ago"),
                Column::text("bytes", "/last_success/bytes"),
                Column::fmt("last failure", "/last_failure/at_ms", "ms_ago"),
                Column::text("why", "/last_failure/reason"),
                Column::text("in progress (bytes sent)", "/in_progress/bytes_sent"),
            ],
            actions: vec![Action {
                label: "Back up now",
                method: "POST",
                path: "/api/v1/backups/run",
                body: serde_json::json!({"target": "{/key}"}),
                confirm: "Back up {/key} now, outside the window?",
            }],
            empty: "no backup target is configured",
            nested: None,
        }]
    }

    async fn run(&self, mut ctx: ServiceContext) -> anyhow::Result<()> {
        ctx.status.set(ServiceState::Starting, "reading backup_controller and the backup history");
        let (tx, mut rx) = mpsc::channel(1);
        *lock(&self.inner.trigger) = Some(tx);
        let result = async {
            while self.step(&mut ctx, &mut rx).await? {}
            Ok(())
        }
        .await;
        *lock(&self.inner.trigger) = None;
        result
    }
}
