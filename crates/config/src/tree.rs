//! The domain tree: which group serves a domain.
//!
//! Each group names the roots of its subtrees in `include_domains`; a domain is
//! served by the group naming its most specific ancestor (or the domain
//! itself), and by the one group with empty `include_domains` otherwise.
//!
//! [`DomainTree::route`] looks the name up in a hash map, then each parent in
//! turn (`y.x.a.b`, `x.a.b`, `a.b`, `b`), so the first hit is the most specific
//! one. Names are compared lowercase without a trailing dot; a name that is
//! already lowercase is looked up without allocating. The hasher is a small
//! multiply-rotate hash: the map's keys come from the trusted site file, so a
//! caller choosing the looked-up names cannot lengthen the probe chains.

use crate::model::Site;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Maps a domain to the group that serves it.
#[derive(Debug, Clone, Default)]
pub struct DomainTree {
    default_group: Option<u32>,
    map: HashMap<Box<str>, u32, BuildHasherDefault<FxHasher>>,
    /// Fewest and most labels of a named domain: the walk skips suffixes outside this range.
    min_labels: usize,
    max_labels: usize,
}

impl DomainTree {
    /// Builds the tree from the enabled instances of a (validated) site. If two groups name
    /// the same domain (which validation refuses), the first in file order keeps it.
    pub fn build(site: &Site) -> Self {
        let mut t = DomainTree::default();
        for p in site.instances() {
            if p.role.include_domains.is_empty() && t.default_group.is_none() {
                t.default_group = Some(p.role.group);
            }
            for d in &p.role.include_domains {
                t.insert(d, p.role.group);
            }
        }
        t
    }

    fn insert(&mut self, d: &str, group: u32) {
        let d = normalize(d);
        let n = labels(&d);
        if self.map.is_empty() {
            (self.min_labels, self.max_labels) = (n, n);
        } else {
            self.min_labels = self.min_labels.min(n);
            self.max_labels = self.max_labels.max(n);
        }
        self.map.entry(d.into_boxed_str()).or_insert(group);
    }

    /// Builds a tree from `(domain, group)` pairs and the default group (for tests and tools).
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, u32)>, default_group: Option<u32>) -> Self {
        let mut t = DomainTree { default_group, ..DomainTree::default() };
        for (d, g) in entries {
            t.insert(d, g);
        }
        t
    }

    /// The group serving `domain`: the group naming its most specific ancestor, else the
    /// default group. `None` only when the site has no default group.
    pub fn route(&self, domain: &str) -> Option<u32> {
        let d = domain.strip_suffix('.').unwrap_or(domain);
        if d.bytes().any(|b| b.is_ascii_uppercase()) {
            self.walk(&d.to_ascii_lowercase())
        } else {
            self.walk(d)
        }
    }

    /// Looks up `d` and its parents, most specific first, skipping suffixes with more labels
    /// than any named domain or fewer than all of them.
    fn walk(&self, mut d: &str) -> Option<u32> {
        if self.map.is_empty() {
            return self.default_group;
        }
        let mut n = labels(d);
        while n >= self.min_labels {
            if n <= self.max_labels {
                if let Some(g) = self.map.get(d) {
                    return Some(*g);
                }
            }
            match d.find('.') {
                Some(i) => d = &d[i + 1..],
                None => break,
            }
            n -= 1;
        }
        self.default_group
    }

    /// The group with empty `include_domains`, serving the rest of the tree.
    pub fn default_group(&self) -> Option<u32> {
        self.default_group
    }

    /// The normalised domains a group names, sorted.
    pub fn domains_of(&self, group: u32) -> Vec<&str> {
        let mut v: Vec<&str> = self.map.iter().filter(|(_, g)| **g == group).map(|(d, _)| &**d).collect();
        v.sort_unstable();
        v
    }

    /// How many domains the groups name in all.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no group names a domain (everything goes to the default group).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Lowercase, without a trailing dot (the form domains are compared in).
    pub fn normalize(d: &str) -> String {
        normalize(d)
    }
}

/// The number of dot-separated labels (an empty string counts as one).
fn labels(d: &str) -> usize {
    d.bytes().filter(|b| *b == b'.').count() + 1
}

/// Lowercase, without a trailing dot.
pub fn normalize(d: &str) -> String {
    d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase()
}

/// Why `d` is not a valid domain name, or `None` when it is. A single trailing dot is allowed.
pub(crate) fn domain_problem(d: &str) -> Option<String> {
    const RULE: &str = "expected a domain name (dot-separated labels of 1 to 63 latin letters, digits or '-' not at either end, 253 characters at most)";
    let name = d.strip_suffix('.').unwrap_or(d);
    let shown = crate::validate::quote_str(d);
    if name.is_empty() {
        return Some(format!("{RULE}, found {shown}"));
    }
    if name.len() > 253 {
        return Some(format!("{RULE}, found a name of {} characters", name.len()));
    }
    for label in name.split('.') {
        let why = if label.is_empty() {
            "an empty label".to_string()
        } else if label.len() > 63 {
            format!("a label of {} characters", label.len())
        } else if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            format!("the character {c:?}")
        } else if label.starts_with('-') || label.ends_with('-') {
            "a label with '-' at an end".to_string()
        } else {
            continue;
        };
        return Some(format!("{RULE}, found {shown} with {why}"));
    }
    None
}

/// FxHash (as in rustc): one rotate, xor and multiply per 8 bytes.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_ancestor_wins() {
        let t = DomainTree::from_entries([("a.b", 2), ("x.a.b", 3)], Some(1));
        assert_eq!(t.route("y.x.a.b"), Some(3));
        assert_eq!(t.route("x.a.b"), Some(3));
        assert_eq!(t.route("z.a.b"), Some(2));
        assert_eq!(t.route("a.b"), Some(2));
        assert_eq!(t.route("b"), Some(1));
        assert_eq!(t.route("xa.b"), Some(1), "a suffix that is not a whole label does not match");
        assert_eq!(t.route("Y.X.A.B."), Some(3), "case and trailing dot do not matter");
    }

    #[test]
    fn domain_syntax() {
        assert_eq!(domain_problem("tenant1.example.ru"), None);
        assert_eq!(domain_problem("Example.RU."), None);
        assert_eq!(domain_problem("x-1.a"), None);
        for bad in ["", ".", "a..b", "-a.b", "a-.b", "a_b.c", &"a".repeat(64), &format!("{}.x", "a.".repeat(130))] {
            assert!(domain_problem(bad).is_some(), "{bad:?} should be refused");
        }
    }
}
