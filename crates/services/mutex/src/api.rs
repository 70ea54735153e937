//! The HTTP API (REST + JSON) with its OpenAPI description.
//!
//! Handlers only serve locally: the daemon forwards a domain's requests to the active
//! instance of its group. Errors are [`ApiError`]s (`{"error": "...", "retryable": bool,
//! "field"?: ...}`), plus `holders` when a mutex is busy.

use crate::active::Active;
use crate::error::MutexError;
use crate::handle::Inner;
use crate::section::CriticalSections;
use crate::table::{AcquireReq, Busy, HolderView, MutexView};
use crate::validate::{self, AcquireBody, EvictBody, ReleaseBody, RenewBody};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use mware_host::{Access, ApiError, PageQuery, Routes, Scope};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::OpenApi;

/// The paths the routes here and `mware mutex` share, written once (the OpenAPI
/// attributes repeat them as literals; a test checks they match).
pub(crate) mod paths {
    /// A domain's mutexes.
    pub const MUTEXES: &str = "/api/v1/domains/{domain}/mutexes";
    /// One mutex.
    pub const MUTEX: &str = "/api/v1/domains/{domain}/mutexes/{name}";
    /// Evicting a holder.
    pub const EVICT: &str = "/api/v1/domains/{domain}/mutexes/{name}/evict";
}

/// A grant: the fencing token and when it lapses.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantResponse {
    /// Fencing token; grows with every grant of the mutex, across failovers too.
    pub token: u64,
    /// When the grant lapses unless renewed, RFC 3339 UTC (e.g. `2026-11-21T13:20:05.123Z`).
    pub expires_at: String,
    /// The same instant, ms since the Unix epoch.
    pub expires_at_ms: u64,
    /// The owner it was granted to.
    pub owner: String,
}

impl GrantResponse {
    fn new(token: u64, expires_at_ms: u64, owner: String) -> Self {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(expires_at_ms);
        GrantResponse { token, expires_at: humantime::format_rfc3339_millis(at).to_string(), expires_at_ms, owner }
    }
}

/// Answer of a release. It is answered at once and written right after: if this
/// instance fails in between, the next one keeps the holder (unconfirmed) until its
/// ttl, its owner releases it again, or its owner asks again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReleaseResponse {
    /// Always true.
    pub released: bool,
}

/// Answer of an eviction: the holder removed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EvictResponse {
    /// The grant that was removed; its owner's later release or renew is refused.
    pub evicted: HolderView,
}

/// Mutexes of a domain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse {
    /// Domain (lowercase).
    pub domain: String,
    /// Mutexes held or waited on, by name: one page (`limit`, default 100).
    pub mutexes: Vec<MutexView>,
    /// How many mutexes of the domain are held or waited on.
    pub total: usize,
    /// The `after` of the next page; none on the last page.
    pub next: Option<String>,
}

impl IntoResponse for MutexError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut e = ApiError::new(status, self.to_string()).retryable(self.retryable());
        if let Some(field) = self.field() {
            e = e.field(field);
        }
        if let MutexError::Busy { holders, .. } = &self {
            e = e.detail("holders", serde_json::to_value(holders).unwrap_or_default());
        }
        e.into_response()
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(acquire, release, renew, evict, get_one, list, busiest),
    components(schemas(AcquireBody, ReleaseBody, RenewBody, EvictBody, GrantResponse, ReleaseResponse, EvictResponse, ListResponse, ApiError, MutexView, HolderView, BusiestResponse, Busy)),
    tags((name = "mutex", description = "Critical sections: named mutexes and semaphores per domain"))
)]
struct ApiDoc;

/// The OpenAPI description of these routes, for the daemon to merge.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The routes: every one is about a domain (served by the active instance of the group
/// owning it); reads are public, grants take the API token, eviction the operator's.
pub(crate) fn routes(inner: Arc<Inner>) -> Routes {
    const D: Scope = Scope::Domain("domain");
    let s = |m: axum::routing::MethodRouter<Arc<Inner>>| m.with_state(inner.clone());
    Routes::new()
        .get(paths::MUTEXES, Access::Public, D, s(get(list)))
        .get(paths::MUTEX, Access::Public, D, s(get(get_one)))
        .post("/api/v1/domains/{domain}/mutexes/{name}/acquire", Access::Token, D, s(post(acquire)))
        .post("/api/v1/domains/{domain}/mutexes/{name}/release", Access::Token, D, s(post(release)))
        .post("/api/v1/domains/{domain}/mutexes/{name}/renew", Access::Token, D, s(post(renew)))
        .post(paths::EVICT, Access::Operator, D, s(post(evict)))
        .get("/api/v1/mutexes", Access::Public, Scope::Group, s(get(busiest)))
}

