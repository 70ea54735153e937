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
    /// No TCP/SSH session could be opened.
    #[error("ssh to {target}: expected an ssh server, found: {reason}")]
    SshConnect {
        /// `user@host:port`.
        target: String,
        /// What happened.
        reason: String,
    },
    /// The server refused the login.
    #[error("ssh login to {target} with the configured {method} was refused")]
    SshAuth {
        /// `user@host:port`.
        target: String,
        /// `password` or `key`.
        method: &'static str,
    },
    /// The session broke while a command ran.
    #[error("ssh to {target}: {reason}")]
    Ssh {
        /// `user@host:port`.
        target: String,
        /// What happened.
        reason: String,
    },
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
