//! The role's `critical_sections` section: the limits of the mutex service, with the
//! seed's defaults. The section's type and its check live here, in the service that
//! enforces them.

use mware_config::{join, Check, SectionConfig, SiteInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// (new) Critical sections service limits.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CriticalSections {
    /// Run the service on the active instance (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Longest mutex name in bytes (default 200).
    #[serde(default = "default_max_name_len")]
    pub max_name_len: usize,
    /// Most waiters queued on one mutex (default 1000); more get 429.
    #[serde(default = "default_max_waiters")]
    pub max_waiters_per_mutex: usize,
    /// Most mutexes held or waited on in one domain (default 10000); more get 429.
    #[serde(default = "default_max_mutexes")]
    pub max_mutexes_per_domain: usize,
    /// Longest `ttl_ms` a holder may ask for (default 3600000).
    #[serde(default = "default_max_ttl_ms")]
    pub max_ttl_ms: u64,
    /// (new) Longest `wait_ms` a caller may ask for (default 60000); must be below
    /// `api.request_timeout_ms`.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// (new) Most domains with a mutex held or waited on, over the group (default 10000);
    /// more get 429.
    #[serde(default = "default_max_domains")]
    pub max_domains: usize,
    /// (new) Largest semaphore `limit` a caller may ask for (default 1000): each holder is a
    /// coordinator write.
    #[serde(default = "default_max_limit")]
    pub max_limit: u32,
}

impl Default for CriticalSections {
    fn default() -> Self {
        serde_json::from_str("{}").expect("critical_sections defaults")
    }
}

impl SectionConfig for CriticalSections {
    const KEY: &'static str = "critical_sections";
    /// On by default, with the defaults above.
    fn absent() -> Option<Self> {
        Some(CriticalSections::default())
    }
    fn check(cx: &mut Check, v: &Value, at: &str, site: &SiteInfo) {
        check(cx, v, at, site.request_timeout_ms())
    }
}

const CS_KEYS: &[&str] = &[
    "enabled",
    "max_name_len",
    "max_waiters_per_mutex",
    "max_mutexes_per_domain",
    "max_ttl_ms",
    "max_wait_ms",
    "max_domains",
    "max_limit",
];

/// `critical_sections`: limits of the mutex service.
fn check(cx: &mut Check, v: &Value, p: &str, request_timeout_ms: u64) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, CS_KEYS, &[]);
    cx.int(m, p, "max_name_len", 1, 65_536);
    cx.int(m, p, "max_waiters_per_mutex", 1, i64::MAX);
    cx.int(m, p, "max_mutexes_per_domain", 1, i64::MAX);
    cx.int(m, p, "max_ttl_ms", 1, i64::MAX);
    let enabled = cx.bool(m, p, "enabled").unwrap_or(true);
    if let Some(w) = cx.int(m, p, "max_wait_ms", 0, 86_400_000) {
        // A wait must end before the API's request timeout cancels the call.
        if enabled && w as u64 >= request_timeout_ms {
            cx.report(
                &join(p, "max_wait_ms"),
                format!("expected less than api.request_timeout_ms ({request_timeout_ms} ms): a longer wait would be cut by the request timeout; found {w}"),
            );
        }
    }
    cx.int(m, p, "max_domains", 1, 100_000_000);
    cx.int(m, p, "max_limit", 1, 1_000_000);
}

fn default_true() -> bool {
    true
}
fn default_max_name_len() -> usize {
    200
}
fn default_max_waiters() -> usize {
    1000
}
fn default_max_mutexes() -> usize {
    10_000
}
fn default_max_ttl_ms() -> u64 {
    3_600_000
}
fn default_max_wait_ms() -> u64 {
    60_000
}
fn default_max_domains() -> usize {
    10_000
}
fn default_max_limit() -> u32 {
    1000
}
