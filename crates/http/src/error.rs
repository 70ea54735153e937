//! The one error answer of mware's HTTP API: a status, and a JSON body
//! `{"error": "...", "retryable": bool, "field"?: "...", "problems"?: [...], ...}` with,
//! where it helps the client, a `Retry-After` header. Every handler and layer of the
//! daemon, the services and the sidecars answers its errors with it, and the OpenAPI
//! document describes it once, as the schema `ApiError` that the routes refer to.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// An error answer: its status, its message, whether retrying may succeed, the request
/// field at fault or every problem with its field, and details a route adds (the holders
/// of a busy mutex, the group a request was forwarded to).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    #[serde(skip)]
    retry_after: Option<Duration>,
    /// What was expected and what was found (every problem, `; `-separated).
    error: String,
    /// Whether retrying (later, or through another instance) may succeed.
    retryable: bool,
    /// The request field at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// Each problem of the request with its field (`timeout_ms`, `jobs[3].kind`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<Problem>,
    /// What the route adds: `holders` of a busy mutex, the `group` a request was
    /// forwarded to, the `service` that does not run here.
    #[serde(flatten)]
    detail: Map<String, Value>,
}

/// One problem of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// The field at fault (a JSON path: `params.oid`, `jobs[1].target`).
    pub field: String,
    /// What was expected and what was found.
    pub message: String,
}

impl ApiError {
    /// An error with this status and message. It is retryable when the status says the
    /// server could not answer for now (502, 503, 504); [`ApiError::retryable`] says
    /// otherwise.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        let retryable = matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT);
        ApiError { status, retry_after: None, error: error.into(), retryable, field: None, problems: vec![], detail: Map::new() }
    }

    /// 400: the request is wrong; retrying it as it is cannot succeed.
    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    /// 503: the server cannot answer for now; retrying may succeed.
    pub fn unavailable(error: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, error)
    }

    /// Whether retrying may succeed, when the status alone does not say it.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// The request field at fault.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Every problem of the request, each with its field.
    pub fn problems(mut self, problems: impl IntoIterator<Item = Problem>) -> Self {
        self.problems = problems.into_iter().collect();
        self.detail.remove("problems");
        self
    }

    /// A detail of the route's own, as `key` of the body. `error`, `retryable` and
    /// `field` are this type's own and are not replaced; a `problems` detail (a route
    /// whose problems are plain texts) replaces the typed [`ApiError::problems`].
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if matches!(key, "error" | "retryable" | "field") {
            return self;
        }
        if key == "problems" {
            self.problems.clear();
        }
        self.detail.insert(key.to_string(), value.into());
        self
    }

    /// How long the client should wait before it tries again: sent as `Retry-After`
    /// (whole seconds, rounded up), and makes the error retryable.
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self.retryable = true;
        self
    }

    /// The status of the answer.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.error
    }

    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.error, self.status)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, wait) = (self.status, self.retry_after);
        let mut resp = (status, Json(self)).into_response();
        if let Some(wait) = wait {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(e: ApiError) -> (StatusCode, Option<String>, Value) {
        let r = e.into_response();
        let status = r.status();
        let retry = r.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, retry, serde_json::from_slice(&body).unwrap())
    }

    /// The body keeps the shape clients read: `error` and `retryable` always; `field`,
    /// `problems` and the route's details only when set.
    #[tokio::test]
    async fn body_shape() {
        let (status, retry, v) = answer(ApiError::bad_request("ttl_ms: expected 1..=3600000, found 0").field("ttl_ms")).await;
        assert_eq!((status, retry), (StatusCode::BAD_REQUEST, None));
        assert_eq!(v, serde_json::json!({"error": "ttl_ms: expected 1..=3600000, found 0", "retryable": false, "field": "ttl_ms"}));

        let p = Problem { field: "jobs[1].target".into(), message: "expected host:port, found \"x\"".into() };
        let (_, _, v) = answer(ApiError::bad_request("jobs[1].target: bad").problems([p])).await;
        assert_eq!(v["problems"][0]["field"], "jobs[1].target", "{v}");
        assert!(v.get("field").is_none(), "{v}");

        let (status, _, v) = answer(ApiError::unavailable("not running here").detail("group", 2).detail("retryable", false)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(v, serde_json::json!({"error": "not running here", "retryable": true, "group": 2}));

        // Problems as plain texts (the alarms' API): one `problems` key, never two.
        let (_, _, v) = answer(ApiError::bad_request("a; b").detail("problems", vec!["a", "b"])).await;
        assert_eq!(v, serde_json::json!({"error": "a; b", "retryable": false, "problems": ["a", "b"]}));
    }

    /// 502/503/504 are retryable by default, other statuses are not; both can be overridden.
    #[test]
    fn retryable_by_status() {
        assert!(ApiError::new(StatusCode::GATEWAY_TIMEOUT, "x").is_retryable());
        assert!(!ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "x").is_retryable());
        assert!(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "x").retryable(true).is_retryable());
        assert!(!ApiError::unavailable("x").retryable(false).is_retryable());
    }

    /// `Retry-After` is whole seconds, rounded up, and makes the error retryable.
    #[tokio::test]
    async fn retry_after_header() {
        let (status, retry, v) =
            answer(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "slow down").retry_after(Duration::from_millis(1500))).await;
        assert_eq!((status, retry.as_deref(), &v["retryable"]), (StatusCode::TOO_MANY_REQUESTS, Some("2"), &Value::Bool(true)));
    }

    /// The OpenAPI schema names the body's fields and leaves the status out.
    #[test]
    fn schema_describes_the_body() {
        use utoipa::PartialSchema;
        let s = serde_json::to_value(ApiError::schema()).unwrap();
        for key in ["error", "retryable", "field", "problems"] {
            assert!(s.to_string().contains(&format!("\"{key}\"")), "{key} missing: {s}");
        }
        assert!(!s.to_string().contains("\"status\""), "{s}");
    }
}
