//! The daemon's own endpoints: health, readiness, metrics, status, route, config,
//! cluster and switchover.

use super::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mware_config::redact;
use mware_coord::Activity;
use mware_host::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "the process is alive")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the instance has joined its group and serves.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "ready"), (status = 503, description = "not ready yet")))]
pub async fn readyz(State(st): State<AppState>) -> Response {
    if st.0.ready.load(Ordering::Relaxed) {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "starting", "reason": "not yet joined the group"}))).into_response()
    }
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "metrics in OpenMetrics text format")))]
pub async fn metrics(State(st): State<AppState>) -> Response {
    st.0.metrics.refresh();
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &st.0.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode metrics: {e}")).into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out).into_response()
}

/// This instance: site, server, group, order, active or passive since when and why, the
/// domains it serves and its services with their state.
#[utoipa::path(get, path = "/api/v1/status", responses((status = 200, description = "status of this instance")))]
pub async fn status(State(st): State<AppState>) -> Json<Value> {
    let site = st.0.site.borrow().clone();
    let act = st.0.activity.borrow().clone();
    let me = site.instance(&st.0.instance);
    // A process resumed after a pause may answer before its membership loop has stepped
    // down: past the step-down deadline it is not active, whatever it last heard.
    let lease = st.0.metrics.lease.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (state, epoch, since, reason) = match act {
        Activity::Active { .. } if lease.is_some_and(|l| !l.active_now()) => {
            ("passive", None, None, "lease not confirmed in time; stepping down".to_string())
        }
        Activity::Active { epoch, since_ms, reason } => ("active", Some(epoch), Some(since_ms), reason),
        Activity::Passive { reason } => ("passive", None, None, reason),
    };
    let domains: Value = match me {
        Some(p) if p.role.include_domains.is_empty() => json!({"include": [], "rest_of_tree": true}),
        Some(p) => json!({"include": p.role.include_domains, "rest_of_tree": false}),
        None => Value::Null,
    };
    Json(json!({
        "site": site.site,
        "instance": st.0.instance,
        "server": me.map(|p| p.server.name.clone()),
        "group": me.map(|p| p.role.group),
        "order": me.map(|p| p.role.order),
        "address": me.and_then(|p| p.api_addr()),
        "state": state,
        "epoch": epoch,
        "since_ms": since,
        "reason": reason,
        "domains": domains,
        "services": st.0.host.status(),
        "companion": {
            "ready": st.0.metrics.companion_ready.get() == 1,
            "pid": Some(st.0.metrics.companion_pid.get()).filter(|p| *p > 0),
            "restarts": st.0.metrics.companion_restarts.get(),
        },
        "started_ms": st.0.started_ms,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// Query of `/api/v1/route`.
#[derive(Deserialize)]
pub struct RouteQuery {
    domain: Option<String>,
}

/// Which group serves a domain, and its instances in failover order.
#[utoipa::path(get, path = "/api/v1/route", params(("domain" = String, Query, description = "domain name")),
    responses((status = 200, description = "the route"), (status = 400, description = "no domain given, or not a domain name: `{error, field: \"domain\"}`", body = ApiError)))]
pub async fn route(State(st): State<AppState>, Query(q): Query<RouteQuery>) -> Response {
    let Some(d) = q.domain.filter(|d| !d.is_empty()) else {
        return ApiError::bad_request("query parameter domain: expected a domain name, found none").field("domain").into_response();
    };
    let site = st.0.site.borrow().clone();
    let tree = st.0.tree.read().unwrap_or_else(|e| e.into_inner()).clone();
    match crate::routing::route_json(&site, &tree, &d) {
        Ok(v) => Json(v).into_response(),
        Err(e) => bad_domain(&e),
    }
}

/// 400 for a text that is not a domain name: `{"error": ..., "field": "domain"}`.
fn bad_domain(e: &mware_config::DomainError) -> Response {
    ApiError::bad_request(e.to_string()).field("domain").into_response()
}

/// The running config, every secret shown as `***`.
#[utoipa::path(get, path = "/api/v1/config", responses((status = 200, description = "running site config, secrets redacted")))]
pub async fn config(State(st): State<AppState>) -> Json<Value> {
    let site = st.0.site.borrow().clone();
    let mut v = serde_json::to_value(&*site).unwrap_or(Value::Null);
    redact(&mut v);
    Json(v)
}

/// Every group: members, order, live, active, epoch, since, last transition and its reason.
#[utoipa::path(get, path = "/api/v1/cluster", responses((status = 200, description = "cluster view"), (status = 503, description = "coordinator unreachable", body = ApiError)))]
pub async fn cluster(State(st): State<AppState>) -> Response {
    let site = st.0.site.borrow().clone();
    match st.0.coord.cluster().await {
        Ok(views) => Json(crate::cluster_view::cluster_json(&site, &views)).into_response(),
        Err(e) => ApiError::unavailable(e.to_string()).into_response(),
    }
}

/// Body of a switchover request.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverBody {
    /// Instance that should become active (default: the next in order).
    #[serde(default)]
    pub to: Option<String>,
}

/// Hands the group's activity over cleanly: the active instance stops its services first.
#[utoipa::path(post, path = "/api/v1/groups/{group}/switchover", request_body = SwitchoverBody,
    params(("group" = u32, Path, description = "group number")),
    responses((status = 202, description = "requested"), (status = 400, description = "bad target", body = ApiError), (status = 401, description = "no or wrong token", body = ApiError),
        (status = 409, description = "nothing to hand over to: no active instance or no other live member", body = ApiError), (status = 503, description = "coordinator unreachable", body = ApiError)))]
