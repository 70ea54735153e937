//! Validation of a site file: every problem, each with its JSON path, what was
//! expected and what was found. (Stub: to be completed.)

use crate::model::Site;
use std::fmt;

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
pub fn validate(text: &str) -> Result<Validated, Vec<Problem>> {
    match serde_json::from_str::<Site>(text) {
        Ok(site) => Ok(Validated { site, warnings: vec![] }),
        Err(e) => Err(vec![Problem {
            path: "$".into(),
            message: e.to_string(),
            severity: Severity::Error,
        }]),
    }
}
