//! HTTP routes of the service tasks, about this instance's group (any member forwards
//! them to the group's active instance, where the service runs):
//! - `GET /api/v1/tasks`: every task with its schedule, next slot, run in progress,
//!   the scheduler's reason, its last run and its last success;
//! - `GET /api/v1/tasks/{name}/runs`: the kept history, newest first (exit code,
//!   duration, outcome with its reason, output tails);
//! - `POST /api/v1/tasks/{name}/run`: run now, by the task's overlap policy (operator
//!   token).

use crate::handle::TasksService;
use crate::store::{self, Outcome, Run};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use mware_host::{Access, ApiError, Routes, Scope};
use serde_json::{json, Value};
use utoipa::OpenApi;

/// The paths of the service's routes, written once: the routes here and `mware tasks` use
/// them (the OpenAPI attributes repeat them as literals; a test checks they match).
pub(crate) mod paths {
    /// Every task.
    pub const TASKS: &str = "/api/v1/tasks";
    /// The kept runs of a task.
    pub const RUNS: &str = "/api/v1/tasks/{name}/runs";
    /// A run now.
    pub const RUN: &str = "/api/v1/tasks/{name}/run";
}

#[derive(OpenApi)]
#[openapi(paths(list, runs, run_now), tags((name = "tasks", description = "Service tasks: scheduled service scripts on the group's active instance")))]
struct ApiDoc;

/// The OpenAPI description of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The service's routes.
pub fn routes(svc: TasksService) -> Routes {
    Routes::new()
        .get(paths::TASKS, Access::Public, Scope::Group, get(list).with_state(svc.clone()))
        .get(paths::RUNS, Access::Public, Scope::Group, get(runs).with_state(svc.clone()))
        .post(paths::RUN, Access::Operator, Scope::Group, post(run_now).with_state(svc))
}

fn error(code: StatusCode, msg: String) -> Response {
    ApiError::new(code, msg).retryable(code == StatusCode::SERVICE_UNAVAILABLE).into_response()
}

/// `None` when `name` is a task of the group, else the 404 to answer.
fn unknown(svc: &TasksService, name: &str) -> Option<Response> {
    let tasks = svc.inner.tasks.lock().unwrap_or_else(|e| e.into_inner());
    if tasks.iter().any(|t| t.name == name) {
        return None;
    }
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    Some(error(
        StatusCode::NOT_FOUND,
        format!(
            "path segment name: expected a service task of this group ({}), found {name:?}",
            if names.is_empty() { "it has none".into() } else { names.join(", ") }
        ),
    ))
}

async fn history(svc: &TasksService, name: &str) -> Result<Vec<Run>, Response> {
    let Some(env) = svc.inner.env.get() else {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the service is not attached to a coordinator yet".into()));
    };
    let group = env.site.borrow().instance(&env.instance).map(|p| p.role.group).unwrap_or(0);
    store::load_runs(env.coord.as_ref(), group, name)
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the history of task {name}: {e}")))
}

/// Every service task of the group.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks",
    responses((status = 200, description = "every task: schedule, next slot, run in progress, reason, last run and last success"),
        (status = 503, description = "the tasks service is not running on the group's active instance", body = ApiError)))]
async fn list(State(svc): State<TasksService>) -> Response {
    let mut out: Vec<Value> = vec![];
    for t in svc.statuses() {
        let runs = match history(&svc, &t.name).await {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let last = runs.iter().rev().find(|r| !matches!(r.outcome, Outcome::Running | Outcome::Skipped | Outcome::Missed));
        let success = runs.iter().rev().find(|r| r.outcome == Outcome::Ok).and_then(|r| r.finished_ms);
        let mut v = serde_json::to_value(&t).unwrap_or(Value::Null);
        v["last_run"] = serde_json::to_value(last).unwrap_or(Value::Null);
        v["last_success_ms"] = json!(success);
        out.push(v);
    }
    Json(json!({"tasks": out})).into_response()
}

/// The kept runs of a task, newest first.
#[utoipa::path(get, path = "/api/v1/tasks/{name}/runs", tag = "tasks", params(("name" = String, Path, description = "task name")),
    responses((status = 200, description = "the runs, newest first: outcome and reason, exit code, signal, duration, output tails"),
        (status = 404, description = "no such task in this group", body = ApiError), (status = 503, description = "the tasks service is not running, or the coordinator cannot be read", body = ApiError)))]
