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
//! [`DomainTree::route`] checks the name (the rule of [`crate::domain`]'s quick check) and
//! finds its labels in one pass: 16 bytes at a time for a name of up to 64 bytes
//! ([`crate::short`]), a byte at a time for a longer one ([`crate::domain::scan`]). It then
//! probes the table with each label suffix (`y.x.a.b`, `x.a.b`, `a.b`, `b`) whose label
//! count some named domain has, longest first, each hashed just before its probe
//! ([`crate::name_hash`]: one step a suffix); the first hit is the most specific ancestor.
//! The text is compared only when the stored tag matches, case ignored, and nothing is
//! allocated unless the name needs IDNA.

use crate::domain::{canonical, scan, DomainError, Quick, MAX_NAME_LEN};
use crate::model::Site;
use crate::name_hash::{suffix_hash, Folded};
use crate::short::Short;
use crate::table::SuffixTable;

/// Maps a domain to the group that serves it.
#[derive(Debug, Clone, Default)]
pub struct DomainTree {
    default_group: Option<u32>,
    table: SuffixTable,
    /// Fewest and most labels of a named domain: a lookup skips suffixes outside this range.
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
        let n = match scan(&d, true, |_| {}) {
            Quick::Canonical(n) | Quick::Upper(n) => n,
            Quick::Slow => unreachable!("a canonical name passes the scan"),
        };
        if self.table.len() == 0 {
            (self.min_labels, self.max_labels) = (n, n);
        } else {
            self.min_labels = self.min_labels.min(n);
            self.max_labels = self.max_labels.max(n);
        }
        self.table.insert(suffix_hash(d.as_bytes()), &d, group);
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
        self.route_checked(domain).unwrap_or(None)
    }

    /// Like [`DomainTree::route`], but a text that is not a domain name is an error saying
    /// why (for the CLI and the API, which must refuse it rather than answer nobody).
    #[inline]
    pub fn route_checked(&self, domain: &str) -> Result<Option<u32>, DomainError> {
        let d = domain.strip_suffix('.').unwrap_or(domain);
        if let Some(s) = Short::check(d) {
            return Ok(self.find_short(&s));
        }
        Ok(match self.find_long(d, false) {
            Some(g) => g,
            None => self.find_long(&canonical(domain)?, true).flatten(),
        })
    }

    /// The general way, for a name longer than [`Short`] takes, or a canonical name made by
    /// IDNA: one pass for the check and where the labels start, then the suffixes longest
    /// first among those with as many labels as some named domain. `None` when the name is
    /// not canonical-looking (`punycode` allows `??--` labels).
    fn find_long(&self, d: &str, punycode: bool) -> Option<Option<u32>> {
        // starts[k]: where the suffix of k labels starts (a name has at most 127 labels).
        let mut starts = [0u8; MAX_NAME_LEN / 2 + 2];
        let labels = match scan(d, punycode, |s| starts[s.labels] = s.start as u8) {
            Quick::Canonical(n) | Quick::Upper(n) => n,
            Quick::Slow => return None,
        };
        let (b, folded) = (d.as_bytes(), Folded::new(d.as_bytes()));
        let mut k = labels.min(self.max_labels);
        while k >= self.min_labels.max(1) {
            let start = usize::from(starts[k]);
            if let Some(g) = self.table.get(folded.suffix(b, start), &b[start..]) {
                return Some(Some(g));
            }
            k -= 1;
        }
        Some(self.default_group)
    }

    /// Looks the suffixes of a short name up, longest (most specific) first, among those
    /// with as many labels as some named domain, each hashed just before its probe: the
    /// first hit wins.
    #[inline(always)]
    fn find_short(&self, s: &Short) -> Option<u32> {
        let probes = (s.labels().min(self.max_labels) + 1).saturating_sub(self.min_labels.max(1));
        for (start, hash) in s.longest_first(self.max_labels).take(probes) {
            if let Some(g) = self.table.get_short(hash, &s.text, start, s.len - start) {
                return Some(g);
            }
        }
        self.default_group
    }

    /// The group with empty `include_domains`, serving the rest of the tree.
    pub fn default_group(&self) -> Option<u32> {
        self.default_group
    }

    /// The canonical domains a group names, sorted.
    pub fn domains_of(&self, group: u32) -> Vec<&str> {
        let mut v: Vec<&str> = self.table.iter().filter(|(_, g)| *g == group).map(|(d, _)| d).collect();
        v.sort_unstable();
        v
    }

    /// How many domains the groups name in all.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no group names a domain (everything goes to the default group).
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
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

    #[test]
    fn names_deeper_than_the_kept_suffixes() {
        let labels: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
        let suffix = |n: usize| labels[20 - n..].join(".");
        let t = DomainTree::from_entries([(suffix(2).as_str(), 2), (&suffix(15), 3), (&suffix(20), 4)], Some(1)).unwrap();
        assert_eq!(t.route(&format!("x.{}", suffix(20))), Some(4), "21 labels, a hit past the kept ones");
        assert_eq!(t.route(&suffix(20)), Some(4));
        assert_eq!(t.route(&suffix(19)), Some(3));
        assert_eq!(t.route(&format!("y.Y.{}", suffix(15).to_uppercase())), Some(3));
        assert_eq!(t.route(&suffix(16)), Some(3));
        assert_eq!(t.route(&suffix(14)), Some(2));
        assert_eq!(t.route("z.l18.l19"), Some(2));
        assert_eq!(t.route("l19"), Some(1));
    }

    #[test]
    fn the_table_grows_and_keeps_every_name() {
        let names: Vec<String> = (0..3000).map(|i| format!("n{i}.{}.ru", i % 7)).collect();
        let t = DomainTree::from_entries(names.iter().enumerate().map(|(i, d)| (d.as_str(), i as u32)), None).unwrap();
        assert_eq!(t.len(), 3000);
        for (i, d) in names.iter().enumerate() {
            assert_eq!(t.route(&format!("Host.{d}")), Some(i as u32), "{d}");
        }
        assert_eq!(t.route("n3000.1.ru"), None);
        assert_eq!(t.domains_of(5), vec!["n5.5.ru"]);
    }
}
