//! HTTP routes: `GET /api/v1/backups` (each target's last success, last failure with its
//! reason, size, duration, the next run and a run in progress with its bytes sent and
//! rate), `POST /api/v1/backups/run` (a run now, outside the window too; the operator's
//! token) and `GET /api/v1/backups/archives` (the archives on the storage servers, with
//! size and date). They are about this instance's group: any member forwards them to the
//! group's active instance, where the service runs.

use crate::decide::Decision;
use crate::handle::BackupService;
use crate::storage;
use crate::template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use mware_coord::now_ms;
use mware_host::{Access, ApiError, Routes, Scope};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use utoipa::OpenApi;

/// The paths of the service's routes, written once: the routes here and `mware backup`
/// use them (the OpenAPI attributes repeat them as literals; a test checks they match).
pub(crate) mod paths {
    /// Each target's state.
    pub const BACKUPS: &str = "/api/v1/backups";
    /// A run now.
    pub const RUN: &str = "/api/v1/backups/run";
    /// The archives on the storage servers.
    pub const ARCHIVES: &str = "/api/v1/backups/archives";
}

#[derive(OpenApi)]
#[openapi(paths(list, run, archives), tags((name = "backup", description = "backup_controller: scheduled, verified backups of PostgreSQL and :SYNC")))]
struct ApiDoc;

/// The OpenAPI description of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The service's routes.
pub fn routes(svc: BackupService) -> Routes {
    Routes::new()
        .get(paths::BACKUPS, Access::Public, Scope::Group, get(list).with_state(svc.clone()))
        .post(paths::RUN, Access::Operator, Scope::Group, post(run).with_state(svc.clone()))
        .get(paths::ARCHIVES, Access::Public, Scope::Group, get(archives).with_state(svc))
}

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    ApiError::new(status, msg).into_response()
}

/// The run in progress with its bytes sent and rate.
fn running(svc: &BackupService) -> Value {
    let live = svc.inner.live.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match live {
        None => Value::Null,
        Some(p) => {
            let sent = p.bytes.load(Ordering::Relaxed);
            let secs = (now_ms().saturating_sub(p.target_started_ms) as f64 / 1000.0).max(0.001);
            json!({"run_id": p.run_id, "manual": p.manual, "targets": p.targets, "target": p.target, "started_ms": p.started_ms,
                   "target_started_ms": p.target_started_ms, "bytes_sent": sent, "rate_bytes_per_s": (sent as f64 / secs) as u64})
        }
    }
}

fn next_run(d: &Option<Decision>) -> Value {
    match d {
        Some(Decision::Run { why, .. }) => json!({"at": "now", "reason": why}),
        Some(Decision::WaitUntil { at, why }) => {
            json!({"at": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "reason": why})
        }
        None => Value::Null,
    }
}

/// The whole document of `GET /api/v1/backups`.
pub fn document(svc: &BackupService) -> Value {
    let view = svc.inner.view.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let today = chrono::Local::now().date_naive();
    let run = running(svc);
    let targets: Vec<Value> = view
        .plan
        .as_ref()
        .map(|p| {
            p.targets
                .iter()
                .map(|t| {
                    let h = view.state.targets.get(&t.key).cloned().unwrap_or_default();
                    let dir = template::resolve(t.storage.path.as_deref(), today);
                    let in_progress = if run["target"] == json!(t.key) { run.clone() } else { Value::Null };
                    json!({"key": t.key, "kind": t.kind(), "storage": t.storage.label(), "path_template": t.storage.path,
                           "path": storage::join(&dir, &t.file_name()), "last_success": h.last_success, "last_failure": h.last_failure,
                           "in_progress": in_progress})
                })
                .collect()
        })
        .unwrap_or_default();
    json!({"targets": targets, "next_run": next_run(&view.next), "running": run, "last_run": view.state.last_run,
           "done_window": view.state.done_day, "complete_runs": view.state.complete_runs, "leftovers": view.state.leftovers,
           "problems": view.problems})
}

