//! `snmp.set`: SNMP v2c SET of one OID.
//! Parameters: `community` (secret), `oid`, `type` (integer, string, hex, oid,
//! ipaddress, counter32, gauge32, timeticks), `value` (a string, or an integer for the
//! numeric types). Result: the agent's answer, `{"varbinds": [...]}`; a refusal
//! (notWritable, wrongType, ...) fails the job with the agent's error status.

use super::snmp::{self, with_retries};
use super::{Failure, Kind};
use crate::dest::{Dest, RunEnv};
use crate::spec::{found, Problems};
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::time::Duration;

const TYPES: &[&str] = &["integer", "string", "hex", "oid", "ipaddress", "counter32", "gauge32", "timeticks"];

/// The `snmp.set` kind.
pub struct SnmpSet;

/// The value to set, owned.
enum Owned {
    Int(i64),
    Bytes(Vec<u8>),
    Oid(Vec<u32>),
    Ip([u8; 4]),
    Counter(u32),
    Gauge(u32),
    Ticks(u32),
}

fn parse_value(t: &str, v: &Value) -> Result<Owned, String> {
    let int = || v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    let u32v = || {
        int()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("expected an integer from 0 to 4294967295 for type {t}, found {}", found(v)))
    };
    Ok(match t {
        "integer" => {
            Owned::Int(int().filter(|n| i32::try_from(*n).is_ok()).ok_or_else(|| format!("expected a 32-bit integer, found {}", found(v)))?)
        }
        "string" => Owned::Bytes(v.as_str().ok_or_else(|| format!("expected a string, found {}", found(v)))?.as_bytes().to_vec()),
        "hex" => {
            let s = v.as_str().unwrap_or_default().replace([':', ' '], "");
            if !s.len().is_multiple_of(2) || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("expected hexadecimal bytes like 0a:1b, found {}", found(v)));
            }
            Owned::Bytes((0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0)).collect())
        }
        "oid" => Owned::Oid(snmp::parse_oid(v.as_str().unwrap_or_default())?),
        "ipaddress" => Owned::Ip(
            v.as_str()
                .and_then(|s| s.parse::<std::net::Ipv4Addr>().ok())
                .ok_or_else(|| format!("expected an IPv4 address, found {}", found(v)))?
                .octets(),
        ),
        "counter32" => Owned::Counter(u32v()?),
        "gauge32" => Owned::Gauge(u32v()?),
        "timeticks" => Owned::Ticks(u32v()?),
        _ => return Err(format!("expected a type among {}", TYPES.join(", "))),
    })
}

#[async_trait]
impl Kind for SnmpSet {
    fn name(&self) -> &'static str {
        "snmp.set"
    }

    fn secret_params(&self) -> &'static [&'static str] {
        &["community"]
    }

    fn check(&self, params: &Map<String, Value>, p: &mut Problems) {
        p.unknown(params, &["community", "oid", "type", "value"]);
        snmp::check_community(params, p);
        snmp::check_oid(params, "oid", true, p);
        let t = p.req_str(params, "type");
        if let Some(t) = t {
            if !TYPES.contains(&t) {
                p.report("params.type", format!("expected one of {}, found {t:?}", TYPES.join(", ")));
            }
        }
        match params.get("value").filter(|v| !v.is_null()) {
            None => p.report("params.value", "expected the value to set, found nothing (a required parameter)"),
            Some(v) => {
                if let Some(t) = t.filter(|t| TYPES.contains(t)) {
                    if let Err(e) = parse_value(t, v) {
                        p.report("params.value", e);
                    }
                }
            }
        }
    }

    async fn run(&self, dest: &Dest, params: &Map<String, Value>, _: &RunEnv, limit: Duration) -> Result<Value, Failure> {
        let target = &dest.target;
        let o = snmp::oid(&params.get("oid").and_then(Value::as_str).and_then(|s| snmp::parse_oid(s).ok()).unwrap_or_default());
        let t = params.get("type").and_then(Value::as_str).unwrap_or_default();
        let owned = parse_value(t, params.get("value").unwrap_or(&Value::Null)).map_err(|e| Failure::new(format!("params.value: {e}")))?;
        let value = match owned {
            Owned::Int(n) => async_snmp::Value::Integer(n as i32),
            Owned::Bytes(b) => async_snmp::Value::OctetString(b.into()),
            Owned::Oid(parts) => async_snmp::Value::ObjectIdentifier(snmp::oid(&parts)),
            Owned::Ip(a) => async_snmp::Value::IpAddress(a),
            Owned::Counter(n) => async_snmp::Value::Counter32(n),
            Owned::Gauge(n) => async_snmp::Value::Gauge32(n),
            Owned::Ticks(n) => async_snmp::Value::TimeTicks(n),
        };
        let mut sess = snmp::session(dest, params).await?;
        with_retries!(sess, target, limit, |s| async {
            match s.set(&o, value.clone()).await {
                Ok(vb) => Ok(json!({ "varbinds": snmp::varbinds_json(std::slice::from_ref(&vb)) })),
                Err(e) if snmp::refused(&e) => Err(Failure::new(format!("the set was refused: {}", snmp::describe(&e)))),
                Err(e) => Err(Failure::new(snmp::describe(&e))),
            }
        })
    }
}
