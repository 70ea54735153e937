//! The one error type of mware-ssh. Messages are lowercase, name the server as
//! `user@host:port`, say what was expected and what was found, and never contain a
//! password or key material (only public-key fingerprints).

/// Errors of an SSH connection or command.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// No TCP connection or SSH handshake with the server.
    #[error("ssh to {target}: expected an ssh server, found: {reason}")]
    Connect {
        /// `user@host:port`.
        target: String,
        /// What happened.
        reason: String,
    },
    /// The server presented another key than the one pinned for it. Nothing was sent.
    #[error(
        "ssh host key of {target} does not match the pinned key: expected {pinned} (pinned in {file}), \
         found {presented}; refused, nothing was sent (no password, no command). If the server's key \
         was changed on purpose, remove its old line from {file} and pin the new key with `mware ssh pin`"
    )]
    HostKeyMismatch {
        /// `user@host:port`.
        target: String,
        /// Fingerprints pinned for the host (`SHA256:...`, joined with " or ").
        pinned: String,
        /// Type and fingerprint of the key presented.
        presented: String,
        /// The known_hosts file (absolute).
        file: String,
    },
    /// The server's host has no pinned key and trust on first use is off. Nothing was sent.
    #[error(
        "ssh host key of {target} is not pinned: expected an entry for {entry} in {file}, found none \
         (the server presents {presented}); refused, nothing was sent. {how}"
    )]
    HostKeyUnknown {
        /// `user@host:port`.
        target: String,
        /// Host as known_hosts names it (`host`, or `[host]:port` for ports other than 22).
        entry: String,
        /// Type and fingerprint of the key presented.
        presented: String,
        /// The known_hosts file (absolute).
        file: String,
        /// How to pin it.
        how: String,
    },
    /// `mware ssh pin` found another key already pinned for the host.
    #[error(
        "{entry} already has another key pinned in {file}: expected {presented} (what the server presents), \
         found {pinned}; nothing was written. If the server's key was changed on purpose, remove the old \
         line first"
    )]
    PinConflict {
        /// Host as known_hosts names it.
        entry: String,
        /// Fingerprints pinned.
        pinned: String,
        /// Type and fingerprint presented.
        presented: String,
        /// The known_hosts file (absolute).
        file: String,
    },
    /// The known_hosts file could not be read or written.
    #[error("known_hosts file {file}: {reason}")]
    KnownHosts {
        /// The file (absolute).
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// The server refused the login.
    #[error("ssh login to {target} with the configured {method} was refused")]
    Auth {
        /// `user@host:port`.
        target: String,
        /// `password` or `key`.
        method: &'static str,
    },
    /// The private key file could not be loaded.
    #[error("ssh to {target}: cannot load ssh_key_file {path}: {reason}")]
    KeyFile {
        /// `user@host:port`.
        target: String,
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A limit in time was reached.
    #[error("ssh to {target}: expected {what} within {secs} s, it did not")]
    Timeout {
        /// `user@host:port`.
        target: String,
        /// What was waited for.
        what: String,
        /// The limit.
        secs: u64,
    },
    /// The session or a channel broke.
    #[error("ssh to {target}: {reason}")]
    Session {
        /// `user@host:port`.
        target: String,
        /// What happened.
        reason: String,
    },
    /// A protocol error before the target is known (converted into [`SshError::Connect`]
    /// or [`SshError::Session`] by this crate; never returned to callers).
    #[error("{0}")]
    Protocol(String),
}

impl From<russh::Error> for SshError {
    fn from(e: russh::Error) -> Self {
        SshError::Protocol(e.to_string())
    }
}

impl SshError {
    /// True for a refused host key (mismatch, unknown host, unreadable known_hosts):
    /// nothing was sent to the server, and retrying will not help until an operator acts.
    pub fn is_host_key_refusal(&self) -> bool {
        matches!(self, SshError::HostKeyMismatch { .. } | SshError::HostKeyUnknown { .. } | SshError::KnownHosts { .. })
    }

    /// Puts `target` on a [`SshError::Protocol`] error (as a connect or session error).
    pub(crate) fn at(self, target: &str, connecting: bool) -> SshError {
        match self {
            SshError::Protocol(reason) if connecting => SshError::Connect { target: target.into(), reason },
            SshError::Protocol(reason) => SshError::Session { target: target.into(), reason },
            other => other,
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, SshError>;
