//! Request bodies: parsed strictly (duplicate keys refused), every problem reported with
//! its field (`timeout_ms`, `params.oid`, `jobs[3].kind`), a target the group's target
//! rules refuse among them; nothing is stored when any job of a batch is wrong.

use crate::error::DevicesError;
use crate::section::DeviceManager;
use crate::store::NewJob;
use crate::targets::{self, Policy};
use mware_jobs::{check_job, found, now_ms, Problem, Problems};
use serde_json::{Map, Value};
use std::collections::HashSet;

const JOB_KEYS: &[&str] = &["kind", "target", "satellite", "params", "timeout_ms", "idempotency_key"];

/// A job id: 32 hex digits, the first 12 the acceptance time in ms (ids sort by time).
pub fn new_id(now_ms: u64) -> String {
    format!("{:012x}{:020x}", now_ms & 0xffff_ffff_ffff, rand::random::<u128>() & ((1u128 << 80) - 1))
}

/// True when `id` may be a job id (so it is safe in a message or a log line).
pub fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn parse(bytes: &[u8]) -> Result<Value, DevicesError> {
    mware_config::strict_json::parse_slice(bytes).map_err(|e| DevicesError::invalid("body", e.to_string()))
}

/// One job object (at `prefix`, `""` for a single job).
fn job(v: &Value, prefix: &str, cfg: &DeviceManager, policy: &Policy, local: bool, p: &mut Problems) -> Option<NewJob> {
    let Some(m) = v.as_object() else {
        let field = if prefix.is_empty() { "body" } else { prefix };
        p.list.push(Problem { field: field.into(), message: format!("expected a job object, found {}", found(v)) });
        return None;
    };
    for k in m.keys() {
        if !JOB_KEYS.contains(&k.as_str()) {
            p.report(k, format!("expected one of the keys {}, found an unknown one", JOB_KEYS.join(", ")));
        }
    }
    let before = p.list.len();
    let kind = text(m, "kind", true, p);
    let target = text(m, "target", true, p);
    let satellite = text(m, "satellite", false, p);
    let idem = text(m, "idempotency_key", false, p);
    let empty = Map::new();
    let params = params(m, p).unwrap_or(&empty);
    check_job(p, kind.as_deref(), target.as_deref(), params);
    if let Some(refused) = target.as_deref().and_then(|t| targets::check(policy, &p.path("target"), t, satellite.as_deref())) {
        p.list.push(refused);
    }
    let timeout_ms = timeout_ms(m, cfg, p);
    if let Some(s) = &satellite {
        check_satellite(s, cfg, local, p);
    }
    if let Some(k) = &idem {
        if k.len() > 200 {
            p.report("idempotency_key", format!("expected at most 200 bytes, found {}", k.len()));
        }
    }
    if p.list.len() > before {
        return None;
    }
    Some(NewJob {
        id: new_id(now_ms()),
        kind: kind?,
        target: target?,
        satellite,
        params: params.clone(),
        timeout_ms,
        idempotency_key: idem,
        created_ms: now_ms(),
    })
}

/// The non-empty string at `key`; nothing (reported when `required`) when it is missing
/// or null, or not a non-empty string (reported).
fn text(m: &Map<String, Value>, key: &str, required: bool, p: &mut Problems) -> Option<String> {
    match m.get(key) {
        None | Some(Value::Null) => {
            if required {
                p.report(key, "expected a string, found nothing (a required field)");
            }
            None
        }
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(other) => {
            p.report(key, format!("expected a non-empty string, found {}", found(other)));
            None
        }
    }
}

/// The `params` object; none when it is missing, null, or not an object (reported).
fn params<'a>(m: &'a Map<String, Value>, p: &mut Problems) -> Option<&'a Map<String, Value>> {
    match m.get("params") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(o),
        Some(other) => {
            p.report("params", format!("expected an object, found {}", found(other)));
            None
        }
    }
}

/// `timeout_ms`: the default when missing or null; 0 when out of range (reported).
fn timeout_ms(m: &Map<String, Value>, cfg: &DeviceManager, p: &mut Problems) -> u64 {
    match m.get("timeout_ms") {
        None | Some(Value::Null) => cfg.default_timeout_ms,
        Some(t) => match t.as_i64() {
            Some(n) if n >= 1 && n as u64 <= cfg.max_timeout_ms => n as u64,
            _ => {
                p.report(
                    "timeout_ms",
                    format!(
                        "expected a whole number of milliseconds from 1 to {} (devicemanager.max_timeout_ms), found {}",
                        cfg.max_timeout_ms,
                        found(t)
                    ),
                );
                0
            }
        },
    }
}

/// A satellite is refused in-process, and must be one of `devicemanager.satellites`.
fn check_satellite(s: &str, cfg: &DeviceManager, local: bool, p: &mut Problems) {
    if local {
        p.report(
            "satellite",
            format!("expected no satellite: this group runs jobs in-process (devicemanager.amqp is not set), found {s:?}"),
        );
    } else if !cfg.satellites.iter().any(|x| x == s) {
        let known = if cfg.satellites.is_empty() { "none is configured".to_string() } else { cfg.satellites.join(", ") };
        p.report(
            "satellite",
            format!("expected a satellite of devicemanager.satellites ({known}), found {}", found(&Value::String(s.to_string()))),
        );
    }
}

