//! Voice notifications: `POST /api/callmanager/v1/notifications` calls a list of numbers
//! and plays a message to each that answers (text spoken by `espeak-ng`, or a WAV file),
//! optionally waiting for a DTMF confirmation (RFC 4733 telephone-event); numbers that
//! do not answer are retried.
//!
//! Layout: this module holds the records (what is written to the coordinator and what
//! the API shows); [`decide`] the pure step (what a number does next, and when);
//! [`media`] turns the message into G.711 µ-law and builds the SDP; [`rtp`] sends the
//! paced RTP and hears the telephone-events; [`attempt`] is one call to one number;
//! [`runner`] the notifications of an activity (fenced writes, takeover, cancel);
//! `input` the checks of a new one.
//!
//! Durability: every attempt is written fenced *before* its INVITE, with its number and
//! index; the next active instance marks an attempt it finds unfinished `interrupted`
//! (it counts as an attempt: the retry is the next index), so no number is called twice
//! for one attempt and none is forgotten.

pub mod attempt;
pub mod decide;
pub(crate) mod input;
pub mod media;
pub mod rtp;
pub mod runner;

use serde::{Deserialize, Serialize};

/// What happened to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered, played, and the confirmation digit came.
    Confirmed,
    /// Answered and played to the end (without a confirmation, or none was asked for).
    Played,
    /// Rang until `answer_timeout_s` (cancelled), or 408/480/487.
    NoAnswer,
    /// 486 or 600.
    Busy,
    /// Any other failure: a SIP code, no usable answer, a hang-up before the end.
    Failed,
    /// The instance placing it stopped (a failover) before it ended.
    Interrupted,
    /// The notification was cancelled while this attempt ran.
    Cancelled,
}

impl Outcome {
    /// The label used in metrics and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::Played => "played",
            Outcome::NoAnswer => "no_answer",
            Outcome::Busy => "busy",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One call to one number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 1 for the first call of the number, 2 for its first retry, ...
    pub index: u32,
    /// The instance that placed it.
    pub instance: String,
    /// Written (fenced) before the INVITE, ms since the Unix epoch.
    pub start_ms: u64,
    /// When it ended; none while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<u64>,
    /// What happened; none while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The final SIP code of the INVITE, if one came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Why, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The Call-ID of its INVITE (chosen before the INVITE is written).
    pub call_id: String,
    /// When the phone answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_ms: Option<u64>,
    /// Milliseconds of the message sent as RTP.
    #[serde(default)]
    pub played_ms: u64,
    /// From the phone's 2xx to the first RTP packet of the message, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_to_audio_ms: Option<u64>,
    /// The dialog once answered (the next instance hangs up an interrupted one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub dialog: Option<crate::ua::record::DialogRecord>,
}

/// One number of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Number {
    /// The SIP URI called.
    pub to: String,
    /// `pending` (waiting for its next attempt), `calling`, or final: `confirmed`,
    /// `played`, `no_answer`, `busy`, `failed` (attempts used up), `expired` (the window
    /// closed), `cancelled`.
    pub state: String,
    /// Not before this time is it called again (ms since the Unix epoch).
    pub next_ms: u64,
    /// Its attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

/// When numbers may be called: an absolute span (either end optional).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Window {
    /// Not before, ms since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before_ms: Option<u64>,
    /// Not after (no attempt starts later), ms since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after_ms: Option<u64>,
}

/// The message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// Spoken by espeak-ng.
    Text(String),
    /// A WAV file on the instances' disk (an absolute path).
    Audio(String),
}

/// A notification, as stored in the coordinator and shown by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notice {
    /// Its id (`<group>-n<hex>`).
    pub id: String,
    /// The domain it belongs to.
    pub domain: String,
    /// The message.
    pub message: Message,
    /// Length of the message, ms.
    pub message_ms: u64,
    /// Display name of our From.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    /// Most attempts per number.
    pub attempts: u32,
    /// Pause between two attempts of a number, seconds.
    pub retry_after_s: u32,
    /// Longest ringing of one attempt, seconds.
    pub answer_timeout_s: u32,
    /// When numbers may be called.
    #[serde(default)]
    pub window: Window,
    /// The digit that confirms (RFC 4733 telephone-event), if one is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm_digit: Option<char>,
    /// When it was created, ms since the Unix epoch.
    pub created_ms: u64,
    /// `running`, `done` (every number final) or `cancelled`.
    pub state: String,
    /// The instance running it now.
    pub instance: String,
    /// The numbers, in the order given.
    pub numbers: Vec<Number>,
}

/// States of a number that are final.
pub const FINAL: [&str; 7] = ["confirmed", "played", "no_answer", "busy", "failed", "expired", "cancelled"];

impl Number {
    /// Whether nothing more happens to this number.
    pub fn is_final(&self) -> bool {
        FINAL.contains(&self.state.as_str())
    }
}
