//! The job kinds, one module each. A kind checks its parameters (reporting every
//! problem with its field) and runs against a target within a time limit. Adding a kind:
//! a module here implementing [`Kind`] and one line in [`ALL`].

mod http_request;
mod snmp;
mod snmp_get;
mod snmp_set;
mod snmp_walk;
mod ssh_exec;
mod tcp_check;

use crate::dest::{Dest, RunEnv};
use crate::spec::{found, Problems, Target};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::time::Duration;

/// Why a run failed: the error in words (never a secret) and what was learned anyway
/// (e.g. an HTTP answer with an unexpected status).
#[derive(Debug)]
pub struct Failure {
    /// What went wrong, lowercase.
    pub error: String,
    /// Partial result (`null` when none).
    pub result: Value,
}

impl Failure {
    /// A failure with no result.
    pub fn new(error: impl Into<String>) -> Failure {
        Failure { error: error.into(), result: Value::Null }
    }
}

/// One kind of device job.
#[async_trait]
pub trait Kind: Send + Sync + 'static {
    /// Its name in the API (`tcp.check`).
    fn name(&self) -> &'static str;
    /// Checks `params`, reporting every problem (fields `params.<key>`).
    fn check(&self, params: &Map<String, Value>, p: &mut Problems);
    /// Parameters that are secrets: never shown back, logged or put in an error.
    fn secret_params(&self) -> &'static [&'static str] {
        &[]
    }
    /// Runs against `dest` (connecting only to its addresses) within `limit` (the time
    /// left before the job's deadline).
    async fn run(&self, dest: &Dest, params: &Map<String, Value>, env: &RunEnv, limit: Duration) -> Result<Value, Failure>;
}

/// Every kind.
pub static ALL: &[&dyn Kind] =
    &[&tcp_check::TcpCheck, &http_request::HttpRequest, &snmp_get::SnmpGet, &snmp_walk::SnmpWalk, &snmp_set::SnmpSet, &ssh_exec::SshExec];

/// The kind named `name`.
pub fn find(name: &str) -> Option<&'static dyn Kind> {
    ALL.iter().copied().find(|k| k.name() == name)
}

/// `params` with every secret parameter of `kind` shown as `***`.
pub fn redacted(kind: &str, params: &Map<String, Value>) -> Map<String, Value> {
    let secret = find(kind).map(|k| k.secret_params()).unwrap_or(&[]);
    params
        .iter()
        .map(|(k, v)| {
            let v = if secret.contains(&k.as_str()) { Value::String("***".into()) } else { v.clone() };
            (k.clone(), v)
        })
        .collect()
}

/// Milliseconds of a duration, as a float with microseconds.
pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// Checks a job's kind, target and parameters, reporting every problem to `p`.
/// Returns the kind when it is known.
pub fn check_job(
    p: &mut Problems,
    kind: Option<&str>,
    target: Option<&str>,
    params: &Map<String, Value>,
) -> Option<&'static dyn crate::Kind> {
    if let Some(t) = target {
        if let Err(e) = Target::parse(t) {
            p.report("target", e);
        }
    }
    let k = kind.and_then(|k| {
        let found_kind = find(k);
        if found_kind.is_none() {
            let names: Vec<&str> = ALL.iter().map(|k| k.name()).collect();
            p.report("kind", format!("expected one of {}, found {}", names.join(", "), found(&Value::String(k.into()))));
        }
        found_kind
    })?;
    k.check(params, p);
    Some(k)
}
