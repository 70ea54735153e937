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
use axum::Router;
use std::time::Instant;

/// Body limit used while the service is stopped (the body is not read then).
const DEFAULT_MAX_BODY: usize = 65_536;

/// The router serving the provisioning protocol from `handle`.
pub fn provisioning_router(handle: ProvisioningHandle) -> Router {
    Router::new().route("/provision/asterisk/{entity}/{family}/{op}", any(handle_request)).with_state(handle)
}

fn reply(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [("content-type", "text/plain; charset=utf-8")], body.into()).into_response()
}

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

async fn answer(h: &ProvisioningHandle, target: &Target, uri: &Uri, body: Body) -> (StatusCode, String, &'static str) {
    let op = target.op;
    let Some(backend) = h.backend() else {
        return (StatusCode::SERVICE_UNAVAILABLE, op.failure_body().into(), "unavailable");
    };
    let limit = if backend.max_body == 0 { DEFAULT_MAX_BODY } else { backend.max_body };
    let result = async {
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| RealtimeError::BodyTooLarge { limit })?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| RealtimeError::BadEncoding { found: "a body that is not utf-8".into() })?;
        let started = Instant::now();
        let r = execute(&backend, target, uri.query().unwrap_or(""), text).await;
        h.metrics().db_seconds.observe(started.elapsed().as_secs_f64());
        r
    }
    .await;
    match result {
        Ok(Answer { body, not_found }) => (StatusCode::OK, body, if not_found { "not_found" } else { "ok" }),
        Err(e) if e.is_bad_request() => {
            tracing::warn!(entity = %target.entity, family = %target.family, op = op.as_str(), error = %e, "provisioning: bad request refused, nothing written");
            (StatusCode::BAD_REQUEST, op.failure_body().into(), "bad_request")
        }
        Err(e) => {
            tracing::error!(entity = %target.entity, family = %target.family, op = op.as_str(), error = %e, "provisioning: request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, op.failure_body().into(), "error")
        }
    }
}

