//! The crate's one error enum and its HTTP status.

use mware_jobs::Problem;

/// Everything devicemanager can refuse or fail with. Messages are lowercase, say what was
/// expected and what was found, and never carry a secret (a community, a password, a DSN).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DevicesError {
    /// The request is wrong: every problem, each with its field.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// The batch holds more jobs than `max_batch`.
    #[error("jobs: expected at most {max} jobs in one batch (devicemanager.max_batch), found {found}")]
    TooLarge {
        /// The limit.
        max: usize,
        /// How many were sent.
        found: usize,
    },
    /// No job with that id.
    #[error("no job with id {0:?}")]
    NotFound(String),
    /// Not serving here now (not active, starting, or the store is unreachable).
    #[error("{0}")]
    Unavailable(String),
    /// The store failed.
    #[error("{0}")]
    Store(String),
    /// A newer active instance has claimed the jobs: this one must stop writing.
    #[error("fenced: this instance holds epoch {mine} but the jobs are claimed by epoch {theirs} (a newer active instance)")]
    Fenced {
        /// Our epoch.
        mine: u64,
        /// The epoch in the store.
        theirs: u64,
    },
    /// The broker failed or refused.
    #[error("{0}")]
    Broker(String),
}

impl DevicesError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            DevicesError::Invalid(_) => 400,
            DevicesError::TooLarge { .. } => 413,
            DevicesError::NotFound(_) => 404,
            DevicesError::Unavailable(_) | DevicesError::Fenced { .. } | DevicesError::Store(_) | DevicesError::Broker(_) => 503,
        }
    }

    /// One invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> DevicesError {
        DevicesError::Invalid(vec![Problem { field: field.into(), message: message.into() }])
    }
}

impl From<mware_jobs::JobError> for DevicesError {
    fn from(e: mware_jobs::JobError) -> Self {
        DevicesError::Broker(e.to_string())
    }
}
