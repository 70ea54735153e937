//! The errors of the monitoring service.

use mware_coord::CoordError;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The coordinator refused or failed a read or a write.
    #[error(transparent)]
    Coord(#[from] CoordError),
}
