//! The role's `pg_controller` section: a list of groups of two PostgreSQL servers in
//! streaming replication. Kept raw in the site and checked leniently ([`parse_groups`]):
//! the validator only warns, and an invalid group is left out at run time with the same
//! reason (the seed's run-time filter), so one bad group never stops the others.

mod groups;

pub use groups::{parse_groups, PgGroup, PgServer, Rejoin};
use mware_config::{Check, SectionConfig, SiteInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The raw `pg_controller` list of a group. `Debug` and `Serialize` show it with every
/// secret, and every key pg_controller does not know, as `***`.
#[derive(Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct PgController(pub Vec<Value>);

impl PgController {
    fn redacted(&self) -> Value {
        let mut v = self.0.clone();
        for g in &mut v {
            mware_config::redact_allowed(g, groups::GROUP_KEYS, "servers", groups::SERVER_KEYS);
        }
        Value::Array(v)
    }
}

impl std::fmt::Debug for PgController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.redacted())
    }
}

impl Serialize for PgController {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.redacted().serialize(s)
    }
}

impl SectionConfig for PgController {
    const KEY: &'static str = "pg_controller";
    /// Problems of a group are warnings: the controller leaves that group out at run time.
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        let Some(list) = cx.list(v, at) else { return };
        let (_, problems) = parse_groups(list, at);
        for p in problems {
            cx.warn(&p.path, p.message);
        }
    }
}
