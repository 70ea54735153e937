//! The `Service` impl: the host runs call tracking on the active instance of a group
//! whose section has `calltracking`; it opens the journal, reads the live calls back
//! from the core, starts the loops (`loops`, `cti`, `external`) with this activity's fenced store and
//! the registrar, and stops them when activity is lost.

use crate::handle::{CallTracking, Running};
use crate::journal::Journal;
use crate::section::CallTracking as Section;
use crate::store::Store;
use crate::tracker::Tracker;
use async_trait::async_trait;
use mware_config::Role;
use mware_host::{Service, ServiceContext, ServiceState};
use std::sync::Arc;
use tokio::sync::Notify;

#[async_trait]
impl Service for CallTracking {
    fn name(&self) -> &'static str {
        "calltracking"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<Section>().is_some()
    }

    fn routes(&self) -> mware_host::Routes {
        crate::api::routes(self.clone())
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        Some(crate::api::openapi())
    }

    fn status_doc(&self) -> serde_json::Value {
        serde_json::json!({
            "static": self.inner.probes().into_iter().map(|(k, p)| (k.trim_start_matches(crate::store::PREFIX).to_string(), p)).collect::<std::collections::BTreeMap<_, _>>(),
            "sg": self.inner.sgs(),
            "last_changes": self.inner.last_cycle(),
            "cti_adapters": self.inner.adapters(),
            "external": self.inner.running().map(|r| r.tracker.numbers().list(None, mware_config::now_ms())).unwrap_or_default(),
        })
    }

    async fn run(&self, ctx: ServiceContext) -> anyhow::Result<()> {
        let cfg = crate::loops::section(&ctx).ok_or_else(|| anyhow::anyhow!("the group has no calltracking section"))?;
        let registrar = mware_sip::Registrar::new(&cfg.registrar_rpc)?;
        let journal = Journal::open(ctx.coord.clone(), ctx.fence, cfg.journal_size as usize).await?;
        let tree = mware_config::DomainTree::build(&ctx.site.borrow());
        let group = ctx.fence.group;
        let ours = Box::new(move |d: &str| tree.route(d) == Some(group));
        let members = crate::members::Members::new(Some(registrar.clone()));
        let tracker = Arc::new(Tracker::new(journal, ours, cfg.max_live_calls as usize, self.inner.metrics.clone(), members));
        crate::restore::from_core(&tracker, &registrar).await;
        let run = Running { store: Store::new(ctx.coord.clone(), ctx.fence), registrar, kick: Arc::new(Notify::new()), tracker };
        *self.inner.running.lock().unwrap() = Some(run.clone());
        ctx.status.set(
            ServiceState::Running,
            format!(
                "keeping {} static registration(s) from the site file, watching {} sg and {} external number(s)",
                cfg.static_registrations.len(),
                cfg.sg.len(),
                cfg.external.numbers.len()
            ),
        );
        let i = &self.inner;
        tokio::join!(
            crate::loops::statics(i.clone(), ctx.clone(), run.clone()),
            crate::loops::options(i.clone(), ctx.clone(), run.clone()),
            crate::loops::sgs(i.clone(), ctx.clone(), run.clone()),
            crate::cti::supervise(i.clone(), ctx.clone(), run.tracker.clone()),
            crate::external::run(i.clone(), ctx.clone(), run.tracker.clone()),
        );
        self.inner.stopped();
        Ok(())
    }
}
