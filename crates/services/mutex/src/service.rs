//! [`MutexService`]: the `mware_host::Service` that restores the lock table on
//! activation, runs the group commit writer and the expiry sweeper, and serves the
//! HTTP API while active.

use crate::active::Active;
use crate::handle::MutexService;
use crate::section::CriticalSections;
use crate::store::{self, Batch};
use crate::table::Table;
use crate::write::{self, Stop, WriteError};
use crate::writer;
use async_trait::async_trait;
use mware_config::Role;
use mware_coord::KvOp;
use mware_host::{Action, Column, Panel, Routes, Service, ServiceContext, ServiceState};
use std::sync::Arc;

/// Longest wait, when stopping, for the writer to write what is queued.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_millis(500);

impl MutexService {
    /// Restores the table and makes the saved state plain records again (the journal
    /// folded, lapsed holders dropped, line records turned into unconfirmed holders) in
    /// fenced writes before serving: they also check the fence.
    async fn activate(&self, ctx: &ServiceContext) -> Result<Activated, WriteError> {
        let limits = ctx.role().and_then(|r| r.section::<CriticalSections>()).unwrap_or_default();
        let saved =
            store::load(&*ctx.coord, ctx.fence.group).await.map_err(|e| WriteError::Failed(format!("cannot read saved holders: {e}")))?;
        let mut table = Table::new(limits);
        let restored = saved.holders.len();
        let fx = table.restore(saved.next_token, saved.holders, mware_coord::now_ms());
        for k in &saved.unreadable {
            tracing::warn!(key = k, "unreadable saved mutex state; deleting it");
        }
        let mut base = saved.base;
        let mut chunks = vec![];
        let mut next_seq = 1;
        let mut replayed = 0;
        if let Some((first, last, net)) = saved.journal {
            replayed = last - first + 1;
            chunks.extend(base.fold(net, first, last + 1));
            next_seq = last + 1;
        }
        let mut batch = Batch::default();
        batch.add(&fx.writes, fx.next_token);
        base.rewrite_counter();
        chunks.extend(base.writes(batch));
        let cleanup: Vec<KvOp> = saved.unreadable.into_iter().chain(saved.retired).map(|key| KvOp::Delete { key }).collect();
        chunks.extend(cleanup.chunks(store::CHUNK_OPS).map(|c| c.to_vec()));
        write::apply(&*ctx.coord, &ctx.fence, chunks).await?;
        let next = table.next_token();
        let live = table.holder_count();
        self.inner.metrics.holders.set(live as i64);
        tracing::info!(
            restored,
            live,
            lapsed = fx.expired.len(),
            journal_entries = replayed,
            next_token = next,
            epoch = ctx.fence.epoch,
            "critical sections restored"
        );
        let (active, rx) = Active::new(table, self.inner.metrics.clone(), ctx.lease.clone());
        Ok(Activated { active, rx, journal: writer::Journal::new(base, next_seq, next) })
    }
}

/// What [`MutexService::activate`] hands to the writer.
struct Activated {
    active: Arc<Active>,
    rx: tokio::sync::mpsc::UnboundedReceiver<crate::active::Pending>,
    journal: writer::Journal,
}

#[async_trait]
impl Service for MutexService {
    fn name(&self) -> &'static str {
        "mutex"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<CriticalSections>().is_some_and(|c| c.enabled)
    }

    fn routes(&self) -> Routes {
        crate::api::routes(self.inner.clone())
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        Some(crate::api::openapi())
    }

    fn status_doc(&self) -> serde_json::Value {
        self.inner.status_doc()
    }

    fn panels(&self) -> Vec<Panel> {
        vec![Panel {
            title: "Critical sections",
            source: "/api/v1/mutexes",
            rows: "/mutexes",
            total: "",
            columns: vec![
                Column::text("domain", "/domain"),
                Column::text("mutex", "/name"),
                Column::text("holders", "/holders"),
                Column::text("limit", "/limit"),
                Column::text("waiters", "/waiters"),
                Column::text("oldest holder", "/oldest_owner"),
                Column::fmt("held for", "/oldest_since_ms", "ms_ago"),
            ],
            actions: vec![Action {
                label: "Evict oldest holder",
                method: "POST",
                path: "/api/v1/domains/{/domain}/mutexes/{/name}/evict",
                body: serde_json::json!({"token": "{/oldest_token}", "reason": "{?Why evict this holder?}"}),
                confirm: "Evict {/oldest_owner} (token {/oldest_token}) from {/name} in {/domain}? The next waiter gets it.",
            }],
            empty: "no mutex is held or waited on",
            nested: None,
        }]
    }

    async fn run(&self, ctx: ServiceContext) -> anyhow::Result<()> {
        let st = &ctx.status;
        st.set(ServiceState::Starting, format!("restoring holders (epoch {})", ctx.fence.epoch));
        let activated = tokio::select! {
            _ = ctx.cancel.cancelled() => return Ok(()),
            a = self.activate(&ctx) => a,
        };
        let Activated { active, rx, journal } = match activated {
            Ok(x) => x,
            Err(WriteError::Fenced(e)) => return self.fenced(&ctx, e).await,
            Err(WriteError::Failed(e)) => anyhow::bail!(e),
        };
        self.inner.set_active(Some(active.clone()));
        st.set(
            ServiceState::Running,
            format!("granting (epoch {}, {} holders restored)", ctx.fence.epoch, active.lock().table.holder_count()),
        );
        let w = writer::run(active.clone(), rx, ctx.coord.clone(), ctx.fence, journal);
        let sweep = writer::sweep(active.clone());
        tokio::pin!(w, sweep);
        let mut site = ctx.site.clone();
        let mut follow_site = true;
        // The sweeper ends when the activity is closed; the writer then ends too, and
        // says why (a failed write must end the run with an error).
        let mut sweeping = true;
        let outcome = loop {
            tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => break None,
                s = &mut w => break Some(s),
                _ = &mut sweep, if sweeping => sweeping = false,
                r = site.changed(), if follow_site => match r {
                    Ok(()) => {
                        if let Some(limits) = ctx.role().and_then(|r| r.section::<CriticalSections>()) {
                            tracing::info!(?limits, "critical sections limits reloaded");
                            active.set_limits(limits);
                        }
                    }
                    Err(_) => follow_site = false,
                },
            }
        };
        self.inner.set_active(None);
        let result = match outcome {
            Some(Stop::Drained) => Ok(()),
            None => {
                active.close("stopping: this instance is no longer active");
                // Write what was answered but is not durable yet (releases), so the next
                // active instance does not keep released holders until their ttl.
                if tokio::time::timeout(DRAIN_LIMIT, &mut w).await.is_err() {
                    tracing::warn!("queued releases not all written before stopping; the next instance keeps them until their ttl");
                }
                Ok(())
            }
            Some(Stop::Fenced(e)) => self.fenced(&ctx, e).await,
            Some(Stop::Failed(e)) => {
                active.close(&e);
                Err(anyhow::anyhow!(e))
            }
        };
        self.inner.metrics.activity_ended();
        result
    }
}

impl MutexService {
    /// The fence is stale: grant nothing more and wait for the host to stop us.
    async fn fenced(&self, ctx: &ServiceContext, e: String) -> anyhow::Result<()> {
        self.inner.set_active(None);
        tracing::error!(error = %e, "coordinator refused a write: this instance lost activity; granting stopped");
        ctx.status.set(ServiceState::Failed, format!("stopped granting: {e}"));
        ctx.cancel.cancelled().await;
        Ok(())
    }
}
