//! The `Service` impl: on the group's active instance, connect to the group's database,
//! migrate the schema, put back the abuse limits that tripped under the previous active
//! instance, then serve the routes, send the outbox, work the recovery queue and keep
//! new trips until activity is lost.

use crate::db;
use crate::directory::PgDirectory;
use crate::handle::{Running, UsersService};
use crate::limits::Limiter;
use crate::outbox::{self, Mailer};
use crate::password::{Hasher, Policy};
use crate::section::Users;
use crate::store::Store;
use async_trait::async_trait;
use mware_config::Role;
use mware_host::{Service, ServiceContext, ServiceState};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// Recovery requests waiting at most (past it: 503 with Retry-After).
const RECOVERY_QUEUE: usize = 1024;

#[async_trait]
impl Service for UsersService {
    fn name(&self) -> &'static str {
        "users"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<Users>().is_some()
    }

    fn routes(&self) -> mware_host::Routes {
        let mut r = crate::api::routes(self.clone());
        r.0.extend(crate::pages::routes(self.clone()).0);
        r.0.extend(crate::oidc::routes(self.clone()).0);
        r
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        let mut doc = crate::api::openapi();
        doc.merge(crate::pages::openapi());
        doc.merge(crate::oidc::openapi());
        Some(doc)
    }

    fn status_doc(&self) -> serde_json::Value {
        match self.running() {
            Some(r) => serde_json::json!({"domains": r.cfg.domains.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
                                          "outbox_pending": self.metrics().outbox_pending.get()}),
            None => serde_json::json!({}),
        }
    }

    async fn run(&self, ctx: ServiceContext) -> anyhow::Result<()> {
        let cfg = ctx.role().and_then(|r| r.section::<Users>()).ok_or_else(|| anyhow::anyhow!("the group has no users section"))?;
        ctx.status.set(ServiceState::Starting, "connecting to the group's database and migrating its schema");
        let pool = db::pool(&cfg.database)?;
        let applied = tokio::select! {
            r = db::migrate(&pool) => r?,
            _ = ctx.cancel.cancelled() => return Ok(()),
        };
        if !applied.is_empty() {
            tracing::info!(versions = ?applied, "users: schema migrated");
        }
        let mailer = Arc::new(Mailer::new(&cfg.smtp)?);
        let limits = Limiter::new(&cfg.limits);
        // The limits that tripped under the previous active instance hold here too.
        let restored = tokio::select! {
            r = crate::trips::load(&pool, &limits) => r?,
            _ = ctx.cancel.cancelled() => return Ok(()),
        };
        if restored > 0 {
            tracing::info!(restored, "users: tripped abuse limits restored from the group's database");
        }
        let (trips_tx, trips_rx) = mpsc::channel(crate::trips::QUEUE);
        let (tx, rx) = mpsc::channel(RECOVERY_QUEUE);
        let running = Arc::new(Running {
            dir: Arc::new(PgDirectory::new(pool.clone())),
            store: Store::new(pool.clone()),
            hasher: Hasher::new(&cfg.argon2)?,
            policy: Policy::load(&cfg.password_policy)?,
            limits,
            trips: trips_tx,
            wake: Arc::new(Notify::new()),
            recovery: tx,
            events: ctx.events.clone(),
            oidc: crate::oidc::flow::Flows::new(pool.clone()),
            cfg,
        });
        self.set_running(Some(running.clone()));
        ctx.status.set(ServiceState::Running, "serving the user services of the group's domains");
        let sender = tokio::spawn(outbox::run(pool.clone(), mailer, self.metrics().clone(), running.wake.clone(), ctx.cancel.clone()));
        let worker = tokio::spawn(crate::flows::recovery::work(running.clone(), rx, ctx.cancel.clone()));
        let trips = tokio::spawn(crate::trips::run(pool.clone(), trips_rx, ctx.cancel.clone()));
        ctx.cancel.cancelled().await;
        self.set_running(None);
        let _ = tokio::join!(sender, worker, trips);
        Ok(())
    }
}
