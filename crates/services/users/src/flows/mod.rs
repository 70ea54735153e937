//! The flows behind the routes, one module each ([`login`], [`recovery`], [`invite`],
//! [`register`]), and what they share: the strict reading of a request body (every
//! problem reported, each with its field; bounded lengths; no unknown keys), the domain
//! check, and the abuse limits (429 with `Retry-After`, counted, an alarm event when a
//! key trips repeatedly).

pub mod invite;
pub mod login;
pub mod recovery;
pub mod register;

use crate::handle::Running;
use crate::limits::{Kind, Refused};
use crate::metrics::Metrics;
use crate::section::DomainUsers;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mware_host::{ApiError, EventKind, Problem};
use serde_json::{Map, Value};
use std::time::Duration;

/// Longest login, e-mail or domain accepted, characters.
pub const MAX_FIELD: usize = 254;

/// A request body read strictly.
pub struct Form {
    m: Map<String, Value>,
    problems: Vec<Problem>,
}

/// An answer that is not a success, boxed (a `Response` is large).
pub type Refusal = Box<Response>;

/// A 400 naming `field`.
pub fn bad(field: &str, msg: impl Into<String>) -> Refusal {
    Box::new(ApiError::bad_request(msg).field(field).into_response())
}

fn shown(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    if short.len() < s.len() {
        format!("{short:?}… ({} characters)", s.chars().count())
    } else {
        format!("{short:?}")
    }
}

impl Form {
    /// The body as one JSON object with only `allowed` keys.
    pub fn parse(body: &[u8], allowed: &[&str]) -> Result<Form, Refusal> {
        let m = match mware_config::strict_json::parse_slice(body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(bad("body", "body: expected a JSON object, found another JSON value")),
            Err(_) => return Err(bad("body", "body: expected a JSON object, found malformed JSON or repeated keys")),
        };
        let problems = m
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| Problem {
                field: k.chars().filter(|c| !c.is_control()).take(64).collect(),
                message: format!("expected one of {}, found an unknown key", allowed.join(", ")),
            })
            .collect();
        Ok(Form { m, problems })
    }

    /// The string `key` of at most `max` characters (`None` and a problem when it is
    /// required and missing, or not a string, or too long).
    pub fn text(&mut self, key: &str, max: usize, required: bool) -> Option<String> {
        let problem = match self.m.get(key) {
            None if !required => return None,
            None => "expected a string, found nothing".to_string(),
            Some(Value::String(s)) if s.chars().count() > max => format!("expected at most {max} characters, found {}", s.chars().count()),
            Some(Value::String(s)) if s.is_empty() && required => "expected a non-empty string, found an empty one".to_string(),
            Some(Value::String(s)) => return Some(s.clone()),
            Some(v) => format!("expected a string, found {}", mware_config::kind(v)),
        };
        self.problems.push(Problem { field: key.to_string(), message: problem });
        None
    }

    /// Adds a problem.
    pub fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(Problem { field: field.to_string(), message: message.into() });
    }

    /// `Ok` when nothing was wrong, else 400 with every problem.
    pub fn finish(self) -> Result<(), Refusal> {
        if self.problems.is_empty() {
            return Ok(());
        }
        let first = &self.problems[0];
        let msg = format!("{}: {}", first.field, first.message);
        let field = first.field.clone();
        Err(Box::new(ApiError::bad_request(msg).field(field).problems(self.problems).into_response()))
    }
}

/// The settings of `raw` when this group's section serves it (canonical name), else 404.
pub fn domain<'a>(r: &'a Running, raw: &str) -> Result<&'a DomainUsers, Refusal> {
    let name = mware_config::canonical(raw).unwrap_or_default();
    r.cfg.domain(&name).ok_or_else(|| {
        Box::new(
            ApiError::new(StatusCode::NOT_FOUND, format!("domain: expected a domain these user services serve, found {}", shown(raw)))
                .field("domain")
                .into_response(),
        )
    })
}

