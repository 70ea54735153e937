//! [`MonitorService`]: the `monitoring` service of mware. On the active instance of a
//! group (unless its `monitoring.enabled` is false) it restores the group's recorded
//! items, runs the probes, records the group's services and what other services
//! announce, watches every group of the site, and writes every change (fenced) before
//! announcing it. A change of the probes restarts only the probes, keeping each one's
//! state and since when.

use crate::engine::{self, EngineCtx};
use crate::handle::MonitorService;
use crate::persist::{self, Change};
use crate::section::{Monitoring, Probe};
use crate::watch::{self, Known};
use async_trait::async_trait;
use mware_config::Role;
use mware_host::items::{self, Item};
use mware_host::{EventKind, InstanceEnv, Service, ServiceContext, ServiceState};
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Changes waiting for the writer.
const QUEUE: usize = 8192;

impl MonitorService {
    /// The probes and the site's SSH settings they run with.
    fn probes(ctx: &ServiceContext) -> (Vec<Probe>, mware_config::SshSettings) {
        (ctx.role().and_then(|r| r.section::<Monitoring>()).map(|m| m.probes).unwrap_or_default(), ctx.site.borrow().ssh.clone())
    }

    /// The probes' states as they are now, to restart them from.
    fn current(&self) -> HashMap<String, Item> {
        let v = self.inner.views.lock().unwrap_or_else(|e| e.into_inner());
        v.values()
            .map(|p| {
                (
                    p.name.clone(),
                    Item {
                        kind: "probe".into(),
                        name: p.name.clone(),
                        state: p.state,
                        since_ms: p.since_ms,
                        reason: p.reason.clone(),
                        instance: String::new(),
                    },
                )
            })
            .collect()
    }
}

