//! Invitations. An operator invites `{domain, email, role}` (201 with the invitation's
//! id; its mail queued with the token in the same transaction); lists them with their
//! state; resends one (the old link revoked, a new one mailed) or revokes it. The invitee
//! accepts with `{token, password[, domain]}`: the account (login = the address, the
//! invitation's role) exists from then on.

use super::recovery::refused;
use super::{bad, domain, internal, limit, link, Caller, Form, Refusal, MAX_FIELD};
use crate::decide::{token, TokenVerdict};
use crate::directory::NewUser;
use crate::handle::Running;
use crate::limits::Kind;
use crate::metrics::Metrics;
use crate::section::DomainUsers;
use crate::store::{Issue, Mail};
use crate::templates::{render, Kind as Mailed, Lang};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mware_host::ApiError;
use serde_json::json;

async fn send(r: &Running, dom: &DomainUsers, email: &str, role: &str, lang: Lang) -> Result<i64, Refusal> {
    let ttl = r.cfg.lifetimes.invitation_s;
    let issue = Issue {
        kind: "invitation",
        domain: dom.name.clone(),
        user_id: None,
        email: Some(email.to_string()),
        role: Some(role.to_string()),
        secret_hash: None,
        ttl_s: ttl,
    };
    let id = r
        .store
        .issue(issue, true, |t| {
            let l = link(r, &dom.name, "invitation", t);
            let hours = format!("{}", ttl / 3600);
            let (subject, body) =
                render(dom.templates_dir.as_deref(), Mailed::Invitation, lang, &[("link", &l), ("domain", &dom.name), ("hours", &hours)]);
            Mail { domain: dom.name.clone(), recipient: email.to_string(), subject, body }
        })
        .await
        .map_err(internal)?;
    r.wake.notify_one();
    Ok(id)
}

/// `POST …/invitations {domain, email, role}` (operator).
pub async fn invite(r: &Running, m: &Metrics, who: &Caller, body: &[u8]) -> Result<Response, Refusal> {
    let mut f = Form::parse(body, &["domain", "email", "role"])?;
    let d = f.text("domain", MAX_FIELD, true);
    let email = f.text("email", MAX_FIELD, true).and_then(|e| match crate::address::parse(&e) {
        Ok(a) => Some(a),
        Err(why) => {
            f.problem("email", why.to_string());
            None
        }
    });
    let role = f.text("role", 64, false);
    f.finish()?;
    let dom = domain(r, &d.unwrap_or_default())?;
    let role = role.unwrap_or_else(|| "user".into());
    if !dom.roles.contains(&role) {
        return Err(bad("role", format!("role: expected one of {}, found {role:?}", dom.roles.join(", "))));
    }
    let email = email.unwrap_or_default();
    limit(r, m, Kind::Address, &email)?;
    if r.dir.find(&dom.name, &email).await.map_err(internal)?.is_some() {
        return Err(Box::new(
            ApiError::new(StatusCode::CONFLICT, "email: expected an address without an account, found one with an account")
                .field("email")
                .into_response(),
        ));
    }
    let id = send(r, dom, &email, &role, who.lang).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "domain": dom.name, "email": email, "role": role, "state": "pending"}))).into_response())
}

/// `GET …/invitations?domain=` (operator).
pub async fn list(r: &Running, d: &str) -> Result<Response, Refusal> {
    let dom = domain(r, d)?;
    let list = r.store.list("invitation", &dom.name, None).await.map_err(internal)?;
    Ok(Json(json!({"domain": dom.name, "invitations": list})).into_response())
}

/// `POST …/invitations/{id}/resend|revoke {domain}` (operator).
pub async fn act(r: &Running, who: &Caller, id: i64, body: &[u8], resend: bool) -> Result<Response, Refusal> {
    let mut f = Form::parse(body, &["domain"])?;
    let d = f.text("domain", MAX_FIELD, true);
    f.finish()?;
    let dom = domain(r, &d.unwrap_or_default())?;
    let Some(inv) = r.store.get(id, "invitation", &dom.name).await.map_err(internal)? else {
        return Err(Box::new(
            ApiError::new(StatusCode::NOT_FOUND, format!("id: expected an invitation of {}, found none with id {id}", dom.name))
                .field("id")
                .into_response(),
        ));
    };
    let live = inv["state"] == "pending";
    if !resend {
        if !r.store.revoke(id, "invitation", &dom.name).await.map_err(internal)? {
            return Err(Box::new(
                ApiError::new(StatusCode::CONFLICT, format!("expected a pending invitation, found one {}", inv["state"])).into_response(),
            ));
        }
        return Ok(Json(json!({"id": id, "state": "revoked"})).into_response());
    }
    if !live && inv["state"] != "expired" {
        return Err(Box::new(
            ApiError::new(StatusCode::CONFLICT, format!("expected a pending or expired invitation, found one {}", inv["state"]))
                .into_response(),
        ));
    }
    let (email, role) = (inv["email"].as_str().unwrap_or_default().to_string(), inv["role"].as_str().unwrap_or("user").to_string());
    let new = send(r, dom, &email, &role, who.lang).await?;
    Ok(Json(json!({"id": new, "replaces": id, "state": "pending"})).into_response())
}

/// `POST …/invitations/accept {token, password[, domain]}`.
pub async fn accept(r: &Running, m: &Metrics, who: &Caller, body: &[u8]) -> Result<Response, Refusal> {
    limit(r, m, Kind::Ip, &who.ip)?;
    let mut f = Form::parse(body, &["token", "password", "domain"])?;
    let t = f.text("token", 64, true);
    let password = f.text("password", r.cfg.password_policy.max_length.max(1024), true);
    let d = f.text("domain", MAX_FIELD, false);
    if let Some(Err(e)) = password.as_deref().map(|p| r.policy.check(p)) {
        f.problem("password", e.to_string());
    }
    f.finish()?;
    let want = match d {
        Some(d) => Some(domain(r, &d)?.name.clone()),
        None => None,
    };
    let found = r.store.peek(&t.unwrap_or_default()).await.map_err(internal)?;
    let v = token(found.as_ref().map(|f| &f.row), "invitation", want.as_deref());
    let Some(found) = found.filter(|f| v == TokenVerdict::Use && r.cfg.domain(&f.row.domain).is_some()) else {
        return Err(refused(if v == TokenVerdict::Use { &TokenVerdict::OtherDomain } else { &v }));
    };
    let hash = r.hasher.hash(password.unwrap_or_default()).await.map_err(internal)?;
    if !r.store.consume(found.id).await.map_err(internal)? {
        return Err(refused(&TokenVerdict::Used));
    }
    let email = found.email.clone().unwrap_or_default();
    let new = NewUser {
        domain: found.row.domain.clone(),
        login: email.clone(),
        email: Some(email),
        role: found.role.clone().unwrap_or_else(|| "user".into()),
        state: "active".into(),
        password_hash: Some(hash),
    };
    let Some(u) = r.dir.create(new).await.map_err(internal)? else {
        return Err(Box::new(ApiError::new(StatusCode::CONFLICT, "the invited address has an account already").into_response()));
    };
    Ok((StatusCode::CREATED, Json(json!({"domain": u.domain, "login": u.login, "role": u.role, "state": u.state}))).into_response())
}
