//! The `devicemanager` service: while its group is active here, it opens the store,
//! claims the jobs with this activity's epoch, starts the transport (RabbitMQ, or
//! in-process without `amqp`) and runs the outbox, the recorder and the sweeper until
//! the activity ends or the group's settings change.

use crate::engine::{self, Active};
use crate::error::DevicesError;
use crate::handle::DevicesService;
use crate::section::DeviceManager;
use crate::store::Store;
use crate::targets::Policy;
use crate::transport::{amqp, local::Local, Ack, Incoming, Transport};
use async_trait::async_trait;
use mware_config::Role;
use mware_host::{Routes, Service, ServiceContext, ServiceState};
use mware_jobs::RunEnv;
use mware_ssh::HostKeyPolicy;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Reports waiting for the recorder at most (the broker holds the rest).
const REPORT_QUEUE: usize = 8192;

/// The SQLite file of a site whose coordinator file is `coord_path`.
pub fn sqlite_path(coord_path: &str) -> PathBuf {
    Path::new(coord_path).parent().unwrap_or(Path::new("")).join("devicemanager.sqlite")
}

#[async_trait]
impl Service for DevicesService {
    fn name(&self) -> &'static str {
        "devicemanager"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<DeviceManager>().is_some()
    }

    fn routes(&self) -> Routes {
        crate::api::routes(self.inner.clone())
    }

    fn token_env(&self, role: &Role) -> Option<String> {
        role.section::<DeviceManager>().and_then(|d| d.token_env)
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        Some(crate::api::openapi())
    }

    fn panels(&self) -> Vec<mware_host::Panel> {
        use mware_host::{Column, Panel};
        vec![Panel {
            title: "Device jobs: satellites",
            source: "/api/devicemanager/v1/satellites",
            rows: "/satellites",
            total: "",
            columns: vec![
                Column::text("satellite (none: the pool)", "/satellite"),
                Column::text("queue", "/queue"),
                Column::text("queue depth", "/broker/depth"),
                Column::text("pollers connected", "/broker/consumers"),
                Column::text("last heartbeat", "/last_seen"),
                Column::text("jobs queued", "/open_jobs/queued"),
                Column::text("jobs running", "/open_jobs/running"),
            ],
            actions: vec![],
            empty: "no satellite is configured",
            nested: None,
        }]
    }

    fn status_doc(&self) -> serde_json::Value {
        match self.inner.active() {
            Some(a) => serde_json::json!({
                "store": a.store.describe(),
                "transport": if self.inner.local() { "in-process" } else { "amqp" },
                "broker_connected": a.transport.connected(),
                "broker_error": match &a.transport { Transport::Amqp(x) => x.last_error(), Transport::Local(_) => None },
                "satellites": a.cfg.satellites,
                "epoch": a.epoch,
            }),
            None => serde_json::Value::Null,
        }
    }

    async fn run(&self, mut ctx: ServiceContext) -> anyhow::Result<()> {
        let r = self.serve(&mut ctx).await;
        self.inner.set(None);
        r.map_err(Into::into)
    }
}

impl DevicesService {
    async fn serve(&self, ctx: &mut ServiceContext) -> Result<(), DevicesError> {
        loop {
            let cfg = ctx.role().and_then(|r| r.section::<DeviceManager>());
            let Some(cfg) = cfg.clone() else {
                ctx.status.set(ServiceState::Idle, "this role has no devicemanager section");
                if wait_change(ctx, &None).await {
                    continue;
                }
                return Ok(());
            };
            if !self.serve_settings(ctx, cfg).await? {
                return Ok(());
            }
            tracing::info!("devicemanager settings changed: starting again");
        }
    }

    /// Serves with the settings `cfg` until they change (true) or the activity ends
    /// (false).
    async fn serve_settings(&self, ctx: &mut ServiceContext, cfg: DeviceManager) -> Result<bool, DevicesError> {
        ctx.status.set(ServiceState::Starting, "opening the job store");
        let store = self.open_store(ctx, &cfg).await?;
        let local = cfg.amqp.is_none();
        let (tx, rx) = mpsc::channel(REPORT_QUEUE);
        let child = ctx.cancel.child_token();
        let transport = self.start_transport(ctx, &cfg, tx, &child);
        let policy = Policy::new(&ctx.site.borrow(), &cfg);
        let (a, inserts) = Active::new(store.clone(), ctx.fence.epoch, cfg.clone(), policy.clone(), transport, self.inner.metrics.clone());
        let a = Arc::new(a);
        self.inner.set(Some(a.clone()));
        let how = if local {
            "in-process".to_string()
        } else {
            format!("by pollers through RabbitMQ ({} satellites and the pool)", cfg.satellites.len())
        };
        ctx.status.set(ServiceState::Running, format!("jobs stored in {}, run {how}", store.describe()));
        let status = ctx.status.clone();
        let loops = async {
            tokio::try_join!(
                engine::inserter(a.clone(), inserts, child.clone()),
                engine::outbox(a.clone(), child.clone()),
                engine::recorder(a.clone(), rx, child.clone()),
                engine::sweeper(a.clone(), child.clone()),
                watch_broker(a.clone(), status, how.clone(), store.describe(), child.clone()),
            )
        };
        let outcome = tokio::select! {
            r = loops => r.map(|_| false),
            _ = settings_changed(&mut ctx.site, &ctx.instance, &cfg, &policy) => Ok(true),
            _ = ctx.cancel.cancelled() => Ok(false),
        };
        child.cancel();
        self.inner.set(None);
        outcome
    }

