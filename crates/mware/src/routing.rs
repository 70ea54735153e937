//! The answer to "who serves this domain": the group and its enabled instances in
//! failover order. Shared by `mware route` and `GET /api/v1/route`.

use mware_config::{DomainTree, Site};
use serde_json::{json, Value};

/// The route of one domain, as JSON.
pub fn route_json(site: &Site, tree: &DomainTree, domain: &str) -> Value {
    match tree.route(domain) {
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
            json!({"domain": domain, "group": group, "instances": instances})
        }
        None => json!({"domain": domain, "group": null, "error": "no group serves this domain (the site has no group without include_domains)"}),
    }
}

/// The route of one domain, as a text line.
pub fn route_line(v: &Value) -> String {
    let d = v["domain"].as_str().unwrap_or("");
    match v["group"].as_u64() {
        Some(g) => {
            let names: Vec<String> = v["instances"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|i| format!("{}(order {})", i["name"].as_str().unwrap_or("?"), i["order"]))
                        .collect()
                })
                .unwrap_or_default();
            format!("{d}\tgroup {g}\t{}", names.join(" -> "))
        }
        None => format!("{d}\tunserved\t{}", v["error"].as_str().unwrap_or("")),
    }
}
