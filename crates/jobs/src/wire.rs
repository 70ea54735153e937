//! The messages between mware and the pollers (JSON bodies of AMQP messages).
//!
//! To a poller: a [`JobMessage`] on the satellite's queue (or the pool's). Back, on the
//! results queue: [`Report`]s: `started` when a poller begins a job, `result` when it
//! ends (published with a confirm before the job's message is acked), `heartbeat` every
//! few seconds so an idle poller is seen.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Milliseconds since the Unix epoch (defined once, in `mware-config`).
pub use mware_config::now_ms;

/// A job as a poller gets it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobMessage {
    /// The job's id.
    pub id: String,
    /// Kind (`tcp.check`, ...).
    pub kind: String,
    /// `host:port`.
    pub target: String,
    /// The kind's parameters (secrets included: the broker link must be trusted or tunnelled).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// When the job must have ended, ms since the Unix epoch.
    pub deadline_ms: u64,
    /// What its target may be, checked again after DNS resolution (absent from an older
    /// mware: the built-in refusals only).
    #[serde(default)]
    pub rules: crate::TargetRules,
}

/// The end states of a job, and the two before.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Stored, waiting for a poller.
    Queued,
    /// A poller has started it.
    Running,
    /// Ended with a result.
    Done,
    /// Ended with an error (the device answered badly, or the job kept failing its pollers).
    Failed,
    /// Its deadline passed before it ended.
    Expired,
}

impl JobState {
    /// Its name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Expired => "expired",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "expired" => JobState::Expired,
            _ => return None,
        })
    }

    /// True for done, failed and expired.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Expired)
    }

    /// Every state.
    pub const ALL: [JobState; 5] = [JobState::Queued, JobState::Running, JobState::Done, JobState::Failed, JobState::Expired];
}

/// What a poller sends back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Report {
    /// A poller began the job (attempt counts deliveries, 1 for the first).
    Started {
        /// Job id.
        id: String,
        /// Which poller.
        poller: String,
        /// Attempt number.
        attempt: u32,
        /// When, ms since the Unix epoch.
        at_ms: u64,
    },
    /// The job ended.
    Result {
        /// Job id.
        id: String,
        /// Which poller.
        poller: String,
        /// Attempt number.
        attempt: u32,
        /// done, failed or expired.
        state: JobState,
        /// What the kind returned.
        #[serde(default)]
        result: Value,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// When it ended, ms since the Unix epoch.
        at_ms: u64,
    },
    /// A poller is alive (sent every few seconds).
    Heartbeat {
        /// Which poller.
        poller: String,
        /// Its satellite (`None`: the pool).
        #[serde(default)]
        satellite: Option<String>,
        /// When, ms since the Unix epoch.
        at_ms: u64,
    },
}
