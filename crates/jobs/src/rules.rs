//! Which targets a job may reach, so that device jobs cannot be turned against the site
//! itself or the machine's own services (server-side request forgery).
//!
//! [`TargetRules`] travel with each job ([`crate::JobMessage::rules`]) and are checked
//! twice: by mware when the job is submitted ([`TargetRules::decide`], pure: a literal
//! address is judged at once, a host name only by its name) and by whoever runs it
//! after DNS resolution ([`TargetRules::resolve`]): every address a name resolves to is
//! judged, and the job connects only to those addresses (a name that later resolves
//! elsewhere, DNS rebinding, gains nothing).
//!
//! Refused: loopback, link-local, multicast, broadcast and unspecified addresses, unless
//! the satellite's allow-list names an address or range inside that class; the site's
//! own endpoints (every instance's API port, the coordinator's endpoints), always; and,
//! when the satellite has an allow-list, anything it does not name.

use crate::spec::Target;
use crate::TargetPattern;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// Address classes refused unless an allow-list entry lies inside them.
const CLASSES: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified"),
    ("::/128", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("ff00::/8", "multicast"),
    ("255.255.255.255/32", "broadcast"),
];

/// One of the site's own endpoints: never a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteEndpoint {
    /// Address or host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// What it is, for the refusal (`the API of instance mware2`).
    pub what: String,
}

/// The rules of one satellite (or the pool).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRules {
    /// Where the allow-list is configured (`devicemanager.allowed_targets.sat1`), for
    /// messages.
    #[serde(default)]
    pub scope: String,
    /// The allow-list; `None`: any target but the refused ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<TargetPattern>>,
    /// The site's own endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub site: Vec<SiteEndpoint>,
}

/// What the pure check says about a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed as it is (a literal address that passed every rule).
    Allowed,
    /// A host name that passed what can be judged without DNS: its addresses are judged
    /// once resolved.
    Resolve,
    /// Refused, with the reason in words (it names the rule).
    Refused(String),
}

fn class_of(ip: IpAddr) -> Option<(TargetPattern, &'static str)> {
    CLASSES.iter().map(|(r, name)| (TargetPattern::parse(r).expect("class range"), *name)).find(|(r, _)| r.contains(ip))
}

fn is_localhost(name: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    n == "localhost" || n.ends_with(".localhost")
}

impl TargetRules {
    fn tail(&self) -> String {
        if self.scope.is_empty() {
            "refused by devicemanager's target rules".into()
        } else {
            format!("refused by devicemanager's target rules (allow it in {})", self.scope)
        }
    }

    fn allow_list(&self) -> &[TargetPattern] {
        self.allow.as_deref().unwrap_or(&[])
    }

    /// The site endpoint at `host:port`, compared by address or by name.
    fn site_endpoint(&self, host: &str, port: u16) -> Option<&SiteEndpoint> {
        let ip = host.parse::<IpAddr>().ok().map(|i| i.to_canonical());
        self.site.iter().find(|e| {
            e.port == port
                && match (ip, e.host.parse::<IpAddr>().ok()) {
                    (Some(a), Some(b)) => a == b.to_canonical(),
                    _ => e.host.eq_ignore_ascii_case(host),
                }
        })
    }

    /// Judges an address (`name_allowed`: the target's name is in the allow-list).
    pub fn decide_addr(&self, shown: &str, addr: SocketAddr, name_allowed: bool) -> Result<(), String> {
        let ip = addr.ip().to_canonical();
        if let Some(e) = self.site_endpoint(&ip.to_string(), addr.port()) {
            return Err(format!("{shown} is {}, one of the site's own endpoints, always refused by devicemanager's target rules", e.what));
        }
        let listed = |ip: IpAddr| self.allow_list().iter().any(|p| p.contains(ip));
        if let Some((range, class)) = class_of(ip) {
            if !self.allow_list().iter().any(|p| p.within(&range) && p.contains(ip)) {
                return Err(format!("{shown} is {class}, {}", self.tail()));
            }
            return Ok(());
        }
        if self.allow.is_some() && !name_allowed && !listed(ip) {
            return Err(format!("{shown} is not in the satellite's allow-list, {}", self.tail()));
        }
        Ok(())
    }

