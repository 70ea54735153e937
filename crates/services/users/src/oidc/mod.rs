//! Registration and login through a domain's identity providers (OpenID Connect):
//! `GET /users/{domain}/login` lists them; `GET /users/{domain}/oidc/{provider}/start`
//! redirects to the provider with PKCE, `state` and `nonce`, the state bound to the
//! browser by a cookie; `GET …/callback` takes the flow once (a replayed or foreign
//! `state` is refused), checks the cookie, exchanges the code and the ID token
//! ([`flow`]), then finds the account named by the provider's `user_claim`, or creates it
//! on the first login (taking a live invitation of the same verified address, with its
//! role), and opens a session (cookie `mw_session`, `HttpOnly`, `SameSite=Lax`).
//! `POST /api/users/v1/logout` ends a session. ESIA's profile is in [`esia`], its flow in
//! [`esia_flow`].

pub mod esia;
pub mod esia_flow;
pub mod flow;

use crate::directory::NewUser;
use crate::flows::{self, Caller};
use crate::handle::{Running, UsersService};
use crate::limits::Kind;
use crate::pages::html::{self, T};
use crate::pages::{cookie_of, secure};
use crate::section::{DomainUsers, OidcProfile, OidcProvider};
use crate::templates::{lang, Lang};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flow::Identity;
use mware_host::{Access, Routes, Scope};
use std::collections::HashMap;
use std::sync::Arc;

const STATE_COOKIE: &str = "mw_oidc";
/// The session cookie a login through a provider sets.
pub const SESSION_COOKIE: &str = "mw_session";

type Peer = flows::ClientIp;

/// The routes of the flows.
pub fn routes(svc: UsersService) -> Routes {
    let d = || Scope::Domain("domain");
    Routes::new()
        .get("/users/{domain}/login", Access::Public, d(), get(choose).with_state(svc.clone()))
        .get("/users/{domain}/oidc/{provider}/start", Access::Public, d(), get(start).with_state(svc.clone()))
        .get("/users/{domain}/oidc/{provider}/callback", Access::Public, d(), get(callback).with_state(svc))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(choose, start, callback), tags((name = "users oidc", description = "Login and registration through a domain's identity providers")))]
struct OidcDoc;

/// The OpenAPI description of the flows.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <OidcDoc as utoipa::OpenApi>::openapi()
}

fn refused(lang: Lang, status: StatusCode, domain: &str, why: &str) -> Response {
    secure(status, lang, html::message(lang, T::Refused, domain, why), None)
}

fn setup(svc: &UsersService, domain: &str) -> Result<(Arc<Running>, String), (StatusCode, String)> {
    let r = svc.running().ok_or((StatusCode::SERVICE_UNAVAILABLE, "the users service is not running here".to_string()))?;
    let name = flows::domain(&r, domain).map_err(|_| (StatusCode::NOT_FOUND, "no such domain here".to_string()))?.name.clone();
    Ok((r, name))
}

fn provider<'a>(dom: &'a DomainUsers, name: &str) -> Option<&'a OidcProvider> {
    dom.oidc.iter().find(|p| p.name == name)
}

fn redirect_uri(r: &Running, domain: &str, p: &OidcProvider) -> String {
    format!("{}/users/{domain}/oidc/{}/callback", r.cfg.public_url, p.name)
}

/// The page listing the domain's identity providers.
#[utoipa::path(get, path = "/users/{domain}/login", tag = "users oidc", params(("domain" = String, Path, description = "the domain")), responses((status = 200, description = "links to each provider's start (HTML)")))]
async fn choose(State(svc): State<UsersService>, Path(domain): Path<String>, h: HeaderMap) -> Response {
    let lang = lang(h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let (r, name) = match setup(&svc, &domain) {
        Ok(x) => x,
        Err((s, why)) => return refused(lang, s, "", &why),
    };
    let dom = r.cfg.domain(&name).cloned().unwrap_or_else(|| unreachable_domain(&name));
    let items: Vec<(String, String)> = dom.oidc.iter().map(|p| (p.name.clone(), format!("/users/{name}/oidc/{}/start", p.name))).collect();
    secure(StatusCode::OK, lang, html::links(lang, T::Providers, &name, &items), None)
}

fn unreachable_domain(name: &str) -> DomainUsers {
    DomainUsers { name: name.into(), self_registration: Default::default(), templates_dir: None, roles: vec![], oidc: vec![] }
}

/// Starts a login: 302 to the provider (PKCE, state, nonce), the state in a cookie.
#[utoipa::path(get, path = "/users/{domain}/oidc/{provider}/start", tag = "users oidc", params(("domain" = String, Path, description = "the domain"), ("provider" = String, Path, description = "the provider's name")),
    responses((status = 302, description = "to the provider"), (status = 404, description = "no such provider (HTML)"), (status = 502, description = "the provider cannot be reached (HTML)")))]