async fn runs(State(svc): State<TasksService>, Path(name): Path<String>) -> Response {
    if let Some(r) = unknown(&svc, &name) {
        return r;
    }
    match history(&svc, &name).await {
        Ok(mut runs) => {
            runs.reverse();
            Json(json!({"task": name, "runs": runs})).into_response()
        }
        Err(r) => r,
    }
}

/// A run request takes no parameters: its body is empty or `{}`. Anything else is refused
/// (a caller who sends `{"args": [...]}` must not believe they were used).
fn empty_body(body: &[u8]) -> Result<(), String> {
    use mware_config::strict_json::{parse_slice, StrictError};
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match parse_slice(body) {
        Ok(Value::Object(m)) => match m.keys().next() {
            None => Ok(()),
            Some(k) => Err(format!("body: expected an empty object (a run takes no parameters), found key {k:?}")),
        },
        Ok(_) => Err("body: expected an empty JSON object or no body, found another JSON value".into()),
        Err(StrictError::Malformed(e)) => Err(format!("body: expected an empty JSON object or no body, found malformed JSON ({e})")),
        Err(StrictError::Duplicates(_)) => Err("body: expected an empty JSON object, found repeated keys".into()),
    }
}

/// Runs a task now, by its overlap policy: started (202), queued (202), or refused
/// while a run is in progress (409).
#[utoipa::path(post, path = "/api/v1/tasks/{name}/run", tag = "tasks", params(("name" = String, Path, description = "task name")),
    request_body(content = Object, description = "none, or `{}`: a run takes no parameters"),
    responses((status = 202, description = "started or queued: `{task, run, status}`"), (status = 400, description = "a body other than none or `{}`", body = ApiError), (status = 401, description = "no or wrong token", body = ApiError),
        (status = 403, description = "the API token where the operator's is required", body = ApiError), (status = 404, description = "no such task in this group", body = ApiError),
        (status = 409, description = "refused: a run is in progress (overlap skip, or a slot already waits)", body = ApiError),
        (status = 503, description = "the tasks service is not running, or the start could not be recorded", body = ApiError)))]
async fn run_now(State(svc): State<TasksService>, Path(name): Path<String>, body: Bytes) -> Response {
    if let Err(why) = empty_body(&body) {
        return error(StatusCode::BAD_REQUEST, why);
    }
    if let Some(r) = unknown(&svc, &name) {
        return r;
    }
    match svc.run_now(&name).await {
        Some(Ok((id, what))) => (StatusCode::ACCEPTED, Json(json!({"task": name, "run": id, "status": what}))).into_response(),
        Some(Err(why)) if why.starts_with("refused") => error(StatusCode::CONFLICT, format!("task {name}: {why}")),
        Some(Err(why)) => error(StatusCode::SERVICE_UNAVAILABLE, format!("task {name}: {why}")),
        None => error(StatusCode::SERVICE_UNAVAILABLE, format!("task {name} is not scheduled on this instance right now; retry")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_run_takes_no_parameters() {
        for ok in [&b""[..], b"{}", b" { } \n"] {
            assert!(super::empty_body(ok).is_ok(), "{ok:?}");
        }
        for bad in [&br#"{"args":["x"]}"#[..], b"[]", b"{not json", b"null", b"1"] {
            let e = super::empty_body(bad).unwrap_err();
            assert!(e.starts_with("body: expected"), "{e}");
        }
    }
}
