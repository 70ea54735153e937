//! The answer to "who serves this domain": the group and its enabled instances in
//! failover order. Shared by `mware route` and `GET /api/v1/route`. A text that is not a
//! domain name is refused with the one rule's error ([`mware_config::canonical`]), never
//! answered with the default group.

use mware_config::{DomainError, DomainTree, Site};
use serde_json::{json, Value};

/// The route of one domain, as JSON (`domain` as given, `canonical` as compared), or why
/// `domain` is not a domain name.
pub fn route_json(site: &Site, tree: &DomainTree, domain: &str) -> Result<Value, DomainError> {
    let canonical = mware_config::canonical(domain)?;
    Ok(match tree.route(&canonical) {
        Some(group) => {
            let instances: Vec<Value> = site
                .group_members(group)
                .iter()
                .map(|p| {
                    json!({
                        "name": p.role.name,
                        "server": p.server.name,
                        "order": p.role.order,
                        "address": p.api_addr(),
                    })
                })
                .collect();
            json!({"domain": domain, "canonical": canonical, "group": group, "instances": instances})
        }
        None => json!({"domain": domain, "canonical": canonical, "group": null,
            "error": "no group serves this domain (the site has no group without include_domains)"}),
    })
}

/// The error answer for a text that is not a domain name: `{"error", "field": "domain"}`.
pub fn domain_error_json(e: &DomainError) -> Value {
    json!({"error": e.to_string(), "field": "domain"})
}

/// The route of one domain, as a text line.
pub fn route_line(v: &Value) -> String {
    let d = match (v["domain"].as_str(), v["canonical"].as_str()) {
        (Some(d), Some(c)) if d != c => format!("{d} ({c})"),
        (d, _) => d.unwrap_or("").to_string(),
    };
    match v["group"].as_u64() {
        Some(g) => {
            let names: Vec<String> = v["instances"]
                .as_array()
                .map(|a| a.iter().map(|i| format!("{}(order {})", i["name"].as_str().unwrap_or("?"), i["order"])).collect())
                .unwrap_or_default();
            format!("{d}\tgroup {g}\t{}", names.join(" -> "))
        }
        None => format!("{d}\tunserved\t{}", v["error"].as_str().unwrap_or("")),
    }
}
