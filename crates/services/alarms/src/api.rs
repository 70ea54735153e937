//! HTTP routes of the alarms service, all forwarded to the group's active instance:
//! - `GET /api/v1/alarms`: a page of open alarms with their total (`limit`, `after`),
//!   the most recent ones, and each channel's progress (the last alarm it sent and its backlog);
//! - `POST /api/v1/alarms/{id}/ack` (operator token): acknowledges an alarm;
//! - `POST /api/v1/alarms` (operator token): raises an alarm from a script; answered
//!   201 once it is durable in the group's outbox.

use crate::alarm::{Alarm, Source};
use crate::handle::AlarmsService;
use crate::store::Cmd;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use mware_host::{Access, ApiError, PageQuery, Routes, Scope};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;
use utoipa::OpenApi;

/// The paths of the service's routes, written once: the routes here and `mware alarms`
/// use them (the OpenAPI attributes repeat them as literals; a test checks they match).
pub(crate) mod paths {
    /// The alarms (GET: list; POST: raise one).
    pub const ALARMS: &str = "/api/v1/alarms";
    /// Acknowledging one.
    pub const ACK: &str = "/api/v1/alarms/{id}/ack";
}

#[derive(OpenApi)]
#[openapi(paths(list, ack, raise), tags((name = "alarms", description = "Alarms: syslog rules, monitoring state changes; SNMP and Telegram out")))]
struct ApiDoc;

/// The OpenAPI description of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The service's routes.
pub fn routes(svc: AlarmsService) -> Routes {
    Routes::new()
        .get(paths::ALARMS, Access::Public, Scope::Group, get(list).with_state(svc.clone()))
        .post(paths::ALARMS, Access::Operator, Scope::Group, post(raise).with_state(svc.clone()))
        .post(paths::ACK, Access::Operator, Scope::Group, post(ack).with_state(svc))
}

fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    ApiError::new(code, msg).retryable(code == StatusCode::SERVICE_UNAVAILABLE).into_response()
}

fn not_running() -> Response {
    err(StatusCode::SERVICE_UNAVAILABLE, "the alarms service is not running on this group's active instance")
}

/// Most alarms in one page of `open` and in `recent`.
pub const MAX_LIMIT: usize = 1000;
/// Alarms in a page when the client does not say.
pub const DEFAULT_LIMIT: usize = 100;

/// Alarms shared with the log, serialised without copying them.
struct Shown(Vec<Arc<Alarm>>);

impl Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|a| &**a))
    }
}

/// One answer of `GET /api/v1/alarms`.
#[derive(Serialize)]
struct Listing {
    open: Shown,
    open_total: usize,
    next: Option<String>,
    recent: Shown,
    channels: Vec<Value>,
}

/// A page of open alarms (oldest first, at most `limit`, after the alarm `after`) with
/// their total, the `limit` most recent alarms (newest first), and each channel's progress.
#[utoipa::path(get, path = "/api/v1/alarms", tag = "alarms", params(
        ("limit" = Option<usize>, Query, description = "open alarms in the page, and recent alarms shown (default 100, at most 1000)"),
        ("after" = Option<String>, Query, description = "the `next` of the previous page: open alarms after this alarm id")),
    responses((status = 200, description = "`{open: [alarm], open_total, next, recent: [alarm], channels: [{channel, sent_through, backlog}]}`: `open` is one page of the open alarms (oldest first), `open_total` how many are open, `next` the `after` of the next page (null on the last); an alarm is `{id, at_ms, source, rule, severity, host, app, message, site, group, instance, item?, state?, count, open, acked?}`"),
        (status = 400, description = "bad limit or after", body = ApiError), (status = 503, description = "the alarms service is not running on the group's active instance", body = ApiError)))]
async fn list(State(svc): State<AlarmsService>, Query(q): Query<HashMap<String, String>>) -> Response {
    let page = match PageQuery::parse(&q, DEFAULT_LIMIT, MAX_LIMIT) {
        Ok(p) => p,
        Err(e) => return err(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let after = match page.after.as_deref().map(|a| (a, crate::alarm::key_for_id(a))) {
        None => None,
        Some((_, Some(k))) => Some(k),
        Some((a, None)) => {
            let a: String = a.chars().take(40).collect();
            return err(
                StatusCode::BAD_REQUEST,
                format!("after: expected an alarm id like 7-120 (the `next` of a previous page), found {a:?}"),
            );
        }
    };
    let Some(h) = svc.active() else { return not_running() };
    // Under the lock the writer needs: only a page of shared pointers is taken.
    let listing = {
        let log = h.shared.log.lock().unwrap_or_else(|e| e.into_inner());
        let open = log.open_page(after.as_deref(), page.limit);
        let channels =
            log.channels().into_iter().map(|(c, id, backlog)| json!({"channel": c, "sent_through": id, "backlog": backlog})).collect();
        Listing { open: Shown(open.items), open_total: open.total, next: open.next, recent: Shown(log.recent(page.limit)), channels }
    };
    // Off the runtime's workers: a full page is some hundreds of KiB of JSON.
    mware_host::render_json(listing).await
}

/// Acknowledges an alarm: it is no longer open (the acknowledgement survives a failover).
#[utoipa::path(post, path = "/api/v1/alarms/{id}/ack", tag = "alarms", params(("id" = String, Path, description = "alarm id, such as 7-120")),
    responses((status = 200, description = "the alarm, acknowledged (again: unchanged)"), (status = 404, description = "no such alarm", body = ApiError),
        (status = 503, description = "the alarms service is not running on the group's active instance", body = ApiError)))]
