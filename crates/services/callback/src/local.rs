//! The two services a callback attempt uses, reached through the API of this instance
//! (the active one of the group): the callmanager's Calls API places and follows the
//! call, the critical sections service says whether an operator is busy and holds the
//! operator for the attempt. Services do not link each other's crates; going through the
//! API keeps every check, limit and fenced write of those services in force, and a
//! failover needs nothing more (the next instance's API is local to it in turn).
//!
//! The token is read once from the variable `api.token_env` names; it is sent, never
//! logged.

use mware_client::encode;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// Why a request gave no answer to act on.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Not answered (connection refused, timed out): whether it was done is not known.
    #[error("{0}")]
    NoAnswer(String),
    /// Answered 503, 429 or another 5xx (starting, passive, a limit): nothing was done;
    /// try again later.
    #[error("{0}")]
    Unavailable(String),
    /// Refused for good (a 4xx other than 404 and 429): the status and the API's message.
    #[error("{0} {1}")]
    Refused(u16, String),
}

/// A call placed, or what stopped it.
pub enum Placed {
    /// The callmanager's call id.
    Call(String),
    /// The callmanager refused it for good (its message).
    Refused(String),
}

/// The local API.
#[derive(Clone)]
pub struct Local {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Local {
    /// The API at `base` (`http://IP:PORT`) with bearer `token`.
    pub fn new(base: String, token: String) -> Self {
        let http =
            reqwest::Client::builder().connect_timeout(Duration::from_secs(3)).timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Local { base, token, http }
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(StatusCode, Value), LocalError> {
        let mut rb = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.map_err(|e| LocalError::NoAnswer(format!("{path}: {e}")))?;
        let status = r.status();
        let v = r.json::<Value>().await.unwrap_or(Value::Null);
        if matches!(status, StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS) || status.is_server_error() {
            return Err(LocalError::Unavailable(format!("{path}: {status}: {}", mware_client::api::error_of(&v))));
        }
        Ok((status, v))
    }

    fn refused(status: StatusCode, v: &Value) -> LocalError {
        LocalError::Refused(status.as_u16(), mware_client::api::error_of(v).to_string())
    }

    /// Places a call ringing `from` (the operator) first, then `to` (the customer);
    /// `variables` name the order and attempt, so the call can be found again.
    pub async fn place(&self, domain: &str, from: &str, to: &str, answer_timeout_s: u32, variables: Value) -> Result<Placed, LocalError> {
        let body = json!({"domain": domain, "from": from, "to": to, "answer_timeout_s": answer_timeout_s, "variables": variables});
        let (status, v) = self.send(Method::POST, "/api/callmanager/v1/calls", Some(&body)).await?;
        match (status, v["id"].as_str()) {
            (StatusCode::CREATED, Some(id)) => Ok(Placed::Call(id.to_string())),
            _ => Ok(Placed::Refused(format!("{status}: {}", mware_client::api::error_of(&v)))),
        }
    }

    /// The call `id` as the callmanager shows it; `None` when it does not know it.
    pub async fn call(&self, id: &str) -> Result<Option<Value>, LocalError> {
        let (status, v) = self.send(Method::GET, &format!("/api/callmanager/v1/calls/{}", encode(id)), None).await?;
        match status {
            StatusCode::OK => Ok(Some(v)),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(Self::refused(s, &v)),
        }
    }

    /// The call of `domain` whose variables name `order` and `attempt`, if any.
    pub async fn find_call(&self, domain: &str, order: &str, attempt: u32) -> Result<Option<Value>, LocalError> {
        let (status, v) = self.send(Method::GET, &format!("/api/callmanager/v1/calls?domain={}", encode(domain)), None).await?;
        if status != StatusCode::OK {
            return Err(Self::refused(status, &v));
        }
        let calls = v["calls"].as_array().cloned().unwrap_or_default();
        Ok(calls.into_iter().find(|c| c["variables"]["callback_order"] == order && c["variables"]["attempt"] == attempt))
    }

    /// Hangs up call `id` (whatever state it is in).
    pub async fn hang_up(&self, id: &str) -> Result<(), LocalError> {
        let (status, v) = self.send(Method::DELETE, &format!("/api/callmanager/v1/calls/{}", encode(id)), None).await?;
        match status {
            s if s.is_success() || s == StatusCode::NOT_FOUND || s == StatusCode::CONFLICT => Ok(()),
            s => Err(Self::refused(s, &v)),
        }
    }

    fn section_path(domain: &str, section: &str, verb: &str) -> String {
        format!("/api/v1/domains/{}/mutexes/{}/{verb}", encode(domain), encode(section))
    }

    /// Tries once to take `section` of `domain` for `owner`: its fencing token, or `None`
    /// when it is held (the operator is busy).
    pub async fn try_acquire(&self, domain: &str, section: &str, owner: &str, ttl_ms: u64) -> Result<Option<u64>, LocalError> {
        let body = json!({"owner": owner, "ttl_ms": ttl_ms, "wait_ms": 0});
        let (status, v) = self.send(Method::POST, &Self::section_path(domain, section, "acquire"), Some(&body)).await?;
        match (status, v["token"].as_u64()) {
            (StatusCode::OK, Some(t)) => Ok(Some(t)),
            (StatusCode::CONFLICT, _) => Ok(None),
            (s, _) => Err(Self::refused(s, &v)),
        }
    }

    /// Extends the hold of `section` to `ttl_ms` from now; `false` when it is no longer held.
    pub async fn renew(&self, domain: &str, section: &str, owner: &str, token: u64, ttl_ms: u64) -> Result<bool, LocalError> {
        let body = json!({"owner": owner, "token": token, "ttl_ms": ttl_ms});
        let (status, _) = self.send(Method::POST, &Self::section_path(domain, section, "renew"), Some(&body)).await?;
        Ok(status == StatusCode::OK)
    }

    /// Releases the hold of `section` (a hold already gone is fine).
    pub async fn release(&self, domain: &str, section: &str, owner: &str, token: u64) -> Result<(), LocalError> {
        let body = json!({"owner": owner, "token": token});
        self.send(Method::POST, &Self::section_path(domain, section, "release"), Some(&body)).await.map(|_| ())
    }
}
