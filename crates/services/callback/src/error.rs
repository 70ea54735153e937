//! The crate's one error type, and its HTTP answer (the host's [`ApiError`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mware_host::{ApiError, Problem};

/// What can go wrong: bad input, limits, state, the coordinator, the service not running.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// Fields are wrong: each field's name (JSON path) and what was expected and found.
    #[error("{}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, String)>),
    /// Nothing with this id.
    #[error("{0}")]
    NotFound(String),
    /// A limit was reached.
    #[error("{0}")]
    Limited(String),
    /// The order is in a state that does not allow this.
    #[error("{0}")]
    Conflict(String),
    /// The service does not run here (passive, starting or stopping).
    #[error("{0}")]
    NotRunning(String),
    /// The coordinator refused or failed a write.
    #[error("coordinator: {0}")]
    Coord(String),
}

impl CallbackError {
    /// One wrong field.
    pub fn invalid(field: &str, msg: impl Into<String>) -> Self {
        CallbackError::Invalid(vec![(field.into(), msg.into())])
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            CallbackError::Invalid(_) => StatusCode::BAD_REQUEST,
            CallbackError::NotFound(_) => StatusCode::NOT_FOUND,
            CallbackError::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            CallbackError::Conflict(_) => StatusCode::CONFLICT,
            CallbackError::NotRunning(_) | CallbackError::Coord(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for CallbackError {
    fn into_response(self) -> Response {
        let retryable = matches!(self, CallbackError::Limited(_) | CallbackError::NotRunning(_) | CallbackError::Coord(_));
        let mut e = ApiError::new(self.status(), self.to_string()).retryable(retryable);
        if let CallbackError::Invalid(v) = &self {
            if let Some((f, _)) = v.first() {
                e = e.field(f.clone());
            }
            e = e.problems(v.iter().map(|(field, message)| problem(field, message)));
        }
        if let CallbackError::Limited(_) = &self {
            e = e.retry_after(std::time::Duration::from_secs(5));
        }
        e.into_response()
    }
}

fn problem(field: &str, message: &str) -> Problem {
    Problem { field: field.to_string(), message: message.to_string() }
}
