//! Self-registration, off by default per domain. `POST …/registrations {domain, email,
//! password}` checks the domain allows it, the address's domain, the password policy,
//! then answers 202 the same whether the address has an account or not (a mail goes only
//! to a new one). The account exists only after `POST …/registrations/confirm {token}`,
//! `active`, or `pending_approval` when the domain asks for an administrator's approval
//! (`POST …/registrations/approve {domain, login}`, operator); `GET
//! …/registrations?domain=` (operator) lists the accounts waiting for it.

use super::recovery::refused;
use super::{bad, domain, internal, limit, link, Caller, Form, Refusal, MAX_FIELD};
use crate::decide::{token, TokenVerdict};
use crate::directory::NewUser;
use crate::handle::Running;
use crate::limits::Kind;
use crate::metrics::Metrics;
use crate::store::{Issue, Mail};
use crate::templates::{render, Kind as Mailed};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mware_host::ApiError;
use serde_json::json;

/// The answer to every accepted registration.
pub const ACCEPTED: &str = "a confirmation link was sent to the address, unless it has an account already";

/// `POST …/registrations`.
pub async fn register(r: &Running, m: &Metrics, who: &Caller, body: &[u8]) -> Result<Response, Refusal> {
    limit(r, m, Kind::Ip, &who.ip)?;
    let mut f = Form::parse(body, &["domain", "email", "password"])?;
    let d = f.text("domain", MAX_FIELD, true);
    let email =
        f.text("email", MAX_FIELD, true).and_then(|e| crate::address::parse(&e).map_err(|why| f.problem("email", why.to_string())).ok());
    let password = f.text("password", r.cfg.password_policy.max_length.max(1024), true);
    if let Some(Err(e)) = password.as_deref().map(|p| r.policy.check(p)) {
        f.problem("password", e.to_string());
    }
    f.finish()?;
    let dom = domain(r, &d.unwrap_or_default())?;
    let reg = &dom.self_registration;
    if !reg.enabled {
        return Err(Box::new(ApiError::new(StatusCode::FORBIDDEN, format!("self-registration is off in {}", dom.name)).into_response()));
    }
    let email = email.unwrap_or_default();
    let mail_domain = crate::address::domain_of(&email);
    if !reg.allowed_email_domains.is_empty() && !reg.allowed_email_domains.iter().any(|a| a == mail_domain) {
        return Err(bad(
            "email",
            format!("email: expected an address in {}, found one in {mail_domain:?}", reg.allowed_email_domains.join(", ")),
        ));
    }
    limit(r, m, Kind::Address, &email)?;
    let hash = r.hasher.hash(password.unwrap_or_default()).await.map_err(internal)?;
    if r.dir.find(&dom.name, &email).await.map_err(internal)?.is_none() {
        let ttl = r.cfg.lifetimes.registration_s;
        let issue = Issue {
            kind: "registration",
            domain: dom.name.clone(),
            user_id: None,
            email: Some(email.clone()),
            role: Some("user".into()),
            secret_hash: Some(hash),
            ttl_s: ttl,
        };
        r.store
            .issue(issue, true, |t| {
                let l = link(r, &dom.name, "registration", t);
                let hours = format!("{}", ttl / 3600);
                let (subject, body) = render(
                    dom.templates_dir.as_deref(),
                    Mailed::Registration,
                    who.lang,
                    &[("link", &l), ("domain", &dom.name), ("hours", &hours)],
                );
                Mail { domain: dom.name.clone(), recipient: email.clone(), subject, body }
            })
            .await
            .map_err(internal)?;
        r.wake.notify_one();
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "accepted", "message": ACCEPTED}))).into_response())
}

/// `POST …/registrations/confirm {token[, domain]}`.
pub async fn confirm(r: &Running, m: &Metrics, who: &Caller, body: &[u8]) -> Result<Response, Refusal> {
    limit(r, m, Kind::Ip, &who.ip)?;
    let mut f = Form::parse(body, &["token", "domain"])?;
    let t = f.text("token", 64, true);
    let d = f.text("domain", MAX_FIELD, false);
    f.finish()?;
    let want = match d {
        Some(d) => Some(domain(r, &d)?.name.clone()),
        None => None,
    };
    let found = r.store.peek(&t.unwrap_or_default()).await.map_err(internal)?;
    let v = token(found.as_ref().map(|f| &f.row), "registration", want.as_deref());
    let Some((found, dom)) = found.filter(|_| v == TokenVerdict::Use).and_then(|f| r.cfg.domain(&f.row.domain).map(|d| (f.clone(), d)))
    else {
        return Err(refused(if v == TokenVerdict::Use { &TokenVerdict::OtherDomain } else { &v }));
    };
    if !r.store.consume(found.id).await.map_err(internal)? {
        return Err(refused(&TokenVerdict::Used));
    }
    let email = found.email.clone().unwrap_or_default();
    let state = if dom.self_registration.approval { "pending_approval" } else { "active" };
    let new = NewUser {
        domain: dom.name.clone(),
        login: email.clone(),
        email: Some(email),
        role: "user".into(),
        state: state.into(),
        password_hash: found.secret_hash.clone(),
    };
    let Some(u) = r.dir.create(new).await.map_err(internal)? else {
        return Err(Box::new(ApiError::new(StatusCode::CONFLICT, "the address has an account already").into_response()));
    };
    Ok((StatusCode::CREATED, Json(json!({"domain": u.domain, "login": u.login, "state": u.state}))).into_response())
}

/// `POST …/registrations/approve {domain, login}` (operator).
pub async fn approve(r: &Running, body: &[u8]) -> Result<Response, Refusal> {
    let mut f = Form::parse(body, &["domain", "login"])?;
    let d = f.text("domain", MAX_FIELD, true);
    let login = f.text("login", MAX_FIELD, true);
    f.finish()?;
    let dom = domain(r, &d.unwrap_or_default())?;
    let login = login.unwrap_or_default();
    let u = r.dir.find(&dom.name, &login).await.map_err(internal)?;
    match u {
        Some(u) if u.state == "pending_approval" => {
            r.dir.set_state(u.id, "active").await.map_err(internal)?;
            Ok(Json(json!({"domain": dom.name, "login": login, "state": "active"})).into_response())
        }
        Some(u) => Err(Box::new(
            ApiError::new(StatusCode::CONFLICT, format!("login: expected an account waiting for approval, found one {}", u.state))
                .field("login")
                .into_response(),
        )),
        None => Err(Box::new(
            ApiError::new(StatusCode::NOT_FOUND, "login: expected an account waiting for approval, found none")
                .field("login")
                .into_response(),
        )),
    }
}

/// `GET …/registrations?domain=` (operator): the accounts waiting for approval.
pub async fn awaiting(r: &Running, d: &str) -> Result<Response, Refusal> {
    let dom = domain(r, d)?;
    let list = r.dir.awaiting_approval(&dom.name).await.map_err(internal)?;
    let items: Vec<_> =
        list.into_iter().map(|(login, email, created_at)| json!({"login": login, "email": email, "created_at": created_at})).collect();
    Ok(Json(json!({"domain": dom.name, "awaiting_approval": items})).into_response())
}
