//! The domain tree: which group serves a domain. (Stub: to be completed.)

use crate::model::Site;

/// Maps a domain to the group that serves it.
#[derive(Debug, Clone, Default)]
pub struct DomainTree {
    default_group: Option<u32>,
    entries: Vec<(String, u32)>,
}

impl DomainTree {
    /// Builds the tree from the enabled instances of a (validated) site.
    pub fn build(site: &Site) -> Self {
        let mut t = DomainTree::default();
        for p in site.instances() {
            if p.role.include_domains.is_empty() {
                t.default_group = Some(p.role.group);
            }
            for d in &p.role.include_domains {
                t.entries.push((crate::tree::normalize(d), p.role.group));
            }
        }
        t
    }
    /// The group serving `domain`: the group naming its most specific ancestor, else the
    /// default group. `None` only when the site has no default group.
    pub fn route(&self, domain: &str) -> Option<u32> {
        let d = normalize(domain);
        self.entries
            .iter()
            .filter(|(e, _)| d == *e || d.ends_with(&format!(".{e}")))
            .max_by_key(|(e, _)| e.len())
            .map(|(_, g)| *g)
            .or(self.default_group)
    }
}

/// Lowercase, without a trailing dot.
pub fn normalize(d: &str) -> String {
    d.trim_end_matches('.').to_ascii_lowercase()
}
