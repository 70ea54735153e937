//! The HTTP API (REST + JSON) with its OpenAPI description: static registrations of a
//! domain (list, put, delete; changes need the operator's token), the sg states, and
//! (`api_calls`) the call events in, a domain's calls and its external numbers.
//! Handlers serve locally; the daemon forwards a domain's requests to the active
//! instance of its group. Errors are [`ApiError`]s naming the field at fault.

use crate::error::TrackError;
use crate::handle::{CallTracking, Running};
use crate::sg::SgView;
use crate::store::{Source, Stored};
use crate::views::Probe;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Json;
use mware_host::{Access, ApiError, Problem, Routes, Scope};
use serde::Serialize;
use utoipa::OpenApi;

/// The paths the routes and `mware registrations` share.
pub(crate) mod paths {
    /// A domain's static registrations.
    pub const STATICS: &str = "/api/registrations/v1/static/{domain}";
    /// One static registration.
    pub const STATIC: &str = "/api/registrations/v1/static/{domain}/{user}";
    /// The sg states.
    pub const SG: &str = "/api/calltracking/v1/sg";
    /// Call events from the core.
    pub const EVENTS: &str = "/api/calltracking/v1/events";
    /// A domain's calls.
    pub const CALLS: &str = "/api/calltracking/v1/{domain}/calls";
    /// A domain's external numbers.
    pub const NUMBERS: &str = "/api/calltracking/v1/{domain}/numbers";
}

/// A static registration with how its contact answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaticView {
    /// The AoR (`user@domain`).
    pub aor: String,
    /// The contact bound in the registrar.
    pub contact: String,
    /// `site` (the site file) or `api`.
    pub source: Source,
    /// Being removed (its contact leaves the registrar).
    pub removing: bool,
    /// When it was stored, ms since the Unix epoch.
    pub since_ms: u64,
    /// Its OPTIONS checks: reachable, since when, the last answer.
    pub check: Option<Probe>,
}

/// A domain's static registrations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaticList {
    /// The domain (canonical).
    pub domain: String,
    /// Its static registrations, by user.
    pub registrations: Vec<StaticView>,
}

/// The sg of the group.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SgList {
    /// Each sg's state.
    pub sg: Vec<SgView>,
}

/// The body of a PUT: the contact, and how to reach it.
#[derive(Debug, utoipa::ToSchema)]
pub struct PutBody {
    /// A `sip:` URI with an IP address, e.g. `sip:gw1@10.0.0.9:5060`.
    pub contact: String,
    /// `udp` (default) or `tcp`.
    pub transport: Option<crate::section::Transport>,
}

impl IntoResponse for TrackError {
    fn into_response(self) -> Response {
        let (status, retry) = match &self {
            TrackError::Invalid(_) => (StatusCode::BAD_REQUEST, false),
            TrackError::NotFound(_) => (StatusCode::NOT_FOUND, false),
            TrackError::Conflict(_) => (StatusCode::CONFLICT, false),
            TrackError::Registrar(_) | TrackError::Coord(_) => (StatusCode::SERVICE_UNAVAILABLE, true),
        };
        let mut e = ApiError::new(status, self.to_string()).retryable(retry);
        if let TrackError::Invalid(list) = &self {
            if let Some((f, _)) = list.first() {
                e = e.field(f.clone());
            }
            e = e.problems(list.iter().map(|(f, m)| Problem { field: f.clone(), message: m.clone() }));
        }
        e.into_response()
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(list, put_one, delete_one, sg_list),
    components(schemas(StaticList, StaticView, Probe, Source, PutBody, SgList, SgView, ApiError)),
    tags((name = "registrations", description = "Static registrations: accounts that never register, kept in the registrar"),
         (name = "calltracking", description = "Call tracking: the edge proxies (sg) and what their loss removed"))
)]
struct ApiDoc;

/// The OpenAPI description of these routes, for the daemon to merge.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::api_calls::CallsDoc::openapi());
    doc
}

pub(crate) fn routes(svc: CallTracking) -> Routes {
    const D: Scope = Scope::Domain("domain");
    let s = |m: axum::routing::MethodRouter<CallTracking>| m.with_state(svc.clone());
    Routes::new()
        .get(paths::STATICS, Access::Token, D, s(get(list)))
        .add(Some(axum::http::Method::PUT), paths::STATIC, Access::Operator, D, s(put(put_one)))
        .add(Some(axum::http::Method::DELETE), paths::STATIC, Access::Operator, D, s(axum::routing::delete(delete_one)))
        .get(paths::SG, Access::Token, Scope::Group, s(get(sg_list)))
        .post(paths::EVENTS, Access::Token, Scope::Group, s(axum::routing::post(crate::api_calls::post_events)))
        .get(paths::CALLS, Access::Token, D, s(get(crate::api_calls::calls)))
        .get(paths::NUMBERS, Access::Token, D, s(get(crate::api_calls::numbers)))
}

type Result<T> = std::result::Result<T, TrackError>;

fn running(svc: &CallTracking) -> Result<Running> {
    svc.inner.running().ok_or_else(|| TrackError::Coord("call tracking is not running here".into()))
}

