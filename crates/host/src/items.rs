//! The items of the site's state as persisted in each group's epoch-guarded KV, under
//! `monitoring/items/<kind>/<name>`, by the monitoring service of that group's active
//! instance:
//! - `probe/<name>`: a probe of the group;
//! - `service/<name>`: a service of the group (from the host's service events);
//! - `group/<n>`: group `n` as this group's monitoring saw it (whether it had an active
//!   instance, since when); only used to tell since when a group has none;
//! - `<source>/<item>`: an item another service announced (`pgctl/<pg group key>`:
//!   whether that pg group has a master).
//!
//! A record is written (fenced) when the item's state changes, before the change is
//! announced, so the next active instance starts from it: a failover keeps each item's
//! state and since when it holds.

use mware_coord::{CoordError, Coordinator};
use serde::{Deserialize, Serialize};

/// The health of an item of the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Fine.
    Ok,
    /// Not known yet (a probe before its first result, an item as last recorded by a
    /// group with no active instance).
    Unknown,
    /// Degraded, not failed.
    Warning,
    /// Failed.
    Failing,
}

impl Health {
    /// `ok`, `unknown`, `warning` or `failing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Unknown => "unknown",
            Health::Warning => "warning",
            Health::Failing => "failing",
        }
    }

    /// Parses [`Health::as_str`]'s words (anything else: `None`).
    pub fn parse(s: &str) -> Option<Health> {
        Some(match s {
            "ok" => Health::Ok,
            "unknown" => Health::Unknown,
            "warning" => Health::Warning,
            "failing" => Health::Failing,
            _ => return None,
        })
    }
}

/// KV prefix of every item.
pub const PREFIX: &str = "monitoring/items/";

/// One item as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// `probe`, `service`, `group`, or the announcing service (`pgctl`, `backup`...).
    pub kind: String,
    /// The item's name within its kind.
    pub name: String,
    /// Its state.
    pub state: Health,
    /// Since when it is in that state, ms since the Unix epoch.
    pub since_ms: u64,
    /// Why, in words.
    pub reason: String,
    /// The instance that recorded it.
    pub instance: String,
}

impl Item {
    /// Its KV key.
    pub fn key(&self) -> String {
        key(&self.kind, &self.name)
    }
}

/// The KV key of an item (a `/` in the name is written `%2F`, a `%` as `%25`).
pub fn key(kind: &str, name: &str) -> String {
    format!("{PREFIX}{kind}/{}", name.replace('%', "%25").replace('/', "%2F"))
}

/// Every item recorded in `group`'s KV (unreadable records are left out).
pub async fn load(c: &dyn Coordinator, group: u32) -> Result<Vec<Item>, CoordError> {
    Ok(c.kv_list(group, PREFIX).await?.into_iter().filter_map(|(_, v)| serde_json::from_slice(&v.value).ok()).collect())
}
