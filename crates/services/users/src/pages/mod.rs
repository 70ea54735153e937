//! Minimal server-rendered pages for each flow, under `/users/{domain}/`: `recover` (ask
//! for a link), `recovery?token=` (set a new password), `invitation?token=` (accept,
//! choosing a password), `register` and `registration?token=` (confirm). Each GET sets a
//! CSRF value in a `SameSite=Strict`, `HttpOnly` cookie (`__Host-` and `Secure` when the
//! public URL is https) and in the form; a POST whose two values differ is refused (403).
//! A POST goes through the same flow as the API, with its limits. Every answer carries a
//! strict CSP (`default-src 'none'; form-action 'self'; frame-ancestors 'none'`), no
//! inline script or style, `Referrer-Policy: no-referrer` (links carry tokens) and
//! `Cache-Control: no-store`; texts in Russian or English by `Accept-Language`.

pub(crate) mod html;

use crate::flows::{self, Caller};
use crate::handle::UsersService;
use crate::templates::lang;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Form;
use html::{Field, T};
use mware_host::{Access, Routes, Scope};
use serde_json::{json, Value};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// The strict policy of every page.
pub const CSP: &str = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Which page.
#[derive(Debug, Clone, Copy)]
enum Page {
    Recover,
    Recovery,
    Invitation,
    Register,
    Registration,
}

impl Page {
    fn name(self) -> &'static str {
        match self {
            Page::Recover => "recover",
            Page::Recovery => "recovery",
            Page::Invitation => "invitation",
            Page::Register => "register",
            Page::Registration => "registration",
        }
    }
    fn title(self) -> T {
        match self {
            Page::Recover => T::Recover,
            Page::Recovery => T::SetPassword,
            Page::Invitation => T::Accept,
            Page::Register => T::Register,
            Page::Registration => T::Confirm,
        }
    }
    fn needs_token(self) -> bool {
        matches!(self, Page::Recovery | Page::Invitation | Page::Registration)
    }
    fn fields(self) -> &'static [Field<'static>] {
        match self {
            Page::Recover => &[("login", T::Login, "text")],
            Page::Recovery | Page::Invitation => &[("password", T::Password, "password")],
            Page::Register => &[("email", T::Email, "email"), ("password", T::Password, "password")],
            Page::Registration => &[],
        }
    }
}

/// The pages' routes (each the group owning the domain in the path).
pub fn routes(svc: UsersService) -> Routes {
    let d = || Scope::Domain("domain");
    Routes::new()
        .get("/users/{domain}/recover", Access::Public, d(), get(recover_get).with_state(svc.clone()))
        .post("/users/{domain}/recover", Access::Public, d(), post(recover_post).with_state(svc.clone()))
        .get("/users/{domain}/recovery", Access::Public, d(), get(recovery_get).with_state(svc.clone()))
        .post("/users/{domain}/recovery", Access::Public, d(), post(recovery_post).with_state(svc.clone()))
        .get("/users/{domain}/invitation", Access::Public, d(), get(invitation_get).with_state(svc.clone()))
        .post("/users/{domain}/invitation", Access::Public, d(), post(invitation_post).with_state(svc.clone()))
        .get("/users/{domain}/register", Access::Public, d(), get(register_get).with_state(svc.clone()))
        .post("/users/{domain}/register", Access::Public, d(), post(register_post).with_state(svc.clone()))
        .get("/users/{domain}/registration", Access::Public, d(), get(registration_get).with_state(svc.clone()))
        .post("/users/{domain}/registration", Access::Public, d(), post(registration_post).with_state(svc))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(recover_get, recover_post, recovery_get, recovery_post, invitation_get, invitation_post, register_get, register_post, registration_get, registration_post),
    tags((name = "users pages", description = "Server-rendered pages of a domain's user flows (HTML)"))
)]
struct PagesDoc;

/// The OpenAPI description of the pages.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <PagesDoc as utoipa::OpenApi>::openapi()
}

type Q = Query<HashMap<String, String>>;
type F = Form<HashMap<String, String>>;
type Peer = crate::flows::ClientIp;

macro_rules! page_handlers {
    ($get:ident, $post:ident, $page:expr, $path:literal, $what:literal) => {
        #[doc = concat!("The page: ", $what, " (GET: the form with its CSRF value).")]
        #[utoipa::path(get, path = $path, tag = "users pages", params(("domain" = String, Path, description = "the domain"), ("token" = Option<String>, Query, description = "the token of a mailed link")),
            responses((status = 200, description = "the form (HTML)"), (status = 400, description = "a link without a usable token (HTML)"), (status = 404, description = "a domain not served (HTML)")))]
        async fn $get(State(svc): State<UsersService>, p: Path<String>, q: Q, h: HeaderMap) -> Response {
            show(svc, $page, p, q, h).await
        }
        #[doc = concat!("The page: ", $what, " (POST: the form sent, with the cookie's CSRF value).")]
        #[utoipa::path(post, path = $path, tag = "users pages", params(("domain" = String, Path, description = "the domain")), request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "the form's fields and `csrf`"),
            responses((status = 200, description = "done (HTML)"), (status = 400, description = "refused, with the reason (HTML)"), (status = 403, description = "CSRF values differ (HTML)"), (status = 429, description = "a limit (HTML, Retry-After)")))]
        async fn $post(State(svc): State<UsersService>, p: Path<String>, peer: Peer, h: HeaderMap, f: F) -> Response {
            submit(svc, $page, p, peer, h, f).await
        }
    };
}

