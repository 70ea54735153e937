//! (new) The group's `calltracking` section: the registrar it keeps right, the accounts
//! with a permanent contact (static registrations), how they are checked with OPTIONS,
//! the edge proxies (sg) whose loss cleans the registrar, and the bounds of the call
//! events kept (live calls, the journal of ended ones), and the external numbers whose
//! states are watched. The type (with its
//! defaults, which are also its JSON Schema) and its check (`check.rs`).

mod check;

use mware_config::{Check, SectionConfig, SiteInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The transport a static contact is reached over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP (the default; OPTIONS checks go over UDP).
    Udp,
    /// TCP (the registrar's proxy opens the connection; OPTIONS checks still go over UDP).
    Tcp,
}

/// An account that never registers: the registrar keeps `contact` for `user@domain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticRegistration {
    /// The account's domain (one of the group's), e.g. `tenant1.example.ru`.
    pub domain: String,
    /// The account's user part, e.g. `gw1` or `1001`.
    pub user: String,
    /// Its contact: a `sip:` URI with an IP address, e.g. `sip:gw1@10.0.0.9:5060`.
    pub contact: String,
    /// Transport to reach it (default `udp`): `tcp` adds `;transport=tcp` to the contact.
    #[serde(default)]
    pub transport: Option<Transport>,
}

/// SIP OPTIONS checks of the static contacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionsCheck {
    /// Between two checks of a contact, ms (default 10000).
    #[serde(default = "default_options_interval")]
    pub interval_ms: u32,
    /// Wait for an answer, ms (default 2000; at most `interval_ms`).
    #[serde(default = "default_options_timeout")]
    pub timeout_ms: u32,
}

impl Default for OptionsCheck {
    fn default() -> Self {
        OptionsCheck { interval_ms: default_options_interval(), timeout_ms: default_options_timeout() }
    }
}

/// An edge proxy ("sg": a Kamailio that terminates WebSocket and TLS for softphones and
/// adds a Path header, RFC 3327, to their REGISTERs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sg {
    /// Its name in logs, metrics and monitoring (letters, digits, `-_.`).
    pub name: String,
    /// Where it answers OPTIONS, e.g. `sip:10.0.0.7:5060`.
    pub address: String,
    /// The address its Path header names, when not `address` (e.g. its internal
    /// interface), e.g. `sip:192.168.0.7:5060`.
    #[serde(default)]
    pub path_address: Option<String>,
}

/// How the sg are watched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SgCheck {
    /// Between two checks, ms (default 1000).
    #[serde(default = "default_sg_interval")]
    pub interval_ms: u32,
    /// Wait for an answer, ms (default 500; at most `interval_ms`).
    #[serde(default = "default_sg_timeout")]
    pub timeout_ms: u32,
    /// Failed checks in a row after which an sg is lost and its contacts leave the
    /// registrar (default 3).
    #[serde(default = "default_fail_after")]
    pub fail_after: u32,
}

impl Default for SgCheck {
    fn default() -> Self {
        SgCheck { interval_ms: default_sg_interval(), timeout_ms: default_sg_timeout(), fail_after: default_fail_after() }
    }
}

/// A number outside the site whose state (idle, ringing, busy) the site's users see:
/// watched with SIP SUBSCRIBE to the dialog event package (RFC 4235) at `server`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalNumber {
    /// The domain of the group whose users see it, e.g. `tenant1.example.ru`.
    pub domain: String,
    /// The number as a SIP URI (the presentity), e.g. `sip:201@other.example.ru`.
    pub number: String,
    /// The server responsible for it, where SUBSCRIBE goes: `sip:<IP>[:port]`, e.g.
    /// `sip:10.0.1.5:5060` (UDP).
    pub server: String,
}

/// The external numbers watched, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct External {
    /// The UDP address NOTIFYs come back to (the Contact of each SUBSCRIBE), e.g.
    /// `10.0.0.9:5090`; port 0 takes a free one; an unspecified IP (`0.0.0.0`, the
    /// default) puts in the Contact the address this host reaches the server from.
    #[serde(default = "default_external_listen")]
    pub listen: String,
    /// The subscription lifetime asked for, s (default 600); each is refreshed when
    /// three quarters of the lifetime the server granted have passed.
    #[serde(default = "default_external_expires")]
    pub expires_s: u32,
    /// The numbers.
    #[serde(default)]
    pub numbers: Vec<ExternalNumber>,
}

impl Default for External {
    fn default() -> Self {
        External { listen: default_external_listen(), expires_s: default_external_expires(), numbers: vec![] }
    }
}

/// (new) The group's `calltracking` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallTracking {
    /// The registrar's JSON-RPC URL (Kamailio `jsonrpcs`), e.g. `http://10.0.0.5:5071/RPC`.
    pub registrar_rpc: String,
    /// How often the static contacts are compared with the registrar and put back, ms
    /// (default 1000): after a restart of the registrar they are back within this.
    #[serde(default = "default_resync")]
    pub resync_ms: u32,
    /// Accounts with a permanent contact, from the site file (more come through
    /// `PUT /api/registrations/v1/static/{domain}/{user}`).
    #[serde(default)]
    pub static_registrations: Vec<StaticRegistration>,
    /// OPTIONS checks of the static contacts.
    #[serde(default)]
    pub options: OptionsCheck,
    /// The edge proxies watched.
    #[serde(default)]
    pub sg: Vec<Sg>,
    /// How they are watched.
    #[serde(default)]
    pub sg_check: SgCheck,
    /// Ended calls kept in the coordinator's journal, newest first (default 1000).
    #[serde(default = "default_journal")]
    pub journal_size: u32,
    /// Live calls kept at most; events of further new calls are dropped and counted
    /// (default 10000).
    #[serde(default = "default_max_live")]
    pub max_live_calls: u32,
    /// Numbers outside the site whose states are tracked (RFC 4235).
    #[serde(default)]
    pub external: External,
}

impl CallTracking {
    /// A section with defaults and this registrar (tests, examples).
    pub fn with_registrar(url: impl Into<String>) -> Self {
        CallTracking {
            registrar_rpc: url.into(),
            resync_ms: default_resync(),
            static_registrations: vec![],
            options: OptionsCheck::default(),
            sg: vec![],
            sg_check: SgCheck::default(),
            journal_size: default_journal(),
            max_live_calls: default_max_live(),
            external: External::default(),
        }
    }
}

impl SectionConfig for CallTracking {
    const KEY: &'static str = "calltracking";
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        check::calltracking(cx, v, at)
    }
}

fn default_external_listen() -> String {
    "0.0.0.0:0".into()
}
fn default_external_expires() -> u32 {
    600
}
fn default_journal() -> u32 {
    1000
}
fn default_max_live() -> u32 {
    10_000
}
fn default_resync() -> u32 {
    1000
}
fn default_options_interval() -> u32 {
    10_000
}
fn default_options_timeout() -> u32 {
    2000
}
fn default_sg_interval() -> u32 {
    1000
}
fn default_sg_timeout() -> u32 {
    500
}
fn default_fail_after() -> u32 {
    3
}
