//! HTTP routes of the users services, under `/api/users/v1`. A call naming its domain (in
//! the body, or the query of `GET …/invitations`) is served by the active instance of the
//! group owning that domain (others forward there: `Scope::DomainField`), and checked
//! against that group's `users.domains`; a call carrying only a token or a session is
//! served by the asked instance's group. Public routes are the user's own (login,
//! recovery, accepting an invitation, registering); the operator's token manages
//! invitations and approvals. Every answer is counted per endpoint and status. A client
//! over its per-IP limit is refused by the route's gate, before anything else is done.

use crate::flows::{self, Caller, Refusal};
use crate::handle::UsersService;
use crate::limits::Kind;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mware_host::{Access, ApiError, Gate, Routes, Scope};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::OpenApi;

/// The paths of the routes, written once (routes and `mware users` use them).
pub(crate) mod paths {
    pub const LOGIN: &str = "/api/users/v1/login";
    pub const SESSION: &str = "/api/users/v1/session";
    pub const LOGOUT: &str = "/api/users/v1/logout";
    pub const RECOVERY: &str = "/api/users/v1/recovery";
    pub const RECOVERY_CONFIRM: &str = "/api/users/v1/recovery/confirm";
    pub const INVITATIONS: &str = "/api/users/v1/invitations";
    pub const INVITATION_ACCEPT: &str = "/api/users/v1/invitations/accept";
    pub const INVITATION_RESEND: &str = "/api/users/v1/invitations/{id}/resend";
    pub const INVITATION_REVOKE: &str = "/api/users/v1/invitations/{id}/revoke";
    pub const REGISTRATIONS: &str = "/api/users/v1/registrations";
    pub const REGISTRATION_CONFIRM: &str = "/api/users/v1/registrations/confirm";
    pub const REGISTRATION_APPROVE: &str = "/api/users/v1/registrations/approve";
}

#[derive(OpenApi)]
#[openapi(
    paths(login, session, logout, recovery, recovery_confirm, invite, invitations, accept, resend, revoke, register, awaiting, register_confirm, approve),
    tags((name = "users", description = "A domain's users: login, password recovery, invitations, self-registration"))
)]
struct ApiDoc;

/// The OpenAPI description of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The service's routes. Every public route whose first check is the per-client limit
/// has a gate: a client over that limit is refused before its body is read or its call
/// forwarded ([`gate`]).
pub fn routes(svc: UsersService) -> Routes {
    let s = || svc.clone();
    let g = |endpoint| gate(&svc, endpoint);
    Routes::new()
        .post(paths::LOGIN, Access::Public, Scope::DomainField("domain"), post(login).with_state(s()))
        .gate(g("login"))
        .get(paths::SESSION, Access::Public, Scope::Group, get(session).with_state(s()))
        .gate(g("session"))
        .post(paths::LOGOUT, Access::Public, Scope::Group, post(logout).with_state(s()))
        .gate(g("logout"))
        .post(paths::RECOVERY, Access::Public, Scope::DomainField("domain"), post(recovery).with_state(s()))
        .gate(g("recovery"))
        .post(paths::RECOVERY_CONFIRM, Access::Public, Scope::Group, post(recovery_confirm).with_state(s()))
        .gate(g("recovery_confirm"))
        .post(paths::INVITATIONS, Access::Operator, Scope::DomainField("domain"), post(invite).with_state(s()))
        .get(paths::INVITATIONS, Access::Operator, Scope::DomainField("domain"), get(invitations).with_state(s()))
        .post(paths::INVITATION_ACCEPT, Access::Public, Scope::Group, post(accept).with_state(s()))
        .gate(g("invitation_accept"))
        .post(paths::INVITATION_RESEND, Access::Operator, Scope::DomainField("domain"), post(resend).with_state(s()))
        .post(paths::INVITATION_REVOKE, Access::Operator, Scope::DomainField("domain"), post(revoke).with_state(s()))
        .post(paths::REGISTRATIONS, Access::Public, Scope::DomainField("domain"), post(register).with_state(s()))
        .gate(g("registration"))
        .get(paths::REGISTRATIONS, Access::Operator, Scope::DomainField("domain"), get(awaiting).with_state(s()))
        .post(paths::REGISTRATION_CONFIRM, Access::Public, Scope::Group, post(register_confirm).with_state(s()))
        .gate(g("registration_confirm"))
        .post(paths::REGISTRATION_APPROVE, Access::Operator, Scope::DomainField("domain"), post(approve).with_state(s()))
}

/// The gate of a public route: while the service runs here and the client's address is
/// refused already by the per-IP limit ([`crate::limits::Limiter::refused_already`]),
/// the static 429 with `Retry-After`, counted as the handler would count it (refused,
/// answered); else the call goes on to the handler. No body read, no domain looked up,
/// no forwarding, no log line, nothing allocated.
fn gate(svc: &UsersService, endpoint: &'static str) -> Gate {
    let svc = svc.clone();
    Arc::new(move |ip: std::net::IpAddr| -> Option<Response> {
        let r = svc.running()?;
        let refused = r.limits.refused_already(Kind::Ip, crate::limits::ip_hash(ip))?;
        let resp = flows::too_many(&r, svc.metrics(), refused);
        svc.metrics().answered(endpoint, resp.status().as_u16());
        Some(resp)
    })
}

