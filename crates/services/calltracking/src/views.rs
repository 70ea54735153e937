//! What status and the API show of a static contact's OPTIONS checks ([`Probe`]): plain
//! data, kept by the handle and written by the checks.

use serde::Serialize;

/// How an account's contact answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Probe {
    /// Whether it answered its last OPTIONS (`null` before the first check).
    pub reachable: Option<bool>,
    /// Since when `reachable` holds, ms since the Unix epoch.
    pub since_ms: u64,
    /// The last answer in words (`200 OK in 3 ms`, `no answer to OPTIONS within 2000 ms`).
    pub last_answer: Option<String>,
    /// When it was last checked, ms since the Unix epoch.
    pub checked_ms: Option<u64>,
}

impl Probe {
    /// Not checked yet.
    pub fn unknown(now_ms: u64) -> Probe {
        Probe { reachable: None, since_ms: now_ms, last_answer: None, checked_ms: None }
    }
}
