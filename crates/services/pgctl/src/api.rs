//! HTTP routes: `GET /api/v1/pg` (every group) and `GET /api/v1/pg/{key}` (one group):
//! each server's role, reachability, timeline, lag and SSH host key state, the last
//! decision and its reason. They are about this instance's group: any member forwards
//! them to the group's active instance, where the service runs (the host answers 503
//! with the reason while it does not).

use crate::handle::PgctlService;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use mware_host::{Access, ApiError, Routes, Scope};
use serde_json::json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(paths(list, one), tags((name = "pg_controller", description = "PostgreSQL streaming-replication controller: one master per pair")))]
struct ApiDoc;

/// The OpenAPI description of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The service's routes.
pub fn routes(svc: PgctlService) -> Routes {
    Routes::new().get("/api/v1/pg", Access::Public, Scope::Group, get(list).with_state(svc.clone())).get(
        "/api/v1/pg/{key}",
        Access::Public,
        Scope::Group,
        get(one).with_state(svc),
    )
}

/// Every pg_controller group of this instance's group: each server's role, reachability,
/// timeline, lag, the last decision and its reason.
#[utoipa::path(get, path = "/api/v1/pg", tag = "pg_controller",
    responses((status = 200, description = "every group"), (status = 503, description = "pg_controller is not running on the group's active instance", body = ApiError)))]
async fn list(State(svc): State<PgctlService>) -> Response {
    Json(json!({"groups": svc.groups()})).into_response()
}

/// One pg_controller group by key.
#[utoipa::path(get, path = "/api/v1/pg/{key}", tag = "pg_controller", params(("key" = String, Path, description = "pg group key")),
    responses((status = 200, description = "the group"), (status = 404, description = "no running group with that key", body = ApiError),
        (status = 503, description = "pg_controller is not running on the group's active instance", body = ApiError)))]
async fn one(State(svc): State<PgctlService>, Path(key): Path<String>) -> Response {
    match svc.group(&key) {
        Some(g) => Json(g).into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, format!("expected a running pg group {key:?}, found none")).into_response(),
    }
}
