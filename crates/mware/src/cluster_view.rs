//! The cluster as JSON, shared by `GET /api/v1/cluster` and `mware cluster`: below both
//! the HTTP API and the CLI, so neither reaches into the other.

use mware_config::Site;
use mware_coord::GroupView;
use serde_json::{json, Value};

/// The cluster as JSON: the config's groups merged with what the coordinator knows.
pub fn cluster_json(site: &Site, views: &[GroupView]) -> Value {
    let mut groups = site.groups();
    for v in views {
        if !groups.contains(&v.group) {
            groups.push(v.group);
        }
    }
    groups.sort_unstable();
    let out: Vec<Value> = groups
        .iter()
        .map(|g| {
            let view = views.iter().find(|v| v.group == *g);
            let leader = view.and_then(|v| v.leader.clone());
            let mut members: Vec<Value> = site
                .group_members(*g)
                .iter()
                .map(|p| {
                    let m = view.and_then(|v| v.members.iter().find(|m| m.info.instance == p.role.name));
                    json!({
                        "name": p.role.name, "server": p.server.name, "order": p.role.order,
                        "address": p.api_addr(), "live": m.map(|m| m.live).unwrap_or(false),
                        "active": leader.as_ref().map(|l| l.instance == p.role.name).unwrap_or(false),
                    })
                })
                .collect();
            if let Some(v) = view {
                for m in v.members.iter().filter(|m| site.instance(&m.info.instance).is_none()) {
                    members.push(json!({"name": m.info.instance, "order": m.info.order, "address": m.info.address,
                        "live": m.live, "active": leader.as_ref().map(|l| l.instance == m.info.instance).unwrap_or(false),
                        "note": "not in the running config"}));
                }
            }
            let domains: Vec<String> = site.group_members(*g).first().map(|p| p.role.include_domains.clone()).unwrap_or_default();
            json!({
                "group": g,
                "domains": domains,
                "active": leader.as_ref().map(|l| l.instance.clone()),
                "epoch": leader.as_ref().map(|l| l.epoch),
                "since_ms": leader.as_ref().map(|l| l.since_ms),
                "members": members,
                "last_transition": view.and_then(|v| v.last_transition.clone()),
            })
        })
        .collect();
    json!({"site": site.site, "groups": out})
}
