//! Checks across role instances and servers: unique names, unique order within
//! a group, one responsibility per group (same `include_domains`), each domain
//! named by one group only, exactly one group serving the rest of the tree,
//! no two instances listening on the same address and port, and (in
//! `group_sections`) the same service sections on every member of a group.

use super::sections::{Inst, Walked};
use super::walk::{join, Check};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Runs every cross check.
pub(crate) fn check(cx: &mut Check, w: &Walked) {
    unique_servers(cx, w);
    unique_roles(cx, w);
    orders(cx, w);
    domains(cx, w);
    ports(cx, w);
    super::group_sections::check(cx, w);
}

fn unique_servers(cx: &mut Check, w: &Walked) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for s in &w.servers {
        let Some(n) = s.name.as_deref() else { continue };
        if let Some(first) = seen.get(n) {
            cx.report(
                &join(&s.path, "name"),
                format!("expected a server name unique in the site, found {n:?} again (first at {first}.name)"),
            );
        } else {
            seen.insert(n, &s.path);
        }
    }
}

fn unique_roles(cx: &mut Check, w: &Walked) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for i in &w.insts {
        let Some(n) = i.name.as_deref() else { continue };
        if let Some(first) = seen.get(n) {
            cx.report(
                &join(&i.path, "name"),
                format!("expected a role name unique in the site, found {n:?} again (first at {first}.name)"),
            );
        } else {
            seen.insert(n, &i.path);
        }
    }
}

fn orders(cx: &mut Check, w: &Walked) {
    let mut seen: HashMap<(u32, i64), &str> = HashMap::new();
    for i in &w.insts {
        let (Some(g), Some(o)) = (i.group, i.order) else { continue };
        if let Some(first) = seen.get(&(g, o)) {
            cx.report(
                &join(&i.path, "order"),
                format!("expected an order unique within group {g}, found {o} again (first at {first}.order)"),
            );
        } else {
            seen.insert((g, o), &i.path);
        }
    }
}

fn set(i: &Inst) -> BTreeSet<&str> {
    i.domains.iter().map(|(_, d)| d.as_str()).collect()
}

fn show(s: &BTreeSet<&str>) -> String {
    if s.is_empty() {
        "[] (the rest of the tree)".into()
    } else {
        format!("[{}]", s.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(", "))
    }
}

fn domains(cx: &mut Check, w: &Walked) {
    // Duplicates inside one instance's list.
    for i in &w.insts {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (p, d) in &i.domains {
            if let Some(first) = seen.get(d.as_str()) {
                cx.report(p, format!("expected each domain once, found {d:?} again (first at {first})"));
            } else {
                seen.insert(d, p);
            }
        }
    }
    // Per group: the first member names its domains; members compare with the first whose
    // list is fully valid.
    let mut reps: BTreeMap<u32, &Inst> = BTreeMap::new();
    let mut valid: BTreeMap<u32, &Inst> = BTreeMap::new();
    for i in &w.insts {
        let Some(g) = i.group else { continue };
        reps.entry(g).or_insert(i);
        if !i.domains_ok {
            continue;
        }
        match valid.get(&g) {
            None => {
                valid.insert(g, i);
            }
            Some(r) if set(r) != set(i) => cx.report(
                &join(&i.path, "include_domains"),
                format!(
                    "expected the same include_domains as {} {} (all instances of group {g} serve the same domains), found {}",
                    r.path,
                    show(&set(r)),
                    show(&set(i))
                ),
            ),
            Some(_) => {}
        }
    }
    let complete = w.insts.iter().all(|i| i.group.is_some()) && reps.values().all(|r| r.domains_ok);
    // Each domain named by one group only.
    let mut owner: HashMap<&str, (u32, &str)> = HashMap::new();
    for (g, r) in &reps {
        for (p, d) in &r.domains {
            match owner.get(d.as_str()) {
                Some((og, op)) if og != g => cx.report(
                    p,
                    format!("expected each domain to be named by one group only, found {d:?} in group {g} and in group {og} ({op})"),
                ),
                Some(_) => {}
                None => {
                    owner.insert(d, (*g, p));
                }
            }
        }
    }
    // Exactly one group serves the rest of the tree.
    let defaults: Vec<u32> = reps.iter().filter(|(_, r)| r.domains_ok && r.domains.is_empty()).map(|(g, _)| *g).collect();
    if !w.servers_ok {
        // The servers list itself is wrong; that problem is already reported.
    } else if w.insts.is_empty() {
        cx.report("servers", "expected at least one enabled role instance, found none");
    } else if defaults.is_empty() && complete {
        cx.report("servers", "expected exactly one group with empty include_domains to serve the rest of the domain tree, found none: the rest of the tree is unserved");
    } else if defaults.len() > 1 {
        let names: Vec<String> = defaults.iter().map(u32::to_string).collect();
        cx.report("servers", format!(
            "expected exactly one group with empty include_domains to serve the rest of the domain tree, found {} groups that compete for it: {}",
            defaults.len(),
            names.join(", ")
        ));
    }
}

fn ports(cx: &mut Check, w: &Walked) {
    for (k, b) in w.insts.iter().enumerate() {
        let (Some(ab), Some(pb)) = (b.addr, b.api_port) else { continue };
        let clash = w.insts[..k].iter().find(|a| {
            let (Some(aa), Some(pa)) = (a.addr, a.api_port) else { return false };
            pa == pb && (aa == ab || (a.server == b.server && (aa.is_unspecified() || ab.is_unspecified())))
        });
        if let Some(a) = clash {
            cx.report(
                &join(&b.path, "api_port"),
                format!("expected an api_port not used by another instance on {ab}, found {pb} also used by {}", a.path),
            );
        }
    }
}