/// The busiest mutexes of the group.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BusiestResponse {
    /// Up to 20: most waiters first, then most holders, then the oldest holder.
    pub mutexes: Vec<Busy>,
}

/// The busiest mutexes over every domain of this instance's group (for the operator's
/// console): most waiters first, then most holders, then the oldest holder.
#[utoipa::path(
    get,
    path = "/api/v1/mutexes",
    tag = "mutex",
    responses((status = 200, description = "the busiest mutexes", body = BusiestResponse), (status = 503, description = "Not active here (retryable)", body = ApiError))
)]
async fn busiest(State(inner): State<Arc<Inner>>) -> Result<Json<BusiestResponse>> {
    Ok(Json(BusiestResponse { mutexes: inner.active()?.busiest(20) }))
}

type Result<T> = std::result::Result<T, MutexError>;

/// The running service, its limits, and the checked domain and mutex name of a call.
fn target(inner: &Inner, domain: &str, name: &str) -> Result<(Arc<Active>, CriticalSections, String, String)> {
    let active = inner.active()?;
    let limits = active.limits();
    let domain = validate::domain(domain)?;
    let name = validate::name(name, limits.max_name_len)?;
    Ok((active, limits, domain, name))
}

/// Acquires a mutex (or a slot of a semaphore), waiting up to `wait_ms` in line.
#[utoipa::path(
    post,
    path = "/api/v1/domains/{domain}/mutexes/{name}/acquire",
    tag = "mutex",
    params(("domain" = String, Path, description = "Domain"), ("name" = String, Path, description = "Mutex name")),
    request_body = AcquireBody,
    responses(
        (status = 200, description = "Granted; durable before this answer", body = GrantResponse),
        (status = 400, description = "Bad input; the field is named", body = ApiError),
        (status = 409, description = "Busy when the wait ran out (holders listed), or another limit", body = ApiError),
        (status = 429, description = "Too many waiters or mutexes", body = ApiError),
        (status = 503, description = "Not active here (retryable)", body = ApiError),
    )
)]
async fn acquire(
    State(inner): State<Arc<Inner>>,
    Path((domain, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<GrantResponse>> {
    let (active, limits, domain, name) = target(&inner, &domain, &name)?;
    let b = validate::acquire(&body, &limits)?;
    let req = AcquireReq { owner: b.owner, ttl_ms: b.ttl_ms, wait: b.wait_ms > 0, limit: b.limit.unwrap_or(1) };
    let h = active.acquire(&domain, &name, req, b.wait_ms).await?;
    Ok(Json(GrantResponse::new(h.token, h.expires_at_ms, h.owner)))
}

/// Releases a grant; the next waiter in line is granted.
#[utoipa::path(
    post,
    path = "/api/v1/domains/{domain}/mutexes/{name}/release",
    tag = "mutex",
    params(("domain" = String, Path, description = "Domain"), ("name" = String, Path, description = "Mutex name")),
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "Released", body = ReleaseResponse),
        (status = 400, description = "Bad input", body = ApiError),
        (status = 403, description = "The token belongs to another owner; nothing changed", body = ApiError),
        (status = 409, description = "The token does not hold the mutex; nothing changed", body = ApiError),
        (status = 503, description = "Not active here (retryable)", body = ApiError),
    )
)]
async fn release(
    State(inner): State<Arc<Inner>>,
    Path((domain, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<ReleaseResponse>> {
    let (active, _, domain, name) = target(&inner, &domain, &name)?;
    let b = validate::release(&body)?;
    active.release(&domain, &name, &b.owner, b.token)?;
    Ok(Json(ReleaseResponse { released: true }))
}

/// Extends a grant to `ttl_ms` from now.
#[utoipa::path(
    post,
    path = "/api/v1/domains/{domain}/mutexes/{name}/renew",
    tag = "mutex",
    params(("domain" = String, Path, description = "Domain"), ("name" = String, Path, description = "Mutex name")),
    request_body = RenewBody,
    responses(
        (status = 200, description = "Renewed; durable before this answer", body = GrantResponse),
        (status = 400, description = "Bad input", body = ApiError),
        (status = 403, description = "The token belongs to another owner; nothing changed", body = ApiError),
        (status = 409, description = "The token does not hold the mutex (released or lapsed)", body = ApiError),
        (status = 503, description = "Not active here (retryable)", body = ApiError),
    )
)]
async fn renew(State(inner): State<Arc<Inner>>, Path((domain, name)): Path<(String, String)>, body: Bytes) -> Result<Json<GrantResponse>> {
    let (active, limits, domain, name) = target(&inner, &domain, &name)?;
    let b = validate::renew(&body, &limits)?;
    let h = active.renew(&domain, &name, &b.owner, b.token, b.ttl_ms).await?;
    Ok(Json(GrantResponse::new(h.token, h.expires_at_ms, h.owner)))
}

/// Removes a holder whoever owns it: for an operator, when a call script died holding a
/// mutex with a long ttl. The next waiter is granted; the evicted owner's release or
/// renew is refused from then on (its fencing token no longer holds). Logged at warn
/// with the reason.
#[utoipa::path(
    post,
    path = "/api/v1/domains/{domain}/mutexes/{name}/evict",
    tag = "mutex",
    params(("domain" = String, Path, description = "Domain"), ("name" = String, Path, description = "Mutex name")),
    request_body = EvictBody,
    responses(
        (status = 200, description = "Evicted; durable before this answer", body = EvictResponse),
        (status = 400, description = "Bad input; the field is named", body = ApiError),
        (status = 409, description = "No holder of the mutex has this token; nothing changed", body = ApiError),
        (status = 503, description = "Not active here (retryable)", body = ApiError),
    )
)]
async fn evict(State(inner): State<Arc<Inner>>, Path((domain, name)): Path<(String, String)>, body: Bytes) -> Result<Json<EvictResponse>> {
    let (active, _, domain, name) = target(&inner, &domain, &name)?;
    let b = validate::evict(&body)?;
    let h = active.evict(&domain, &name, b.token).await?;
    tracing::warn!(domain, name, owner = %h.owner, token = h.token, reason = %b.reason, "holder evicted by an operator");
    Ok(Json(EvictResponse { evicted: h }))
}