#[async_trait]
impl Service for MonitorService {
    fn name(&self) -> &'static str {
        "monitoring"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<Monitoring>().is_some_and(|m| m.enabled)
    }

    fn panels(&self) -> Vec<mware_host::Panel> {
        use mware_host::{Column, Panel};
        vec![Panel {
            title: "Probes",
            source: "/api/v1/monitoring/probes",
            rows: "/probes",
            total: "",
            columns: vec![
                Column::text("probe", "/name"),
                Column::text("kind", "/kind"),
                Column::text("target", "/target"),
                Column::fmt("state", "/state", "state"),
                Column::fmt("since", "/since_ms", "ms_ago"),
                Column::text("latency (ms)", "/latency_ms"),
                Column::text("why", "/reason"),
            ],
            actions: vec![],
            empty: "no probe is configured",
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
        let v = self.inner.views.lock().unwrap_or_else(|e| e.into_inner());
        let failing = v.values().filter(|p| p.state == crate::Health::Failing).count();
        serde_json::json!({"probes": v.len(), "failing": failing})
    }

    async fn run(&self, mut ctx: ServiceContext) -> anyhow::Result<()> {
        ctx.status.set(ServiceState::Starting, "restoring the group's recorded items");
        let restored = items::load(ctx.coord.as_ref(), ctx.fence.group).await?;
        announce_restored(&ctx, &restored);
        let by_kind = |f: &dyn Fn(&Item) -> bool| -> Known {
            restored.iter().filter(|i| f(i)).map(|i| ((i.kind.clone(), i.name.clone()), i.clone())).collect()
        };
        let others = by_kind(&|i| i.kind != "probe" && i.kind != "group");
        let groups = by_kind(&|i| i.kind == "group");
        let mut probe_states: HashMap<String, Item> =
            restored.iter().filter(|i| i.kind == "probe").map(|i| (i.name.clone(), i.clone())).collect();

        let stop = ctx.cancel.child_token();
        let (tx, rx) = mpsc::channel::<Change>(QUEUE);
        let mut writer = tokio::spawn(persist::run(ctx.coord.clone(), ctx.fence, ctx.events.clone(), rx, stop.clone()));
        let side = TaskTracker::new();
        side.spawn(watch::follow_events(ctx.events.clone(), tx.clone(), ctx.instance.clone(), others, stop.clone()));
        side.spawn(watch::follow_groups(ctx.coord.clone(), ctx.site.clone(), tx.clone(), ctx.instance.clone(), groups, stop.clone()));
        side.close();

        let result = loop {
            let probes = Self::probes(&ctx);
            let probe_stop = stop.child_token();
            let tracker = TaskTracker::new();
            self.start_probes(&ctx, &probes, &probe_states, &tx, &probe_stop, &tracker);
            let next = wait_for_change(&mut ctx, &mut writer, &probes).await;
            if let Next::WriterEnded(r) = next {
                break_with(&probe_stop, &tracker).await;
                stop.cancel();
                side.wait().await;
                return r;
            }
            probe_states = self.current();
            break_with(&probe_stop, &tracker).await;
            if !matches!(next, Next::Restart) {
                break Ok(());
            }
        };
        stop.cancel();
        drop(tx);
        side.wait().await;
        let _ = writer.await;
        self.inner.views.lock().unwrap_or_else(|e| e.into_inner()).clear();
        result
    }
}

impl MonitorService {
    /// Starts `probes` from `states` (their views and metrics cleared first), under
    /// `probe_stop` and `tracker`.
    fn start_probes(
        &self,
        ctx: &ServiceContext,
        probes: &(Vec<Probe>, mware_config::SshSettings),
        states: &HashMap<String, Item>,
        tx: &mpsc::Sender<Change>,
        probe_stop: &CancellationToken,
        tracker: &TaskTracker,
    ) {
        self.inner.views.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.inner.metrics.clear();
        let ecx = EngineCtx {
            persist: tx.clone(),
            metrics: self.inner.metrics.clone(),
            instance: ctx.instance.clone(),
            cancel: probe_stop.clone(),
            views: self.inner.views.clone(),
            env: crate::probes::ProbeEnv::new(&probes.1),
        };
        engine::start(&probes.0, states, &ecx, tracker);
        tracker.close();
        ctx.status.set(
            ServiceState::Running,
            format!("running {} probe(s); recording the group's services and watching every group", probes.0.len()),
        );
    }
}

/// What ends a run of the probes.
enum Next {
    /// The probes or the SSH settings changed: start them again.
    Restart,
    /// The activity ends (or the site is gone).
    Stop,
    /// The writer ended: the service ends with its outcome.
    WriterEnded(anyhow::Result<()>),
}

/// Waits for the end of the activity, the end of the writer, or a change of `probes`.
async fn wait_for_change(
    ctx: &mut ServiceContext,
    writer: &mut tokio::task::JoinHandle<Result<(), mware_coord::CoordError>>,
    probes: &(Vec<Probe>, mware_config::SshSettings),
) -> Next {
    loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => return Next::Stop,
            r = &mut *writer => {
                return Next::WriterEnded(match r {
                    Ok(Err(e)) => Err(anyhow::anyhow!("cannot record monitoring items: {e}")),
                    _ => Ok(()),
                });
            }
            r = ctx.site.changed() => {
                if r.is_err() { return Next::Stop }
                if MonitorService::probes(ctx) != *probes {
                    tracing::info!(instance = %ctx.instance, "monitoring: probes or ssh settings changed; restarting the probes");
                    return Next::Restart;
                }
            }
        }
    }
}

/// Announces again the probe and group states the last activity recorded, so no
/// subscriber of this instance misses one: they are where this activity starts.
fn announce_restored(ctx: &ServiceContext, restored: &[Item]) {
    for i in restored.iter().filter(|i| i.kind == "probe" || i.kind == "group") {
        let reason = format!("as recorded by {} (restored at epoch {}): {}", i.instance, ctx.fence.epoch, i.reason);
        ctx.events.publish(EventKind::Item {
            source: "monitoring".into(),
            item: format!("{}/{}", i.kind, i.name),
            state: i.state.as_str().into(),
            reason,
        });
    }
}

async fn break_with(token: &CancellationToken, tracker: &TaskTracker) {
    token.cancel();
    tracker.wait().await;
}
