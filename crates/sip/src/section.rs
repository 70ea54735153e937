//! The group's `sip` section: where the user agent listens, how it reaches the proxy and
//! the registrar, its credentials and the limits of the Calls API. The type (with its
//! defaults, which are also its JSON Schema) and its check live here, below the services
//! that read it (the callmanager lists it in the registry; call tracking reads it too).
//!
//! The listening address is the role's `iface`; this section names only the port.

use mware_config::{join, Check, Secret, SectionConfig, SiteInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// `http://10.0.0.5:5071/RPC`: the active instance binds the group contact
    /// (`mware-g<group>@<proxy>`, mware's Contact) to itself there, so the phones'
    /// requests inside a dialog reach whichever instance is active. Absent: the Contact
    /// is the instance's own address.
    #[serde(default)]
    pub registrar_rpc: Option<String>,
    /// The conference mixer: Janus's HTTP API, e.g. `http://127.0.0.1:8088/janus`
    /// (AudioBridge, `examples/janus/`). Absent: no conferences.
    #[serde(default)]
    pub mixer: Option<String>,
    /// Where the mixer writes the recordings of conferences created with `record: true`
    /// (one WAV of the room's mix per conference, `<dir>/<conference id>.wav`): an
    /// absolute directory **on the mixer's host**, at most 200 bytes (Janus creates it if
    /// it can). Absent: a conference asking for a recording is refused.
    #[serde(default)]
    pub recordings_dir: Option<String>,
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
            mixer: None,
            recordings_dir: None,
            limits: CallLimits::default(),
            answer_timeout_s: default_answer_timeout(),
            max_duration_s: default_max_duration(),
            session_timer_s: default_session_timer(),
        }
    }
}

impl SectionConfig for SipConfig {
    const KEY: &'static str = "sip";
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        check(cx, v, at)
    }
}

const KEYS: &[&str] = &[
    "port",
    "transports",
    "outbound_proxy",
    "credentials",
    "registrar_rpc",
    "mixer",
    "recordings_dir",
    "limits",
    "answer_timeout_s",
    "max_duration_s",
    "session_timer_s",
];

/// `sip`: reports every problem with its path.
fn check(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, KEYS, &["outbound_proxy"]);
    cx.port(m, p, "port");
    if let Some(t) = m.get("transports") {
        let tp = join(p, "transports");
        let items = cx.strings(m, p, "transports");
        if t.as_array().is_some_and(|a| a.is_empty()) {
            cx.report(&tp, "expected at least one of \"udp\", \"tcp\", found none");
        }
        for (ip, s) in items {
            if !matches!(s, "udp" | "tcp") {
                cx.report(&ip, format!("expected \"udp\" or \"tcp\", found {s:?}"));
            }
        }
    }
    if let Some(s) = cx.str(m, p, "outbound_proxy") {
        if crate::addr::proxy_addr(s).is_none() {
            cx.report(
                &join(p, "outbound_proxy"),
                format!("expected a sip: URI with an IP address and port (e.g. \"sip:10.0.0.5:5060\"), found {s:?}"),
            );
        }
    }
    if let Some(c) = m.get("credentials") {
        let cp = join(p, "credentials");
        if let Some(cm) = cx.object(c, &cp) {
            cx.keys(cm, &cp, &["user", "password", "realm"], &["user", "password"]);
            if let Some(u) = cx.str(cm, &cp, "user") {
                if !crate::addr::is_sip_token(u) {
                    cx.report(&join(&cp, "user"), format!("expected 1 to 64 letters, digits and -_.!~*'(), found {u:?}"));
                }
            }
            cx.secret(cm, &cp, "password");
            cx.str(cm, &cp, "realm");
        }
    }
    for key in ["registrar_rpc", "mixer"] {
        if let Some(u) = cx.str(m, p, key) {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                cx.report(&join(p, key), format!("expected an http:// or https:// URL, found {u:?}"));
            }
        }
    }
    if let Some(d) = cx.str(m, p, "recordings_dir") {
        if let Err(e) = recordings_dir(d) {
            cx.report(&join(p, "recordings_dir"), e);
        }
    }
    if let Some(l) = m.get("limits") {
        let lp = join(p, "limits");
        if let Some(lm) = cx.object(l, &lp) {
            cx.keys(lm, &lp, &["calls_per_domain", "calls_per_site", "calls_per_second"], &[]);
            for k in ["calls_per_domain", "calls_per_site", "calls_per_second"] {
                cx.int(lm, &lp, k, 1, 1_000_000);
            }
        }
    }
    cx.int(m, p, "answer_timeout_s", 1, 30);
    cx.int(m, p, "max_duration_s", 1, 86_400);
    if let Some(n) = cx.int(m, p, "session_timer_s", 0, 86_400) {
        if n != 0 && n < 90 {
            cx.report(&join(p, "session_timer_s"), format!("expected 0 (none) or at least 90 seconds (RFC 4028 Min-SE), found {n}"));
        }
    }
}

/// `recordings_dir`: an absolute path the mixer can take in its 255-byte file names.
fn recordings_dir(d: &str) -> Result<(), String> {
    if !d.starts_with('/') {
        return Err(format!("expected an absolute directory (starting with /), found {:?}", d.chars().take(80).collect::<String>()));
    }
    if d.len() > 200 || d.chars().any(char::is_control) || d.split('/').any(|c| c == "..") {
        return Err("expected at most 200 bytes without control characters or \"..\"".into());
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    #[test]
    fn recordings_dir_must_be_absolute_and_short() {
        assert!(super::recordings_dir("/var/lib/mware/recordings").is_ok());
        assert!(super::recordings_dir("recordings").unwrap_err().contains("absolute"));
        assert!(super::recordings_dir("/var/../etc").is_err());
        assert!(super::recordings_dir(&format!("/{}", "a".repeat(200))).is_err());
        assert!(super::recordings_dir("/a\nb").is_err());
    }
}
