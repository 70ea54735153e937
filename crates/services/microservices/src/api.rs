//! HTTP routes of the microservices, about **this** instance (whoever is asked answers,
//! passive or not: `every` processes and each instance's own log live there):
//! - `GET /api/v1/microservices`: every process supervised here (state, pid, since,
//!   restarts, last exit with code or signal, the last decision) and the log's counters;
//! - `POST /api/v1/microservices/{name}/restart|stop|start` (operator token);
//! - `GET /api/v1/logs?process=&since=&until=&after=&q=&level=&limit=&format=`: the
//!   site's log of this instance, JSON lines (`format=json`: one object).

use crate::handle::MicroService;
use crate::logstore::Query;
use crate::supervisor::Cmd;
use axum::body::Bytes;
use axum::extract::{Path, Query as Params, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use mware_host::{Access, ApiError, Routes, Scope};
use serde_json::{json, Value};
use std::collections::HashMap;
use utoipa::OpenApi;

/// The paths of the service's routes, written once: the routes here and `mware ms` use them.
pub(crate) mod paths {
    /// Every process supervised on the instance.
    pub const LIST: &str = "/api/v1/microservices";
    /// Restart one.
    pub const RESTART: &str = "/api/v1/microservices/{name}/restart";
    /// Stop one.
    pub const STOP: &str = "/api/v1/microservices/{name}/stop";
    /// Start one.
    pub const START: &str = "/api/v1/microservices/{name}/start";
    /// The instance's site log.
    pub const LOGS: &str = "/api/v1/logs";
}

#[derive(OpenApi)]
#[openapi(paths(list, restart, stop, start, logs), tags((name = "microservices", description = "Supervised processes and the site's log of their output, on the instance asked")))]
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
        .get(paths::LOGS, Access::Public, Scope::Instance, get(logs).with_state(svc))
        .anywhere()
}

/// A 400 naming the field (boxed: a `Response` is too large to pass around in `Err`).
fn bad(field: &str, msg: String) -> Box<Response> {
    Box::new(ApiError::new(StatusCode::BAD_REQUEST, msg).field(field).into_response())
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

/// A time: ms since the epoch, or RFC 3339.
fn time(field: &str, v: &str) -> Result<u64, Box<Response>> {
    if let Ok(ms) = v.parse::<u64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(v).map(|t| t.timestamp_millis().max(0) as u64).map_err(|_| {
        bad(
            field,
            format!("{field}: expected ms since the Unix epoch or an RFC 3339 time, found {:?}", v.chars().take(64).collect::<String>()),
        )
    })
}

/// Parses the query string of `GET /api/v1/logs`.
fn parse(p: &HashMap<String, String>) -> Result<(Query, bool), Box<Response>> {
    const KEYS: &[&str] = &["process", "since", "until", "after", "q", "level", "limit", "format"];
    if let Some(k) = p.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(bad(
            k,
            format!("expected one of the parameters {}, found {:?}", KEYS.join(", "), k.chars().take(64).collect::<String>()),
        ));
    }
    let mut q = Query { limit: 1000, ..Default::default() };
    q.process = p.get("process").cloned();
    q.level = p.get("level").map(|l| l.to_lowercase());
    if let Some(v) = p.get("since") {
        q.since_ms = Some(time("since", v)?);
    }
    if let Some(v) = p.get("until") {
        q.until_ms = Some(time("until", v)?);
    }
    if let Some(v) = p.get("after") {
        q.after_seq = Some(v.parse().map_err(|_| bad("after", format!("after: expected a line's seq (an integer), found {v:?}")))?);
    }
    if let Some(v) = p.get("limit") {
        q.limit = v
            .parse()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| bad("limit", format!("limit: expected an integer from 1 to 10000, found {v:?}")))?;
    }
    if let Some(v) = p.get("q") {
        let re = regex::RegexBuilder::new(v)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| bad("q", format!("q: expected a regular expression, found one that does not parse: {e}")))?;
        q.q = Some(re);
    }
    let json = match p.get("format").map(String::as_str) {
        None | Some("jsonl") => false,
        Some("json") => true,
        Some(f) => return Err(bad("format", format!("format: expected \"jsonl\" or \"json\", found {f:?}"))),
    };
    Ok((q, json))
}

/// The site's log of this instance, oldest first (the last `limit` matching lines).
#[utoipa::path(get, path = "/api/v1/logs", tag = "microservices",
    params(("process" = Option<String>, Query, description = "one process"), ("since" = Option<String>, Query, description = "ms or RFC 3339"),
        ("until" = Option<String>, Query, description = "ms or RFC 3339"), ("after" = Option<u64>, Query, description = "lines after this seq (follow)"),
        ("q" = Option<String>, Query, description = "regular expression on the line"), ("level" = Option<String>, Query, description = "level of JSON lines"),
        ("limit" = Option<u32>, Query, description = "the last N matches, 1..10000 (default 1000)"), ("format" = Option<String>, Query, description = "`jsonl` (default) or `json`")),
    responses((status = 200, description = "JSON lines `{seq, ts_ms, instance, process, stream, line, fields?, level?}`, or `{lines, lost}` with `format=json`"),
        (status = 400, description = "a parameter that does not parse (named)", body = ApiError), (status = 503, description = "the site log is not kept on this instance", body = ApiError)))]
async fn logs(State(svc): State<MicroService>, Params(p): Params<HashMap<String, String>>) -> Response {
    let (q, json_out) = match parse(&p) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(store) = svc.store().cloned() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the site log is not kept on this instance (see the daemon's log)".to_string(),
        )
        .into_response();
    };
    let lost = store.counters.lost.get();
    let lines = match tokio::task::spawn_blocking(move || store.query(&q)).await {
        Ok(l) => l,
        Err(e) => return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the log query failed: {e}")).into_response(),
    };
    if json_out {
        return Json(json!({"lines": lines, "lost": lost})).into_response();
    }
    let mut body = String::new();
    for l in &lines {
        body.push_str(&serde_json::to_string(l).unwrap_or_default());
        body.push('\n');
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}
