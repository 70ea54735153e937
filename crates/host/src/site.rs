//! The site's state, as any instance can tell it from the coordinator: every item of
//! every group (its probes, its services, what other services announced, and the group
//! itself), each with its state, since when and why; the site's state is the worst of
//! them, since the earliest of the items in that state.
//!
//! Each group's items are read from its KV (`kv_list`), as its monitoring service
//! recorded them; a group's own state is read live from the cluster view (no active
//! instance: failing), with since when from the records other groups' monitoring made
//! (a site of one group cannot say since when it has none). Items of a group with no
//! active instance are shown as last recorded, marked `stale`.

use crate::items::{self, Health, Item};
use mware_config::Site;
use mware_coord::{CoordError, Coordinator, GroupView};
use serde::Serialize;

/// One item of the site's state.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ItemView {
    /// The group it belongs to.
    pub group: u32,
    /// `group`, `probe`, `service`, or the announcing service (`pgctl`...).
    pub kind: String,
    /// Its name within its kind.
    pub name: String,
    /// Its state.
    pub state: Health,
    /// Since when, ms since the Unix epoch (`None`: not known).
    pub since_ms: Option<u64>,
    /// Why, in words.
    pub reason: String,
    /// True when the group has no active instance: shown as last recorded.
    pub stale: bool,
}

/// The site's state.
#[derive(Debug, Clone, Serialize)]
pub struct SiteView {
    /// Site name.
    pub site: String,
    /// The worst state of the items.
    pub state: Health,
    /// Since when the site is in that state (the earliest such item), if known.
    pub since_ms: Option<u64>,
    /// What is wrong, in words (or that nothing is).
    pub summary: String,
    /// Every item, worst first.
    pub items: Vec<ItemView>,
}

/// Reads the site's state from the coordinator.
pub async fn read(coord: &dyn Coordinator, site: &Site) -> Result<SiteView, CoordError> {
    let views = coord.cluster().await?;
    let mut recorded: Vec<(u32, Vec<Item>)> = vec![];
    for g in site.groups() {
        recorded.push((g, items::load(coord, g).await?));
    }
    Ok(build(site, &views, &recorded))
}

/// The names of the probes a group's monitoring runs: none when its `monitoring` section
/// turns it off. The section belongs to the monitoring service (`mware-monitor`, which
/// checked it when the file was validated); the site's state needs only these names, and
/// other services (alarms) read the state too, so they are read here from the section as
/// written rather than through that crate.
fn configured_probes(role: &mware_config::Role) -> Vec<String> {
    let Some(m) = role.sections.raw("monitoring") else { return vec![] };
    if m.get("enabled").and_then(serde_json::Value::as_bool) == Some(false) {
        return vec![];
    }
    let probes = m.get("probes").and_then(serde_json::Value::as_array);
    probes.into_iter().flatten().filter_map(|p| p.get("name")?.as_str().map(str::to_string)).collect()
}

/// Builds the site's state from the cluster view and each group's recorded items.
pub fn build(site: &Site, views: &[GroupView], recorded: &[(u32, Vec<Item>)]) -> SiteView {
    let mut out: Vec<ItemView> = vec![];
    for &(g, ref items) in recorded {
        let view = views.iter().find(|v| v.group == g);
        let leader = view.and_then(|v| v.leader.as_ref());
        out.push(group_item(g, view, recorded));
        let stale = leader.is_none();
        let probes = site.group_members(g).first().map(|p| configured_probes(p.role)).unwrap_or_default();
        let configured = |name: &str| probes.iter().any(|p| p == name);
        for i in items.iter().filter(|i| i.kind != "group") {
            if i.kind == "probe" && !configured(&i.name) {
                continue;
            }
            let reason = if stale {
                format!("{} (as last recorded by {}; group {g} has no active instance)", i.reason, i.instance)
            } else {
                i.reason.clone()
            };
            out.push(ItemView {
                group: g,
                kind: i.kind.clone(),
                name: i.name.clone(),
                state: i.state,
                since_ms: Some(i.since_ms),
                reason,
                stale,
            });
        }
        {
            for p in probes.iter().filter(|p| !items.iter().any(|i| i.kind == "probe" && &i.name == *p)) {
                let reason =
                    if stale { format!("not checked: group {g} has no active instance to run it") } else { "not checked yet".to_string() };
                out.push(ItemView {
                    group: g,
                    kind: "probe".into(),
                    name: p.clone(),
                    state: Health::Unknown,
                    since_ms: None,
                    reason,
                    stale,
                });
            }
        }
    }
    out.sort_by(|a, b| b.state.cmp(&a.state).then(a.group.cmp(&b.group)).then(a.kind.cmp(&b.kind)).then(a.name.cmp(&b.name)));
    let state = out.iter().map(|i| i.state).max().unwrap_or(Health::Ok);
    let worst: Vec<&ItemView> = out.iter().filter(|i| i.state == state).collect();
    let since_ms = worst.iter().filter_map(|i| i.since_ms).min();
    let summary = if state == Health::Ok {
        format!("ok: all {} items are ok", out.len())
    } else {
        let names: Vec<String> = worst.iter().take(5).map(|i| label(i)).collect();
        let more = if worst.len() > 5 { format!(" and {} more", worst.len() - 5) } else { String::new() };
        format!("{}: {} of {} items {} ({}{more})", state.as_str(), worst.len(), out.len(), state.as_str(), names.join(", "))
    };
    SiteView { site: site.site.clone(), state, since_ms, summary, items: out }
}

/// `probe gns-sip (group 1)`.
pub fn label(i: &ItemView) -> String {
    match i.kind.as_str() {
        "group" => format!("group {}", i.name),
        k => format!("{k} {} (group {})", i.name, i.group),
    }
}

/// Group `g` from the cluster view; since when it has no active instance from the
/// records of every group's monitoring, newer than its last leadership.
fn group_item(g: u32, view: Option<&GroupView>, recorded: &[(u32, Vec<Item>)]) -> ItemView {
    if let Some(l) = view.and_then(|v| v.leader.as_ref()) {
        return ItemView {
            group: g,
            kind: "group".into(),
            name: g.to_string(),
            state: Health::Ok,
            since_ms: Some(l.since_ms),
            reason: format!("{} is active (epoch {})", l.instance, l.epoch),
            stale: false,
        };
    }
    let members = view.map(|v| v.members.as_slice()).unwrap_or_default();
    let live: Vec<&str> = members.iter().filter(|m| m.live).map(|m| m.info.instance.as_str()).collect();
    let after = view.and_then(|v| v.last_transition.as_ref()).filter(|t| t.epoch.is_some()).map_or(0, |t| t.at_ms);
    let since = recorded
        .iter()
        .flat_map(|(_, items)| items.iter())
        .filter(|i| i.kind == "group" && i.name == g.to_string() && i.state == Health::Failing && i.since_ms >= after)
        .map(|i| i.since_ms)
        .min();
    let reason = match (live.is_empty(), since) {
        (true, Some(_)) => format!("group {g} has no active instance and no live member"),
        (true, None) => format!("group {g} has no active instance and no live member (no monitoring service saw since when)"),
        (false, _) => format!("group {g} has no active instance; live members: {}", live.join(", ")),
    };
    ItemView { group: g, kind: "group".into(), name: g.to_string(), state: Health::Failing, since_ms: since, reason, stale: false }
}
