//! HTTP handlers of the provisioning service:
//! `/provision/asterisk/{entity_id}/{family}/{op}` for every method.

use super::exec::{execute, Answer};
use super::ProvisioningHandle;
use crate::codec::Target;
use crate::error::RealtimeError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use mware_host::{Access, Routes, Scope};
use std::time::Instant;

/// Body limit used while the service is stopped (the body is not read then).
const DEFAULT_MAX_BODY: usize = 65_536;

/// The routes serving the provisioning protocol from `handle`: any method, about the
/// entity's domain (forwarded to the active instance of the group owning it); while the
/// service is not running the answer is the protocol's failure body with a 503, so a
/// caching client keeps what it has.
pub fn provisioning_routes(handle: ProvisioningHandle) -> Routes {
    Routes::new()
        .add(
            None,
            "/provision/asterisk/{entity}/{family}/{op}",
            Access::Public,
            Scope::Domain("entity"),
            any(handle_request).with_state(handle),
        )
        .unavailable(unavailable)
}

fn unavailable(uri: &Uri, _reason: &str) -> Response {
    let body = Target::from_path(uri.path()).map(|t| t.op.failure_body()).unwrap_or("");
    reply(StatusCode::SERVICE_UNAVAILABLE, body)
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(handle_request), tags((name = "provisioning", description = "Asterisk res_config_curl realtime provisioning")))]
struct ApiDoc;

/// The OpenAPI description of the provisioning protocol.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}

fn reply(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// Asterisk res_config_curl protocol (form-encoded POST bodies; operators inside field names).
/// `single`: one line `k=v&...`, empty = not found; `multi`: one row per line;
/// `store`/`update`/`destroy`: a decimal count or `-1`; `require`: `0` or `-1`; `static`:
/// category/cat_metric/var_name/var_val lines. The entity is the tenant domain and is
/// forwarded to the active instance of the group serving it.
#[utoipa::path(post, path = "/provision/asterisk/{entity}/{family}/{op}", tag = "provisioning",
    params(("entity" = String, Path, description = "entity id (tenant domain)"),
           ("family" = String, Path, description = "family, e.g. endpoint, auth, aor"),
           ("op" = String, Path, description = "single, multi, store, update, destroy, require or static")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "protocol answer (text/plain)"), (status = 400, description = "bad request: failure answer"),
        (status = 503, description = "not running here: failure answer")))]
async fn handle_request(State(h): State<ProvisioningHandle>, uri: Uri, body: Body) -> Response {
    let Some(target) = Target::from_path(uri.path()) else {
        tracing::warn!(path = %uri.path(), "provisioning: expected /provision/asterisk/ENTITY/FAMILY/OP with a known op");
        return reply(StatusCode::NOT_FOUND, "");
    };
    let op = target.op;
    let (status, text, outcome) = answer(&h, &target, &uri, body).await;
    h.metrics().request(&target.family, op.as_str(), outcome);
    reply(status, text)
}

async fn answer(
    h: &ProvisioningHandle,
    target: &Target,
    uri: &Uri,
    body: Body,
) -> (StatusCode, String, &'static str) {
    let op = target.op;
    let Some(backend) = h.backend() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            op.failure_body().into(),
            "unavailable",
        );
    };
    let limit = if backend.max_body == 0 {
        DEFAULT_MAX_BODY
    } else {
        backend.max_body
    };
    let result = async {
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| RealtimeError::BodyTooLarge { limit })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| RealtimeError::BadEncoding {
            found: "a body that is not utf-8".into(),
        })?;
        let started = Instant::now();
        let r = execute(&backend, target, uri.query().unwrap_or(""), text).await;
        h.metrics()
            .db_seconds
            .observe(started.elapsed().as_secs_f64());
        r
    }
    .await;
    match result {
        Ok(Answer { body, not_found }) => (
            StatusCode::OK,
            body,
            if not_found { "not_found" } else { "ok" },
        ),
        Err(e) if e.is_bad_request() => {
            tracing::warn!(entity = %target.entity, family = %target.family, op = op.as_str(), error = %e, "provisioning: bad request refused, nothing written");
            (
                StatusCode::BAD_REQUEST,
                op.failure_body().into(),
                "bad_request",
            )
        }
        Err(e) => {
            tracing::error!(entity = %target.entity, family = %target.family, op = op.as_str(), error = %e, "provisioning: request failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                op.failure_body().into(),
                "error",
            )
        }
    }
}
