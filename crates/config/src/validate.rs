//! Validation of a site file: every problem, each with its JSON path, what was
//! expected and what was found.
//!
//! The walk is split by concern: `walk` (typed readers), `sections` (the site,
//! coordination, api, servers and roles), `extra` and `provisioning` (the role's
//! service sections), `tasks` (`service_tasks` and `monitoring`) and `cross` (checks across instances: names, orders, domains,
//! ports, and which group provisions which SIP server).

mod alarms;
mod cross;
mod devicemanager;
mod extra;
mod group_sections;
mod provisioning;
mod sections;
mod tasks;
mod walk;

use crate::model::{Role, Site};
use serde_json::Value;
use std::fmt;
pub(crate) use walk::{index, join, quote, Cx};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The file is refused.
    Error,
    /// Reported, but the file is accepted (e.g. `pg_controller`, which the seed leaves to run time).
    Warning,
}

/// One problem found in a site file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path, e.g. `servers[0].roles[1].group`.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}: {}", self.path, self.message),
            Severity::Warning => write!(f, "warning: {}: {}", self.path, self.message),
        }
    }
}

/// A site file that passed validation, with the warnings it raised.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The parsed site.
    pub site: Site,
    /// Warnings (the file is still valid).
    pub warnings: Vec<Problem>,
}

/// Parses and validates a site file. `Err` holds every error (and the warnings).
///
/// The text is parsed to raw JSON first and walked object by object, so every
/// problem is found in one pass, each with its JSON path. Disabled roles
/// (`enabled: false`) are not checked; one that does not even parse is left out
/// of the returned site with a warning. `pg_controller` problems are warnings:
/// the controller filters invalid groups at run time (see [`crate::pg`]).
pub fn validate(text: &str) -> Result<Validated, Vec<Problem>> {
    let mut root: Value = match crate::strict_json::parse(text) {
        Ok(v) => v,
        Err(crate::strict_json::StrictError::Malformed(e)) => return Err(vec![malformed(&e)]),
        Err(crate::strict_json::StrictError::Duplicates(paths)) => {
            return Err(paths
                .into_iter()
                .map(|path| Problem {
                    path,
                    message: "expected each key once in its object, found it again (only one of the two values would be taken, silently)"
                        .into(),
                    severity: Severity::Error,
                })
                .collect())
        }
    };
    let mut errors = Cx::new(Severity::Error);
    let mut warnings = Cx::new(Severity::Warning);
    let walked = sections::site(&mut errors, &mut warnings, &root);
    cross::check(&mut errors, &walked);
    if errors.count() > 0 {
        let mut all = errors.problems;
        all.extend(warnings.problems);
        return Err(all);
    }
    drop_unparsable_disabled(&mut root, &walked.disabled, &mut warnings);
    match serde_json::from_value::<Site>(root) {
        Ok(site) => {
            let errors = typed_checks(&site);
            if !errors.is_empty() {
                return Err(errors.into_iter().chain(warnings.problems).collect());
            }
            Ok(Validated { site, warnings: warnings.problems })
        }
        // The walk above should have caught everything; this is a safety net.
        Err(e) => Err(vec![Problem {
            path: "$".into(),
            message: format!("expected a site the model accepts, found a problem the checks missed: {e}"),
            severity: Severity::Error,
        }]),
    }
}

/// Checks that need the parsed site (values from two places): a mutex wait must end
/// before the API's request timeout cancels the call.
fn typed_checks(site: &Site) -> Vec<Problem> {
    let mut out = vec![];
    for p in site.instances() {
        let cs = &p.role.critical_sections;
        if cs.enabled && cs.max_wait_ms >= site.api.request_timeout_ms {
            out.push(Problem {
                path: format!("{}.critical_sections.max_wait_ms", site.instance_path(&p.role.name).unwrap_or_default()),
                message: format!(
                    "expected less than api.request_timeout_ms ({} ms): a longer wait would be cut by the request timeout; found {}",
                    site.api.request_timeout_ms, cs.max_wait_ms
                ),
                severity: Severity::Error,
            });
        }
    }
    out
}

/// The one problem of text that is not JSON, with its line and column.
fn malformed(e: &serde_json::Error) -> Problem {
    let full = e.to_string();
    let what = full.split(" at line ").next().unwrap_or(&full);
    Problem {
        path: "$".into(),
        message: format!("malformed JSON at line {}, column {}: {what}", e.line(), e.column()),
        severity: Severity::Error,
    }
}

/// Removes disabled roles that the model cannot parse (they are never started) and says so.
fn drop_unparsable_disabled(root: &mut Value, disabled: &[(usize, usize)], warn: &mut Cx) {
    for &(i, j) in disabled.iter().rev() {
        let Some(roles) = root.pointer_mut(&format!("/servers/{i}/roles")).and_then(Value::as_array_mut) else { continue };
        if serde_json::from_value::<Role>(roles[j].clone()).is_err() {
            roles.remove(j);
            warn.report(
                &format!("servers[{i}].roles[{j}]"),
                "disabled role was not checked and does not parse, so it is left out of the site",
            );
        }
    }
}
