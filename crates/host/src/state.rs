//! [`ServiceState`] and [`ServiceStatus`]: what a service's state is, as status shows
//! it and as the event channel announces it (the events and the service modules both
//! use it).

use serde::Serialize;

/// A service's state as shown in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Not running (instance passive or service not wanted).
    Stopped,
    /// Starting (restoring state, connecting).
    Starting,
    /// Doing its work.
    Running,
    /// Running, but with nothing to do (e.g. no valid pg group); the reason says why.
    Idle,
    /// Failed; the host restarts it after a pause. The reason says why.
    Failed,
}

impl ServiceState {
    /// Whether the service's routes are served (running, or idle with an answer to give).
    pub fn serves(self) -> bool {
        matches!(self, ServiceState::Running | ServiceState::Idle)
    }
}

/// State plus the last reason in words.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// State.
    pub state: ServiceState,
    /// Last reason, in words.
    pub reason: String,
    /// When the state was entered, ms since the Unix epoch.
    pub since_ms: u64,
}
