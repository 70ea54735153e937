//! The OpenAPI document: the daemon's routes plus the part each service contributes;
//! every operation's security entry comes from its route's declared access, so the
//! document says which token each call takes.

use super::{handlers, AppState};
use axum::extract::State;
use axum::http::Method;
use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "mware", description = "Active-Passive middleware for telecom sites"),
    paths(
        super::console::index,
        super::console::app_js,
        super::console::app_css,
        super::console::manifest,
        handlers::healthz,
        handlers::readyz,
        handlers::metrics,
        openapi_json,
        handlers::status,
        handlers::route,
        handlers::config,
        handlers::cluster,
        super::events::stream,
        handlers::switchover,
        handlers::domain_owner,
    ),
    components(schemas(handlers::SwitchoverBody, mware_host::ApiError, mware_host::Problem))
)]
struct ApiDoc;

fn schemes(doc: &mut utoipa::openapi::OpenApi) {
    let c = doc.components.get_or_insert_with(Default::default);
    let bearer = |d: &str| {
        let mut h = Http::new(HttpAuthScheme::Bearer);
        h.description = Some(d.to_string());
        SecurityScheme::Http(h)
    };
    c.add_security_scheme("bearer", bearer("the API token (api.token_env), or the operator's token"));
    c.add_security_scheme("operator", bearer("the operator's token (api.operator_token_env); the API token when none is configured"));
    c.add_security_scheme(
        "service_token",
        bearer("the operator's token (api.operator_token_env) or the service's own (devicemanager.token_env); never the API token"),
    );
    let mut basic = Http::new(HttpAuthScheme::Basic);
    basic.description = Some("a provisioning entity's credentials".into());
    c.add_security_scheme("basic", SecurityScheme::Http(basic));
}

fn operation<'a>(item: &'a mut utoipa::openapi::PathItem, m: &Method) -> Option<&'a mut Operation> {
    match *m {
        Method::GET => item.get.as_mut(),
        Method::POST => item.post.as_mut(),
        Method::PUT => item.put.as_mut(),
        Method::DELETE => item.delete.as_mut(),
        Method::PATCH => item.patch.as_mut(),
        _ => None,
    }
}

/// The whole document, with security entries from the routes' declared access.
pub fn document(st: &AppState) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for svc in st.0.host.services() {
        if let Some(part) = svc.openapi() {
            doc.merge(part);
        }
    }
    schemes(&mut doc);
    for (_, route) in super::declared(st) {
        let Some(scheme) = route.access.scheme() else { continue };
        let Some(item) = doc.paths.paths.get_mut(route.path) else { continue };
        let methods = match &route.method {
            Some(m) => vec![m.clone()],
            None => vec![Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH],
        };
        for m in methods {
            if let Some(op) = operation(item, &m) {
                op.security = Some(vec![SecurityRequirement::new::<_, _, String>(scheme, [])]);
            }
        }
    }
    doc
}

/// Whether a declared route has an operation in the document.
#[cfg(test)]
pub fn describes(doc: &utoipa::openapi::OpenApi, path: &str, method: Option<&Method>) -> bool {
    let Some(item) = doc.paths.paths.get(path) else { return false };
    let mut item = item.clone();
    match method {
        Some(m) => operation(&mut item, m).is_some(),
        None => [Method::GET, Method::POST].iter().any(|m| operation(&mut item, m).is_some()),
    }
}

/// The OpenAPI document of this daemon.
#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, description = "this document")))]
pub async fn openapi_json(State(st): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(document(&st))
}
