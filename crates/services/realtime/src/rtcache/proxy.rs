//! The sidecar's HTTP handlers: the cached proxy, `/metrics` and `/status`, behind the
//! `Host` header check (DNS rebinding).

use super::decide::{decide, Decision, Lifetimes, Snapshot, UpstreamAnswer};
use super::store::{Entry, Store};
use super::upstream::{Outcome, Upstreams};
use super::RtcacheConfig;
use crate::codec::Target;
use crate::metrics::RtcacheMetrics;
use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Shared state of the handlers.
pub(crate) struct State {
    pub(crate) upstreams: Upstreams,
    pub(crate) store: Store,
    pub(crate) metrics: RtcacheMetrics,
    pub(crate) registry: Arc<Registry>,
    pub(crate) refreshing: Mutex<HashSet<String>>,
    pub(crate) cfg: RtcacheConfig,
    pub(crate) tasks: tokio_util::task::TaskTracker,
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
    /// The runtime of background work (refreshes): the caller's, which outlives the
    /// serving threads.
    pub(crate) background: tokio::runtime::Handle,
    /// The listen address's IP, a name the `Host` header may give.
    pub(crate) listen_ip: String,
}

pub(crate) type Shared = Arc<State>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .fallback(proxy)
        .layer(axum::middleware::from_fn_with_state(state.clone(), host_check))
        .with_state(state)
}

/// The sidecar listens on loopback only: a request must name it by its listen address,
/// `localhost`, `127.0.0.1` or `[::1]`, else 421 (a web page whose name resolves to
/// 127.0.0.1 gets nothing).
async fn host_check(AxState(st): AxState<Shared>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if let Some(host) = mware_http::host::refused(req.headers(), [st.listen_ip.as_str(), "localhost", "127.0.0.1", "::1"].into_iter()) {
        return mware_http::host::misdirected(&host, "localhost");
    }
    next.run(req).await
}

async fn metrics(AxState(s): AxState<Shared>) -> Response {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &s.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], out).into_response()
}

async fn status(AxState(s): AxState<Shared>) -> Response {
    axum::Json(serde_json::json!({
        "config": s.cfg,
        "entries": s.store.len(),
        "upstreams": s.upstreams.health(),
        "cache_hits": s.metrics.cache_hits.get(),
        "stale_serves": s.metrics.stale_serves.get(),
        "errors_served_from_cache": s.metrics.errors_served_from_cache.get(),
    }))
    .into_response()
}

pub(crate) fn reply(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"mware provisioning\""));
    }
    r
}

fn lifetimes(cfg: &RtcacheConfig) -> Lifetimes {
    // Both are validated to at most MAX_LIFETIME_S; saturating anyway.
    Lifetimes { maximum_ms: cfg.object_lifetime_maximum.saturating_mul(1000), stale_ms: cfg.object_lifetime_stale.saturating_mul(1000) }
}

fn classify(o: &Outcome) -> UpstreamAnswer {
    match o {
        Outcome::Ok(b) if b.iter().all(|c| c.is_ascii_whitespace()) => UpstreamAnswer::NotFound,
        Outcome::Ok(_) => UpstreamAnswer::Found,
        Outcome::Refused(st, _) if matches!(st.as_u16(), 401 | 403 | 404) => UpstreamAnswer::Denied,
        Outcome::Refused(..) => UpstreamAnswer::Refused,
        Outcome::Failed(_) => UpstreamAnswer::Failed,
    }
}

/// The family as a metric label: a configured one, else `other`.
pub(crate) fn family_label<'a>(cfg: &'a RtcacheConfig, family: &str) -> &'a str {
    cfg.families.iter().find(|f| *f == family).map_or("other", String::as_str)
}

/// The answer to a body too large (or cut off): 413 with the op's failure body.
pub(crate) fn body_error(s: &State, target: &Target) -> Response {
    let (fam, op) = (family_label(&s.cfg, &target.family), target.op);
    tracing::warn!(family = %fam, op = op.as_str(), limit = s.cfg.max_body_bytes, "rtcache: body too large; refused");
    s.metrics.request(fam, op.as_str(), "bad_request");
    reply(StatusCode::PAYLOAD_TOO_LARGE, op.failure_body())
}

/// The cache key of a read: `PATH?QUERY`, the credential's key and the body, one line each.
pub(crate) fn read_key(s: &State, path_query: &str, authorization: Option<&[u8]>, body: &[u8]) -> String {
    let cred = s.store.credential_key(authorization);
    let body_text = String::from_utf8_lossy(body);
    let mut key = String::with_capacity(path_query.len() + cred.len() + body_text.len() + 2);
    for part in [path_query, "\n", &cred, "\n", &body_text] {
        key.push_str(part);
    }
    key
}

/// The decision for a cached entry before asking upstream, now.
pub(crate) fn decide_cached(s: &State, times: super::decide::EntryTimes) -> Decision {
    decide(&Snapshot { now_ms: mware_coord::now_ms(), lifetimes: lifetimes(&s.cfg), entry: Some(times), upstream: None })
}

