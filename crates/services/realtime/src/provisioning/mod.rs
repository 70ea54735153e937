//! The provisioning service: answers res_config_curl requests from the
//! provisioning tables in PostgreSQL while this instance is active.
//!
//! [`ProvisioningService`] is the [`Service`] the host runs; its
//! [`ProvisioningHandle`] is what the HTTP handlers share. While the service is
//! not running every request gets a 503 with the protocol's failure body, so a
//! caching client (rtcache, or a patched Asterisk) keeps what it has.

mod access;
mod api;
mod exec;

pub use access::resolve as resolve_entity;
pub use api::provisioning_routes;

use crate::db::Pool;
use crate::error::RealtimeError;
use crate::metrics::ProvisioningMetrics;
use crate::section::Provisioning;
use async_trait::async_trait;
use mware_config::Role;
use mware_host::{Routes, Service, ServiceContext, ServiceState};
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

/// Connections opened to the provisioning database.
const POOL_SIZE: usize = 4;

/// The default families when the config names none.
pub fn default_families() -> BTreeMap<String, String> {
    [("endpoint", "ps_endpoints"), ("auth", "ps_auths"), ("aor", "ps_aors")]
        .into_iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect()
}

/// What a running service serves from.
pub(crate) struct Backend {
    pub(crate) pool: Pool,
    pub(crate) families: BTreeMap<String, String>,
    pub(crate) max_body: usize,
    /// Entity id → what it may see.
    pub(crate) entities: BTreeMap<String, access::Entity>,
    pub(crate) accept_domain_segment: bool,
    pub(crate) shared_families: BTreeSet<String>,
}

struct Inner {
    backend: RwLock<Option<Arc<Backend>>>,
    metrics: ProvisioningMetrics,
}

/// A cheap handle shared by the service and its HTTP handlers.
#[derive(Clone)]
pub struct ProvisioningHandle(Arc<Inner>);

impl ProvisioningHandle {
    /// A stopped handle whose metrics are registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        ProvisioningHandle(Arc::new(Inner { backend: RwLock::new(None), metrics: ProvisioningMetrics::register(registry) }))
    }

    /// Connects to the database in `cfg` and starts answering requests.
    pub async fn start(&self, cfg: &Provisioning) -> Result<(), RealtimeError> {
        let families = if cfg.families.is_empty() { default_families() } else { cfg.families.clone() };
        for table in families.values() {
            crate::query::quote_table(table)?;
        }
        let entities = cfg
            .entities
            .iter()
            .map(|(id, e)| {
                let domains = e.domains.iter().map(|d| mware_config::canonical(d).unwrap_or_else(|_| d.clone())).collect();
                (id.clone(), access::Entity { user: e.user.clone(), password: e.password.clone(), domains, write: e.write })
            })
            .collect();
        let pool = Pool::open(cfg.dsn.clone(), cfg.ca_file.as_deref(), POOL_SIZE).await?;
        let backend = Backend {
            pool,
            families,
            max_body: cfg.max_body_bytes,
            entities,
            accept_domain_segment: cfg.accept_domain_segment,
            shared_families: cfg.shared_families.iter().cloned().collect(),
        };
        for (family, table) in &backend.families {
            match backend.pool.table(table).await {
                Ok(t) if !t.scoped() && !backend.shared_families.contains(family) => tracing::warn!(
                    family = %family, table = %table,
                    "provisioning: the table has no domain column and the family is not in provisioning.shared_families: its calls are refused (403)"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(family = %family, error = %e, "provisioning: cannot read the family's table yet"),
            }
        }
        *self.0.backend.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(backend));
        Ok(())
    }

    /// Stops answering (requests get 503 and the failure body) and drops the connections.
    pub fn stop(&self) {
        *self.0.backend.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// True while requests are answered from the database.
    pub fn is_running(&self) -> bool {
        self.backend().is_some()
    }

    pub(crate) fn backend(&self) -> Option<Arc<Backend>> {
        self.0.backend.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn metrics(&self) -> &ProvisioningMetrics {
        &self.0.metrics
    }
}

/// The `provisioning` service.
pub struct ProvisioningService {
    handle: ProvisioningHandle,
}

impl ProvisioningService {
    /// Builds the service and registers its metrics.
    pub fn new(registry: &mut Registry) -> Self {
        ProvisioningService { handle: ProvisioningHandle::new(registry) }
    }
    /// The handle its routes use.
    pub fn handle(&self) -> ProvisioningHandle {
        self.handle.clone()
    }
}

#[async_trait]
impl Service for ProvisioningService {
    fn name(&self) -> &'static str {
        "provisioning"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<Provisioning>().is_some()
    }

    fn routes(&self) -> Routes {
        provisioning_routes(self.handle.clone())
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        Some(api::openapi())
    }

    fn panels(&self) -> Vec<mware_host::Panel> {
        use mware_host::{Column, Panel};
        vec![Panel {
            title: "Realtime provisioning",
            source: "",
            rows: "/entities",
            total: "",
            columns: vec![
                Column::text("SIP server (entity)", "/entity"),
                Column::text("domains", "/domains"),
                Column::text("may write", "/write"),
            ],
            actions: vec![],
            empty: "no SIP server (entity) is configured",
            nested: None,
        }]
    }

    fn status_doc(&self) -> serde_json::Value {
        match self.handle.backend() {
            Some(b) => serde_json::json!({
                "families": b.families.iter().map(|(f, t)| serde_json::json!({"family": f, "table": t, "shared": b.shared_families.contains(f)})).collect::<Vec<_>>(),
                "entities": b.entities.iter().map(|(id, e)| serde_json::json!({"entity": id, "domains": e.domains.join(", "), "write": e.write})).collect::<Vec<_>>(),
                "accept_domain_segment": b.accept_domain_segment,
            }),
            None => serde_json::Value::Null,
        }
    }

    async fn run(&self, mut ctx: ServiceContext) -> anyhow::Result<()> {
        let result = self.serve(&mut ctx).await;
        self.handle.stop();
        result.map_err(Into::into)
    }
}

impl ProvisioningService {
    async fn serve(&self, ctx: &mut ServiceContext) -> Result<(), RealtimeError> {
        loop {
            let cfg = ctx.role().and_then(|r| r.section::<Provisioning>());
            match &cfg {
                None => ctx.status.set(ServiceState::Idle, "this role has no provisioning settings"),
                Some(cfg) => {
                    ctx.status.set(ServiceState::Starting, "connecting to the provisioning database");
                    self.handle.start(cfg).await?;
                    let n = if cfg.families.is_empty() { 3 } else { cfg.families.len() };
                    ctx.status
                        .set(ServiceState::Running, format!("serving {n} families to {} entities from postgresql", cfg.entities.len()));
                }
            }
            // Serve until cancelled, or until a reload changes our settings.
            loop {
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return Ok(()),
                    changed = ctx.site.changed() => {
                        if changed.is_err() {
                            ctx.cancel.cancelled().await;
                            return Ok(());
                        }
                        if ctx.role().and_then(|r| r.section::<Provisioning>()) != cfg {
                            tracing::info!("provisioning settings changed: reconnecting");
                            self.handle.stop();
                            break;
                        }
                    }
                }
            }
        }
    }
}
