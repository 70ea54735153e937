//! `snmp.get`: SNMP v2c GET of one OID (`oid`) or several (`oids`, up to 64).
//! Parameters: `community` (secret), `oid` or `oids`. Result:
//! `{"varbinds": [{"oid": "1.3.6.1.2.1.1.5.0", "type": "string", "value": "sw1"}]}`
//! (`noSuchObject`/`noSuchInstance` appear as their type with a null value).

use super::snmp::{self, with_retries};
use super::{Failure, Kind};
use crate::dest::{Dest, RunEnv};
use crate::spec::{found, Problems};
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The `snmp.get` kind.
pub struct SnmpGet;

fn oids(params: &Map<String, Value>) -> Vec<Vec<u32>> {
    match (params.get("oid").and_then(Value::as_str), params.get("oids").and_then(Value::as_array)) {
        (Some(o), _) => snmp::parse_oid(o).into_iter().collect(),
        (None, Some(list)) => list.iter().filter_map(|v| v.as_str().and_then(|s| snmp::parse_oid(s).ok())).collect(),
        _ => vec![],
    }
}

#[async_trait]
impl Kind for SnmpGet {
    fn name(&self) -> &'static str {
        "snmp.get"
    }

    fn secret_params(&self) -> &'static [&'static str] {
        &["community"]
    }

    fn check(&self, params: &Map<String, Value>, p: &mut Problems) {
        p.unknown(params, &["community", "oid", "oids"]);
        snmp::check_community(params, p);
        let has_oid = params.get("oid").is_some_and(|v| !v.is_null());
        match params.get("oids").filter(|v| !v.is_null()) {
            Some(_) if has_oid => p.report("params.oids", "expected oid or oids, found both"),
            Some(Value::Array(list)) if !list.is_empty() && list.len() <= 64 => {
                for (i, v) in list.iter().enumerate() {
                    match v.as_str().map(snmp::parse_oid) {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => p.report(&format!("params.oids[{i}]"), e),
                        None => p.report(&format!("params.oids[{i}]"), format!("expected an OID string, found {}", found(v))),
                    }
                }
            }
            Some(v) => p.report("params.oids", format!("expected a list of 1 to 64 OIDs, found {}", found(v))),
            None => {
                snmp::check_oid(params, "oid", true, p);
            }
        }
    }

    async fn run(&self, dest: &Dest, params: &Map<String, Value>, _: &RunEnv, limit: Duration) -> Result<Value, Failure> {
        let target = &dest.target;
        let list: Vec<_> = oids(params).iter().map(|o| snmp::oid(o)).collect();
        let mut sess = snmp::session(dest, params).await?;
        with_retries!(sess, target, limit, |s| async {
            let vbs = s.get_many(&list).await.map_err(|e| Failure::new(snmp::describe(&e)))?;
            Ok(json!({ "varbinds": snmp::varbinds_json(&vbs) }))
        })
    }
}
