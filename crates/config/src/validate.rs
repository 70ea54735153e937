//! Validation of a site file: every problem, each with its JSON path, what was
//! expected and what was found.
//!
//! The walk is split by concern: `walk` (typed readers, public: the services' own
//! checks use them), `sections` (the site, coordination, api, servers and roles),
//! `extra` (the seed's role keys with no service yet: `cti_adapters`) and `cross`
//! (checks across instances: names, orders, domains, ports, the same sections on
//! every member of a group). Each service section is checked by its own crate.

mod cross;
mod extra;
mod group_sections;
pub(crate) mod sections;
pub mod walk;

use crate::model::{Role, Site};
use crate::section::{Section, SiteInfo};
pub(crate) use sections::Walked;
use serde_json::Value;
pub use walk::{found, index, join, kind, quote, Check, Problem, Severity};

/// A site file that passed validation, with the warnings it raised.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The parsed site.
    pub site: Site,
    /// Warnings (the file is still valid).
    pub warnings: Vec<Problem>,
}

/// Parses and validates a site file against the site's own rules and the registered
/// `sections` (one per service section, see [`crate::section`]). `Err` holds every
/// error (and the warnings).
///
/// The text is parsed to raw JSON first and walked object by object, so every
/// problem is found in one pass, each with its JSON path: the site's objects here,
/// each service section by its own [`crate::SectionConfig::check`]. Disabled roles
/// (`enabled: false`) are not checked; one that does not even parse is left out
/// of the returned site with a warning. Then the file is parsed once into the typed
/// site, each role's sections into their types.
pub fn validate(text: &str, sections: &[&'static dyn Section]) -> Result<Validated, Vec<Problem>> {
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
    let mut cx = Check::new(Severity::Error);
    let keys: Vec<&str> = sections.iter().map(|s| s.key()).collect();
    let walked = sections::site(&mut cx, &root, &keys);
    check_sections(&mut cx, &root, &walked, sections);
    cross::check(&mut cx, &walked);
    if cx.count() > 0 {
        return Err(sorted(cx.problems));
    }
    let mut warnings = cx.problems;
    drop_unparsable_disabled(&mut root, &walked.disabled, &mut warnings);
    match serde_json::from_value::<Site>(root) {
        Ok(mut site) => {
            let mut errors = vec![];
            for (i, server) in site.servers.iter_mut().enumerate() {
                for (j, role) in server.roles.iter_mut().enumerate() {
                    let at = format!("servers[{i}].roles[{j}]");
                    let problems = role.sections.parse_all(sections, &at);
                    if role.enabled {
                        errors.extend(problems);
                    }
                }
            }
            if !errors.is_empty() {
                return Err(errors.into_iter().chain(warnings).collect());
            }
            Ok(Validated { site, warnings })
        }
        // The walk above should have caught everything; this is a safety net.
        Err(e) => Err(vec![Problem {
            path: "$".into(),
            message: format!("expected a site the model accepts, found a problem the checks missed: {e}"),
            severity: Severity::Error,
        }]),
    }
}

/// Errors first, then warnings, each in the order found.
fn sorted(problems: Vec<Problem>) -> Vec<Problem> {
    let (mut errors, warnings): (Vec<_>, Vec<_>) = problems.into_iter().partition(|p| p.severity == Severity::Error);
    errors.extend(warnings);
    errors
}

/// Runs each registered section's checks: per enabled instance on its own section, then
/// once across the site.
fn check_sections(cx: &mut Check, root: &Value, walked: &Walked, sections: &[&'static dyn Section]) {
    let tree = domain_tree(walked);
    let mut info = SiteInfo { root, walked, inst: None, tree };
    for (k, inst) in walked.insts.iter().enumerate() {
        info.inst = Some(k);
        for s in sections {
            if let Some(v) = inst.sections.get(s.key()).filter(|v| !v.is_null()) {
                s.check(cx, v, &join(&inst.path, s.key()), &info);
            }
        }
    }
    info.inst = None;
    for s in sections {
        s.check_site(cx, &info);
    }
}

/// The domain tree of the walked site, when every instance's group and domains are valid.
fn domain_tree(w: &Walked) -> Option<crate::DomainTree> {
    if !w.insts.iter().all(|i| i.group.is_some() && i.domains_ok) {
        return None;
    }
    let mut reps: std::collections::BTreeMap<u32, &sections::Inst> = Default::default();
    for i in &w.insts {
        reps.entry(i.group?).or_insert(i);
    }
    let default = reps.iter().find(|(_, r)| r.domains.is_empty()).map(|(g, _)| *g);
    let entries = reps.iter().flat_map(|(g, r)| r.domains.iter().map(move |(_, d)| (d.as_str(), *g)));
    crate::DomainTree::from_entries(entries, default).ok()
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
fn drop_unparsable_disabled(root: &mut Value, disabled: &[(usize, usize)], warnings: &mut Vec<Problem>) {
    for &(i, j) in disabled.iter().rev() {
        let Some(roles) = root.pointer_mut(&format!("/servers/{i}/roles")).and_then(Value::as_array_mut) else { continue };
        if serde_json::from_value::<Role>(roles[j].clone()).is_err() {
            roles.remove(j);
            warnings.push(Problem {
                path: format!("servers[{i}].roles[{j}]"),
                message: "disabled role was not checked and does not parse, so it is left out of the site".into(),
                severity: Severity::Warning,
            });
        }
    }
}