async fn proxy(AxState(s): AxState<Shared>, method: Method, headers: HeaderMap, uri: Uri, body: Body) -> Response {
    let Some(target) = Target::from_path(uri.path()) else {
        tracing::warn!(path = ?uri.path(), "rtcache: expected .../ENTITY/FAMILY/OP with a known op; refused");
        return reply(StatusCode::NOT_FOUND, "");
    };
    let (fam, op) = (family_label(&s.cfg, &target.family), target.op);
    let auth = headers.get(header::AUTHORIZATION).cloned();
    let body = match axum::body::to_bytes(body, s.cfg.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return body_error(&s, &target),
    };
    let path_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    if op.is_write() {
        return write(&s, fam, op, &method, path_query, uri.path(), &body, auth.as_ref()).await;
    }
    let key = read_key(&s, path_query, auth.as_ref().map(HeaderValue::as_bytes), &body);
    let now = mware_coord::now_ms();
    let entry = s.store.get(&key);
    let snap = Snapshot { now_ms: now, lifetimes: lifetimes(&s.cfg), entry: entry.as_ref().map(|e| e.times), upstream: None };
    let d = decide(&snap);
    tracing::debug!(family = %fam, op = op.as_str(), "{d}");
    match d {
        Decision::ServeFresh { .. } => {
            s.metrics.cache_hits.inc();
            s.metrics.request(fam, op.as_str(), "hit");
            return reply(StatusCode::OK, entry.map(|e| e.body).unwrap_or_default());
        }
        Decision::ServeStaleAndRefresh { .. } => {
            s.metrics.stale_serves.inc();
            s.metrics.request(fam, op.as_str(), "stale");
            refresh_in_background(&s, key, method, path_query.to_string(), body, auth);
            return reply(StatusCode::OK, entry.map(|e| e.body).unwrap_or_default());
        }
        _ => {}
    }
    let outcome = s.upstreams.forward(false, &method, path_query, &body, auth.as_ref()).await;
    let snap = Snapshot { upstream: Some(classify(&outcome)), ..snap };
    let d = decide(&snap);
    tracing::debug!(family = %fam, op = op.as_str(), "{d}");
    let (resp, label) = act(&s, &key, d, outcome, entry, now);
    s.metrics.request(fam, op.as_str(), label);
    resp
}

/// Acts on a post-upstream decision; returns the answer and the outcome label.
fn act(s: &State, key: &str, d: Decision, outcome: Outcome, entry: Option<Entry>, now: u64) -> (Response, &'static str) {
    let lt = lifetimes(&s.cfg);
    match (d, outcome) {
        (Decision::StoreAndServe, Outcome::Ok(b)) => {
            let times = super::decide::EntryTimes { fetched_ms: now, revalidate: false, expires_ms: now.saturating_add(lt.maximum_ms) };
            s.store.put(key, Entry { times, body: b.clone() });
            (reply(StatusCode::OK, b), "miss")
        }
        (Decision::RemoveAndServeEmpty, _) => {
            s.store.remove(key);
            (reply(StatusCode::OK, Bytes::new()), "not_found")
        }
        (Decision::PassThrough, Outcome::Refused(st, b)) => (reply(st, b), "refused"),
        (Decision::DropAndPassThrough, Outcome::Refused(st, b)) => {
            s.store.remove(key);
            (reply(st, b), "refused")
        }
        (Decision::ServeCachedOnError { extend_to_ms }, Outcome::Failed(why)) => {
            tracing::warn!(reason = %why, "rtcache: every upstream failed; serving the cached answer");
            s.store.extend(key, extend_to_ms);
            s.metrics.errors_served_from_cache.inc();
            (reply(StatusCode::OK, entry.map(|e| e.body).unwrap_or_default()), "served_on_error")
        }
        (_, Outcome::Failed(why)) => {
            if entry.is_some() {
                s.store.remove(key);
            }
            tracing::warn!(reason = %why, "rtcache: every upstream failed and nothing usable is cached");
            (reply(StatusCode::BAD_GATEWAY, Bytes::new()), "failed")
        }
        (_, other) => {
            tracing::error!(?other, "rtcache: decision and upstream answer disagree");
            (reply(StatusCode::BAD_GATEWAY, Bytes::new()), "failed")
        }
    }
}

fn refresh_in_background(s: &Shared, key: String, method: Method, path_query: String, body: Bytes, auth: Option<HeaderValue>) {
    if !s.refreshing.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
        return;
    }
    let s2 = s.clone();
    s.tasks.spawn_on(
        async move {
            let outcome = tokio::select! {
                o = s2.upstreams.forward(false, &method, &path_query, &body, auth.as_ref()) => o,
                _ = s2.shutdown.cancelled() => Outcome::Failed("shutting down".into()),
            };
            let now = mware_coord::now_ms();
            let entry = s2.store.get(&key);
            let snap = Snapshot {
                now_ms: now,
                lifetimes: lifetimes(&s2.cfg),
                entry: entry.as_ref().map(|e| e.times),
                upstream: Some(classify(&outcome)),
            };
            let d = decide(&snap);
            tracing::debug!("background refresh: {d}");
            let _ = act(&s2, &key, d, outcome, entry, now);
            s2.refreshing.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        },
        &s.background,
    );
}

#[allow(clippy::too_many_arguments)]
async fn write(
    s: &State,
    family: &str,
    op: crate::codec::Op,
    method: &Method,
    path_query: &str,
    path: &str,
    body: &Bytes,
    auth: Option<&HeaderValue>,
) -> Response {
    let op = op.as_str();
    match s.upstreams.forward(true, method, path_query, body, auth).await {
        Outcome::Ok(b) => {
            // Every cached read of this entity and family (`.../{entity}/{family}/`) must be
            // revalidated before it is served again; each stays as a fallback for an outage.
            let prefix = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
            let n = s.store.mark_prefix(prefix);
            tracing::info!(family = %family, op, marked_for_revalidation = n, "rtcache: write passed through");
            s.metrics.request(family, op, "passed");
            reply(StatusCode::OK, b)
        }
        Outcome::Refused(st, b) => {
            s.metrics.request(family, op, "refused");
            reply(st, b)
        }
        Outcome::Failed(why) => {
            tracing::warn!(family = %family, op, reason = %why, "rtcache: write failed on every upstream; answered -1");
            s.metrics.request(family, op, "failed");
            reply(StatusCode::BAD_GATEWAY, "-1")
        }
    }
}
