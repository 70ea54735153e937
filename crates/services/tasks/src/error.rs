//! The errors of the tasks service.

use mware_coord::CoordError;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum TasksError {
    /// A schedule that does not parse (the validator should have refused it).
    #[error("service_tasks {0}: schedule: {1}")]
    Schedule(String, String),
    /// The coordinator refused or failed a read or a write.
    #[error(transparent)]
    Coord(#[from] CoordError),
}

impl TasksError {
    /// True when the coordinator refused a write because this instance is no longer
    /// active for its group.
    pub fn is_fenced(&self) -> bool {
        matches!(self, TasksError::Coord(CoordError::Fenced { .. }))
    }
}
