//! The `mware_host::Service` impl of [`CallbackService`]: on the active instance it loads
//! the group's orders (attempts under way are followed, never dialled again), then ticks:
//! what is due starts, what ended settles.

use crate::active::Active;
use crate::handle::CallbackService;
use crate::local::Local;
use crate::section::CallbackConfig;
use crate::store::Store;
use async_trait::async_trait;
use mware_config::Role;
use mware_host::{Action, Column, Panel, Routes, Service, ServiceContext, ServiceState};
use std::sync::Arc;
use std::time::Duration;

/// How often due orders are looked for.
const TICK: Duration = Duration::from_millis(500);

impl CallbackService {
    async fn activate(&self, ctx: &ServiceContext) -> anyhow::Result<Arc<Active>> {
        let site = ctx.site.borrow().clone();
        let placed = site.instance(&ctx.instance).ok_or_else(|| anyhow::anyhow!("{} is not in the site", ctx.instance))?;
        let cfg = placed.role.section::<CallbackConfig>().ok_or_else(|| anyhow::anyhow!("the group has no callback section"))?;
        let ip: std::net::IpAddr = placed
            .server
            .ifaces
            .get(&placed.role.iface)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("iface: no IP address for iface {:?}", placed.role.iface))?;
        let base = format!("http://{}", std::net::SocketAddr::new(ip, placed.role.api_port));
        let var = &site.api.token_env;
        let token = std::env::var(var).map_err(|_| {
            anyhow::anyhow!("the variable {var} (api.token_env) is not set: the service calls the local Calls API with that token")
        })?;
        let store = Store::new(ctx.coord.clone(), ctx.fence);
        let (orders, bad) = store.load().await?;
        for k in bad {
            tracing::warn!(key = k, "unreadable callback order; left as it is");
        }
        let a = Active::new(
            store,
            Local::new(base, token),
            cfg,
            ctx.fence.group,
            ctx.instance.clone(),
            self.inner.metrics.clone(),
            ctx.cancel.child_token(),
        );
        let open = orders.iter().filter(|o| o.open_attempt().is_some()).count();
        if open > 0 {
            tracing::info!(open, "callback attempts under way taken over from the previous active instance (followed, not dialled again)");
        }
        a.restore(orders);
        Ok(Arc::new(a))
    }
}

#[async_trait]
impl Service for CallbackService {
    fn name(&self) -> &'static str {
        "callback"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<CallbackConfig>().is_some_and(|c| c.enabled)
    }

    fn routes(&self) -> Routes {
        crate::api::routes(self.inner.clone())
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        Some(crate::api::openapi())
    }

    fn status_doc(&self) -> serde_json::Value {
        match self.inner.active.read().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(a) => serde_json::json!({"orders": a.counts()}),
            None => serde_json::Value::Null,
        }
    }

    fn panels(&self) -> Vec<Panel> {
        vec![Panel {
            title: "Callback orders",
            source: crate::api::paths::ORDERS,
            rows: "/orders",
            total: "",
            // The pointers are checked against a real `GET /api/callback/v1/orders` by
            // crates/mware/tests/service_panels.rs.
            columns: vec![
                Column::text("number", "/number"),
                Column::text("domain", "/domain"),
                Column::text("queue", "/queue"),
                Column::text("operator", "/operator"),
                Column::fmt("state", "/state", "state"),
                Column::text("attempts", "/attempt_count"),
                Column::fmt("next attempt", "/next_attempt_ms", "ms_at"),
                Column::text("last rung", "/last_operator"),
                Column::text("why", "/reason"),
                Column::text("note", "/note"),
                Column::fmt("created", "/created_ms", "ms_ago"),
            ],
            actions: vec![Action {
                label: "Cancel",
                method: "DELETE",
                path: "/api/callback/v1/orders/{/id}",
                body: serde_json::Value::Null,
                confirm: "Cancel the callback order {/id} for {/number}?",
            }],
            empty: "no callback order",
            nested: None,
        }]
    }

    async fn run(&self, ctx: ServiceContext) -> anyhow::Result<()> {
        *self.inner.site.write().unwrap_or_else(|e| e.into_inner()) = Some(ctx.site.clone());
        ctx.status.set(ServiceState::Starting, format!("loading callback orders (epoch {})", ctx.fence.epoch));
        let active = tokio::select! {
            _ = ctx.cancel.cancelled() => return Ok(()),
            a = self.activate(&ctx) => a?,
        };
        *self.inner.active.write().unwrap_or_else(|e| e.into_inner()) = Some(active.clone());
        let counts = active.counts();
        ctx.status.set(ServiceState::Running, format!("serving callback orders ({counts}, epoch {})", ctx.fence.epoch));
        let mut tick = tokio::time::interval(TICK);
        let mut site = ctx.site.clone();
        loop {
            tokio::select! {
                _ = ctx.cancel.cancelled() => break,
                _ = tick.tick() => crate::attempt::start_due(&active, active.tick()),
                Ok(()) = site.changed() => {
                    let role = site.borrow_and_update().instance(&ctx.instance).map(|p| p.role.clone());
                    if let Some(cfg) = role.and_then(|r| r.section::<CallbackConfig>()) {
                        tracing::info!("callback section reloaded");
                        active.set_cfg(cfg);
                    }
                }
            }
        }
        *self.inner.active.write().unwrap_or_else(|e| e.into_inner()) = None;
        active.cancel.cancel();
        Ok(())
    }
}