/// Counts a request of `key` against the `kind` limit: 429 with `Retry-After` when over.
pub fn limit(r: &Running, m: &Metrics, kind: Kind, key: &str) -> Result<(), Refusal> {
    r.limits.check(kind, key).map_err(|refused| Box::new(too_many(r, m, refused)))
}

/// The answer to a request refused by a limit (counted; the trip queued; the alarm
/// raised when due), with a static body: a refusal allocates nothing for its answer.
pub fn too_many(r: &Running, m: &Metrics, x: Refused) -> Response {
    m.refused(x.kind);
    if let Some(t) = x.trip {
        if r.trips.try_send(t).is_err() {
            // Logged at the 1st, 2nd, 4th, 8th… drop: a flood from many addresses must not
            // flood the log too.
            static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "users: the queue of tripped limits is full; these are kept on this instance only");
            }
        }
    }
    if x.alarm {
        m.limit_alarms.inc();
        r.events.publish(EventKind::Item {
            source: "users".into(),
            item: format!("limit-{}", x.kind.label()),
            state: "warning".into(),
            reason: format!(
                "one {} was refused {} times within a minute by the users services' abuse limit",
                match x.kind {
                    Kind::Ip => "client address",
                    Kind::Login => "login",
                    Kind::Address => "e-mail address",
                },
                r.cfg.limits.alarm_after
            ),
        });
    }
    let mut resp = Response::new(axum::body::Body::from(too_many_body(x.kind)));
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::RETRY_AFTER, HeaderValue::from(x.retry_after_s));
    resp
}

/// The body of a 429: what [`ApiError`] would write for it, written once.
fn too_many_body(kind: Kind) -> &'static str {
    match kind {
        Kind::Ip => r#"{"error":"too many requests for this ip: try again later","retryable":true}"#,
        Kind::Login => r#"{"error":"too many requests for this login: try again later","retryable":true}"#,
        Kind::Address => r#"{"error":"too many requests for this address: try again later","retryable":true}"#,
    }
}

/// 500 for a failure of the store, with the reason in the log only.
pub fn internal(e: crate::UsersError) -> Refusal {
    tracing::warn!(error = %e, "users: request failed");
    Box::new(
        ApiError::unavailable("the user directory cannot be reached now; try again later")
            .retry_after(Duration::from_secs(5))
            .into_response(),
    )
}

/// The link of a mailed `page` with `token`.
pub fn link(r: &Running, domain: &str, page: &str, token: &str) -> String {
    format!("{}/users/{domain}/{page}?token={token}", r.cfg.public_url)
}

/// The client's address for the per-IP limit: the one the binary settled
/// ([`mware_host::ClientAddr`]: the TCP peer's, or the real client's of a call forwarded
/// by a member of the site), else the TCP peer's (a plain router, in this crate's tests),
/// else `unknown`.
pub struct ClientIp(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let settled = parts.extensions.get::<mware_host::ClientAddr>().map(|a| a.0);
        let peer = || parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        Ok(ClientIp(settled.or_else(peer).map(|a| a.to_string()).unwrap_or_else(|| "unknown".into())))
    }
}

/// Who asked: the client's address (the per-IP limit) and its language.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The client's IP address ([`ClientIp`]).
    pub ip: String,
    /// From `Accept-Language`.
    pub lang: crate::templates::Lang,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The static 429 bodies are what `ApiError` writes for them.
    #[tokio::test]
    async fn the_static_429_body_is_the_api_error_of_each_limit() {
        for kind in [Kind::Ip, Kind::Login, Kind::Address] {
            let e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, format!("too many requests for this {}: try again later", kind.label()))
                .retry_after(Duration::from_secs(1))
                .into_response();
            let want = axum::body::to_bytes(e.into_body(), 1 << 10).await.unwrap();
            assert_eq!(too_many_body(kind).as_bytes(), &want[..], "{kind:?}");
        }
    }
}
