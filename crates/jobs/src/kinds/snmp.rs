//! What the SNMP kinds share: SNMP v2c clients (async-snmp, the library the alarms'
//! traps and informs use too) with a time limit and retries (UDP loses packets), OID
//! parsing, values as JSON, and the `community` parameter, a secret.

use super::Failure;
use crate::dest::Dest;
use crate::spec::{found, Problems, Target};
use async_snmp::{Auth, Client, ErrorStatus, Oid, Retry, UdpHandle, VarBind};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// An SNMP v2c client of one agent.
pub(super) type Session = Client<UdpHandle>;

/// Each request waits this long for an answer before it is sent again.
const TRY_LIMIT: Duration = Duration::from_millis(1500);

/// Checks the `community` parameter (required).
pub(super) fn check_community(params: &Map<String, Value>, p: &mut Problems) {
    match params.get("community") {
        None | Some(Value::Null) => {
            p.report("params.community", "expected the SNMP community (a string), found nothing (a required parameter)")
        }
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => {}
        Some(Value::String(_)) => {
            p.report("params.community", "expected a community of 1 to 255 bytes, found another length (not shown: a secret)")
        }
        Some(v) => p.report("params.community", format!("expected a string, found {}", mware_config::kind(v))),
    }
}

/// Parses a numeric OID (`1.3.6.1.2.1.1.1.0`, a leading dot allowed; each arc at most
/// 4294967295, as SNMP's SMI has them).
pub(super) fn parse_oid(s: &str) -> Result<Vec<u32>, String> {
    let t = s.strip_prefix('.').unwrap_or(s);
    let parts: Option<Vec<u32>> = t.split('.').map(|x| x.parse::<u32>().ok()).collect();
    match parts {
        Some(v) if v.len() >= 2 && v.len() <= 128 && v[0] <= 2 => Ok(v),
        _ => Err(format!("expected a numeric OID like 1.3.6.1.2.1.1.1.0, found {}", found(&Value::String(s.into())))),
    }
}

/// Checks an OID parameter `key` (required when `required`); returns it when valid.
pub(super) fn check_oid(params: &Map<String, Value>, key: &str, required: bool, p: &mut Problems) -> Option<Vec<u32>> {
    let s = if required { p.req_str(params, key)? } else { p.opt_str(params, key)? };
    match parse_oid(s) {
        Ok(o) => Some(o),
        Err(e) => {
            p.report(&format!("params.{key}"), e);
            None
        }
    }
}

/// An OID of the client library.
pub(super) fn oid(parts: &[u32]) -> Oid {
    Oid::from_slice(parts)
}

/// The dotted form of an OID.
pub(super) fn dotted(o: &Oid) -> String {
    o.to_string()
}

/// A value as `{"type": ..., "value": ...}`.
pub(super) fn value_json(v: &async_snmp::Value) -> Value {
    use async_snmp::Value as V;
    let (t, val) = match v {
        V::Null => ("null", Value::Null),
        V::Integer(n) => ("integer", json!(n)),
        V::OctetString(s) => match std::str::from_utf8(s) {
            Ok(text) if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') => ("string", json!(text)),
            _ => ("hex", json!(s.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))),
        },
        V::ObjectIdentifier(o) => ("oid", json!(dotted(o))),
        V::IpAddress(a) => ("ipaddress", json!(std::net::Ipv4Addr::from(*a).to_string())),
        V::Counter32(n) => ("counter32", json!(n)),
        V::Gauge32(n) | V::UInteger32(n) => ("gauge32", json!(n)),
        V::TimeTicks(n) => ("timeticks", json!(n)),
        V::Opaque(s) => ("opaque", json!(s.iter().map(|b| format!("{b:02x}")).collect::<String>())),
        V::Counter64(n) => ("counter64", json!(n)),
        V::EndOfMibView => ("endOfMibView", Value::Null),
        V::NoSuchObject => ("noSuchObject", Value::Null),
        V::NoSuchInstance => ("noSuchInstance", Value::Null),
        other => ("other", json!(format!("{other:?}"))),
    };
    json!({"type": t, "value": val})
}

/// The agent's refusal in words (RFC 3416's error-status name and number, and the varbind).
fn refusal(status: &ErrorStatus, index: u32) -> String {
    format!("the agent answered {status} ({}) at varbind {index}", status.as_i32())
}

/// The varbinds of an answer as `[{"oid", "type", "value"}]`.
pub(super) fn varbinds_json(vbs: &[VarBind]) -> Vec<Value> {
    vbs.iter()
        .map(|vb| {
            let mut j = value_json(&vb.value);
            j["oid"] = json!(dotted(&vb.oid));
            j
        })
        .collect()
}

/// A v2c client of the target's first judged address with the community in `params`.
/// Its own timeout is longer than a try: [`with_retries`] bounds each try and sends the
/// request again.
pub(super) async fn session(dest: &Dest, params: &Map<String, Value>) -> Result<Session, Failure> {
    let community = params.get("community").and_then(Value::as_str).unwrap_or_default();
    let target = &dest.target;
    let addr = *dest.addrs.first().ok_or_else(|| Failure::new(format!("cannot resolve {target}: no address")))?;
    Client::builder(addr, Auth::v2c(community))
        .timeout(Duration::from_secs(3600))
        .retry(Retry::none())
        .connect()
        .await
        .map_err(|e| Failure::new(format!("cannot open a UDP socket for {target}: {e}")))
}

/// The time left before `deadline`, for one try.
pub(super) fn try_limit(deadline: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    (!left.is_zero()).then(|| left.min(TRY_LIMIT))
}

/// The failure when no answer came.
pub(super) fn no_answer(target: &Target, limit: Duration) -> Failure {
    Failure::new(format!(
        "no answer from the SNMP agent at {target} within {} ms (not an agent, the host is down, or the community is wrong: v2c agents do not answer a wrong one)",
        limit.as_millis()
    ))
}

/// Describes a client error (never the community): the agent's refusal in words, or
/// what went wrong.
pub(super) fn describe(e: &async_snmp::Error) -> String {
    match e {
        async_snmp::Error::Snmp { status, index, .. } => refusal(status, *index),
        other => format!("snmp: {other}"),
    }
}

/// Whether the error is the agent's refusal (an error status in its answer).
pub(super) fn refused(e: &async_snmp::Error) -> bool {
    matches!(e, async_snmp::Error::Snmp { .. })
}

/// Sends one request built by `op` again until it is answered or `limit` has passed;
/// `op` gets the session and returns the parsed answer as JSON or a failure.
macro_rules! with_retries {
    ($sess:expr, $target:expr, $limit:expr, |$s:ident| $body:expr) => {{
        let deadline = std::time::Instant::now() + $limit;
        let mut out = None;
        while let Some(t) = $crate::kinds::snmp::try_limit(deadline) {
            let $s = &mut $sess;
            match tokio::time::timeout(t, $body).await {
                Ok(r) => {
                    out = Some(r);
                    break;
                }
                Err(_) => continue,
            }
        }
        match out {
            Some(r) => r,
            None => Err($crate::kinds::snmp::no_answer($target, $limit)),
        }
    }};
}
pub(super) use with_retries;