async fn ack(State(svc): State<AlarmsService>, Path(id): Path<String>) -> Response {
    if crate::alarm::key_for_id(&id).is_none() {
        return err(StatusCode::NOT_FOUND, format!("id: expected an alarm id like 7-120, found {id:?}"));
    }
    let Some(h) = svc.active() else { return not_running() };
    let (tx, rx) = oneshot::channel();
    if h.writer.send(Cmd::Ack { id: id.clone(), by: "api".into(), reply: tx }).await.is_err() {
        return not_running();
    }
    match rx.await {
        Ok(Some(a)) => Json(a).into_response(),
        Ok(None) => err(StatusCode::NOT_FOUND, format!("no alarm {id} (never raised, or past the kept history)")),
        Err(_) => not_running(),
    }
}

/// Raises an alarm: `{"message": "...", "severity": "crit", "rule": "...", "host": "...", "app": "..."}`
/// (only `message` is required; severity defaults to `warning`, rule to `api`; `rule`
/// follows the site file's rule-name syntax). Control characters, ANSI escapes and bidi
/// controls are removed from the texts (see `crate::clean`), not refused.
#[utoipa::path(post, path = "/api/v1/alarms", tag = "alarms", request_body(content = Object, description = "{message, severity?, rule?, host?, app?}: rule as in the site file (1 to 64 of A-Z a-z 0-9 _ - .); control characters, ANSI escapes and bidi controls are removed from the texts"),
    responses((status = 201, description = "`{id}`: durable in the group's outbox"), (status = 400, description = "bad body, with the field", body = ApiError),
        (status = 503, description = "not running here, or the outbox is full", body = ApiError)))]
async fn raise(State(svc): State<AlarmsService>, body: Bytes) -> Response {
    let v: Value = match mware_config::strict_json::parse_slice(&body) {
        Ok(v) => v,
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("body: expected a JSON object, found {e}")),
    };
    let Some(m) = v.as_object() else { return err(StatusCode::BAD_REQUEST, "body: expected a JSON object like {\"message\": \"...\"}") };
    let mut problems = Vec::new();
    if let Some(k) = m.keys().find(|k| !["message", "severity", "rule", "host", "app"].contains(&k.as_str())) {
        problems.push(format!("{k}: expected one of message, severity, rule, host, app; found an unknown key"));
    }
    let field = |k: &str, problems: &mut Vec<String>| -> Option<String> {
        match m.get(k) {
            None => None,
            Some(Value::String(s)) if s.len() <= 4096 => Some(s.clone()),
            Some(other) => {
                problems.push(format!("{k}: expected a string of at most 4096 bytes, found {}", crate::api::short(other)));
                None
            }
        }
    };
    let message = field("message", &mut problems);
    // Texts are cleaned where the alarm is made (crate::clean); one left empty by that is refused.
    if message.as_deref().is_none_or(|m| crate::clean::text(m).trim().is_empty()) && !problems.iter().any(|p| p.starts_with("message")) {
        problems.push("message: expected a non-empty string (control and bidi characters removed), found none".into());
    }
    let severity = field("severity", &mut problems).unwrap_or_else(|| "warning".into());
    if crate::alarm::rank(&severity).is_none() {
        problems.push(format!("severity: expected one of {}, found {severity:?}", crate::section::SEVERITIES.join(", ")));
    }
    let rule = field("rule", &mut problems).unwrap_or_else(|| "api".into());
    if !mware_config::is_item_name(&rule) && !problems.iter().any(|p| p.starts_with("rule")) {
        problems.push(format!(
            "rule: expected a rule name of 1 to 64 latin letters, digits, '_', '-' and '.' (as in the site file), found {}",
            short(&Value::String(rule.clone()))
        ));
    }
    let host = field("host", &mut problems);
    let app = field("app", &mut problems).unwrap_or_default();
    if !problems.is_empty() {
        return ApiError::bad_request(problems.join("; ")).detail("problems", problems).into_response();
    }
    let Some(h) = svc.active() else { return not_running() };
    let host = host.unwrap_or_else(|| h.maker.instance.clone());
    let a = h.maker.make(Source::Api, &rule, &severity, &host, &app, message.unwrap_or_default(), 1);
    let id = a.id.clone();
    let (tx, rx) = oneshot::channel();
    if h.writer.send(Cmd::Raise(vec![a], Some(tx))).await.is_err() {
        return not_running();
    }
    match rx.await {
        Ok(true) => {
            svc.metrics().raised("api", 1);
            (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
        }
        Ok(false) => err(StatusCode::SERVICE_UNAVAILABLE, "the outbox is full (max_outbox): a channel is down"),
        Err(_) => not_running(),
    }
}

/// A JSON value shown short in an error.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}...", &s[..s.char_indices().take(37).last().map(|(i, c)| i + c.len_utf8()).unwrap_or(0)])
    } else {
        s
    }
}