page_handlers!(recover_get, recover_post, Page::Recover, "/users/{domain}/recover", "ask for a recovery link");
page_handlers!(recovery_get, recovery_post, Page::Recovery, "/users/{domain}/recovery", "set a new password with a recovery link");
page_handlers!(invitation_get, invitation_post, Page::Invitation, "/users/{domain}/invitation", "accept an invitation");
page_handlers!(register_get, register_post, Page::Register, "/users/{domain}/register", "register");
page_handlers!(registration_get, registration_post, Page::Registration, "/users/{domain}/registration", "confirm a registration");

pub(crate) fn secure(status: StatusCode, lang: crate::templates::Lang, html: String, cookie: Option<String>) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    r
}

fn cookie_name(svc: &UsersService) -> &'static str {
    let https = svc.running().is_some_and(|r| r.cfg.public_url.starts_with("https://"));
    if https {
        "__Host-mw_csrf"
    } else {
        "mw_csrf"
    }
}

pub(crate) fn cookie_of(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

async fn show(
    svc: UsersService,
    page: Page,
    Path(domain): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let lang = lang(h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let Some(r) = svc.running() else {
        return secure(StatusCode::SERVICE_UNAVAILABLE, lang, html::message(lang, page.title(), "", "service unavailable"), None);
    };
    let Ok(dom) = flows::domain(&r, &domain) else {
        return secure(StatusCode::NOT_FOUND, lang, html::message(lang, page.title(), "", "not found"), None);
    };
    let mut hidden = vec![];
    let token = q.get("token").cloned().unwrap_or_default();
    if page.needs_token() {
        if !crate::token::well_formed(&token) {
            return secure(StatusCode::BAD_REQUEST, lang, html::message(lang, page.title(), &dom.name, html::text(T::BadLink, lang)), None);
        }
        hidden.push(("token", token.as_str()));
    }
    let (csrf, _) = crate::token::new();
    let name = cookie_name(&svc);
    let secure_attr = if name.starts_with("__Host-") { "; Secure" } else { "" };
    let cookie = format!("{name}={csrf}; Path=/; HttpOnly; SameSite=Strict{secure_attr}");
    let action = format!("/users/{}/{}", dom.name, page.name());
    let body = html::form(lang, page.title(), &dom.name, &action, &csrf, &hidden, page.fields());
    secure(StatusCode::OK, lang, body, Some(cookie))
}

async fn submit(
    svc: UsersService,
    page: Page,
    Path(domain): Path<String>,
    peer: Peer,
    h: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let lang = lang(h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let title = page.title();
    let sent = f.get("csrf").map(String::as_bytes).unwrap_or_default();
    let kept = cookie_of(&h, cookie_name(&svc)).unwrap_or_default();
    if sent.is_empty() || !bool::from(sent.ct_eq(kept.as_bytes())) {
        return secure(StatusCode::FORBIDDEN, lang, html::message(lang, title, "", html::text(T::Csrf, lang)), None);
    }
    let Some(r) = svc.running() else {
        return secure(StatusCode::SERVICE_UNAVAILABLE, lang, html::message(lang, title, "", "service unavailable"), None);
    };
    let who = Caller { ip: peer.0, lang };
    let v = |k: &str| f.get(k).cloned().unwrap_or_default();
    let m = svc.metrics();
    let body = match page {
        Page::Recover => json!({"domain": domain, "login": v("login")}),
        Page::Recovery | Page::Invitation => json!({"domain": domain, "token": v("token"), "password": v("password")}),
        Page::Register => json!({"domain": domain, "email": v("email"), "password": v("password")}),
        Page::Registration => json!({"domain": domain, "token": v("token")}),
    };
    let bytes = Bytes::from(body.to_string());
    let out = match page {
        Page::Recover => flows::recovery::request(&r, m, &who, &bytes).await,
        Page::Recovery => flows::recovery::confirm(&r, m, &who, &bytes).await,
        Page::Invitation => flows::invite::accept(&r, m, &who, &bytes).await,
        Page::Register => flows::register::register(&r, m, &who, &bytes).await,
        Page::Registration => flows::register::confirm(&r, m, &who, &bytes).await,
    };
    let resp = out.unwrap_or_else(|b| *b);
    let status = resp.status();
    m.answered("page", status.as_u16());
    let retry = resp.headers().get(header::RETRY_AFTER).cloned();
    let dom = mware_config::canonical(&domain).unwrap_or_default();
    let text = if status.is_success() {
        html::text(if matches!(page, Page::Recover | Page::Register) { T::Sent } else { T::Done }, lang).to_string()
    } else {
        let b = axum::body::to_bytes(resp.into_body(), 64 * 1024).await.unwrap_or_default();
        serde_json::from_slice::<Value>(&b).ok().and_then(|v| v["error"].as_str().map(str::to_string)).unwrap_or_else(|| status.to_string())
    };
    let mut out = secure(status, lang, html::message(lang, title, &dom, &text), None);
    if let Some(ra) = retry {
        out.headers_mut().insert(header::RETRY_AFTER, ra);
    }
    out
}
