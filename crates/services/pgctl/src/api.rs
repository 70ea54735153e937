//! HTTP routes: `GET /api/v1/pg` (every group) and `GET /api/v1/pg/{key}` (one group):
//! each server's role, reachability, timeline, lag and SSH host key state, the last decision and its reason.
//! Both answer 503 with the reason while the service is not running here.

use crate::service::PgctlService;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::atomic::Ordering;

/// The service's routes.
pub fn router(svc: PgctlService) -> Router {
    Router::new().route("/api/v1/pg", get(list)).route("/api/v1/pg/{key}", get(one)).with_state(svc)
}

fn not_running(svc: &PgctlService) -> Option<Response> {
    if svc.inner.running.load(Ordering::SeqCst) {
        return None;
    }
    let st = mware_host::Service::status(svc);
    Some((StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "pgctl is not running on this instance", "reason": st.reason}))).into_response())
}

async fn list(State(svc): State<PgctlService>) -> Response {
    if let Some(r) = not_running(&svc) {
        return r;
    }
    let st = mware_host::Service::status(&svc);
    Json(json!({"state": st.state, "reason": st.reason, "groups": svc.groups()})).into_response()
}

async fn one(State(svc): State<PgctlService>, Path(key): Path<String>) -> Response {
    if let Some(r) = not_running(&svc) {
        return r;
    }
    match svc.group(&key) {
        Some(g) => Json(g).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": format!("expected a running pg group {key:?}, found none")})))
            .into_response(),
    }
}