    /// The pure check of a target, before any DNS.
    pub fn decide(&self, target: &Target) -> Verdict {
        let shown = target.host.clone();
        if let Ok(ip) = target.host.parse::<IpAddr>() {
            return match self.decide_addr(&shown, SocketAddr::new(ip, target.port), false) {
                Ok(()) => Verdict::Allowed,
                Err(e) => Verdict::Refused(e),
            };
        }
        if let Some(e) = self.site_endpoint(&target.host, target.port) {
            return Verdict::Refused(format!(
                "{shown} is {}, one of the site's own endpoints, always refused by devicemanager's target rules",
                e.what
            ));
        }
        let name_allowed = self.allow_list().iter().any(|p| p.matches_name(&target.host));
        if is_localhost(&target.host) && !name_allowed {
            let loopback = TargetPattern::parse("127.0.0.0/8").expect("range");
            if !self.allow_list().iter().any(|p| p.within(&loopback)) {
                return Verdict::Refused(format!("{shown} names loopback, {}", self.tail()));
            }
        }
        let has_ranges = self.allow_list().iter().any(|p| matches!(p, TargetPattern::Net(..)));
        if self.allow.is_some() && !name_allowed && !has_ranges {
            return Verdict::Refused(format!("{shown} is not in the satellite's allow-list, {}", self.tail()));
        }
        Verdict::Resolve
    }

