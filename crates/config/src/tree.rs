//! The domain tree: which group serves a domain.
//!
//! Each group names the roots of its subtrees in `include_domains`; a domain is
//! served by the group naming its most specific ancestor (or the domain
//! itself), and by the one group with empty `include_domains` otherwise.
//!
//! Names are compared in their [`canonical`] form (lowercase ASCII, punycode for
//! Unicode names, no trailing dot), so `Tenant.RU.`, `тест.рф` and
//! `xn--e1aybc.xn--p1ai` are looked up as the site file's names are stored. A text that is
//! not a domain name is served by nobody: [`DomainTree::route`] answers `None` and
//! [`DomainTree::route_checked`] says why, never the default group.
//!
//! [`DomainTree::route`] checks the name in one pass without allocating when it is
//! already canonical-looking ASCII (see [`crate::domain`]), looks it up in a hash map, then
//! each parent in turn (`y.x.a.b`, `x.a.b`, `a.b`, `b`), so the first hit is the most
//! specific one. The hasher is a small multiply-rotate hash: the map's keys come from the
//! trusted site file, so a caller choosing the looked-up names cannot lengthen the probe
//! chains.

use crate::domain::{canonical, quick, DomainError, Quick};
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
    /// the same domain (which validation refuses), the first in file order keeps it; a name
    /// that is not a domain name (which validation refuses too) is left out.
    pub fn build(site: &Site) -> Self {
        let mut t = DomainTree::default();
        for p in site.instances() {
            if p.role.include_domains.is_empty() && t.default_group.is_none() {
                t.default_group = Some(p.role.group);
            }
            for d in &p.role.include_domains {
                let _ = t.insert(d, p.role.group);
            }
        }
        t
    }

    fn insert(&mut self, d: &str, group: u32) -> Result<(), DomainError> {
        let d = canonical(d)?;
        let n = labels(&d);
        if self.map.is_empty() {
            (self.min_labels, self.max_labels) = (n, n);
        } else {
            self.min_labels = self.min_labels.min(n);
            self.max_labels = self.max_labels.max(n);
        }
        self.map.entry(d.into_boxed_str()).or_insert(group);
        Ok(())
    }

    /// Builds a tree from `(domain, group)` pairs and the default group (for tests and
    /// tools); the first name that is not a domain name is refused.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, u32)>, default_group: Option<u32>) -> Result<Self, DomainError> {
        let mut t = DomainTree { default_group, ..DomainTree::default() };
        for (d, g) in entries {
            t.insert(d, g)?;
        }
        Ok(t)
    }

    /// The group serving `domain` (in any form [`canonical`] accepts): the group naming its
    /// most specific ancestor, else the default group. `None` when `domain` is not a domain
    /// name ([`DomainTree::route_checked`] says why) or the site has no default group.
    #[inline]
    pub fn route(&self, domain: &str) -> Option<u32> {
        let d = domain.strip_suffix('.').unwrap_or(domain);
        match quick(d) {
            Quick::Canonical(n) => self.walk(d, n),
            Quick::Upper(n) => self.walk(&d.to_ascii_lowercase(), n),
            Quick::Slow => canonical(domain).ok().and_then(|c| self.walk(&c, labels(&c))),
        }
    }

    /// Like [`DomainTree::route`], but a text that is not a domain name is an error saying
    /// why (for the CLI and the API, which must refuse it rather than answer nobody).
    pub fn route_checked(&self, domain: &str) -> Result<Option<u32>, DomainError> {
        let d = domain.strip_suffix('.').unwrap_or(domain);
        Ok(match quick(d) {
            Quick::Canonical(n) => self.walk(d, n),
            Quick::Upper(n) => self.walk(&d.to_ascii_lowercase(), n),
            Quick::Slow => {
                let c = canonical(domain)?;
                self.walk(&c, labels(&c))
            }
        })
    }

    /// Looks up the canonical name `d` of `n` labels and its parents, most specific first,
    /// skipping suffixes with more labels than any named domain or fewer than all of them.
    fn walk(&self, mut d: &str, mut n: usize) -> Option<u32> {
        if self.map.is_empty() {
            return self.default_group;
        }
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

    /// The canonical domains a group names, sorted.
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
}

/// The number of dot-separated labels (an empty string counts as one).
fn labels(d: &str) -> usize {
    d.bytes().filter(|b| *b == b'.').count() + 1
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
    use crate::DomainProblem;

    #[test]
    fn most_specific_ancestor_wins() {
        let t = DomainTree::from_entries([("a.b", 2), ("x.a.b", 3)], Some(1)).unwrap();
        assert_eq!(t.route("y.x.a.b"), Some(3));
        assert_eq!(t.route("x.a.b"), Some(3));
        assert_eq!(t.route("z.a.b"), Some(2));
        assert_eq!(t.route("a.b"), Some(2));
        assert_eq!(t.route("b"), Some(1));
        assert_eq!(t.route("xa.b"), Some(1), "a suffix that is not a whole label does not match");
        assert_eq!(t.route("Y.X.A.B."), Some(3), "case and trailing dot do not matter");
    }

    #[test]
    fn an_invalid_name_is_served_by_nobody() {
        let t = DomainTree::from_entries([("a.b", 2)], Some(1)).unwrap();
        for bad in ["bad..domain", "x..a.b", "a\0.b", "", ".", "-x.a.b", "a b", &"a".repeat(300), "%d1%82.ru"] {
            assert_eq!(t.route(bad), None, "{bad:?}");
            assert!(t.route_checked(bad).is_err(), "{bad:?}");
        }
        assert_eq!(t.route_checked("x..a.b").unwrap_err().problem(), &DomainProblem::EmptyLabel);
        assert_eq!(t.route_checked("X.A.B.").unwrap(), Some(2));
        assert_eq!(t.route_checked("other").unwrap(), Some(1));
    }

    #[test]
    fn unicode_and_punycode_forms_route_alike() {
        let t = DomainTree::from_entries([("тест.рф", 2), ("_sip._udp.a.b", 3)], Some(1)).unwrap();
        assert_eq!(t.domains_of(2), vec!["xn--e1aybc.xn--p1ai"]);
        for q in ["тест.рф", "ТЕСТ.РФ.", "xn--e1aybc.xn--p1ai", "pbx.тест.рф", "PBX.xn--e1aybc.XN--P1AI"] {
            assert_eq!(t.route(q), Some(2), "{q}");
        }
        assert_eq!(t.route("x._sip._udp.a.b"), Some(3));
        assert_eq!(t.route("рф"), Some(1));
        assert!(DomainTree::from_entries([("a..b", 2)], None).is_err());
    }
}
