//! (new) The `service_tasks` section of a group: scheduled service scripts that run on
//! the group's active instance (seed: "Service Tasks (run scheduled service scripts)").
//!
//! A schedule is a cron expression with an optional seconds field, read by [`schedule`]
//! (the validator and the service use the same parser, so what validates runs).
//! The section's type and its check live here, in the service that runs it.

use mware_config::{Check, Secret, SectionConfig, SiteInfo};
use serde_json::Value;

mod check;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// (new) The `service_tasks` section: the group's scheduled tasks, in file order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(transparent)]
pub struct ServiceTasks(pub Vec<ServiceTask>);

impl SectionConfig for ServiceTasks {
    const KEY: &'static str = "service_tasks";
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        check::service_tasks(cx, v, at)
    }
}

/// (new) One scheduled service task.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceTask {
    /// Name, unique in the group: latin letters, digits, `_`, `-` and `.` (at most 64).
    pub name: String,
    /// When it runs: a cron expression in the server's local time, 5 fields
    /// (`minute hour day-of-month month day-of-week`) or 6 with seconds first
    /// (`*/10 * * * * *`: every 10 seconds).
    pub schedule: String,
    /// The program and its arguments (an argv, never a shell line): `["/usr/local/bin/cleanup", "--days", "7"]`.
    pub command: Vec<String>,
    /// Longest run in seconds (default 3600); then the whole process group is killed
    /// (SIGTERM, SIGKILL 5 s later).
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
    /// What a due slot does while the previous run still runs: `skip` (default: the slot
    /// is recorded as skipped), `kill` (the running one is killed, the new one starts) or
    /// `queue` (it starts when the running one ends; one slot waits at most).
    #[serde(default)]
    pub overlap: Overlap,
    /// Environment variables added to the daemon's own; values are secrets (never shown).
    #[serde(default)]
    pub env: BTreeMap<String, Secret>,
    /// Working directory of the run (default: the daemon's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// How many runs are kept in the history (default 20).
    #[serde(default = "default_history")]
    pub history: usize,
}

/// What a due slot does while the previous run of its task still runs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// The slot is recorded as skipped.
    #[default]
    Skip,
    /// The running one is killed (its process group), then the new one starts.
    Kill,
    /// The slot waits for the running one to end (one slot waits at most).
    Queue,
}

impl std::fmt::Display for Overlap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Overlap::Skip => "skip",
            Overlap::Kill => "kill",
            Overlap::Queue => "queue",
        })
    }
}

fn default_timeout_s() -> u64 {
    3600
}
fn default_history() -> usize {
    20
}

/// Parses a task's schedule: a cron expression with 5 fields, or 6 with seconds first;
/// `Err` says what is wrong, in words.
pub fn schedule(text: &str) -> Result<croner::Cron, String> {
    let fields = text.split_whitespace().count();
    if !(5..=6).contains(&fields) && !text.trim_start().starts_with('@') {
        return Err(format!("expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, found {fields}"));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(text)
        .map_err(|e| e.to_string().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_with_and_without_seconds() {
        assert!(schedule("*/5 * * * * *").is_ok());
        assert!(schedule("0 3 * * 1-5").is_ok());
        assert!(schedule("@hourly").is_ok());
        assert!(schedule("* * *").unwrap_err().contains("found 3"));
        assert!(schedule("61 * * * *").is_err());
        assert!(schedule("* * * * * * * *").is_err());
    }
}
