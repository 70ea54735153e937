//! Checks of a group's `provisioning` section and, across groups, of which group
//! provisions which SIP server.
//!
//! A SIP server (an *entity*, named by Asterisk's `entityid`) is listed in the
//! `entities` of one group's section only, and every domain it may see must be
//! served by that group: its calls are routed to that group's active instance,
//! which holds only its own tenants' rows. An entity whose domains belong to two
//! groups is refused (configure one entity per group instead: a SIP server can
//! point each family at another URL).

use super::is_entity_id;
use mware_config::{canonical, found, index, join, quote, Check, DomainTree, SiteInfo};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

const KEYS: &[&str] = &["dsn", "families", "max_body_bytes", "entities", "accept_domain_segment", "shared_families", "ca_file"];
const ENTITY_KEYS: &[&str] = &["domains", "user", "password", "write"];
const DEFAULT_FAMILIES: &[&str] = &["endpoint", "auth", "aor"];

/// `provisioning`: the realtime provisioning service of a group (dsn and passwords are secrets).
pub(super) fn section(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, KEYS, &["dsn"]);
    if cx.secret(m, p, "dsn") && m.get("dsn").and_then(Value::as_str).is_some_and(|s| s.trim().is_empty()) {
        cx.report(&join(p, "dsn"), "expected a PostgreSQL connection string, found an empty one");
    }
    let mut families: Vec<String> = vec![];
    if let Some(f) = m.get("families") {
        let fp = join(p, "families");
        if let Some(fm) = cx.object(f, &fp) {
            for (family, table) in fm {
                let ep = join(&fp, family);
                if !is_family(family) {
                    cx.report(&ep, format!("expected a family name of latin letters, digits, '_' and '-', found {}", quote(family)));
                }
                match table.as_str() {
                    Some(t) if is_table(t) => {}
                    Some(t) => cx.report(&ep, format!("expected a table name like ps_endpoints or schema.table, found {}", quote(t))),
                    None => cx.report(&ep, format!("expected a table name string, found {}", found(table))),
                }
                families.push(family.clone());
            }
        }
    }
    if families.is_empty() {
        families = DEFAULT_FAMILIES.iter().map(|s| s.to_string()).collect();
    }
    cx.int(m, p, "max_body_bytes", 1, i64::MAX);
    cx.bool(m, p, "accept_domain_segment");
    for (sp, f) in cx.strings(m, p, "shared_families") {
        if !families.iter().any(|k| k == f) {
            cx.report(&sp, format!("expected a family of this section ({}), found {}", families.join(", "), quote(f)));
        }
    }
    cx.nonempty_str(m, p, "ca_file");
    if let Some(e) = m.get("entities") {
        let ep = join(p, "entities");
        if let Some(em) = cx.object(e, &ep) {
            let mut users: HashMap<&str, String> = HashMap::new();
            for (id, ent) in em {
                let ip = join(&ep, id);
                if !is_entity_id(id) {
                    let hint =
                        if is_entity_id(&id.to_ascii_lowercase()) { " (write it in lowercase, as Asterisk's ${ENTITYID} is)" } else { "" };
                    cx.report(&ip, format!("expected an entity id of six two-digit hexadecimal octets separated by ':', lowercase, like 12:34:56:78:9a:bc{hint}, found {}", quote(id)));
                }
                if let Some(user) = entity(cx, ent, &ip) {
                    match users.get(user) {
                        Some(first) => cx.report(
                            &join(&ip, "user"),
                            format!(
                                "expected a user name unique in this section (it names the entity), found {} again (first at {first}.user)",
                                quote(user)
                            ),
                        ),
                        None => {
                            users.insert(user, ip.clone());
                        }
                    }
                }
            }
        }
    }
}

