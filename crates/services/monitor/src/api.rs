//! HTTP routes of the monitoring service:
//! - `GET /api/v1/monitoring`: the site's state, every item with its state, since when
//!   and why. Any instance answers it, active or not, from the coordinator (no
//!   forwarding, so it answers while a group has no active instance);
//! - `GET /api/v1/monitoring/probes`: this group's probes as its active instance runs
//!   them (last check, counters), forwarded there.

use crate::handle::MonitorService;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use mware_host::{Access, ApiError, Routes, Scope};
use serde_json::json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(paths(site_state, probes), tags((name = "monitoring", description = "The site's state: probes, groups, services, pg_controller")))]
struct ApiDoc;

/// The OpenAPI description of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The service's routes.
pub fn routes(svc: MonitorService) -> Routes {
    Routes::new().get("/api/v1/monitoring", Access::Public, Scope::Instance, get(site_state).with_state(svc.clone())).anywhere().get(
        "/api/v1/monitoring/probes",
        Access::Public,
        Scope::Group,
        get(probes).with_state(svc),
    )
}

/// The site's state: its worst item's state, since when, a summary, and every item.
#[utoipa::path(get, path = "/api/v1/monitoring", tag = "monitoring",
    responses((status = 200, description = "`{site, state, since_ms, summary, items: [{group, kind, name, state, since_ms, reason, stale}]}`; state is ok, unknown, warning or failing"),
        (status = 503, description = "the coordinator cannot be read", body = ApiError)))]
async fn site_state(State(svc): State<MonitorService>) -> Response {
    let Some(env) = svc.inner.env.get() else {
        return ApiError::unavailable("the monitoring service is not attached to a coordinator yet").into_response();
    };
    let site = env.site.borrow().clone();
    match mware_host::site::read(env.coord.as_ref(), &site).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => ApiError::unavailable(format!("cannot read the site's state from the coordinator: {e}")).into_response(),
    }
}

/// This group's probes as its active instance runs them.
#[utoipa::path(get, path = "/api/v1/monitoring/probes", tag = "monitoring",
    responses((status = 200, description = "`{probes: [{name, kind, target, state, since_ms, reason, last, last_ms, latency_ms, failures, successes}]}`"),
        (status = 503, description = "monitoring is not running on the group's active instance", body = ApiError)))]
async fn probes(State(svc): State<MonitorService>) -> Response {
    let v: Vec<_> = svc.inner.views.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
    Json(json!({"probes": v})).into_response()
}
