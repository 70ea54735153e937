//! The crate's one error type.

/// What can go wrong in the callmanager: bad input, limits, the SIP stack, the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// A request field is wrong: the field's name and what was expected and found.
    #[error("{field}: {msg}")]
    Invalid {
        /// The field (JSON path in the request).
        field: String,
        /// What was expected and what was found.
        msg: String,
    },
    /// Several fields are wrong (every one is reported).
    #[error("{}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    InvalidMany(Vec<(String, String)>),
    /// Nothing with this id (in words: `no call 1-ab`).
    #[error("{0}")]
    NotFound(String),
    /// A limit was reached; retry after the given seconds.
    #[error("{msg}")]
    Limited {
        /// Which limit, in words.
        msg: String,
        /// Seconds until a retry may succeed.
        retry_after_s: u32,
    },
    /// The call is in a state that does not allow this.
    #[error("{0}")]
    Conflict(String),
    /// The service does not run here (passive, starting, stopping).
    #[error("{0}")]
    NotRunning(String),
    /// The SIP stack failed (transport, transaction).
    #[error("SIP: {0}")]
    Sip(String),
    /// The coordinator refused or failed a write.
    #[error("coordinator: {0}")]
    Coord(String),
}

impl CallError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            CallError::Invalid { .. } | CallError::InvalidMany(_) => 400,
            CallError::NotFound(_) => 404,
            CallError::Limited { .. } => 429,
            CallError::Conflict(_) => 409,
            CallError::NotRunning(_) | CallError::Coord(_) => 503,
            CallError::Sip(_) => 502,
        }
    }

    /// The first field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            CallError::Invalid { field, .. } => Some(field),
            CallError::InvalidMany(v) => v.first().map(|(f, _)| f.as_str()),
            _ => None,
        }
    }

    pub(crate) fn sip(e: impl std::fmt::Display) -> Self {
        CallError::Sip(e.to_string())
    }
}
