//! Bearer-token check of a route's declared [`Access`]: `Token` takes the API token
//! (or the operator's), `Operator` the operator's. No token configured means those
//! calls are refused, not open.
//!
//! With `api.operator_token_env` set, the operator's calls (a group switchover, the
//! eviction of a mutex holder) take only the operator's token: the API token is carried
//! by call scripts on many servers, and one leaked from there must not move a group's
//! activity. The operator's token is taken for every other call that needs a token too.

use super::AppState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mware_config::Secret;
use mware_host::Access;
use serde_json::json;

/// Checks the credential `access` asks for: `None` when the call may go on, else the
/// answer to give.
pub fn refusal(st: &AppState, access: Access, headers: &HeaderMap) -> Option<Response> {
    if matches!(access, Access::Public | Access::Basic) {
        return None;
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|g| g.trim().to_string());
    let is = |t: &Option<Secret>| matches!((&given, t), (Some(g), Some(t)) if t.matches(g));
    let api_env = &st.0.token_env;
    match &st.0.operator {
        Some(op) if access == Access::Operator => {
            if is(&op.token) {
                return None;
            }
            if op.token.is_none() {
                return Some(unauthorized(&format!(
                    "operator calls are refused: no operator token is configured (set the environment variable {})",
                    op.env
                )));
            }
            if is(&st.0.token) {
                return Some(refuse(
                    StatusCode::FORBIDDEN,
                    &format!("expected the operator's token (environment variable {}) for this call, found the API token ({api_env}); nothing changed", op.env),
                ));
            }
            Some(mismatch(given.is_some()))
        }
        op => {
            if is(&st.0.token) || op.as_ref().is_some_and(|o| is(&o.token)) {
                return None;
            }
            if st.0.token.is_none() && op.as_ref().is_none_or(|o| o.token.is_none()) {
                return Some(unauthorized(&format!(
                    "this call is refused: no API token is configured (set the environment variable {api_env})"
                )));
            }
            Some(mismatch(given.is_some()))
        }
    }
}

fn mismatch(given: bool) -> Response {
    if given {
        unauthorized("expected a valid bearer token in the Authorization header, found a token that does not match")
    } else {
        unauthorized("expected an Authorization: Bearer <token> header, found none")
    }
}

fn unauthorized(msg: &str) -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], Json(json!({"error": msg}))).into_response()
}

fn refuse(code: StatusCode, msg: &str) -> Response {
    (code, Json(json!({"error": msg}))).into_response()
}
