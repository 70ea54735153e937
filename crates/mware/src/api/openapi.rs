//! The OpenAPI document: the daemon's routes plus those the services contribute.

use super::handlers;
use super::openapi_services as svc;
use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "mware", description = "Active-Passive middleware for telecom sites"),
    paths(
        handlers::healthz,
        handlers::readyz,
        handlers::metrics,
        handlers::status,
        handlers::route,
        handlers::config,
        handlers::cluster,
        handlers::switchover,
        handlers::domain_owner,
        svc::pg_list,
        svc::pg_one,
        svc::provision
    ),
    components(schemas(handlers::SwitchoverBody)),
    modifiers(&Bearer)
)]
struct ApiDoc;

/// Declares the bearer security scheme that mutating calls use.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    #[allow(unused_mut)]
    let mut doc = ApiDoc::openapi();
    for extra in crate::services::openapi_parts() {
        doc.merge(extra);
    }
    doc
}

/// `GET /api/openapi.json`
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
