//! (new) The `callback` section of a group: the queues of operators that callback orders
//! ring, the critical section that says whether each operator is busy, and how often and
//! how far apart an order is tried (for the group, overridden per queue).
//!
//! The section's type and its check live here, in the service that runs it; what the
//! check passes parses.

use mware_config::{Check, SectionConfig, SiteInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod check;

/// (new) The `callback` section.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CallbackConfig {
    /// Run the service on the active instance (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Attempts per order (default 3); a queue may set its own.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Seconds between the end of an unanswered attempt and the next (default 60); a
    /// queue may set its own.
    #[serde(default = "default_retry")]
    pub retry_after_s: u64,
    /// Seconds each phone may ring (default 20, at most 30: the callmanager's limit); a
    /// queue may set its own.
    #[serde(default = "default_answer")]
    pub answer_timeout_s: u32,
    /// Seconds to wait before looking again when every operator of a queue is busy
    /// (default 5); no attempt is spent.
    #[serde(default = "default_busy")]
    pub busy_retry_s: u64,
    /// Open orders per domain (default 10000); more are refused with 429.
    #[serde(default = "default_max_open")]
    pub max_open_per_domain: usize,
    /// Finished orders (completed, failed, cancelled) are kept this many seconds, then
    /// removed (default 604800, a week).
    #[serde(default = "default_keep")]
    pub keep_finished_s: u64,
    /// The queues, by name.
    #[serde(default)]
    pub queues: Vec<Queue>,
}

/// A queue of operators.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// Its name (letters, digits, `-`, `_`, `.`), unique in the section.
    pub name: String,
    /// Its operators, tried in turn starting after the one rung last.
    pub operators: Vec<Operator>,
    /// Attempts per order of this queue (absent: the section's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Seconds between attempts (absent: the section's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// Seconds each phone may ring (absent: the section's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_timeout_s: Option<u32>,
}

/// An operator of a queue.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    /// The operator's phone: a `sip:` URI or a number of the order's domain.
    pub uri: String,
    /// The critical section (of the order's domain) that is held while the operator is
    /// busy: a call script holds it during the operator's calls, mware holds it for an
    /// attempt.
    pub section: String,
}

/// How one order is tried: the queue's values, else the section's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all.
    pub attempts: u32,
    /// Milliseconds between attempts.
    pub retry_after_ms: u64,
    /// Seconds each phone rings.
    pub answer_timeout_s: u32,
    /// Milliseconds before looking again when every operator is busy.
    pub busy_retry_ms: u64,
}

impl CallbackConfig {
    /// The queue named `name`.
    pub fn queue(&self, name: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.name == name)
    }

    /// The queue and operator entry whose `uri` is `uri` (first listed).
    pub fn operator(&self, uri: &str) -> Option<(&Queue, &Operator)> {
        self.queues.iter().find_map(|q| q.operators.iter().find(|o| o.uri == uri).map(|o| (q, o)))
    }

    /// How an order of `queue` (none: the section's values) is tried.
    pub fn policy(&self, queue: Option<&str>) -> Policy {
        let q = queue.and_then(|n| self.queue(n));
        Policy {
            attempts: q.and_then(|q| q.attempts).unwrap_or(self.attempts),
            retry_after_ms: q.and_then(|q| q.retry_after_s).unwrap_or(self.retry_after_s) * 1000,
            answer_timeout_s: q.and_then(|q| q.answer_timeout_s).unwrap_or(self.answer_timeout_s),
            busy_retry_ms: self.busy_retry_s * 1000,
        }
    }
}

impl SectionConfig for CallbackConfig {
    const KEY: &'static str = "callback";
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        check::callback(cx, v, at)
    }
}

fn default_true() -> bool {
    true
}
fn default_attempts() -> u32 {
    3
}
fn default_retry() -> u64 {
    60
}
fn default_answer() -> u32 {
    20
}
fn default_busy() -> u64 {
    5
}
fn default_max_open() -> usize {
    10_000
}
fn default_keep() -> u64 {
    604_800
}
