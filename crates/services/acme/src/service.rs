//! [`AcmeService`]'s `Service` impl: wanted when the group's `acme` section lists a
//! certificate; runs on the group's active instance only (issuing, HTTP-01 answers,
//! deploys); its read routes answer on any instance from the coordinator; its console
//! panel lists the certificates with a "Renew now" action.

use crate::handle::AcmeService;
use crate::section::Acme;
use async_trait::async_trait;
use mware_config::Role;
use mware_host::{Action, Column, InstanceEnv, Panel, Service, ServiceContext};

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

    fn panels(&self) -> Vec<Panel> {
        vec![Panel {
            title: "Certificates (ACME)",
            source: crate::api::paths::LIST,
            rows: "/certificates",
            total: "",
            columns: vec![
                Column::text("Certificate", "/name"),
                Column::fmt("State", "/state", "state"),
                Column::text("Expires", "/certificate/not_after"),
                Column::text("Serial", "/certificate/serial"),
                Column::text("Reason", "/reason"),
                Column::text("Next", "/next"),
            ],
            actions: vec![Action {
                label: "Renew now",
                method: "POST",
                path: "/api/v1/certificates/{/name}/renew",
                body: serde_json::json!({}),
                confirm: "Order a new certificate for {/name} now and deploy it?",
            }],
            empty: "no certificates in this group's acme section",
            nested: None,
        }]
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
