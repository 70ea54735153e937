//! `snmp.walk`: SNMP v2c walk of the subtree under `oid` with GETBULK.
//! Parameters: `community` (secret), `oid`, `max_rows` (default 10000, at most 100000:
//! the job fails past it rather than grow without bound). Result:
//! `{"varbinds": [...], "rows": N}` in the agent's order.

use super::snmp::{self, with_retries};
use super::{Failure, Kind};
use crate::dest::{Dest, RunEnv};
use crate::spec::Problems;
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// Rows asked for in each GETBULK.
const REPETITIONS: i32 = 25;

/// The `snmp.walk` kind.
pub struct SnmpWalk;

#[async_trait]
impl Kind for SnmpWalk {
    fn name(&self) -> &'static str {
        "snmp.walk"
    }

    fn secret_params(&self) -> &'static [&'static str] {
        &["community"]
    }

    fn check(&self, params: &Map<String, Value>, p: &mut Problems) {
        p.unknown(params, &["community", "oid", "max_rows"]);
        snmp::check_community(params, p);
        snmp::check_oid(params, "oid", true, p);
        p.opt_int(params, "max_rows", 1, 100_000);
    }

    async fn run(&self, dest: &Dest, params: &Map<String, Value>, _: &RunEnv, limit: Duration) -> Result<Value, Failure> {
        let target = &dest.target;
        let root = params.get("oid").and_then(Value::as_str).and_then(|s| snmp::parse_oid(s).ok()).unwrap_or_default();
        let max_rows = params.get("max_rows").and_then(Value::as_u64).unwrap_or(10_000) as usize;
        let mut sess = snmp::session(dest, params).await?;
        let deadline = Instant::now() + limit;
        let mut rows: Vec<Value> = vec![];
        let mut cursor = root.clone();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure {
                    error: format!("the walk did not end within {} ms ({} rows read)", limit.as_millis(), rows.len()),
                    result: json!({"varbinds": rows, "rows": rows.len()}),
                });
            }
            let start = snmp::oid(&cursor);
            // (next cursor, rows of this answer, end of the subtree reached)
            let step: Result<(Vec<u32>, Vec<Value>, bool), Failure> = with_retries!(sess, target, left, |s| async {
                let vbs = s.get_bulk(std::slice::from_ref(&start), 0, REPETITIONS).await.map_err(|e| Failure::new(snmp::describe(&e)))?;
                let mut got = vec![];
                let mut next = cursor.clone();
                let mut end = true;
                for vb in &vbs {
                    let parts = vb.oid.arcs();
                    if matches!(vb.value, async_snmp::Value::EndOfMibView) || !parts.starts_with(&root) || parts <= next.as_slice() {
                        end = true;
                        break;
                    }
                    got.extend(snmp::varbinds_json(std::slice::from_ref(vb)));
                    next = parts.to_vec();
                    end = false;
                }
                Ok((next, got, end))
            });
            let (next, got, end) = step?;
            rows.extend(got);
            if rows.len() > max_rows {
                rows.truncate(max_rows);
                return Err(Failure {
                    error: format!("the subtree has more than max_rows ({max_rows}) rows"),
                    result: json!({"varbinds": rows, "rows": max_rows}),
                });
            }
            if end || next == cursor {
                break;
            }
            cursor = next;
        }
        Ok(json!({"rows": rows.len(), "varbinds": rows}))
    }
}