fn target(domain: &str, user: &str) -> Result<(String, String)> {
    let mut errs = vec![];
    let d = crate::validate::domain(domain).map_err(|e| errs.push(("domain".to_string(), e))).ok();
    let _ = crate::validate::user(user).map_err(|e| errs.push(("user".to_string(), e)));
    match d {
        Some(d) if errs.is_empty() => Ok((d, user.to_string())),
        _ => Err(TrackError::Invalid(errs)),
    }
}

fn view(svc: &CallTracking, s: Stored) -> StaticView {
    StaticView {
        aor: s.aor(),
        check: svc.inner.probe(&s.key()),
        contact: s.contact,
        source: s.source,
        removing: s.removing,
        since_ms: s.since_ms,
    }
}

/// A domain's static registrations, each with its OPTIONS state.
#[utoipa::path(get, path = "/api/registrations/v1/static/{domain}", tag = "registrations",
    params(("domain" = String, Path, description = "Domain")),
    responses((status = 200, description = "The domain's static registrations", body = StaticList),
              (status = 400, description = "Bad domain", body = ApiError),
              (status = 503, description = "Not active here (retryable)", body = ApiError)))]
async fn list(State(svc): State<CallTracking>, Path(domain): Path<String>) -> Result<Json<StaticList>> {
    let (domain, _) = target(&domain, "x")?;
    let run = running(&svc)?;
    let (all, _) = run.store.load().await?;
    let registrations = all.into_iter().filter(|s| s.domain == domain).map(|s| view(&svc, s)).collect();
    Ok(Json(StaticList { domain, registrations }))
}

/// Binds `user@domain` to a permanent contact (replacing the API's earlier one); the
/// registrar has it within a cycle, and again after it restarts.
#[utoipa::path(put, path = "/api/registrations/v1/static/{domain}/{user}", tag = "registrations",
    params(("domain" = String, Path, description = "Domain"), ("user" = String, Path, description = "User part")),
    request_body = PutBody,
    responses((status = 200, description = "Stored (fenced); bound within a cycle", body = StaticView),
              (status = 400, description = "Bad input; every field at fault is named", body = ApiError),
              (status = 409, description = "The site file names this account", body = ApiError),
              (status = 503, description = "Not active here, or the coordinator failed (retryable)", body = ApiError)))]
async fn put_one(State(svc): State<CallTracking>, Path((domain, user)): Path<(String, String)>, body: Bytes) -> Result<Json<StaticView>> {
    let (domain, user) = target(&domain, &user)?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| TrackError::Invalid(vec![(String::new(), format!("expected a JSON object {{contact, transport?}}, found: {e}"))]))?;
    let contact = crate::validate::put_body(&v).map_err(TrackError::Invalid)?;
    let run = running(&svc)?;
    if let Some(old) = run.store.get(&domain, &user).await?.filter(|o| o.source == Source::Site) {
        return Err(TrackError::Conflict(format!("{} comes from the site file; change it there", old.aor())));
    }
    let s = Stored { domain, user, contact, source: Source::Api, removing: false, since_ms: mware_config::now_ms() };
    run.store.put(&s).await?;
    run.kick.notify_one();
    Ok(Json(view(&svc, s)))
}

/// Removes `user@domain`'s static registration: its contact leaves the registrar.
#[utoipa::path(delete, path = "/api/registrations/v1/static/{domain}/{user}", tag = "registrations",
    params(("domain" = String, Path, description = "Domain"), ("user" = String, Path, description = "User part")),
    responses((status = 204, description = "Marked for removal (fenced); unbound within a cycle"),
              (status = 404, description = "No such static registration", body = ApiError),
              (status = 409, description = "The site file names this account", body = ApiError),
              (status = 503, description = "Not active here, or the coordinator failed (retryable)", body = ApiError)))]
async fn delete_one(State(svc): State<CallTracking>, Path((domain, user)): Path<(String, String)>) -> Result<StatusCode> {
    let (domain, user) = target(&domain, &user)?;
    let run = running(&svc)?;
    let Some(mut s) = run.store.get(&domain, &user).await? else {
        return Err(TrackError::NotFound(format!("{user}@{domain}")));
    };
    if s.source == Source::Site {
        return Err(TrackError::Conflict(format!("{} comes from the site file; remove it there", s.aor())));
    }
    s.removing = true;
    run.store.put(&s).await?;
    run.kick.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

/// The group's sg: up, failing or lost, since when, and what a loss removed.
#[utoipa::path(get, path = "/api/calltracking/v1/sg", tag = "calltracking",
    responses((status = 200, description = "The sg states", body = SgList),
              (status = 503, description = "Not active here (retryable)", body = ApiError)))]
async fn sg_list(State(svc): State<CallTracking>) -> Result<Json<SgList>> {
    running(&svc)?;
    Ok(Json(SgList { sg: svc.inner.sgs() }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_described() {
        let svc = crate::CallTracking::new(&mut prometheus_client::registry::Registry::default());
        let doc = serde_json::to_value(super::openapi()).unwrap();
        for r in svc_routes(&svc) {
            let method = r.1.to_lowercase();
            assert!(doc["paths"][r.0].get(&method).is_some(), "OpenAPI lacks {method} {}", r.0);
        }
    }

    fn svc_routes(svc: &crate::CallTracking) -> Vec<(&'static str, String)> {
        super::routes(svc.clone()).0.iter().map(|r| (r.path, r.method.as_ref().map(|m| m.to_string()).unwrap_or_default())).collect()
    }
}
