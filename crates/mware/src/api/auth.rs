//! Bearer-token check of a route's declared [`Access`]: `Token` takes the API token
//! (or the operator's), `Operator` the operator's. No token configured means those
//! calls are refused, not open.
//!
//! With `api.operator_token_env` set, the operator's calls (a group switchover, the
//! eviction of a mutex holder) take only the operator's token: the API token is carried
//! by call scripts on many servers, and one leaked from there must not move a group's
//! activity. The operator's token is taken for every other call that needs a token too.
//!
//! A service's [`Access::OwnToken`] calls (device jobs, which reach into the site's
//! network) take the operator's token or the service's own (the variable its group
//! section names), never the API token alone, whatever is configured.

use super::AppState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mware_config::Secret;
use mware_host::{Access, ApiError};

/// The bearer token of the Authorization header.
fn bearer(headers: &HeaderMap) -> Option<String> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(|g| g.trim().to_string())
}

/// Checks the credential `access` asks for (`service`: the route's service, for its own
/// token): `None` when the call may go on, else the answer to give.
pub fn refusal(st: &AppState, access: Access, service: Option<&str>, headers: &HeaderMap) -> Option<Response> {
    if matches!(access, Access::Public | Access::Basic) {
        return None;
    }
    if access == Access::OwnToken {
        return own_token_refusal(st, service, headers);
    }
    let given = bearer(headers);
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

/// The service's own token: the variable its group section names (`None` when it names
/// none), read now (a reload may name another), and that variable's name.
fn own_token(st: &AppState, service: Option<&str>) -> (Option<Secret>, Option<String>) {
    let site = st.0.site.borrow().clone();
    let Some(role) = site.instance(&st.0.instance).map(|p| p.role.clone()) else { return (None, None) };
    let svc = st.0.host.services().into_iter().find(|s| Some(s.name()) == service);
    let env = svc.and_then(|s| s.token_env(&role));
    let token = env.as_deref().and_then(|e| std::env::var(e).ok()).filter(|t| !t.is_empty()).map(Secret::new);
    (token, env)
}

/// [`Access::OwnToken`]: the operator's token or the service's own; the API token alone
/// is refused (403) even when it is the only one configured.
fn own_token_refusal(st: &AppState, service: Option<&str>, headers: &HeaderMap) -> Option<Response> {
    let given = bearer(headers);
    let is = |t: &Option<Secret>| matches!((&given, t), (Some(g), Some(t)) if t.matches(g));
    let operator = st.0.operator.as_ref().and_then(|o| o.token.clone());
    let (own, own_env) = own_token(st, service);
    let svc = service.unwrap_or("this service");
    let takes = match (&st.0.operator, &own_env) {
        (Some(o), Some(e)) => format!("the operator's token (environment variable {}) or {svc}'s own ({e})", o.env),
        (Some(o), None) => format!("the operator's token (environment variable {})", o.env),
        (None, Some(e)) => format!("{svc}'s own token (environment variable {e})"),
        (None, None) => format!("the operator's token (api.operator_token_env) or {svc}'s own ({svc}.token_env)"),
    };
    let api = is(&st.0.token);
    if (is(&operator) || is(&own)) && !api {
        return None;
    }
    if api {
        return Some(refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "expected {takes} for this call, found the API token ({}), which call scripts carry: it cannot reach into the site's network; nothing changed",
                st.0.token_env
            ),
        ));
    }
    if operator.is_none() && own.is_none() {
        return Some(unauthorized(&format!("this call is refused: it takes {takes}, and none is set")));
    }
    Some(mismatch(given.is_some()))
}

fn mismatch(given: bool) -> Response {
    if given {
        unauthorized("expected a valid bearer token in the Authorization header, found a token that does not match")
    } else {
        unauthorized("expected an Authorization: Bearer <token> header, found none")
    }
}

fn unauthorized(msg: &str) -> Response {
    ([(header::WWW_AUTHENTICATE, "Bearer")], ApiError::new(StatusCode::UNAUTHORIZED, msg)).into_response()
}

fn refuse(code: StatusCode, msg: &str) -> Response {
    ApiError::new(code, msg).into_response()
}