type Peer = flows::ClientIp;

fn caller(peer: &Peer, h: &HeaderMap) -> Caller {
    Caller { ip: peer.0.clone(), lang: crate::templates::lang(h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())) }
}

fn done(svc: &UsersService, endpoint: &'static str, r: Result<Response, Refusal>) -> Response {
    let resp = r.unwrap_or_else(|b| *b);
    svc.metrics().answered(endpoint, resp.status().as_u16());
    resp
}

fn not_running() -> Refusal {
    Box::new(ApiError::unavailable("the users service is not running here").into_response())
}

macro_rules! with_running {
    ($svc:expr, $endpoint:expr, |$r:ident| $body:expr) => {{
        let out = match $svc.running() {
            Some($r) => $body.await,
            None => Err(not_running()),
        };
        done(&$svc, $endpoint, out)
    }};
}

/// Logs in: a session, or 401 the same for an unknown login and a wrong password.
#[utoipa::path(post, path = "/api/users/v1/login", tag = "users", request_body(content = Object, description = "`{domain, login, password}`"),
    responses((status = 200, description = "`{session, expires_in_s, domain, login, role}`"), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, description = "the account waits for approval", body = ApiError), (status = 404, description = "a domain not served", body = ApiError), (status = 429, body = ApiError)))]
async fn login(State(svc): State<UsersService>, peer: Peer, h: HeaderMap, body: Bytes) -> Response {
    let who = caller(&peer, &h);
    with_running!(svc, "login", |r| flows::login::login(&r, svc.metrics(), &who, &body))
}

/// The account of a live session (`Authorization: Bearer <session>`).
#[utoipa::path(get, path = "/api/users/v1/session", tag = "users", responses((status = 200, description = "`{domain, login, role, state}`"), (status = 401, body = ApiError), (status = 429, body = ApiError)))]
async fn session(State(svc): State<UsersService>, peer: Peer, h: HeaderMap) -> Response {
    let who = caller(&peer, &h);
    let bearer = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string);
    with_running!(svc, "session", |r| flows::login::session(&r, svc.metrics(), &who, bearer.as_deref()))
}

/// Ends a session (`Authorization: Bearer <session>`).
#[utoipa::path(post, path = "/api/users/v1/logout", tag = "users", responses((status = 200, description = "logged out"), (status = 401, body = ApiError), (status = 429, body = ApiError)))]
async fn logout(State(svc): State<UsersService>, peer: Peer, h: HeaderMap) -> Response {
    let who = caller(&peer, &h);
    let bearer = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string);
    with_running!(svc, "logout", |r| flows::login::logout(&r, svc.metrics(), &who, bearer.as_deref()))
}

/// Asks for a recovery link: 202 the same whether the login exists or not.
#[utoipa::path(post, path = "/api/users/v1/recovery", tag = "users", request_body(content = Object, description = "`{domain, login}`"),
    responses((status = 202, description = "accepted"), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 429, body = ApiError), (status = 503, body = ApiError)))]
async fn recovery(State(svc): State<UsersService>, peer: Peer, h: HeaderMap, body: Bytes) -> Response {
    let who = caller(&peer, &h);
    with_running!(svc, "recovery", |r| flows::recovery::request(&r, svc.metrics(), &who, &body))
}

/// Sets a new password with a recovery token; ends the account's sessions.
#[utoipa::path(post, path = "/api/users/v1/recovery/confirm", tag = "users", request_body(content = Object, description = "`{token, password, domain?}`"),
    responses((status = 200, description = "password set"), (status = 400, description = "a bad token (why) or password (policy)", body = ApiError), (status = 429, body = ApiError)))]
async fn recovery_confirm(State(svc): State<UsersService>, peer: Peer, h: HeaderMap, body: Bytes) -> Response {
    let who = caller(&peer, &h);
    with_running!(svc, "recovery_confirm", |r| flows::recovery::confirm(&r, svc.metrics(), &who, &body))
}

/// Invites an address with a role (operator).
#[utoipa::path(post, path = "/api/users/v1/invitations", tag = "users", request_body(content = Object, description = "`{domain, email, role?}`"),
    responses((status = 201, description = "`{id, domain, email, role, state}`"), (status = 400, body = ApiError), (status = 409, description = "the address has an account", body = ApiError), (status = 429, body = ApiError)))]
async fn invite(State(svc): State<UsersService>, peer: Peer, h: HeaderMap, body: Bytes) -> Response {
    let who = caller(&peer, &h);
    with_running!(svc, "invite", |r| flows::invite::invite(&r, svc.metrics(), &who, &body))
}

