//! The target rules of the group's jobs, built from the site: the site's own endpoints
//! (every server address with each API port of its roles, the coordinator's endpoints)
//! and each satellite's allow-list (`devicemanager.allowed_targets`). The rules of a job
//! go with its message (the runner checks them again after DNS resolution); [`check`]
//! is the early, pure check of a submitted job.

use crate::section::DeviceManager;
use mware_config::Site;
use mware_jobs::TargetPattern;
use mware_jobs::{Problem, SiteEndpoint, Target, TargetRules, Verdict};
use std::collections::BTreeMap;

/// The rules of every satellite of the group, and of the pool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    site: Vec<SiteEndpoint>,
    allow: BTreeMap<String, Vec<TargetPattern>>,
}

impl Policy {
    /// The policy of a group with settings `cfg` on `site`.
    pub fn new(site: &Site, cfg: &DeviceManager) -> Policy {
        Policy { site: site_endpoints(site), allow: cfg.allowed_targets.clone() }
    }

    /// The rules of jobs of `satellite` (`None`: the pool, or in-process).
    pub fn rules(&self, satellite: Option<&str>) -> TargetRules {
        let key = satellite.unwrap_or("pool");
        TargetRules { scope: format!("devicemanager.allowed_targets.{key}"), allow: self.allow.get(key).cloned(), site: self.site.clone() }
    }
}

/// The early check of a job's target (already parsed): a refusal as a problem of
/// `field`. A host name is judged again once resolved, where the job runs.
pub fn check(policy: &Policy, field: &str, target: &str, satellite: Option<&str>) -> Option<Problem> {
    let t = Target::parse(target).ok()?;
    match policy.rules(satellite).decide(&t) {
        Verdict::Refused(why) => Some(Problem { field: field.into(), message: why }),
        Verdict::Allowed | Verdict::Resolve => None,
    }
}

/// `host` and port of an endpoint URL (`http://10.0.0.5:2379`, `https://[fd00::5]:2379`,
/// `etcd1:2379`); the port defaults to 2379.
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6.split_once(']')?;
        let port = p.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(2379);
        return Some((h.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None if !authority.is_empty() => Some((authority.to_string(), 2379)),
        None => None,
    }
}

/// Every address of every server with each API port of its roles, and the coordinator's
/// endpoints.
pub fn site_endpoints(site: &Site) -> Vec<SiteEndpoint> {
    let mut out = vec![];
    for s in &site.servers {
        for r in &s.roles {
            for addr in s.ifaces.values() {
                let what = format!("the API of instance {} (server {})", r.name, s.name);
                out.push(SiteEndpoint { host: addr.clone(), port: r.api_port, what });
            }
        }
    }
    for e in &site.coordination.endpoints {
        if let Some((host, port)) = host_port(e) {
            out.push(SiteEndpoint { host: host.clone(), port, what: format!("the coordinator endpoint {host}:{port}") });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../examples/site.json")).unwrap();
        // The whole example (every service's section): parsed without the registry; this
        // crate's own section is read from it as the service reads it.
        serde_json::from_str(&text).expect("example parses")
    }

    #[test]
    fn endpoints_of_urls() {
        assert_eq!(host_port("http://10.0.0.5:2379"), Some(("10.0.0.5".into(), 2379)));
        assert_eq!(host_port("https://u:p@[fd00::5]:2381/x"), Some(("fd00::5".into(), 2381)));
        assert_eq!(host_port("etcd1"), Some(("etcd1".into(), 2379)));
        assert_eq!(host_port("http://"), None);
    }

    #[test]
    fn refuses_the_instances_and_the_coordinator_of_the_example_site() {
        let site = site();
        let cfg = DeviceManager { satellites: vec!["sat1".into()], ..Default::default() };
        let policy = Policy::new(&site, &cfg);
        let me = site.instances().nth(1).unwrap();
        let api = me.api_addr().unwrap();
        let p = check(&policy, "target", &api, None).expect("an instance's API is refused");
        assert!(p.message.contains(&format!("the API of instance {}", me.role.name)), "{}", p.message);
        let etcd = site.coordination.endpoints.first().expect("the example uses etcd");
        let (h, port) = host_port(etcd).unwrap();
        let p = check(&policy, "target", &format!("{h}:{port}"), Some("sat1")).expect("the coordinator is refused");
        assert!(p.message.contains("the coordinator endpoint"), "{}", p.message);
        let p = check(&policy, "jobs[2].target", "169.254.169.254:80", None).unwrap();
        assert_eq!(p.field, "jobs[2].target");
        assert_eq!(
            p.message,
            "169.254.169.254 is link-local, refused by devicemanager's target rules (allow it in devicemanager.allowed_targets.pool)"
        );
        assert!(check(&policy, "target", "192.0.2.10:161", Some("sat1")).is_none());
    }

    #[test]
    fn each_satellite_has_its_own_allow_list() {
        let cfg: DeviceManager = serde_json::from_value(serde_json::json!({
            "satellites": ["sat1"], "allowed_targets": {"sat1": ["10.1.0.0/16"], "pool": ["127.0.0.1"]}
        }))
        .unwrap();
        let policy = Policy::new(&site(), &cfg);
        assert!(check(&policy, "target", "10.1.2.3:161", Some("sat1")).is_none());
        assert!(check(&policy, "target", "10.2.0.1:161", Some("sat1")).unwrap().message.contains("devicemanager.allowed_targets.sat1"));
        assert!(check(&policy, "target", "127.0.0.1:161", None).is_none());
        assert!(check(&policy, "target", "127.0.0.1:161", Some("sat1")).unwrap().message.contains("is loopback"));
    }
}
