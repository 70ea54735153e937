//! [`PgctlService`]: the `pgctl` service of mware. On the active instance of a group
//! whose role has `pg_controller`, it runs one control loop per valid pg group, leaves
//! invalid groups out with the reason logged, idles when none is valid, and restarts
//! the loops when the role's `pg_controller` list or the site's `ssh` settings change
//! (no daemon restart).

use crate::config::check_groups;
use crate::group::run_group;
use crate::handle::PgctlService;
use crate::journal::{log_dir, Journal};
use crate::status::GroupCtx;
use async_trait::async_trait;
use mware_config::{Role, SshSettings};
use mware_host::{Service, ServiceContext, ServiceState};
use mware_ssh::HostKeyPolicy;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

impl PgctlService {
    /// What the loops are built from: the role's `pg_controller` list and the site's host
    /// key settings.
    fn wanted_config(ctx: &ServiceContext) -> (Vec<serde_json::Value>, SshSettings) {
        (
            ctx.role().and_then(|r| r.section::<crate::section::PgController>()).map(|p| p.0).unwrap_or_default(),
            ctx.site.borrow().ssh.clone(),
        )
    }

    async fn run_config(&self, ctx: &ServiceContext, (raw, ssh): &(Vec<serde_json::Value>, SshSettings), stop: CancellationToken) {
        let dir = self.inner.log_dir.clone().unwrap_or_else(log_dir);
        // The validator's path of this instance, so the warnings read as `mware validate`'s.
        let at = ctx.site.borrow().instance_path(&ctx.instance).unwrap_or_else(|| ctx.instance.clone());
        let (groups, bad) = check_groups(raw, &format!("{at}.pg_controller"), &HostKeyPolicy::from(ssh));
        let bad: Vec<String> = bad.iter().map(|p| p.to_string()).collect();
        for p in &bad {
            tracing::warn!(instance = %ctx.instance, "pgctl: {p}");
            Journal::open(&dir, "invalid").warn(p);
        }
        self.inner.groups.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.inner.metrics.clear_groups();
        if groups.is_empty() {
            let why = if bad.is_empty() {
                "no pg_controller group is configured; waiting for a config change".to_string()
            } else {
                format!("no valid pg_controller group ({}); waiting for a config change", bad.join("; "))
            };
            ctx.status.set(ServiceState::Idle, why);
            stop.cancelled().await;
            return;
        }
        let keys: Vec<String> = groups.iter().map(|g| g.key.clone()).collect();
        let mut reason = format!("controlling pg groups {}", keys.join(", "));
        if !bad.is_empty() {
            reason += &format!("; left out: {}", bad.join("; "));
        }
        ctx.status.set(ServiceState::Running, reason);
        let tracker = TaskTracker::new();
        for g in groups {
            let cx = GroupCtx {
                coord: ctx.coord.clone(),
                fence: ctx.fence,
                cancel: stop.clone(),
                statuses: self.inner.groups.clone(),
                journal: Journal::open(&dir, &g.key),
                metrics: self.inner.metrics.clone(),
                events: ctx.events.clone(),
            };
            tracker.spawn(run_group(g, cx));
        }
        tracker.close();
        tracker.wait().await;
    }
}

#[async_trait]
impl Service for PgctlService {
    fn name(&self) -> &'static str {
        "pgctl"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<crate::section::PgController>().is_some_and(|p| !p.0.is_empty())
    }

    fn routes(&self) -> mware_host::Routes {
        crate::api::routes(self.clone())
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        Some(crate::api::openapi())
    }

    fn panels(&self) -> Vec<mware_host::Panel> {
        use mware_host::{Column, Panel};
        vec![Panel {
            title: "PostgreSQL (pg_controller)",
            source: "/api/v1/pg",
            rows: "/groups",
            total: "",
            columns: vec![
                Column::text("group", "/key"),
                Column::fmt("master", "/master", "state"),
                Column::text("server 1", "/servers/0/name"),
                Column::fmt("role", "/servers/0/role", "state"),
                Column::text("lag (bytes)", "/servers/0/lag_bytes"),
                Column::text("server 2", "/servers/1/name"),
                Column::fmt("role", "/servers/1/role", "state"),
                Column::text("lag (bytes)", "/servers/1/lag_bytes"),
                Column::text("last decision", "/reason"),
                Column::text("last action", "/last_action"),
            ],
            actions: vec![],
            empty: "no pg_controller group is running",
            nested: None,
        }]
    }

    fn status_doc(&self) -> serde_json::Value {
        serde_json::json!({"groups": self.groups().iter().map(|g| serde_json::json!({"key": g.key, "master": g.master})).collect::<Vec<_>>()})
    }

    async fn run(&self, mut ctx: ServiceContext) -> anyhow::Result<()> {
        ctx.status.set(ServiceState::Starting, "reading pg_controller groups");
        let result = async {
            loop {
                let raw = Self::wanted_config(&ctx);
                let stop = ctx.cancel.child_token();
                let run_ctx = ctx.clone();
                let run = self.run_config(&run_ctx, &raw, stop.clone());
                tokio::pin!(run);
                // Run until cancelled or until this role's pg_controller list changes.
                loop {
                    tokio::select! {
                        _ = &mut run => {
                            // All loops ended (fenced): wait for cancel or a change.
                            tokio::select! {
                                _ = ctx.cancel.cancelled() => return Ok(()),
                                r = ctx.site.changed() => if r.is_err() { return Ok(()) },
                            }
                            break;
                        }
                        _ = ctx.cancel.cancelled() => {
                            stop.cancel();
                            run.as_mut().await;
                            return Ok(());
                        }
                        r = ctx.site.changed() => {
                            if r.is_err() {
                                stop.cancel();
                                run.as_mut().await;
                                return Ok(());
                            }
                            if Self::wanted_config(&ctx) != raw {
                                tracing::info!(instance = %ctx.instance, "pgctl: pg_controller or ssh settings changed; reloading groups");
                                stop.cancel();
                                run.as_mut().await;
                                break;
                            }
                        }
                    }
                }
            }
        }
        .await;
        self.inner.groups.lock().unwrap_or_else(|e| e.into_inner()).clear();
        result
    }
}