    /// Resolves `target` and judges every address it has: the addresses to connect to,
    /// or the refusal (a name with one refused address is refused).
    pub async fn resolve(&self, target: &Target) -> Result<Vec<SocketAddr>, String> {
        if let Verdict::Refused(e) = self.decide(target) {
            return Err(e);
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("cannot resolve {target}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("cannot resolve {target}: no address"));
        }
        let named = target.host.parse::<IpAddr>().is_err();
        let name_allowed = named && self.allow_list().iter().any(|p| p.matches_name(&target.host));
        let site = self.resolved_site().await;
        for a in &addrs {
            let shown = if named { format!("{} resolves to {}, which", target.host, a.ip()) } else { a.ip().to_string() };
            site.decide_addr(&shown, *a, name_allowed)?;
        }
        Ok(addrs)
    }

    /// These rules with the site endpoints given by name resolved to their addresses too.
    async fn resolved_site(&self) -> TargetRules {
        let mut out = self.clone();
        for e in &self.site {
            if e.host.parse::<IpAddr>().is_ok() {
                continue;
            }
            if let Ok(found) = tokio::net::lookup_host((e.host.as_str(), e.port)).await {
                out.site.extend(found.map(|a| SiteEndpoint { host: a.ip().to_string(), port: e.port, what: e.what.clone() }));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    fn rules(allow: Option<&[&str]>) -> TargetRules {
        TargetRules {
            scope: "devicemanager.allowed_targets.pool".into(),
            allow: allow.map(|l| l.iter().map(|p| TargetPattern::parse(p).unwrap()).collect()),
            site: vec![
                SiteEndpoint { host: "10.0.0.2".into(), port: 8271, what: "the API of instance mware2".into() },
                SiteEndpoint { host: "etcd1.site".into(), port: 2379, what: "the coordinator endpoint http://etcd1.site:2379".into() },
            ],
        }
    }

    fn refused(r: &TargetRules, target: &str) -> String {
        match r.decide(&t(target)) {
            Verdict::Refused(e) => e,
            other => panic!("{target}: expected a refusal, found {other:?}"),
        }
    }

    #[test]
    fn refuses_the_special_classes_by_default_naming_the_rule() {
        let r = rules(None);
        assert_eq!(
            refused(&r, "169.254.169.254:80"),
            "169.254.169.254 is link-local, refused by devicemanager's target rules (allow it in devicemanager.allowed_targets.pool)"
        );
        assert!(refused(&r, "127.0.0.1:161").contains("is loopback"));
        assert!(refused(&r, "[::1]:22").contains("is loopback"));
        assert!(refused(&r, "[::ffff:127.0.0.1]:22").contains("is loopback"));
        assert!(refused(&r, "[fe80::1]:22").contains("is link-local"));
        assert!(refused(&r, "224.0.0.1:5000").contains("is multicast"));
        assert!(refused(&r, "0.0.0.0:80").contains("is unspecified"));
        assert!(refused(&r, "[::]:80").contains("is unspecified"));
        assert!(refused(&r, "255.255.255.255:9").contains("is broadcast"));
        assert!(refused(&r, "localhost:80").contains("names loopback"));
        assert_eq!(r.decide(&t("192.0.2.10:161")), Verdict::Allowed);
        assert_eq!(r.decide(&t("sw1.example.net:161")), Verdict::Resolve);
    }

    #[test]
    fn the_site_endpoints_are_always_refused() {
        let r = rules(Some(&["10.0.0.0/8", "0.0.0.0/0", "etcd1.site"]));
        assert!(refused(&r, "10.0.0.2:8271").contains("the API of instance mware2, one of the site's own endpoints"));
        assert!(refused(&r, "ETCD1.site:2379").contains("coordinator endpoint"));
        assert_eq!(r.decide(&t("10.0.0.2:22")), Verdict::Allowed, "another port of that server is a device like any other");
    }

    #[test]
    fn an_allow_list_allows_only_what_it_names_and_reopens_a_class_only_from_inside() {
        let r = rules(Some(&["192.0.2.0/24", "*.example.net", "127.0.0.1"]));
        assert_eq!(r.decide(&t("192.0.2.7:161")), Verdict::Allowed);
        assert_eq!(r.decide(&t("127.0.0.1:161")), Verdict::Allowed);
        assert!(refused(&r, "127.0.0.2:161").contains("is loopback"));
        assert!(refused(&r, "198.51.100.1:161").contains("not in the satellite's allow-list"));
        assert_eq!(r.decide(&t("sw1.example.net:161")), Verdict::Resolve);
        // A name not listed may still resolve into a listed range: judged after DNS.
        assert_eq!(r.decide(&t("other.org:161")), Verdict::Resolve);
        let names_only = rules(Some(&["*.example.net"]));
        assert!(refused(&names_only, "other.org:161").contains("not in the satellite's allow-list"));
        let everything = rules(Some(&["0.0.0.0/0", "::/0"]));
        assert!(refused(&everything, "127.0.0.1:161").contains("is loopback"), "0.0.0.0/0 does not reopen loopback");
        assert!(refused(&everything, "169.254.169.254:80").contains("is link-local"));
    }

    #[tokio::test]
    async fn after_resolution_every_address_is_judged() {
        let r = rules(None);
        let e = r.resolve(&t("LocalHost:80")).await.unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        // A listed name resolving to a refused address is refused (DNS rebinding).
        let r = rules(Some(&["localhost", "192.0.2.0/24"]));
        assert_eq!(r.decide(&t("localhost:80")), Verdict::Resolve);
        let e = r.resolve(&t("localhost:80")).await.unwrap_err();
        assert!(e.starts_with("localhost resolves to ") && e.contains("which is loopback"), "{e}");
        let allowed = rules(Some(&["127.0.0.1"]));
        assert_eq!(allowed.resolve(&t("127.0.0.1:9")).await.unwrap(), vec!["127.0.0.1:9".parse().unwrap()]);
        let numeric = rules(None);
        let e = numeric.resolve(&t("2130706433:80")).await.unwrap_err();
        assert!(e.contains("2130706433 resolves to 127.0.0.1, which is loopback"), "{e}");
    }
}
