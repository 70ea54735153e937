//! HTTP routes of the acme service:
//! - `GET /api/v1/certificates`: every certificate of this instance's group, read from the
//!   coordinator (any instance answers): names, state and reason, the next step in words,
//!   the certificate held (serial, expiry), the order in flight, each target's deploy state
//!   with the expiry read back there. Never a key.
//! - `GET /api/v1/certificates/{name}`: one of them.
//! - `POST /api/v1/certificates/{name}/renew` (operator token): renew now (forwarded to the
//!   group's active instance).

use crate::handle::AcmeService;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use mware_host::{Access, ApiError, Routes, Scope};
use serde_json::json;
use utoipa::OpenApi;

/// The paths of the service's routes, written once: the routes here and `mware certs` use them.
pub(crate) mod paths {
    /// Every certificate of the group.
    pub const LIST: &str = "/api/v1/certificates";
    /// One certificate.
    pub const ONE: &str = "/api/v1/certificates/{name}";
    /// Renew one now.
    pub const RENEW: &str = "/api/v1/certificates/{name}/renew";
}

#[derive(OpenApi)]
#[openapi(paths(list, one, renew), tags((name = "acme", description = "ACME certificates: issued, renewed and deployed by the group's active instance")))]
struct ApiDoc;

/// The OpenAPI description of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The service's routes.
pub fn routes(svc: AcmeService) -> Routes {
    Routes::new()
        .get(paths::LIST, Access::Public, Scope::Instance, get(list).with_state(svc.clone()))
        .get(paths::ONE, Access::Public, Scope::Instance, get(one).with_state(svc.clone()))
        .anywhere()
        .post(paths::RENEW, Access::Operator, Scope::Group, post(renew).with_state(svc))
}

fn unavailable(msg: String) -> Response {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg).into_response()
}

/// Every certificate of this instance's group.
#[utoipa::path(get, path = "/api/v1/certificates", tag = "acme",
    responses((status = 200, description = "`{certificates: [{name, names, key_type, challenge, renew_before_days, state, reason, next, certificate: {serial, not_before, not_after, expires_in_s, issued_at}, order, last_error, retry_at, targets: [{name, host, serial, current, not_after, deployed_at, state, error, retry_at}]}]}`"),
        (status = 503, description = "no acme section, or the coordinator cannot be read", body = ApiError)))]
async fn list(State(svc): State<AcmeService>) -> Response {
    match svc.certificates().await {
        Ok(v) => Json(v).into_response(),
        Err(e) => unavailable(e),
    }
}

/// One certificate.
#[utoipa::path(get, path = "/api/v1/certificates/{name}", tag = "acme", params(("name" = String, Path, description = "certificate name")),
    responses((status = 200, description = "as one item of the list"), (status = 404, description = "no such certificate in the group's acme section", body = ApiError),
        (status = 503, description = "no acme section, or the coordinator cannot be read", body = ApiError)))]
async fn one(State(svc): State<AcmeService>, Path(name): Path<String>) -> Response {
    match svc.records().await {
        Ok((acme, recs)) => match acme.certificates.iter().zip(&recs).find(|(c, _)| c.name == name) {
            Some((c, r)) => Json(crate::view::view(&acme, c, r, mware_config::now_ms())).into_response(),
            None => not_found(&acme, &name),
        },
        Err(e) => unavailable(e),
    }
}

fn not_found(acme: &crate::section::Acme, name: &str) -> Response {
    let names: Vec<&str> = acme.certificates.iter().map(|c| c.name.as_str()).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "path segment name: expected a certificate of the group ({}), found {:?}",
            names.join(", "),
            name.chars().take(64).collect::<String>()
        ),
    )
    .field("name")
    .into_response()
}

/// Renews a certificate now (whatever its expiry), then deploys it.
#[utoipa::path(post, path = "/api/v1/certificates/{name}/renew", tag = "acme", params(("name" = String, Path, description = "certificate name")),
    responses((status = 202, description = "requested (stored; the active instance orders at once)"), (status = 401, description = "no or wrong token", body = ApiError),
        (status = 404, description = "no such certificate", body = ApiError), (status = 503, description = "the service does not run here", body = ApiError)))]
async fn renew(State(svc): State<AcmeService>, Path(name): Path<String>) -> Response {
    let Some((_, acme)) = svc.section() else { return unavailable("this instance's group has no acme section".into()) };
    if !acme.certificates.iter().any(|c| c.name == name) {
        return not_found(&acme, &name);
    }
    match svc.request_renewal(&name).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({"certificate": name, "requested": "renew"}))).into_response(),
        Err(e) => unavailable(e),
    }
}
