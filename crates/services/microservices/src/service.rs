//! [`MicroService`]: the `microservices` service of mware.
//!
//! `active` processes run while the service runs, which the host does on the group's
//! active instance only (it stops the service on a step-down: each process group gets its
//! stop signal, then SIGKILL after its grace). `every` processes run on every member: a
//! second set of loops is started from [`Service::attach`], for the life of the daemon,
//! whatever the instance's activity. The site's log is opened in `attach` too, so both
//! sets write into it and its routes answer on any instance. A reloaded site file
//! applies without a restart (`crate::reload`, `crate::syslog`).

use crate::handle::MicroService;
use crate::section::{Microservices, RunOn};
use async_trait::async_trait;
use mware_config::Role;
use mware_host::{InstanceEnv, Service, ServiceContext, ServiceState};
use tokio_util::sync::CancellationToken;

#[async_trait]
impl Service for MicroService {
    fn name(&self) -> &'static str {
        "microservices"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<Microservices>().is_some_and(|m| m.processes.iter().any(|p| p.run_on == RunOn::Active) || m.udp_mirror.is_some())
    }

    fn panels(&self) -> Vec<mware_host::Panel> {
        use mware_host::{Action, Column, Panel};
        let action = |label, path, confirm| Action { label, method: "POST", path, body: serde_json::json!({}), confirm };
        vec![Panel {
            title: "Microservices (on the active instance)",
            source: crate::paths::LIST,
            rows: "/processes",
            total: "",
            columns: vec![
                Column::text("process", "/name"),
                Column::text("runs on", "/run_on"),
                Column::fmt("state", "/state", "state"),
                Column::text("pid", "/pid"),
                Column::fmt("since", "/since_ms", "ms_ago"),
                Column::text("restarts", "/restarts"),
                Column::text("last exit code", "/last_exit/code"),
                Column::text("last exit signal", "/last_exit/signal"),
                Column::text("reason", "/reason"),
            ],
            actions: vec![
                action("Restart", "/api/v1/microservices/{/name}/restart", "Restart process {/name}?"),
                action("Stop", "/api/v1/microservices/{/name}/stop", "Stop process {/name} (it stays stopped)?"),
                action("Start", "/api/v1/microservices/{/name}/start", "Start process {/name}?"),
            ],
            empty: "no process is supervised on this instance",
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
        let site = env.site.borrow().clone();
        if let Err(e) = self.open_store(&env.instance, &site) {
            tracing::warn!(error = %e, "the site log cannot be kept on this instance");
            return;
        }
        // `every` processes: on every member, for the life of the daemon.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let _entered = rt.enter();
            self.start_forward(&env.instance, env.site.clone());
            if let Some(store) = self.store().cloned() {
                crate::reload::log(store, env.site.clone(), env.instance.clone());
            }
            let me = self.clone();
            let (instance, site) = (env.instance.clone(), env.site.clone());
            rt.spawn(async move { me.supervise_set(instance, site, RunOn::Every, CancellationToken::new()).await });
        }
    }

    fn status_doc(&self) -> serde_json::Value {
        serde_json::json!({"processes": self.statuses()})
    }

    async fn run(&self, ctx: ServiceContext) -> anyhow::Result<()> {
        let site = ctx.site.borrow().clone();
        self.open_store(&ctx.instance, &site)?;
        self.start_forward(&ctx.instance, ctx.site.clone());
        ctx.status.set(ServiceState::Running, "supervising the group's active processes");
        let mirror =
            crate::reload::mirror(ctx.site.clone(), ctx.instance.clone(), self.inner.metrics.clone(), ctx.cancel.child_token()).await?;
        self.supervise_set(ctx.instance.clone(), ctx.site.clone(), RunOn::Active, ctx.cancel.clone()).await;
        mirror.abort();
        Ok(())
    }
}
