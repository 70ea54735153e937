//! The group's `sip` section: where the user agent listens, how it reaches the proxy,
//! its credentials and the limits of the Calls API.
//!
//! The listening address is the role's `iface`; this section names only the port.

use mware_config::Secret;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A SIP transport the user agent listens on and sends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    /// UDP (RFC 3261 timers retransmit requests).
    Udp,
    /// TCP.
    Tcp,
}

/// The controller's digest credentials towards the proxy (used when it challenges).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SipCredentials {
    /// Digest user name; also the user part of the controller's From.
    pub user: String,
    /// Digest password (never printed).
    pub password: Secret,
    /// Realm to answer; absent: whichever realm the proxy names.
    #[serde(default)]
    pub realm: Option<String>,
}

/// Limits of the Calls API; past one, `POST …/calls` answers 429 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallLimits {
    /// Live calls of one domain at once (default 100).
    #[serde(default = "default_per_domain")]
    pub calls_per_domain: u32,
    /// Live calls of the group at once (default 1000).
    #[serde(default = "default_per_site")]
    pub calls_per_site: u32,
    /// New calls per second of the group (default 50).
    #[serde(default = "default_cps")]
    pub calls_per_second: u32,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits { calls_per_domain: default_per_domain(), calls_per_site: default_per_site(), calls_per_second: default_cps() }
    }
}

/// (new) The group's `sip` section: the callmanager's SIP user agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// UDP/TCP port of the user agent on the role's `iface` address (default 5060).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Transports to listen on (default `["udp"]`); requests leave on the first one.
    #[serde(default = "default_transports")]
    pub transports: Vec<SipTransport>,
    /// Outbound proxy every request is sent to, e.g. `sip:10.0.0.5:5060` (the registrar
    /// and proxy of the site).
    pub outbound_proxy: String,
    /// Digest credentials, answered when the proxy challenges.
    #[serde(default)]
    pub credentials: Option<SipCredentials>,
    /// The registrar's JSON-RPC URL (Kamailio `jsonrpcs`), e.g.
    /// `http://10.0.0.5:5071/RPC`: where registrations are read or changed.
    #[serde(default)]
    pub registrar_rpc: Option<String>,
    /// Limits of the Calls API.
    #[serde(default)]
    pub limits: CallLimits,
    /// Longest ringing of a leg before it is cancelled, seconds (default 30, at most 30:
    /// the first phone waits at most 32 s for its ACK, RFC 3261 timer H).
    #[serde(default = "default_answer_timeout")]
    pub answer_timeout_s: u32,
    /// Longest call, seconds, when a request names none (default 3600).
    #[serde(default = "default_max_duration")]
    pub max_duration_s: u32,
    /// Session timer (RFC 4028), seconds (default 1800; 0: none, else at least 90): the
    /// INVITEs ask for it with mware as the refresher, and the active instance refreshes
    /// both legs every half of it, so a phone that supports it ends a call whose
    /// controller is gone for good; a leg that answers a refresh 481 or nothing ends the call.
    #[serde(default = "default_session_timer")]
    pub session_timer_s: u32,
}

impl SipConfig {
    /// A section with defaults and this outbound proxy (tests, examples).
    pub fn with_proxy(outbound_proxy: impl Into<String>) -> Self {
        SipConfig {
            port: default_port(),
            transports: default_transports(),
            outbound_proxy: outbound_proxy.into(),
            credentials: None,
            registrar_rpc: None,
            limits: CallLimits::default(),
            answer_timeout_s: default_answer_timeout(),
            max_duration_s: default_max_duration(),
            session_timer_s: default_session_timer(),
        }
    }

    /// Every problem of the section, each with its JSON path under `at`.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = vec![];
        if self.transports.is_empty() {
            out.push(format!("{at}.transports: expected at least one of \"udp\", \"tcp\", found none"));
        }
        if crate::validate::proxy_addr(&self.outbound_proxy).is_none() {
            out.push(format!(
                "{at}.outbound_proxy: expected a sip: URI with an IP address and port (e.g. \"sip:10.0.0.5:5060\"), found {:?}",
                self.outbound_proxy
            ));
        }
        if !(1..=30).contains(&self.answer_timeout_s) {
            out.push(format!("{at}.answer_timeout_s: expected 1..=30 seconds, found {}", self.answer_timeout_s));
        }
        if self.session_timer_s != 0 && self.session_timer_s < 90 {
            out.push(format!(
                "{at}.session_timer_s: expected 0 (none) or at least 90 seconds (RFC 4028 Min-SE), found {}",
                self.session_timer_s
            ));
        }
        if self.max_duration_s == 0 {
            out.push(format!("{at}.max_duration_s: expected at least 1 second, found 0"));
        }
        let l = &self.limits;
        for (name, v) in
            [("calls_per_domain", l.calls_per_domain), ("calls_per_site", l.calls_per_site), ("calls_per_second", l.calls_per_second)]
        {
            if v == 0 {
                out.push(format!("{at}.limits.{name}: expected at least 1, found 0"));
            }
        }
        if let Some(c) = &self.credentials {
            if !crate::validate::is_sip_token(&c.user) {
                out.push(format!("{at}.credentials.user: expected letters, digits and -_.!~*'(), found {:?}", c.user));
            }
        }
        out
    }
}

fn default_port() -> u16 {
    5060
}
fn default_transports() -> Vec<SipTransport> {
    vec![SipTransport::Udp]
}
fn default_per_domain() -> u32 {
    100
}
fn default_per_site() -> u32 {
    1000
}
fn default_cps() -> u32 {
    50
}
fn default_answer_timeout() -> u32 {
    30
}
fn default_max_duration() -> u32 {
    3600
}
fn default_session_timer() -> u32 {
    1800
}
