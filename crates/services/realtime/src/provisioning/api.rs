//! HTTP handlers of the provisioning service:
//! `/provision/asterisk/{entity}/{family}/{op}` for every method.
//!
//! Every answer keeps res_config_curl's wire format: a refusal (unknown entity 404,
//! no or wrong credential 401 with `WWW-Authenticate: Basic`, a write not allowed 403,
//! a bad request 400) carries the operation's failure body (empty for reads, `-1`
//! otherwise), never a JSON document Asterisk would parse as fields.

use super::access::{self, authorize, key_of, Refusal};
use super::exec::{execute, Answer};
use super::{Backend, ProvisioningHandle};
use crate::codec::Target;
use crate::error::RealtimeError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use mware_host::{Access, ResolvedArg, Routes, Scope};
use std::time::Instant;

/// Body limit used while the service is stopped (the body is not read then).
const DEFAULT_MAX_BODY: usize = 65_536;

/// The routes serving the provisioning protocol from `handle`: any method, about the
/// SIP server named by the entity segment (forwarded to the active instance of the group
/// whose provisioning section lists it, see [`access::resolve`]); HTTP Basic checked by
/// the handler. While the service is not running the answer is the protocol's failure
/// body with a 503, so a caching client keeps what it has.
pub fn provisioning_routes(handle: ProvisioningHandle) -> Routes {
    Routes::new()
        .add(
            None,
            "/provision/asterisk/{entity}/{family}/{op}",
            Access::Basic,
            Scope::Resolve("entity", access::resolve),
            any(handle_request).with_state(handle),
        )
        .unavailable(unavailable)
}

/// The failure body with a 503 (the routing layer keeps a resolver's 4xx status).
fn unavailable(uri: &Uri, _reason: &str) -> Response {
    let body = Target::from_path(uri.path()).map(|t| t.op.failure_body()).unwrap_or("");
    reply(StatusCode::SERVICE_UNAVAILABLE, body)
}

/// The family as a metric label: a configured family, else `other` (a client never adds
/// a label value).
fn family_label(b: Option<&Backend>, family: &str) -> String {
    match b {
        Some(b) if b.families.contains_key(family) => family.to_string(),
        _ => "other".to_string(),
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(handle_request), tags((name = "provisioning", description = "Asterisk res_config_curl realtime provisioning")))]
struct ApiDoc;

/// The OpenAPI description of the provisioning protocol.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}

fn reply(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [("content-type", "text/plain; charset=utf-8")], body.into()).into_response()
}

/// Asterisk res_config_curl protocol (form-encoded POST bodies; operators inside field names).
/// `single`: one line `k=v&...`, empty = not found; `multi`: one row per line;
/// `store`/`update`/`destroy`: a decimal count or `-1`; `require`: `0` or `-1`; `static`:
/// category/cat_metric/var_name/var_val lines. The entity is the SIP server's entity id
/// (`entityid` in asterisk.conf), authenticated with HTTP Basic; the call is forwarded to
/// the active instance of the group whose provisioning section lists it.
#[utoipa::path(post, path = "/provision/asterisk/{entity}/{family}/{op}", tag = "provisioning",
    params(("entity" = String, Path, description = "the SIP server's entity id, e.g. 12:34:56:78:9a:bc"),
           ("family" = String, Path, description = "family, e.g. endpoint, auth, aor"),
           ("op" = String, Path, description = "single, multi, store, update, destroy, require or static")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "protocol answer (text/plain)"), (status = 400, description = "bad request: failure answer"),
        (status = 401, description = "no or wrong credential: failure answer"), (status = 403, description = "write not allowed, or an unshared family without a domain column: failure answer"),
        (status = 404, description = "unknown entity: failure answer"), (status = 503, description = "not running here: failure answer")),
    security(("basic" = [])))]
async fn handle_request(
    State(h): State<ProvisioningHandle>,
    resolved: Option<axum::Extension<ResolvedArg>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let Some(target) = Target::from_path(uri.path()) else {
        tracing::warn!(path = ?uri.path(), "provisioning: expected /provision/asterisk/ENTITY/FAMILY/OP with a known op");
        return reply(StatusCode::NOT_FOUND, "");
    };
    let op = target.op;
    let backend = h.backend();
    let label = family_label(backend.as_deref(), &target.family);
    let Some(backend) = backend else {
        h.metrics().request(&label, op.as_str(), "unavailable");
        return reply(StatusCode::SERVICE_UNAVAILABLE, op.failure_body());
    };
    // The routing layer's key; a service run on its own (tests, rtnode) applies the same rule.
    let key = match resolved {
        Some(axum::Extension(ResolvedArg(k))) => Some(k),
        None => key_of(&target.entity),
    };
    let caller = match key {
        Some(k) => authorize(&backend, &k, headers.get(header::AUTHORIZATION), op),
        None => Err(Refusal::Unknown(format!("expected an entity id, found {:?}", target.entity.chars().take(64).collect::<String>()))),
    };
    let caller = match caller {
        Ok(c) => c,
        Err(r) => {
            tracing::warn!(family = %label, op = op.as_str(), reason = %r, "provisioning: refused, nothing read or written");
            h.metrics().request(&label, op.as_str(), r.outcome());
            let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::FORBIDDEN);
            let mut resp = reply(status, op.failure_body());
            if status == StatusCode::UNAUTHORIZED {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"mware provisioning\""));
            }
            return resp;
        }
    };
    let (status, text, outcome) = answer(&h, &backend, &caller, &target, &uri, body).await;
    h.metrics().request(&label, op.as_str(), outcome);
    reply(status, text)
}

async fn answer(
    h: &ProvisioningHandle,
    backend: &Backend,
    caller: &access::Caller,
    target: &Target,
    uri: &Uri,
    body: Body,
) -> (StatusCode, String, &'static str) {
    let op = target.op;
    let limit = if backend.max_body == 0 { DEFAULT_MAX_BODY } else { backend.max_body };
    let result = async {
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| RealtimeError::BodyTooLarge { limit })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| RealtimeError::BadEncoding { found: "a body that is not utf-8".into() })?;
        let started = Instant::now();
        let r = execute(backend, caller, target, uri.query().unwrap_or(""), text).await;
        h.metrics().db_seconds.observe(started.elapsed().as_secs_f64());
        r
    }
    .await;
    match result {
        Ok(Answer { body, not_found }) => (StatusCode::OK, body, if not_found { "not_found" } else { "ok" }),
        Err(e) if e.is_bad_request() => {
            tracing::warn!(entity = %caller.entity, family = ?target.family, op = op.as_str(), error = ?e.to_string(), "provisioning: bad request refused, nothing written");
            (StatusCode::BAD_REQUEST, op.failure_body().into(), "bad_request")
        }
        Err(e @ RealtimeError::Unscoped { .. }) => {
            tracing::error!(entity = %caller.entity, op = op.as_str(), error = %e, "provisioning: refused, nothing read or written");
            (StatusCode::FORBIDDEN, op.failure_body().into(), "forbidden")
        }
        Err(e) => {
            tracing::error!(entity = %caller.entity, family = ?target.family, op = op.as_str(), error = ?e.to_string(), "provisioning: request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, op.failure_body().into(), "error")
        }
    }
}
