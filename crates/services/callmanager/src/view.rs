//! A call and its legs as the API shows them (and as they are written to the
//! coordinator with the call's dialogs).

use crate::decide::{CallState, LegState, Side};
use serde::{Deserialize, Serialize};

/// One leg as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LegView {
    /// `a` (from, rung first) or `b` (to).
    pub side: Side,
    /// The SIP URI dialled.
    pub party: String,
    /// Its state.
    pub state: LegState,
    /// The last SIP status code it answered (180, 200, 486 ...).
    pub code: Option<u16>,
    /// The reason phrase or what failed.
    pub reason: Option<String>,
    /// When the state was entered, ms since the Unix epoch.
    pub since_ms: u64,
    /// The SIP Call-ID of its dialog.
    pub call_id: Option<String>,
}

/// A call as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallView {
    /// The call's id.
    pub id: String,
    /// Its domain.
    pub domain: String,
    /// Its state.
    pub state: CallState,
    /// The first leg, then the second.
    pub legs: Vec<LegView>,
    /// The caller id shown to the phones, if one was asked.
    pub caller_id: Option<String>,
    /// Whether the second leg is on hold.
    pub held: bool,
    /// The client's variables, as given.
    #[schema(value_type = Object)]
    pub variables: serde_json::Value,
    /// Created, ms since the Unix epoch.
    pub created_ms: u64,
    /// Connected (both legs up and durable), ms since the Unix epoch.
    pub connected_ms: Option<u64>,
    /// Ended, ms since the Unix epoch.
    pub ended_ms: Option<u64>,
    /// Why it ended: a leg's final code, a hang-up and by whom, a timeout.
    pub ended: Option<String>,
    /// The instance that controls it.
    pub instance: String,
}