/// The body of `POST .../jobs`.
pub fn one(bytes: &[u8], cfg: &DeviceManager, policy: &Policy, local: bool) -> Result<NewJob, DevicesError> {
    let v = parse(bytes)?;
    let mut p = Problems::new("");
    match job(&v, "", cfg, policy, local, &mut p) {
        Some(j) if p.list.is_empty() => Ok(j),
        _ => Err(DevicesError::Invalid(p.list)),
    }
}

/// The body of `POST .../jobs:batch`: `{"jobs": [...]}`.
pub fn batch(bytes: &[u8], cfg: &DeviceManager, policy: &Policy, local: bool) -> Result<Vec<NewJob>, DevicesError> {
    let v = parse(bytes)?;
    let Some(m) = v.as_object() else {
        return Err(DevicesError::invalid("body", format!("expected {{\"jobs\": [...]}}, found {}", found(&v))));
    };
    let mut p = Problems::new("");
    for k in m.keys().filter(|k| *k != "jobs") {
        p.report(k, "expected only the key jobs, found an unknown one");
    }
    let list = match m.get("jobs") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(other) => {
            p.report("jobs", format!("expected a non-empty list of jobs, found {}", found(other)));
            return Err(DevicesError::Invalid(p.list));
        }
        None => {
            p.report("jobs", "expected a list of jobs, found nothing");
            return Err(DevicesError::Invalid(p.list));
        }
    };
    if list.len() > cfg.max_batch {
        return Err(DevicesError::TooLarge { max: cfg.max_batch, found: list.len() });
    }
    let mut jobs = vec![];
    let mut keys = HashSet::new();
    for (i, v) in list.iter().enumerate() {
        let mut jp = Problems::new(format!("jobs[{i}]"));
        if let Some(j) = job(v, &format!("jobs[{i}]"), cfg, policy, local, &mut jp) {
            if let Some(k) = &j.idempotency_key {
                if !keys.insert(k.clone()) {
                    jp.report("idempotency_key", "expected each idempotency key once per batch, found it again");
                }
            }
            jobs.push(j);
        }
        p.list.extend(jp.list);
    }
    if p.list.is_empty() {
        Ok(jobs)
    } else {
        Err(DevicesError::Invalid(p.list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DeviceManager {
        DeviceManager { satellites: vec!["sat1".into()], max_batch: 3, ..DeviceManager::default() }
    }

    fn fields(e: DevicesError) -> Vec<String> {
        match e {
            DevicesError::Invalid(l) => l.into_iter().map(|p| p.field).collect(),
            other => vec![format!("{other}")],
        }
    }

    #[test]
    fn every_problem_with_its_field() {
        let body =
            br#"{"kind": "snmp.get", "target": "nohost", "timeout_ms": -5, "satellite": "sat9", "params": {"oid": "x"}, "color": 1}"#;
        let f = fields(one(body, &cfg(), &Policy::default(), false).unwrap_err());
        for want in ["color", "target", "params.community", "params.oid", "timeout_ms", "satellite"] {
            assert!(f.contains(&want.to_string()), "{want} missing from {f:?}");
        }
        assert_eq!(fields(one(br#"{"kind": "snmp.fly", "target": "h:1"}"#, &cfg(), &Policy::default(), false).unwrap_err()), vec!["kind"]);
        assert_eq!(
            fields(one(br#"{"kind": "tcp.check", "target": "h:1", "kind": "tcp.check"}"#, &cfg(), &Policy::default(), false).unwrap_err()),
            vec!["body"]
        );
        assert_eq!(
            fields(one(br#"{"kind": "tcp.check", "target": "h:1", "satellite": "sat1"}"#, &cfg(), &Policy::default(), true).unwrap_err()),
            vec!["satellite"]
        );
        assert!(one(br#"{"kind": "tcp.check", "target": "h:1", "satellite": "sat1"}"#, &cfg(), &Policy::default(), false).is_ok());
    }

    #[test]
    fn batches() {
        let ok = r#"{"kind": "tcp.check", "target": "h:1"}"#;
        let bad = r#"{"kind": "tcp.check"}"#;
        assert!(matches!(
            batch(format!(r#"{{"jobs": [{ok},{ok},{ok},{ok}]}}"#).as_bytes(), &cfg(), &Policy::default(), false),
            Err(DevicesError::TooLarge { max: 3, found: 4 })
        ));
        assert_eq!(
            fields(batch(format!(r#"{{"jobs": [{ok},{bad}]}}"#).as_bytes(), &cfg(), &Policy::default(), false).unwrap_err()),
            vec!["jobs[1].target"]
        );
        assert_eq!(batch(format!(r#"{{"jobs": [{ok},{ok}]}}"#).as_bytes(), &cfg(), &Policy::default(), false).unwrap().len(), 2);
    }
}