/// The short form shown in `/api/v1/status`: a failed last run stands out.
pub fn summary(svc: &BackupService) -> Value {
    let d = document(svc);
    let failed = d["last_run"]["result"] == json!("failed");
    json!({"last_run": {"result": d["last_run"]["result"], "reason": d["last_run"]["reason"], "finished_ms": d["last_run"]["finished_ms"]},
           "failed": failed, "next_run": d["next_run"], "running": d["running"],
           "targets": d["targets"].as_array().map(|v| v.iter().map(|t| json!({"key": t["key"], "last_success_ms": t["last_success"]["at_ms"],
               "last_failure": t["last_failure"]})).collect::<Vec<_>>())})
}

/// Every backup target of this group: its last success (size, duration, path, source),
/// its last failure with the reason, the next run and a run in progress with bytes sent
/// and rate.
#[utoipa::path(get, path = "/api/v1/backups", tag = "backup",
    responses((status = 200, description = "targets, next run, run in progress"), (status = 503, description = "the backup service is not running on the group's active instance", body = ApiError)))]
async fn list(State(svc): State<BackupService>) -> Response {
    Json(document(&svc)).into_response()
}

/// Starts a run now (outside the window too), of every target or of `{"target": "db1"}`.
/// Answers 202 at once; follow it in `GET /api/v1/backups`.
#[utoipa::path(post, path = "/api/v1/backups/run", tag = "backup", request_body(content = Object, description = "optional {\"target\": key}"),
    responses((status = 202, description = "the run is starting"), (status = 400, description = "bad body", body = ApiError), (status = 404, description = "unknown target", body = ApiError),
        (status = 409, description = "a run is in progress", body = ApiError), (status = 503, description = "the backup service is not running on the group's active instance", body = ApiError)))]
async fn run(State(svc): State<BackupService>, body: Bytes) -> Response {
    let target = if body.iter().all(|b| b.is_ascii_whitespace()) {
        None
    } else {
        let v: Value = match mware_config::strict_json::parse_slice(&body) {
            Ok(v) => v,
            Err(e) => return err(StatusCode::BAD_REQUEST, format!("body: expected a JSON object, found {e}")),
        };
        let Some(m) = v.as_object() else {
            return err(StatusCode::BAD_REQUEST, "body: expected a JSON object like {\"target\": \"db1\"}");
        };
        if let Some(k) = m.keys().find(|k| *k != "target") {
            return err(StatusCode::BAD_REQUEST, format!("body: expected only the key \"target\", found {k:?}"));
        }
        match m.get("target") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return err(StatusCode::BAD_REQUEST, format!("target: expected a target key string, found {other}")),
        }
    };
    match svc.request_run(target.clone()) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({"accepted": true, "target": target}))).into_response(),
        Err((code, msg)) => err(StatusCode::from_u16(code).unwrap_or(StatusCode::CONFLICT), msg),
    }
}

/// The archives (and rsync copies) on the storage servers of every target, with size and
/// date, and the path to give `mware backup restore --archive`.
#[utoipa::path(get, path = "/api/v1/backups/archives", tag = "backup",
    responses((status = 200, description = "archives per target"), (status = 503, description = "the backup service is not running on the group's active instance", body = ApiError)))]
async fn archives(State(svc): State<BackupService>) -> Response {
    let (plan, keys) = {
        let v = svc.inner.view.lock().unwrap_or_else(|e| e.into_inner());
        (v.plan.clone(), v.keys.clone())
    };
    let (Some(plan), Some(keys)) = (plan, keys) else {
        return err(StatusCode::SERVICE_UNAVAILABLE, "no usable backup_controller section");
    };
    let mut out = Vec::new();
    for t in &plan.targets {
        let found = crate::list_archives(t, &keys).await;
        out.push(match found {
            Ok(list) => json!({"target": t.key, "storage": t.storage.label(), "archives": list}),
            Err(e) => {
                json!({"target": t.key, "storage": t.storage.label(), "error": e.to_string()})
            }
        });
    }
    Json(json!({"targets": out})).into_response()
}