/// One mutex: limit, holders, waiters in order.
#[utoipa::path(
    get,
    path = "/api/v1/domains/{domain}/mutexes/{name}",
    tag = "mutex",
    params(("domain" = String, Path, description = "Domain"), ("name" = String, Path, description = "Mutex name")),
    responses(
        (status = 200, description = "The mutex", body = MutexView),
        (status = 404, description = "Nobody holds or waits on it", body = ApiError),
        (status = 503, description = "Not active here (retryable)", body = ApiError),
    )
)]
async fn get_one(State(inner): State<Arc<Inner>>, Path((domain, name)): Path<(String, String)>) -> Result<Json<MutexView>> {
    let (active, _, domain, name) = target(&inner, &domain, &name)?;
    active.get(&domain, &name).map(Json).ok_or(MutexError::NotFound { domain, name })
}

/// The mutexes of a domain that are held or waited on, by name, one page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/domains/{domain}/mutexes",
    tag = "mutex",
    params(("domain" = String, Path, description = "Domain"),
        ("limit" = Option<usize>, Query, description = "mutexes in the page (default 100, at most 1000)"),
        ("after" = Option<String>, Query, description = "the `next` of the previous page: mutexes named after it")),
    responses(
        (status = 200, description = "One page of the mutexes, with how many there are and the next page's cursor", body = ListResponse),
        (status = 400, description = "Malformed domain, limit or after", body = ApiError),
        (status = 503, description = "Not active here (retryable)", body = ApiError),
    )
)]
async fn list(
    State(inner): State<Arc<Inner>>,
    Path(domain): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<ListResponse>> {
    let page = PageQuery::parse(&q, 100, 1000).map_err(|e| MutexError::Invalid { field: e.field, message: e.message })?;
    let active = inner.active()?;
    let domain = validate::domain(&domain)?;
    let p = active.list(&domain, &page);
    Ok(Json(ListResponse { domain, mutexes: p.items, total: p.total, next: p.next }))
}