    /// Opens the job store and claims its jobs for this activity; in-process, the open
    /// jobs of the previous activity are queued again.
    async fn open_store(&self, ctx: &ServiceContext, cfg: &DeviceManager) -> Result<Arc<Store>, DevicesError> {
        let store = Arc::new(match &cfg.database {
            Some(dsn) => Store::postgres(dsn).await?,
            None => {
                let path = sqlite_path(&ctx.site.borrow().coordination.path);
                Store::sqlite(path).await?
            }
        });
        store.claim(ctx.fence.group, ctx.fence.epoch, &ctx.instance).await?;
        let local = cfg.amqp.is_none();
        self.inner.local.store(local, std::sync::atomic::Ordering::Relaxed);
        if local {
            let n = store.requeue_open(ctx.fence.epoch).await?;
            if n > 0 {
                tracing::info!(jobs = n, "devicemanager: open jobs of the previous activity run again in-process");
            }
        }
        Ok(store)
    }

    /// Starts the transport: RabbitMQ with `amqp`, else in-process; reports go to `tx`.
    fn start_transport(
        &self,
        ctx: &ServiceContext,
        cfg: &DeviceManager,
        tx: mpsc::Sender<(Incoming, Ack)>,
        child: &tokio_util::sync::CancellationToken,
    ) -> Transport {
        match &cfg.amqp {
            Some(dsn) => {
                let s = amqp::Settings {
                    dsn: dsn.clone(),
                    satellites: cfg.satellites.clone(),
                    max_deliveries: cfg.max_deliveries,
                    instance: ctx.instance.clone(),
                };
                Transport::Amqp(amqp::Amqp::start(s, tx, child.clone(), self.inner.metrics.clone()))
            }
            None => {
                self.inner.metrics.broker_up.set(1);
                let env = RunEnv::new(HostKeyPolicy::from(&ctx.site.borrow().ssh));
                Transport::Local(Local::new(env, cfg.concurrency, tx, child.clone()))
            }
        }
    }
}

/// Returns once this instance's devicemanager settings differ from `cfg`, or the site's
/// endpoints the target rules refuse differ from `policy`; never if the site is gone.
async fn settings_changed(
    site: &mut tokio::sync::watch::Receiver<Arc<mware_config::Site>>,
    instance: &str,
    cfg: &DeviceManager,
    policy: &Policy,
) {
    loop {
        if site.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        let s = site.borrow().clone();
        let now = s.instance(instance).and_then(|p| p.role.section::<DeviceManager>());
        // The settings, or the site's endpoints the target rules refuse.
        if now.as_ref() != Some(cfg) || Policy::new(&s, cfg) != *policy {
            return;
        }
    }
}

/// Waits for a settings change (true) or the end of the activity (false).
async fn wait_change(ctx: &mut ServiceContext, cfg: &Option<DeviceManager>) -> bool {
    loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => return false,
            r = ctx.site.changed() => {
                if r.is_err() {
                    ctx.cancel.cancelled().await;
                    return false;
                }
                if ctx.role().and_then(|r| r.section::<DeviceManager>()) != *cfg {
                    return true;
                }
            }
        }
    }
}

/// Keeps the status reason honest about the broker.
async fn watch_broker(
    a: Arc<Active>,
    status: mware_host::StatusHandle,
    how: String,
    store: String,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<(), DevicesError> {
    let mut was = true;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        let up = a.transport.connected();
        if up != was {
            let reason = if up {
                format!("jobs stored in {store}, run {how}")
            } else {
                let e = match &a.transport {
                    Transport::Amqp(x) => x.last_error().unwrap_or_else(|| "connecting".into()),
                    Transport::Local(_) => String::new(),
                };
                format!("the broker is unreachable ({e}): jobs are accepted and stored, and published when it is back")
            };
            status.set(ServiceState::Running, reason);
            was = up;
        }
    }
}
