//! The command-line tools' calls to a running instance's API (`--api URL`): a GET of a
//! JSON document, and a POST or DELETE with the bearer token read from an environment
//! variable (named by the tool's `--token-env`; the token itself is never printed).
//! A refusal becomes an error carrying the status and the API's own error message.
//! Every call is bounded: [`CONNECT_TIMEOUT`] to connect, [`REQUEST_TIMEOUT`] in all, so a
//! hung or unreachable instance gives an error instead of a CLI that waits forever.

use anyhow::Context;
pub use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Longest wait for the connection to the instance.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for a whole answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The one HTTP client of the command-line tools, with the timeouts above.
fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).timeout(REQUEST_TIMEOUT).build().context("cannot set up the HTTP client")
}

/// GETs `path` of `api`: its status, JSON body and URL, whatever the status.
pub async fn fetch(api: &str, path: &str) -> anyhow::Result<(StatusCode, Value, String)> {
    let url = format!("{}{path}", api.trim_end_matches('/'));
    let resp = client()?.get(&url).send().await.with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.with_context(|| format!("{url}: expected JSON"))?;
    Ok((status, v, url))
}

/// GETs `path` of `api`; an error unless it answers 2xx.
pub async fn get(api: &str, path: &str) -> anyhow::Result<Value> {
    let (status, v, url) = fetch(api, path).await?;
    if !status.is_success() {
        anyhow::bail!("{url}: {status}: {}", error_of(&v));
    }
    Ok(v)
}

/// POSTs `body` to `path` of `api` with the token in `token_env`; an error saying
/// "`what` refused" unless it answers 2xx.
pub async fn post(api: &str, path: &str, token_env: &str, body: &Value, what: &str) -> anyhow::Result<Value> {
    send(reqwest::Method::POST, api, path, token_env, Some(body), what).await
}

/// DELETEs `path` of `api` with the token in `token_env`; an error saying "`what`
/// refused" unless it answers 2xx.
pub async fn delete(api: &str, path: &str, token_env: &str, what: &str) -> anyhow::Result<Value> {
    send(reqwest::Method::DELETE, api, path, token_env, None, what).await
}

/// Sends `method` to `path` of `api` with the token in `token_env` (and `body`, if any);
/// an error saying "`what` refused" unless it answers 2xx (a GET of a document that
/// needs the token, too).
pub async fn send(
    method: reqwest::Method,
    api: &str,
    path: &str,
    token_env: &str,
    body: Option<&Value>,
    what: &str,
) -> anyhow::Result<Value> {
    let token = std::env::var(token_env)
        .with_context(|| format!("expected the API token in the environment variable {token_env}, found it unset"))?;
    let url = format!("{}{path}", api.trim_end_matches('/'));
    let mut req = client()?.request(method, &url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        anyhow::bail!("{what} refused: {status}: {}", error_of(&v));
    }
    Ok(v)
}

/// The API's error message in an answer (`{"error": "..."}`).
pub fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}
