//! The errors of the alarms service.

/// What can go wrong when the alarms service starts or runs.
#[derive(Debug, thiserror::Error)]
pub enum AlarmsError {
    /// A listening socket cannot be opened.
    #[error("cannot listen for syslog on {addr} ({transport}): {source}")]
    Listen {
        /// `udp` or `tcp`.
        transport: &'static str,
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The section cannot be used as it is (the validator should have refused it).
    #[error("alarms: {0}")]
    Config(String),
    /// The group's store refused or failed.
    #[error("alarms: the group's store: {0}")]
    Store(#[from] mware_coord::CoordError),
}
