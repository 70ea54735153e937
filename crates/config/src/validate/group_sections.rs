//! A group's services are the group's, not a member's: they run on whichever member
//! is active, so a failover must never stop one. Every member of a group therefore
//! carries the same service sections: every role key but the member's own
//! (`PER_MEMBER_KEYS` in `sections.rs`: name, roletype, iface, opts, enabled, group,
//! order, include_domains, api_port), so `pg_controller`, `backup_controller`,
//! `critical_sections`, `provisioning` and every future service section.
//!
//! Each member is compared with the first member of its group in file order, and every
//! differing path is reported, never a value (sections hold passwords).

use super::sections::Inst;
use super::walk::{index, join, Check};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Reports every path where a member's sections differ from its group's first member.
pub(crate) fn check(cx: &mut Check, w: &super::sections::Walked) {
    let mut first: BTreeMap<u32, &Inst> = BTreeMap::new();
    for i in &w.insts {
        let Some(g) = i.group else { continue };
        let Some(r) = first.get(&g) else {
            first.insert(g, i);
            continue;
        };
        let who = match &r.name {
            Some(n) => format!("{} ({n})", r.path),
            None => r.path.clone(),
        };
        let mut diffs = vec![];
        objects(&r.sections, &i.sections, &i.path, &mut diffs);
        for (path, found) in diffs {
            cx.report(&path, format!(
                "expected the same as {who}: group {g}'s services run on whichever member is active, so its members carry the same sections; found {found}"
            ));
        }
    }
}

fn objects(want: &Map<String, Value>, got: &Map<String, Value>, path: &str, out: &mut Vec<(String, String)>) {
    let keys: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
    for k in keys {
        let p = join(path, k);
        match (want.get(k), got.get(k)) {
            (Some(a), Some(b)) => values(a, b, &p, out),
            (Some(_), None) => out.push((p, "it missing here".into())),
            (None, Some(_)) => out.push((p, "it here only".into())),
            (None, None) => {}
        }
    }
}

fn values(want: &Value, got: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => objects(a, b, path, out),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (k, (x, y)) in a.iter().zip(b).enumerate() {
                values(x, y, &index(path, k), out);
            }
        }
        (Value::Array(a), Value::Array(b)) => out.push((path.to_string(), format!("{} entries where it has {}", b.len(), a.len()))),
        (a, b) if a == b => {}
        _ => out.push((path.to_string(), "a different value".into())),
    }
}