/// A family name (also a metric label value, so nothing a label could be broken by).
fn is_family(f: &str) -> bool {
    !f.is_empty() && f.len() <= 64 && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// One entity's settings; returns its user name when it is well formed.
fn entity<'a>(cx: &mut Check, v: &'a Value, p: &str) -> Option<&'a str> {
    let m = cx.object(v, p)?;
    cx.keys(m, p, ENTITY_KEYS, &["domains", "user", "password"]);
    if let Some(d) = m.get("domains") {
        if d.as_array().is_some_and(Vec::is_empty) {
            cx.report(&join(p, "domains"), "expected at least one domain the entity may see, found an empty list");
        }
    }
    let mut seen: HashMap<String, String> = HashMap::new();
    for (dp, d) in cx.strings(m, p, "domains") {
        match canonical(d) {
            Ok(c) => match seen.get(&c) {
                Some(first) => cx.report(&dp, format!("expected each domain once, found {} again (first at {first})", quote(d))),
                None => {
                    seen.insert(c, dp);
                }
            },
            Err(e) => cx.report(&dp, e.to_string()),
        }
    }
    if cx.secret(m, p, "password") && m.get("password").and_then(Value::as_str).is_some_and(str::is_empty) {
        cx.report(&join(p, "password"), "expected a password, found an empty one");
    }
    cx.bool(m, p, "write");
    let user = cx.nonempty_str(m, p, "user")?;
    if !user.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        cx.report(
            &join(p, "user"),
            format!(
                "expected a user name of latin letters, digits, '.', '_' and '-' (it travels in a URL and an HTTP Basic header), found {}",
                quote(user)
            ),
        );
        return None;
    }
    Some(user)
}

/// Across groups: an entity is listed by one group only, and that group serves every
/// domain the entity may see.
pub(super) fn across_groups(cx: &mut Check, site: &SiteInfo) {
    // The first member of each group speaks for it (every member carries the same sections).
    let mut listed: HashMap<&str, (u32, String)> = HashMap::new();
    for g in site.groups() {
        let Some(em) = g.sections.get("provisioning").and_then(|p| p.get("entities")).and_then(Value::as_object) else {
            continue;
        };
        let ep = join(&join(g.path, "provisioning"), "entities");
        for (id, ent) in em {
            let ip = join(&ep, id);
            match listed.get(id.as_str()) {
                Some((og, op)) => cx.report(&ip, format!("expected an entity listed by one group only (its calls go to one group), found {} in group {} and in group {og} ({op})", quote(id), g.group)),
                None => {
                    listed.insert(id, (g.group, ip.clone()));
                }
            }
            if let Some(tree) = site.tree() {
                owners(cx, tree, g.group, id, ent, &ip);
            }
        }
    }
}

/// Reports the domains of entity `id` (listed by group `g`) that another group serves.
fn owners(cx: &mut Check, tree: &DomainTree, g: u32, id: &str, ent: &Value, p: &str) {
    let Some(list) = ent.get("domains").and_then(Value::as_array) else {
        return;
    };
    let mut by_group: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (k, d) in list.iter().enumerate() {
        let Some(c) = d.as_str().and_then(|d| canonical(d).ok()) else {
            continue;
        };
        let Some(owner) = tree.route(&c) else {
            continue;
        };
        if owner != g {
            cx.report(
                &index(&join(p, "domains"), k),
                format!(
                    "expected a domain served by group {g}, whose provisioning section lists entity {}, found {} served by group {owner}",
                    quote(id),
                    quote(&c)
                ),
            );
        }
        by_group.entry(owner).or_default().push(c);
    }
    if by_group.len() > 1 {
        let parts: Vec<String> = by_group.iter().map(|(og, ds)| format!("group {og} ({})", ds.join(", "))).collect();
        cx.report(&join(p, "domains"), format!(
            "expected the domains of one group (a SIP server's calls go to one group), found domains of {}: list one entity per group instead",
            parts.join(" and ")
        ));
    }
}

/// An SQL identifier, optionally schema-qualified (safe to put in a query unquoted).
fn is_table(t: &str) -> bool {
    let ident = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut parts = t.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), None, _) => ident(a),
        (Some(a), Some(b), None) => ident(a) && ident(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::is_entity_id;

    #[test]
    fn entity_id_syntax() {
        assert!(is_entity_id("12:34:56:78:9a:bc"));
        for bad in
            ["12:34:56:78:9A:BC", "12:34:56:78:9a", "12-34-56-78-9a-bc", "12:34:56:78:9a:bg", "t1.example.ru", "", "12:34:56:78:9a:bc:"]
        {
            assert!(!is_entity_id(bad), "{bad}");
        }
    }
}
