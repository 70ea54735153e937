//! The one error type of mware-pgctl. Messages are lowercase, say what was expected and
//! what was found, and never contain a password (secrets are `mware_config::Secret`).

use mware_coord::CoordError;

/// Errors of the pg controller.
#[derive(Debug, thiserror::Error)]
pub enum PgctlError {
    /// A group of the role's `pg_controller` list cannot be run.
    #[error("pg group {key}: {reason}")]
    Config {
        /// Group key (or its position).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// SSH refused (host key, login) or failed (connection, session, time limit).
    #[error(transparent)]
    Ssh(#[from] mware_ssh::SshError),
    /// A remote command exited with an error.
    #[error("{what} on {target} failed: expected exit code 0, found {code}: {detail}")]
    Remote {
        /// Which step.
        what: String,
        /// `user@host:port`.
        target: String,
        /// Exit code (-1: none reported).
        code: i64,
        /// Last lines of its stderr/stdout.
        detail: String,
    },
    /// A PostgreSQL connection or query failed.
    #[error("postgresql {target}: {reason}")]
    Pg {
        /// `host:port`.
        target: String,
        /// What happened.
        reason: String,
    },
    /// The coordinator refused or failed a write or read.
    #[error("coordinator: {0}")]
    Coord(#[from] CoordError),
    /// After acting, the expected state was not reached.
    #[error("verification after {what} failed: expected {expected}, found {found}")]
    Verify {
        /// The action.
        what: String,
        /// Expected state.
        expected: String,
        /// Observed state.
        found: String,
    },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, PgctlError>;
