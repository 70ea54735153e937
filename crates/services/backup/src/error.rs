//! The one error type of mware-backup. Messages are lowercase, name the target and the
//! server (`user@host:port`), say what was expected and what was found, and never carry
//! a password: secrets go to remote commands on stdin or in a child's environment only.

/// Errors of a backup run, a listing or a restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// SSH to a storage or database server failed (connect, host key, login, session).
    #[error("{what}: {source}")]
    Ssh {
        /// What was being done (`storage of db1`, `database server 127.0.0.1`).
        what: String,
        /// The SSH error (carries no secret).
        source: mware_ssh::SshError,
    },
    /// A remote command ended badly.
    #[error("{what}: expected exit code 0, found {found}")]
    Remote {
        /// The command's purpose and server.
        what: String,
        /// Its exit status and the last lines of its stderr.
        found: String,
    },
    /// No database server could serve the backup.
    #[error("target {target}: expected a PostgreSQL server answering as {user}, found none: {reasons}")]
    NoSource {
        /// Target key.
        target: String,
        /// Replica user.
        user: String,
        /// Each server's reason.
        reasons: String,
    },
    /// The checksum on the storage server differs from the one computed while sending.
    #[error("{file} on {server}: expected sha256 {expected} (computed while sending), found {found} on the storage server; the upload is discarded")]
    Checksum {
        /// The uploaded temporary file.
        file: String,
        /// `user@host:port`.
        server: String,
        /// Ours.
        expected: String,
        /// The storage server's.
        found: String,
    },
    /// Streaming, archiving or unpacking failed.
    #[error("{what}: {reason}")]
    Io {
        /// What was being done.
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// The configuration cannot be used.
    #[error("{0}")]
    Config(String),
    /// The coordinator refused or failed (a `fenced` error: this instance is no longer active).
    #[error("coordinator: {0}")]
    Coord(#[from] mware_coord::CoordError),
    /// The run was cancelled (activity lost or daemon stopping).
    #[error("the run was cancelled: {0}")]
    Cancelled(String),
}

impl BackupError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        BackupError::Io { what: what.into(), reason: e.to_string() }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, BackupError>;