async fn start(State(svc): State<UsersService>, Path((domain, prov)): Path<(String, String)>, peer: Peer, h: HeaderMap) -> Response {
    let lang = lang(h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let (r, name) = match setup(&svc, &domain) {
        Ok(x) => x,
        Err((s, why)) => return refused(lang, s, "", &why),
    };
    let ip = peer.0;
    if let Err(b) = flows::limit(&r, svc.metrics(), Kind::Ip, &ip) {
        return *b;
    }
    let Some(p) = r.cfg.domain(&name).and_then(|d| provider(d, &prov)).cloned() else {
        return refused(lang, StatusCode::NOT_FOUND, &name, "no such provider in this domain");
    };
    let started = match p.profile {
        OidcProfile::Esia => esia_flow::start(&r.oidc, &name, &p, &redirect_uri(&r, &name, &p)).await,
        OidcProfile::Generic => r.oidc.start(&name, &p, &redirect_uri(&r, &name, &p)).await,
    };
    match started {
        Ok((url, state)) => {
            let mut resp = (StatusCode::FOUND, [(header::LOCATION, url)]).into_response();
            let cookie = format!("{STATE_COOKIE}={state}; Path=/users/; HttpOnly; SameSite=Lax; Max-Age=600");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(why) => {
            tracing::warn!(provider = %p.name, error = %why, "oidc: a login could not start");
            refused(lang, StatusCode::BAD_GATEWAY, &name, "the identity provider cannot be reached now")
        }
    }
}

/// The provider's answer: the account found or made, a session opened (cookie).
#[utoipa::path(get, path = "/users/{domain}/oidc/{provider}/callback", tag = "users oidc", params(("domain" = String, Path, description = "the domain"), ("provider" = String, Path, description = "the provider's name"), ("code" = String, Query, description = "the code"), ("state" = String, Query, description = "the state")),
    responses((status = 200, description = "signed in (HTML, session cookie)"), (status = 400, description = "refused, with the reason (HTML)")))]
async fn callback(
    State(svc): State<UsersService>,
    Path((domain, prov)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    peer: Peer,
    h: HeaderMap,
) -> Response {
    let lang = lang(h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let (r, name) = match setup(&svc, &domain) {
        Ok(x) => x,
        Err((s, why)) => return refused(lang, s, "", &why),
    };
    let who = Caller { ip: peer.0, lang };
    if let Err(b) = flows::limit(&r, svc.metrics(), Kind::Ip, &who.ip) {
        return *b;
    }
    let out = finish(&r, &name, &prov, &q, &h).await;
    svc.metrics().answered("oidc_callback", if out.is_ok() { 200 } else { 400 });
    match out {
        Ok((login, session)) => {
            let text = format!("{} {login}", html::text(T::SignedIn, lang));
            let cookie = format!("{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}", r.cfg.lifetimes.session_s);
            let mut resp = secure(StatusCode::OK, lang, html::message(lang, T::SignedIn, &name, &text), Some(cookie));
            resp.headers_mut()
                .append(header::SET_COOKIE, HeaderValue::from_static("mw_oidc=; Path=/users/; HttpOnly; SameSite=Lax; Max-Age=0"));
            resp
        }
        Err(why) => {
            tracing::info!(domain = %name, provider = %prov, reason = %why, "oidc: a login was refused");
            refused(lang, StatusCode::BAD_REQUEST, &name, &why)
        }
    }
}

/// The callback's checks and the account: (login, session token).
async fn finish(r: &Running, domain: &str, prov: &str, q: &HashMap<String, String>, h: &HeaderMap) -> Result<(String, String), String> {
    if let Some(e) = q.get("error") {
        return Err(format!("the provider answered {:?}", e.chars().take(64).collect::<String>()));
    }
    let state = q.get("state").ok_or("expected a state, found none")?;
    let code = q.get("code").ok_or("expected a code, found none")?;
    let bound = cookie_of(h, STATE_COOKIE).unwrap_or_default();
    // Taken before any other check: a state is good for one try.
    let f = r.oidc.take(state).await?.ok_or("expected the state of a login started here, found an unknown or used one")?;
    if bound.is_empty() || !bool::from(subtle::ConstantTimeEq::ct_eq(bound.as_bytes(), state.as_bytes())) {
        return Err("expected the state bound to this browser, found another one".into());
    }
    if f.domain != domain || f.provider != prov {
        return Err("expected the callback of the provider the login started with, found another".into());
    }
    let dom = r.cfg.domain(domain).ok_or("no such domain")?;
    let p = provider(dom, prov).ok_or("no such provider")?;
    let id = match p.profile {
        OidcProfile::Esia => esia_flow::finish(p, code, &redirect_uri(r, domain, p)).await?,
        OidcProfile::Generic => r.oidc.finish(p, f, code, &redirect_uri(r, domain, p)).await?,
    };
    if !flow::allowed(&p.allowed_values, &id.value) {
        return Err(format!("expected a {} allowed in this domain, found another", p.user_claim));
    }
    let user = account(r, domain, &id).await.map_err(|e| {
        tracing::warn!(error = %e, "oidc: the account could not be read or made");
        "the user directory cannot be reached now".to_string()
    })?;
    if user.state != "active" {
        return Err(format!("the account is not active (state {})", user.state));
    }
    let session = r.dir.open_session(user.id, r.cfg.lifetimes.session_s).await.map_err(|e| e.to_string())?;
    Ok((user.login, session))
}

/// The account the identity names: found, or made on the first login.
async fn account(r: &Running, domain: &str, id: &Identity) -> crate::error::Result<crate::User> {
    if let Some(u) = r.dir.find(domain, &id.value).await? {
        return Ok(u);
    }
    let role = match &id.verified_email {
        Some(e) => r.store.take_invitation(domain, e).await?,
        None => None,
    };
    let new = NewUser {
        domain: domain.to_string(),
        login: id.value.clone(),
        email: id.verified_email.clone(),
        role: role.unwrap_or_else(|| "user".into()),
        state: "active".into(),
        password_hash: None,
    };
    match r.dir.create(new).await? {
        Some(u) => Ok(u),
        // Made by a concurrent first login meanwhile.
        None => r.dir.find(domain, &id.value).await?.ok_or_else(|| crate::UsersError::Pool("the account vanished".into())),
    }
}