pub async fn switchover(State(st): State<AppState>, Path(group): Path<String>, body: axum::body::Bytes) -> Response {
    let body: Option<SwitchoverBody> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match mware_config::strict_json::parse_slice(&body)
            .map_err(|e| e.to_string())
            .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
        {
            Ok(b) => Some(b),
            Err(e) => return bad(format!("body: expected {{\"to\": NAME}} or nothing, found {e}")),
        }
    };
    let site = st.0.site.borrow().clone();
    let Ok(group) = group.parse::<u32>() else {
        return bad(format!("path group: expected an integer from 1 to 9999999, found {group:?}"));
    };
    let members = site.group_members(group);
    if members.is_empty() {
        return bad(format!("path group: expected a group of this site, found {group} (no enabled instance)"));
    }
    let to = body.and_then(|b| b.to);
    if let Some(t) = &to {
        if !members.iter().any(|p| &p.role.name == t) {
            let names: Vec<_> = members.iter().map(|p| p.role.name.clone()).collect();
            return bad(format!("to: expected one of {names:?}, found {t:?}"));
        }
    }
    match st.0.coord.request_switchover(group, to.clone()).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({"group": group, "to": to, "status": "requested"}))).into_response(),
        // Nothing to hand over to (no active instance, or no other live member): a conflict
        // with the cluster's state, not an outage.
        Err(e @ mware_coord::CoordError::Invalid(_)) => ApiError::new(StatusCode::CONFLICT, e.to_string()).into_response(),
        Err(e) => ApiError::unavailable(e.to_string()).into_response(),
    }
}

fn bad(msg: String) -> Response {
    ApiError::bad_request(msg).into_response()
}

/// Who serves a domain right now. Forwarded like every domain call, so the answer comes from
/// the active instance of the owning group itself.
#[utoipa::path(get, path = "/api/v1/domains/{domain}", params(("domain" = String, Path, description = "domain name")),
    responses((status = 200, description = "the serving group and instance"), (status = 400, description = "not a domain name: `{error, field: \"domain\"}`", body = ApiError),
        (status = 503, description = "the owning group has no active instance", body = ApiError)))]
pub async fn domain_owner(State(st): State<AppState>, Path(domain): Path<String>) -> Response {
    let canonical = match mware_config::canonical(&domain) {
        Ok(c) => c,
        Err(e) => return bad_domain(&e),
    };
    let site = st.0.site.borrow().clone();
    let me = site.instance(&st.0.instance);
    Json(json!({
        "domain": domain,
        "canonical": canonical,
        "group": me.map(|p| p.role.group),
        "served_by": st.0.instance,
        "epoch": st.0.activity.borrow().epoch(),
    }))
    .into_response()
}
