//! Bearer-token check for mutating calls (every method but GET/HEAD/OPTIONS under `/api/`).
//! No token configured means mutating calls are refused, not open.

use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The auth layer.
pub async fn require_token(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !mutating || !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let Some(token) = &st.0.token else {
        return unauthorized(&format!(
            "mutating calls are refused: no API token is configured (set the environment variable {})",
            st.0.token_env
        ));
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if same(g.trim().as_bytes(), token.expose().as_bytes()) => next.run(req).await,
        Some(_) => unauthorized("expected a valid bearer token in the Authorization header, found a token that does not match"),
        None => unauthorized("expected an Authorization: Bearer <token> header, found none"),
    }
}

fn unauthorized(msg: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({"error": msg})),
    )
        .into_response()
}
