//! HTTP routes of the microservices, about **this** instance (whoever is asked answers,
//! passive or not: `every` processes and each instance's own log live there):
//! - `GET /api/v1/microservices`: every process supervised here (state, pid, since,
//!   restarts, last exit with code or signal, the last decision) and the log's counters;
//! - `POST /api/v1/microservices/{name}/restart|stop|start` (operator token);
//! - `GET /api/v1/logs`: the site's log of the group's members (see `logs_api`).

use crate::handle::MicroService;
use crate::logs_api::bad;
use crate::paths;
use crate::supervisor::Cmd;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use mware_host::{Access, ApiError, Routes, Scope};
use serde_json::{json, Value};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(paths(list, restart, stop, start, crate::logs_api::logs), tags((name = "microservices", description = "Supervised processes and the site's log of their output, on the instance asked")))]
struct ApiDoc;

/// The OpenAPI description of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The service's routes (served on any instance).
pub fn routes(svc: MicroService) -> Routes {
    Routes::new()
        .get(paths::LIST, Access::Public, Scope::Instance, get(list).with_state(svc.clone()))
        .post(paths::RESTART, Access::Operator, Scope::Instance, post(restart).with_state(svc.clone()))
        .post(paths::STOP, Access::Operator, Scope::Instance, post(stop).with_state(svc.clone()))
        .post(paths::START, Access::Operator, Scope::Instance, post(start).with_state(svc.clone()))
        .get(paths::LOGS, Access::Public, Scope::Instance, get(crate::logs_api::logs).with_state(svc))
        .anywhere()
}

/// Every process supervised on this instance.
#[utoipa::path(get, path = "/api/v1/microservices", tag = "microservices",
    responses((status = 200, description = "`{instance, processes: [{name, run_on, state, pid, since_ms, restarts, last_exit: {code, signal, at_ms}, reason}], log: {written, lost, stalls}}`")))]
async fn list(State(svc): State<MicroService>) -> Response {
    let instance = svc.inner.env.get().map(|e| e.instance.clone()).unwrap_or_default();
    let c = &svc.inner.metrics.log;
    Json(json!({
        "instance": instance,
        "processes": svc.statuses(),
        "log": {"written": c.written.get(), "lost": c.lost.get(), "stalls": c.stalls.get()},
    }))
    .into_response()
}

/// An operator's request takes no parameters: no body, or `{}`.
fn empty_body(body: &[u8]) -> Result<(), Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match mware_config::strict_json::parse_slice(body) {
        Ok(Value::Object(m)) if m.is_empty() => Ok(()),
        Ok(Value::Object(m)) => Err(bad(
            "body",
            format!(
                "body: expected an empty object (the request takes no parameters), found key {:?}",
                m.keys().next().cloned().unwrap_or_default()
            ),
        )),
        Ok(_) => Err(bad("body", "body: expected an empty JSON object or no body, found another JSON value".into())),
        Err(_) => Err(bad("body", "body: expected an empty JSON object or no body, found malformed JSON or repeated keys".into())),
    }
}

async fn act(svc: MicroService, name: String, body: Bytes, cmd: Cmd, what: &str) -> Response {
    if let Err(r) = empty_body(&body) {
        return *r;
    }
    if !svc.command(&name, cmd).await {
        let names: Vec<String> = svc.statuses().into_iter().map(|s| s.name).collect();
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "path segment name: expected a process supervised on this instance ({}), found {name:?}",
                if names.is_empty() { "it has none".into() } else { names.join(", ") }
            ),
        )
        .field("name")
        .into_response();
    }
    (StatusCode::ACCEPTED, Json(json!({"process": name, "requested": what}))).into_response()
}

/// Restarts a process (also a failed one: its restart history is forgotten).
#[utoipa::path(post, path = "/api/v1/microservices/{name}/restart", tag = "microservices", params(("name" = String, Path, description = "process name")), request_body(content = Object, description = "none, or `{}`"),
    responses((status = 202, description = "requested"), (status = 400, description = "a body other than none or `{}`", body = ApiError), (status = 401, description = "no or wrong token", body = ApiError), (status = 404, description = "not supervised on this instance", body = ApiError)))]
async fn restart(State(svc): State<MicroService>, Path(name): Path<String>, body: Bytes) -> Response {
    act(svc, name, body, Cmd::Restart, "restart").await
}

/// Stops a process (its stop signal, SIGKILL after its grace) and leaves it stopped.
#[utoipa::path(post, path = "/api/v1/microservices/{name}/stop", tag = "microservices", params(("name" = String, Path, description = "process name")), request_body(content = Object, description = "none, or `{}`"),
    responses((status = 202, description = "requested"), (status = 400, description = "a body other than none or `{}`", body = ApiError), (status = 401, description = "no or wrong token", body = ApiError), (status = 404, description = "not supervised on this instance", body = ApiError)))]
async fn stop(State(svc): State<MicroService>, Path(name): Path<String>, body: Bytes) -> Response {
    act(svc, name, body, Cmd::Stop, "stop").await
}

/// Starts a stopped or failed process.
#[utoipa::path(post, path = "/api/v1/microservices/{name}/start", tag = "microservices", params(("name" = String, Path, description = "process name")), request_body(content = Object, description = "none, or `{}`"),
    responses((status = 202, description = "requested"), (status = 400, description = "a body other than none or `{}`", body = ApiError), (status = 401, description = "no or wrong token", body = ApiError), (status = 404, description = "not supervised on this instance", body = ApiError)))]
async fn start(State(svc): State<MicroService>, Path(name): Path<String>, body: Bytes) -> Response {
    act(svc, name, body, Cmd::Start, "start").await
}
