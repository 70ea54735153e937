//! [`TasksService`]: the `tasks` service of mware. On the active instance of a group
//! whose role lists `service_tasks`, it runs one loop per task; a change of the list
//! restarts only the loops of tasks that were added, removed or changed (a run of an
//! unchanged task goes on).

use crate::handle::TasksService;
use crate::runner::{run_task, TaskCtx};
use crate::section::{ServiceTask, ServiceTasks};
use crate::tasklog::{log_dir, TaskLog};
use async_trait::async_trait;
use mware_config::Role;
use mware_host::{InstanceEnv, Service, ServiceContext, ServiceState};
use std::collections::BTreeMap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Loop {
    cfg: ServiceTask,
    cancel: CancellationToken,
    handle: JoinHandle<Result<(), crate::TasksError>>,
}

impl TasksService {
    fn start_loop(&self, ctx: &ServiceContext, cfg: ServiceTask) -> Loop {
        let cancel = ctx.cancel.child_token();
        let (tx, rx) = mpsc::channel(8);
        self.inner.senders.lock().unwrap_or_else(|e| e.into_inner()).insert(cfg.name.clone(), tx);
        let dir = self.inner.log_dir.clone().unwrap_or_else(log_dir);
        let cx = TaskCtx {
            coord: ctx.coord.clone(),
            fence: ctx.fence,
            instance: ctx.instance.clone(),
            cancel: cancel.clone(),
            metrics: self.inner.metrics.clone(),
            statuses: self.inner.statuses.clone(),
            log: TaskLog::open(&dir, &cfg.name),
        };
        let handle = tokio::spawn(run_task(cfg.clone(), cx, rx));
        Loop { cfg, cancel, handle }
    }

    async fn stop_loop(&self, l: Loop) -> Result<(), crate::TasksError> {
        l.cancel.cancel();
        self.inner.senders.lock().unwrap_or_else(|e| e.into_inner()).remove(&l.cfg.name);
        l.handle.await.unwrap_or(Ok(()))
    }

    /// Starts and stops loops so that they match `want`.
    async fn reconcile(&self, ctx: &ServiceContext, loops: &mut BTreeMap<String, Loop>, want: &[ServiceTask]) -> anyhow::Result<()> {
        let stale: Vec<String> =
            loops.iter().filter(|(n, l)| !want.iter().any(|t| &&t.name == n && *t == l.cfg)).map(|(n, _)| n.clone()).collect();
        for n in stale {
            if let Some(l) = loops.remove(&n) {
                tracing::info!(task = %n, "service task removed or changed; its loop restarts");
                self.stop_loop(l).await?;
            }
        }
        for t in want {
            if !loops.contains_key(&t.name) {
                loops.insert(t.name.clone(), self.start_loop(ctx, t.clone()));
            }
        }
        *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()) = want.to_vec();
        let names: Vec<&str> = want.iter().map(|t| t.name.as_str()).collect();
        if names.is_empty() {
            ctx.status.set(ServiceState::Idle, "no service task is configured; waiting for a config change");
        } else {
            ctx.status.set(ServiceState::Running, format!("scheduling {} task(s): {}", names.len(), names.join(", ")));
        }
        Ok(())
    }
}

#[async_trait]
impl Service for TasksService {
    fn name(&self) -> &'static str {
        "tasks"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<ServiceTasks>().is_some_and(|t| !t.0.is_empty())
    }

    fn panels(&self) -> Vec<mware_host::Panel> {
        use mware_host::{Action, Column, Panel};
        vec![Panel {
            title: "Service tasks",
            source: "/api/v1/tasks",
            rows: "/tasks",
            total: "",
            columns: vec![
                Column::text("task", "/name"),
                Column::text("schedule", "/schedule"),
                Column::text("next", "/reason"),
                Column::text("running since", "/running/started_ms"),
                Column::fmt("last run", "/last_run/outcome", "state"),
                Column::text("exit", "/last_run/exit_code"),
                Column::fmt("last success", "/last_success_ms", "ms_ago"),
            ],
            actions: vec![Action {
                label: "Run now",
                method: "POST",
                path: "/api/v1/tasks/{/name}/run",
                body: serde_json::json!({}),
                confirm: "Run task {/name} now (by its overlap policy)?",
            }],
            empty: "no service task is configured",
            nested: None,
        }]
    }

    fn routes(&self) -> mware_host::Routes {
        crate::api::routes(self.clone())
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        Some(crate::api::openapi())
    }

    fn attach(&self, env: &InstanceEnv) {
        let _ = self.inner.env.set(env.clone());
    }

    fn status_doc(&self) -> serde_json::Value {
        let s = self.statuses();
        serde_json::json!({"tasks": s.iter().map(|t| serde_json::json!({"name": t.name, "next_ms": t.next_ms, "running": t.running.as_ref().map(|r| r.id)})).collect::<Vec<_>>()})
    }

    async fn run(&self, mut ctx: ServiceContext) -> anyhow::Result<()> {
        let mut loops: BTreeMap<String, Loop> = BTreeMap::new();
        let result = async {
            loop {
                let want = ctx.role().and_then(|r| r.section::<ServiceTasks>()).map(|t| t.0).unwrap_or_default();
                self.reconcile(&ctx, &mut loops, &want).await?;
                // A loop that ends by itself was refused a write: this instance is no
                // longer active (the host is about to stop the service).
                let ended = futures_any(&mut loops);
                tokio::select! {
                    biased;
                    _ = ctx.cancel.cancelled() => return Ok(()),
                    r = ctx.site.changed() => if r.is_err() { return Ok(()) },
                    (name, r) = ended => {
                        loops.remove(&name);
                        if ctx.cancel.is_cancelled() {
                            return Ok(());
                        }
                        r?;
                        anyhow::bail!("the loop of task {name} ended");
                    }
                }
            }
        }
        .await;
        for (_, l) in std::mem::take(&mut loops) {
            let _ = self.stop_loop(l).await;
        }
        self.inner.statuses.lock().unwrap_or_else(|e| e.into_inner()).clear();
        result
    }
}

/// The first loop to end, with its name and result (pending while none ends).
async fn futures_any(loops: &mut BTreeMap<String, Loop>) -> (String, Result<(), crate::TasksError>) {
    if loops.is_empty() {
        return std::future::pending().await;
    }
    let (name, r) = std::future::poll_fn(|cx| {
        for (n, l) in loops.iter_mut() {
            if let std::task::Poll::Ready(r) = std::pin::Pin::new(&mut l.handle).poll(cx) {
                return std::task::Poll::Ready((n.clone(), r.unwrap_or(Ok(()))));
            }
        }
        std::task::Poll::Pending
    })
    .await;
    (name, r)
}

use std::future::Future as _;
