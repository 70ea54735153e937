//! The errors of the microservices service.

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum MicroError {
    /// The site log's folder or writer could not be set up.
    #[error("site log in {dir}: {source}")]
    Log {
        /// The folder.
        dir: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A UDP mirror port could not be bound.
    #[error("udp mirror: cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
