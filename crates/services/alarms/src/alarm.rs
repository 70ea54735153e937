//! An alarm as it is stored in the group's KV (`alarms/a/<key>`), sent to every channel
//! and shown by the API. Its id is `<epoch>-<n>`: the coordinator epoch of the activity
//! that raised it and a counter of that activity, so ids never repeat across failovers
//! and their keys sort in the order the alarms were raised.

use serde::{Deserialize, Serialize};

/// Alarms (outbox and history).
pub const ALARMS: &str = "alarms/a/";
/// Each channel's cursor: the key of the last alarm it sent.
pub const CURSORS: &str = "alarms/c/";
/// The last state seen of each monitoring item.
pub const ITEMS: &str = "alarms/s/";
/// The Telegram update offset.
pub const TG_OFFSET: &str = "alarms/t/offset";

/// Where an alarm came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A syslog message a rule matched.
    Syslog,
    /// The "N more" summary of a dedupe or rate window.
    Summary,
    /// A monitoring state change.
    Monitoring,
    /// Raised through the API.
    Api,
}

/// Who acknowledged an alarm, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// `api` or `telegram:<chat id>`.
    pub by: String,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
}

/// One alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// `<epoch>-<n>`; a resent alarm carries the same id.
    pub id: String,
    /// When it was raised, ms since the Unix epoch.
    pub at_ms: u64,
    /// Where it came from.
    pub source: Source,
    /// The rule's name (`monitoring` or `api` for those sources).
    pub rule: String,
    /// Syslog severity name (`emerg` … `debug`).
    pub severity: String,
    /// The host that sent the message (or the instance for monitoring).
    pub host: String,
    /// The app-name or tag.
    pub app: String,
    /// The text: the message, or the state change and its reason.
    pub message: String,
    /// Site name.
    pub site: String,
    /// Group.
    pub group: u32,
    /// The instance that raised it.
    pub instance: String,
    /// Monitoring item (`probe/dns-main`), for state changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Monitoring state (`ok`, `warning`, `failing`), for state changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// How many messages it stands for (a summary: the suppressed ones).
    pub count: u32,
    /// Still open: not acknowledged, and (for a state change) not recovered since.
    pub open: bool,
    /// The acknowledgement, once acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked: Option<Ack>,
}

/// The sortable key part of an id (`<epoch:012><n:012>`).
pub fn key_of(epoch: u64, n: u64) -> String {
    format!("{epoch:012}{n:012}")
}

/// The id for a key part.
pub fn id_of(key: &str) -> Option<String> {
    if key.len() != 24 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (e, n) = key.split_at(12);
    Some(format!("{}-{}", e.parse::<u64>().ok()?, n.parse::<u64>().ok()?))
}

/// The key part for an id (`None`: not an alarm id).
pub fn key_for_id(id: &str) -> Option<String> {
    let (e, n) = id.split_once('-')?;
    Some(key_of(e.parse().ok()?, n.parse().ok()?))
}

impl Alarm {
    /// The key part (sort order = raise order).
    pub fn key(&self) -> String {
        key_for_id(&self.id).unwrap_or_default()
    }
    /// Severity rank, 0 (`emerg`) to 7 (`debug`).
    pub fn rank(&self) -> u8 {
        rank(&self.severity).unwrap_or(7)
    }
    /// One line for people: `[crit] rule on host/app: message`.
    pub fn line(&self) -> String {
        let what = if self.count > 1 && self.source == Source::Summary { format!(" ({} more)", self.count) } else { String::new() };
        format!(
            "[{}] {} on {}{}: {}{what}",
            self.severity,
            self.rule,
            self.host,
            if self.app.is_empty() { String::new() } else { format!("/{}", self.app) },
            self.message
        )
    }
}

/// The rank of a severity name (`emerg` = 0 … `debug` = 7).
pub fn rank(name: &str) -> Option<u8> {
    crate::section::SEVERITIES.iter().position(|s| *s == name).map(|i| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_keys_round_trip_and_sort_in_raise_order() {
        let a = key_of(7, 99);
        let b = key_of(7, 100);
        let c = key_of(8, 1);
        assert!(a < b && b < c, "keys sort by epoch, then counter");
        assert_eq!(id_of(&b).as_deref(), Some("7-100"));
        assert_eq!(key_for_id("7-100").as_deref(), Some(b.as_str()));
        assert_eq!(key_for_id("seven"), None);
        assert_eq!(id_of("12"), None);
    }
}
