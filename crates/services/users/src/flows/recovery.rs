//! Password recovery. `POST /api/users/v1/recovery {domain, login}` answers 202 at once,
//! the same whether the login exists or not: the request goes to a bounded queue and a
//! background step looks the account up, revokes its older links, and issues a token
//! with its mail in one transaction. `POST …/recovery/confirm {token, password[, domain]}`
//! checks the token ([`crate::decide::token`]), the new password against the policy,
//! uses the token up atomically, sets the password and ends every session of the account.

use super::{bad, domain, internal, limit, link, Caller, Form, Refusal, MAX_FIELD};
use crate::decide::{token, TokenVerdict};
use crate::handle::{RecoveryJob, Running};
use crate::limits::Kind;
use crate::metrics::Metrics;
use crate::store::{Issue, Mail};
use crate::templates::{render, Kind as Mailed};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mware_host::ApiError;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The answer to every accepted recovery request.
pub const ACCEPTED: &str = "if an account with this login exists in the domain, a recovery link was sent to its address";

/// `POST …/recovery`.
pub async fn request(r: &Running, m: &Metrics, who: &Caller, body: &[u8]) -> Result<Response, Refusal> {
    limit(r, m, Kind::Ip, &who.ip)?;
    let mut f = Form::parse(body, &["domain", "login"])?;
    let d = f.text("domain", MAX_FIELD, true);
    let login = f.text("login", MAX_FIELD, true);
    f.finish()?;
    let (d, login) = (d.unwrap_or_default(), login.unwrap_or_default());
    let dom = domain(r, &d)?;
    limit(r, m, Kind::Login, &format!("{}\n{login}", dom.name))?;
    let job = RecoveryJob { domain: dom.name.clone(), login, lang: who.lang };
    if r.recovery.try_send(job).is_err() {
        return Err(Box::new(
            ApiError::unavailable("too many recovery requests are waiting; try again later")
                .retry_after(Duration::from_secs(10))
                .into_response(),
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "accepted", "message": ACCEPTED}))).into_response())
}

/// The background step: one job at a time, until `cancel`.
pub async fn work(r: Arc<Running>, mut rx: mpsc::Receiver<RecoveryJob>, cancel: CancellationToken) {
    loop {
        let job = tokio::select! {
            _ = cancel.cancelled() => return,
            j = rx.recv() => match j { Some(j) => j, None => return },
        };
        if let Err(e) = one(&r, job).await {
            tracing::warn!(error = %e, "recovery: a request could not be handled");
        }
    }
}

async fn one(r: &Running, job: RecoveryJob) -> crate::error::Result<()> {
    let Some(u) = r.dir.find(&job.domain, &job.login).await? else { return Ok(()) };
    let Some(email) = u.email.clone().filter(|_| u.state == "active") else { return Ok(()) };
    if r.limits.check(Kind::Address, &email).is_err() {
        tracing::info!(domain = %job.domain, "recovery: the address's mail limit is reached; no mail this time");
        return Ok(());
    }
    let dir = r.cfg.domain(&job.domain).and_then(|d| d.templates_dir.clone());
    let ttl = r.cfg.lifetimes.recovery_s;
    let issue =
        Issue { kind: "recovery", domain: job.domain.clone(), user_id: Some(u.id), email: None, role: None, secret_hash: None, ttl_s: ttl };
    r.store
        .issue(issue, true, |t| {
            let l = link(r, &job.domain, "recovery", t);
            let hours = format!("{}", ttl as f64 / 3600.0);
            let (subject, body) =
                render(dir.as_deref(), Mailed::Recovery, job.lang, &[("link", &l), ("domain", &job.domain), ("hours", &hours)]);
            Mail { domain: job.domain.clone(), recipient: email.clone(), subject, body }
        })
        .await?;
    r.wake.notify_one();
    Ok(())
}

/// A refusal of a token, with the verdict's reason.
pub fn refused(v: &TokenVerdict) -> Refusal {
    bad("token", format!("token: expected a valid link, found that {v}"))
}

/// `POST …/recovery/confirm`.
pub async fn confirm(r: &Running, m: &Metrics, who: &Caller, body: &[u8]) -> Result<Response, Refusal> {
    limit(r, m, Kind::Ip, &who.ip)?;
    let mut f = Form::parse(body, &["token", "password", "domain"])?;
    let t = f.text("token", 64, true);
    let password = f.text("password", r.cfg.password_policy.max_length.max(1024), true);
    let d = f.text("domain", MAX_FIELD, false);
    if let Some(p) = &password {
        if let Err(e) = r.policy.check(p) {
            f.problem("password", e.to_string());
        }
    }
    f.finish()?;
    let (t, password) = (t.unwrap_or_default(), password.unwrap_or_default());
    let want = match d {
        Some(d) => Some(domain(r, &d)?.name.clone()),
        None => None,
    };
    let found = r.store.peek(&t).await.map_err(internal)?;
    let v = token(found.as_ref().map(|f| &f.row), "recovery", want.as_deref());
    let Some(found) = found.filter(|f| v == TokenVerdict::Use && r.cfg.domain(&f.row.domain).is_some()) else {
        return Err(refused(if v == TokenVerdict::Use { &TokenVerdict::OtherDomain } else { &v }));
    };
    let hash = r.hasher.hash(password).await.map_err(internal)?;
    if !r.store.consume(found.id).await.map_err(internal)? {
        return Err(refused(&TokenVerdict::Used));
    }
    let Some(uid) = found.user_id else { return Err(refused(&TokenVerdict::Unknown)) };
    r.dir.set_password(uid, &hash).await.map_err(internal)?;
    Ok(Json(json!({"status": "password set", "domain": found.row.domain, "sessions": "ended"})).into_response())
}
