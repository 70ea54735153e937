//! `POST /api/users/v1/login {domain, login, password}`: 200 with a session, or 401 the
//! same for an unknown login and a wrong password (an unknown login is verified against
//! a dummy hash, so both take one Argon2id verification); and `GET …/session` with the
//! session as a bearer token.

use super::{domain, internal, limit, Caller, Form, Refusal, MAX_FIELD};
use crate::handle::Running;
use crate::limits::Kind;
use crate::metrics::Metrics;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mware_host::ApiError;
use serde_json::json;

/// The login flow.
pub async fn login(r: &Running, m: &Metrics, who: &Caller, body: &[u8]) -> Result<Response, Refusal> {
    limit(r, m, Kind::Ip, &who.ip)?;
    let mut f = Form::parse(body, &["domain", "login", "password"])?;
    let d = f.text("domain", MAX_FIELD, true);
    let login = f.text("login", MAX_FIELD, true);
    let password = f.text("password", r.cfg.password_policy.max_length.max(1024), true);
    f.finish()?;
    let (d, login, password) = (d.unwrap_or_default(), login.unwrap_or_default(), password.unwrap_or_default());
    let dom = domain(r, &d)?;
    limit(r, m, Kind::Login, &format!("{}\n{login}", dom.name))?;
    let user = r.dir.find(&dom.name, &login).await.map_err(internal)?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    if !r.hasher.verify(password, hash).await {
        m.login_failures.inc();
        return Err(Box::new(ApiError::new(StatusCode::UNAUTHORIZED, "login or password: no account matches them").into_response()));
    }
    let Some(u) = user else { return Err(Box::new(StatusCode::UNAUTHORIZED.into_response())) };
    if u.state != "active" {
        return Err(Box::new(
            ApiError::new(StatusCode::FORBIDDEN, format!("the account is not active yet (state {})", u.state)).into_response(),
        ));
    }
    let ttl = r.cfg.lifetimes.session_s;
    let session = r.dir.open_session(u.id, ttl).await.map_err(internal)?;
    Ok(Json(json!({"session": session, "expires_in_s": ttl, "domain": u.domain, "login": u.login, "role": u.role})).into_response())
}

/// The account of a live session (`Authorization: Bearer <session>`).
pub async fn session(r: &Running, m: &Metrics, who: &Caller, bearer: Option<&str>) -> Result<Response, Refusal> {
    limit(r, m, Kind::Ip, &who.ip)?;
    let none = || {
        Box::new(ApiError::new(StatusCode::UNAUTHORIZED, "session: expected a live session as a bearer token, found none").into_response())
    };
    let token = bearer.ok_or_else(none)?;
    let u = r.dir.session(token).await.map_err(internal)?.ok_or_else(none)?;
    Ok(Json(json!({"domain": u.domain, "login": u.login, "role": u.role, "state": u.state})).into_response())
}

/// Ends a session (`Authorization: Bearer <session>`): 200, or 401 when it was not live.
pub async fn logout(r: &Running, m: &Metrics, who: &Caller, bearer: Option<&str>) -> Result<Response, Refusal> {
    limit(r, m, Kind::Ip, &who.ip)?;
    let none = || {
        Box::new(ApiError::new(StatusCode::UNAUTHORIZED, "session: expected a live session as a bearer token, found none").into_response())
    };
    let token = bearer.ok_or_else(none)?;
    if !r.dir.close_session(token).await.map_err(internal)? {
        return Err(none());
    }
    Ok(Json(json!({"status": "logged out"})).into_response())
}
