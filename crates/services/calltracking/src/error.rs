//! The crate's one error type.

/// What can go wrong in call tracking: bad input, the registrar, the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// Request fields are wrong: each field and what was expected and found.
    #[error("{}", .0.iter().map(|(f, m)| if f.is_empty() { m.clone() } else { format!("{f}: {m}") }).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, String)>),
    /// No such static registration.
    #[error("no static registration {0}")]
    NotFound(String),
    /// The request conflicts with the site file (its entries change only there).
    #[error("{0}")]
    Conflict(String),
    /// The registrar failed.
    #[error(transparent)]
    Registrar(#[from] mware_sip::RegistrarError),
    /// The coordinator refused or failed a read or write.
    #[error("coordinator: {0}")]
    Coord(String),
}
