//! The crate's one error enum, and how each error maps to an HTTP status.

use crate::views::HolderView;

/// Everything the critical sections service can refuse or fail with.
///
/// Messages are lowercase and say what was expected and what was found; none carries a
/// secret (requests hold none).
#[derive(Debug, thiserror::Error)]
pub enum MutexError {
    /// A request field is missing, malformed or out of range.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The field (`domain`, `name`, `owner`, `ttl_ms`, `wait_ms`, `limit`, `token`, `body`).
        field: &'static str,
        /// What was expected and what was found.
        message: String,
    },
    /// The mutex exists with another limit, fixed by its first acquirer.
    #[error("invalid limit: mutex {name} exists with limit {existing}, the request asked for {requested}")]
    LimitMismatch {
        /// Mutex name.
        name: String,
        /// Limit it has.
        existing: u32,
        /// Limit asked for.
        requested: u32,
    },
    /// The queue of one mutex is full.
    #[error("too many waiters: mutex {name} already has {max} waiters queued (max_waiters_per_mutex)")]
    TooManyWaiters {
        /// Mutex name.
        name: String,
        /// The configured limit.
        max: usize,
    },
    /// The group already has `max` domains with mutexes held or waited on.
    #[error("too many domains: {max} domains already have mutexes held or waited on (max_domains)")]
    TooManyDomains {
        /// The limit.
        max: usize,
    },
    /// The domain already has as many mutexes as allowed.
    #[error("too many mutexes: domain {domain} already has {max} mutexes held or waited on (max_mutexes_per_domain)")]
    TooManyMutexes {
        /// Domain.
        domain: String,
        /// The configured limit.
        max: usize,
    },
    /// The wait ran out (or `wait_ms` was 0) while others hold the mutex.
    #[error("mutex {name} is held by {} holder(s) (limit {limit}); not granted within wait_ms", holders.len())]
    Busy {
        /// Mutex name.
        name: String,
        /// Its limit.
        limit: u32,
        /// Current holders.
        holders: Vec<HolderView>,
    },
    /// No holder of this mutex has this token (released, expired, or never granted).
    #[error("invalid token: token {token} does not hold mutex {name} (released, expired or never granted)")]
    NotHeld {
        /// Mutex name.
        name: String,
        /// The token presented.
        token: u64,
    },
    /// The token holds the mutex, but for another owner.
    #[error("invalid owner: token {token} of mutex {name} belongs to owner {expected:?}, the request named {found:?}")]
    WrongOwner {
        /// Mutex name.
        name: String,
        /// Token presented.
        token: u64,
        /// Owner of that token.
        expected: String,
        /// Owner named by the request.
        found: String,
    },
    /// No such mutex (nobody holds or waits on it).
    #[error("mutex {name} of domain {domain} is not held and has no waiters")]
    NotFound {
        /// Domain.
        domain: String,
        /// Mutex name.
        name: String,
    },
    /// The service is not running here (instance passive, starting, stopping or fenced).
    #[error("critical sections service is not running: {0}")]
    NotRunning(String),
    /// The coordinator refused or failed the durable write; nothing was granted.
    #[error("state could not be made durable: {0}")]
    Coord(String),
}

impl MutexError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            MutexError::Invalid { .. } => 400,
            MutexError::LimitMismatch { .. } => 409,
            MutexError::TooManyWaiters { .. } | MutexError::TooManyMutexes { .. } | MutexError::TooManyDomains { .. } => 429,
            MutexError::Busy { .. } => 409,
            MutexError::NotHeld { .. } => 409,
            MutexError::WrongOwner { .. } => 403,
            MutexError::NotFound { .. } => 404,
            MutexError::NotRunning(_) | MutexError::Coord(_) => 503,
        }
    }

    /// Whether the same request may succeed if simply retried (elsewhere or later).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            MutexError::NotRunning(_)
                | MutexError::Coord(_)
                | MutexError::Busy { .. }
                | MutexError::TooManyWaiters { .. }
                | MutexError::TooManyMutexes { .. }
                | MutexError::TooManyDomains { .. }
        )
    }

    /// The request field the error is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            MutexError::Invalid { field, .. } => Some(field),
            MutexError::LimitMismatch { .. } => Some("limit"),
            MutexError::NotHeld { .. } => Some("token"),
            MutexError::WrongOwner { .. } => Some("owner"),
            _ => None,
        }
    }

    /// A field error.
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        MutexError::Invalid { field, message: message.into() }
    }
}