/// A domain's invitations with their state (operator).
#[utoipa::path(get, path = "/api/users/v1/invitations", tag = "users", params(("domain" = String, Query, description = "the domain")),
    responses((status = 200, description = "`{domain, invitations: [{id, email, role, created_at, expires_at, state}]}`"), (status = 404, body = ApiError)))]
async fn invitations(State(svc): State<UsersService>, Query(q): Query<HashMap<String, String>>) -> Response {
    let d = q.get("domain").cloned().unwrap_or_default();
    with_running!(svc, "invitations", |r| flows::invite::list(&r, &d))
}

/// Accepts an invitation: the account is created.
#[utoipa::path(post, path = "/api/users/v1/invitations/accept", tag = "users", request_body(content = Object, description = "`{token, password, domain?}`"),
    responses((status = 201, description = "`{domain, login, role, state}`"), (status = 400, body = ApiError), (status = 409, body = ApiError), (status = 429, body = ApiError)))]
async fn accept(State(svc): State<UsersService>, peer: Peer, h: HeaderMap, body: Bytes) -> Response {
    let who = caller(&peer, &h);
    with_running!(svc, "invitation_accept", |r| flows::invite::accept(&r, svc.metrics(), &who, &body))
}

/// Sends an invitation again with a new link; the old link is revoked (operator).
#[utoipa::path(post, path = "/api/users/v1/invitations/{id}/resend", tag = "users", params(("id" = i64, Path, description = "the invitation")), request_body(content = Object, description = "`{domain}`"),
    responses((status = 200, description = "`{id, replaces, state}`"), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn resend(State(svc): State<UsersService>, peer: Peer, h: HeaderMap, Path(id): Path<i64>, body: Bytes) -> Response {
    let who = caller(&peer, &h);
    with_running!(svc, "invitation_resend", |r| flows::invite::act(&r, &who, id, &body, true))
}

/// Revokes a pending invitation (operator).
#[utoipa::path(post, path = "/api/users/v1/invitations/{id}/revoke", tag = "users", params(("id" = i64, Path, description = "the invitation")), request_body(content = Object, description = "`{domain}`"),
    responses((status = 200, description = "`{id, state}`"), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn revoke(State(svc): State<UsersService>, peer: Peer, h: HeaderMap, Path(id): Path<i64>, body: Bytes) -> Response {
    let who = caller(&peer, &h);
    with_running!(svc, "invitation_revoke", |r| flows::invite::act(&r, &who, id, &body, false))
}

/// Registers (when the domain allows it): a confirmation link is mailed.
#[utoipa::path(post, path = "/api/users/v1/registrations", tag = "users", request_body(content = Object, description = "`{domain, email, password}`"),
    responses((status = 202, description = "accepted"), (status = 400, body = ApiError), (status = 403, description = "self-registration is off", body = ApiError), (status = 429, body = ApiError)))]
async fn register(State(svc): State<UsersService>, peer: Peer, h: HeaderMap, body: Bytes) -> Response {
    let who = caller(&peer, &h);
    with_running!(svc, "registration", |r| flows::register::register(&r, svc.metrics(), &who, &body))
}

/// A domain's self-registered accounts waiting for approval (operator).
#[utoipa::path(get, path = "/api/users/v1/registrations", tag = "users", params(("domain" = String, Query, description = "the domain")),
    responses((status = 200, description = "`{domain, awaiting_approval: [{login, email, created_at}]}`, oldest first"), (status = 404, body = ApiError)))]
async fn awaiting(State(svc): State<UsersService>, Query(q): Query<HashMap<String, String>>) -> Response {
    let d = q.get("domain").cloned().unwrap_or_default();
    with_running!(svc, "registrations_awaiting", |r| flows::register::awaiting(&r, &d))
}

/// Confirms a registration: the account is created (active, or waiting for approval).
#[utoipa::path(post, path = "/api/users/v1/registrations/confirm", tag = "users", request_body(content = Object, description = "`{token, domain?}`"),
    responses((status = 201, description = "`{domain, login, state}`"), (status = 400, body = ApiError), (status = 409, body = ApiError), (status = 429, body = ApiError)))]
async fn register_confirm(State(svc): State<UsersService>, peer: Peer, h: HeaderMap, body: Bytes) -> Response {
    let who = caller(&peer, &h);
    with_running!(svc, "registration_confirm", |r| flows::register::confirm(&r, svc.metrics(), &who, &body))
}

/// Approves a confirmed registration (operator).
#[utoipa::path(post, path = "/api/users/v1/registrations/approve", tag = "users", request_body(content = Object, description = "`{domain, login}`"),
    responses((status = 200, description = "`{domain, login, state}`"), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn approve(State(svc): State<UsersService>, body: Bytes) -> Response {
    with_running!(svc, "registration_approve", |r| flows::register::approve(&r, &body))
}
