//! [`AcmeService`]'s `Service` impl: wanted when the group's `acme` section lists a
//! certificate; runs on the group's active instance only (issuing, HTTP-01 answers,
//! deploys); its read routes answer on any instance from the coordinator.

use crate::handle::AcmeService;
use crate::section::Acme;
use async_trait::async_trait;
use mware_config::Role;
use mware_host::{InstanceEnv, Service, ServiceContext};

#[async_trait]
impl Service for AcmeService {
    fn name(&self) -> &'static str {
        "acme"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<Acme>().is_some_and(|a| !a.certificates.is_empty())
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
        let d = self.inner.decisions.lock().unwrap_or_else(|e| e.into_inner()).clone();
        serde_json::json!({"certificates": d.into_iter().map(|(c, r)| serde_json::json!({"name": c, "next": r})).collect::<Vec<_>>()})
    }

    async fn run(&self, ctx: ServiceContext) -> anyhow::Result<()> {
        crate::run::run(self.clone(), ctx).await
    }
}
