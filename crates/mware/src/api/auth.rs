//! Bearer-token check for mutating calls (every method but GET/HEAD/OPTIONS under `/api/`).
//! No token configured means mutating calls are refused, not open.
//!
//! With `api.operator_token_env` set, the operator's calls (a group switchover, the
//! eviction of a mutex holder) take only the operator's token: the API token is carried
//! by call scripts on many servers, and one leaked from there must not move a group's
//! activity. The operator's token is taken for every other mutating call too.

use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mware_config::Secret;
use serde_json::json;

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Calls only an operator makes: a group switchover, the eviction of a mutex holder.
pub fn operator_call(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    (p.starts_with("/api/v1/groups/") && p.ends_with("/switchover")) || (p.starts_with("/api/v1/domains/") && p.contains("/mutexes/") && p.ends_with("/evict"))
}

/// The auth layer.
pub async fn require_token(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !mutating || !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|g| g.trim().to_string());
    let is = |t: &Option<Secret>| matches!((&given, t), (Some(g), Some(t)) if same(g.as_bytes(), t.expose().as_bytes()));
    let api_env = &st.0.token_env;
    match &st.0.operator {
        Some(op) if operator_call(req.uri().path()) => {
            if is(&op.token) {
                return next.run(req).await;
            }
            if op.token.is_none() {
                return unauthorized(&format!("operator calls are refused: no operator token is configured (set the environment variable {})", op.env));
            }
            if is(&st.0.token) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    &format!("expected the operator's token (environment variable {}) for this call, found the API token ({api_env}); nothing changed", op.env),
                );
            }
            mismatch(given.is_some())
        }
        op => {
            if is(&st.0.token) || op.as_ref().is_some_and(|o| is(&o.token)) {
                return next.run(req).await;
            }
            if st.0.token.is_none() && op.as_ref().is_none_or(|o| o.token.is_none()) {
                return unauthorized(&format!("mutating calls are refused: no API token is configured (set the environment variable {api_env})"));
            }
            mismatch(given.is_some())
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

#[cfg(test)]
mod tests {
    use super::operator_call;

    #[test]
    fn operator_calls_are_switchover_and_evict() {
        assert!(operator_call("/api/v1/groups/3/switchover"));
        assert!(operator_call("/api/v1/domains/a.ru/mutexes/trunk/evict"));
        assert!(operator_call("/api/v1/domains/a.ru/mutexes/trunk/evict/"));
        assert!(!operator_call("/api/v1/domains/a.ru/mutexes/trunk/release"));
        assert!(!operator_call("/api/v1/domains/a.ru/mutexes/evict/acquire"));
        assert!(!operator_call("/provision/asterisk/a.ru/evict"));
    }
}
