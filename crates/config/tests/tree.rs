//! The domain tree against a brute-force scan over random trees: the group
//! naming the longest ancestor (or the name itself) wins, else the default.

use mware_config::DomainTree;
use proptest::prelude::*;

fn name(max_labels: usize) -> impl Strategy<Value = String> {
    // A tiny alphabet so that random names often nest inside each other.
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "ab", "x-1"]), 1..=max_labels).prop_map(|l| l.join("."))
}

fn brute(entries: &[(String, u32)], default: Option<u32>, query: &str) -> Option<u32> {
    let q = query.strip_suffix('.').unwrap_or(query).to_ascii_lowercase();
    let mut best: Option<(usize, u32)> = None;
    for (e, g) in entries {
        if (q == *e || q.ends_with(&format!(".{e}"))) && best.is_none_or(|(len, _)| e.len() > len) {
            best = Some((e.len(), *g));
        }
    }
    best.map(|(_, g)| g).or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
    #[test]
    fn route_matches_brute_force(
        raw in prop::collection::vec((name(4), 2u32..8), 0..20),
        default in prop::option::of(Just(1u32)),
        queries in prop::collection::vec((name(6), any::<bool>(), any::<bool>()), 1..20),
    ) {
        // Each domain belongs to the first group that names it, as in the tree.
        let mut entries: Vec<(String, u32)> = Vec::new();
        for (d, g) in &raw {
            if !entries.iter().any(|(e, _)| e == d) {
                entries.push((d.clone(), *g));
            }
        }
        let tree = DomainTree::from_entries(raw.iter().map(|(d, g)| (d.as_str(), *g)), default).unwrap();
        for (q, upper, dot) in queries {
            let q = if upper { q.to_ascii_uppercase() } else { q };
            let q = if dot { format!("{q}.") } else { q };
            prop_assert_eq!(tree.route(&q), brute(&entries, default, &q), "query {}", q);
        }
    }
}

/// A label of the full alphabet, mixed case, long enough to span several 8-byte words.
fn wide_label() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9_]{1,3}", "[a-zA-Z0-9_][a-zA-Z0-9_-]{0,18}[a-zA-Z0-9_]", "(xn--|XN--)[a-z0-9]{1,6}", "[a-z0-9-]{1,4}"]
}

fn wide_name(max_labels: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(wide_label(), 1..=max_labels).prop_map(|l| l.join("."))
}

/// The reference: the canonical form (`None` when there is none), then brute force.
fn reference(entries: &[(String, u32)], default: Option<u32>, query: &str) -> Option<u32> {
    let q = mware_config::canonical(query).ok()?;
    brute(entries, default, &q)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    /// Long labels, every allowed character, mixed case, punycode-looking and invalid labels,
    /// and queries made of a stored name with labels in front (so most of them hit).
    #[test]
    fn route_matches_a_reference_on_wide_names(
        raw in prop::collection::vec((wide_name(4), 2u32..60), 0..40),
        default in prop::option::of(Just(1u32)),
        queries in prop::collection::vec((prop::option::of(0usize..40), wide_name(3), any::<bool>(), any::<bool>()), 1..30),
    ) {
        let mut entries: Vec<(String, u32)> = Vec::new();
        let mut valid: Vec<(&str, u32)> = Vec::new();
        for (d, g) in &raw {
            let Ok(c) = mware_config::canonical(d) else { continue };
            valid.push((d.as_str(), *g));
            if !entries.iter().any(|(e, _)| *e == c) {
                entries.push((c, *g));
            }
        }
        let tree = DomainTree::from_entries(valid.iter().copied(), default).unwrap();
        prop_assert_eq!(tree.len(), entries.len());
        for (base, front, upper, dot) in queries {
            let q = match base.and_then(|i| valid.get(i)) {
                Some((d, _)) => format!("{front}.{d}"),
                None => front,
            };
            let q = if upper { q.to_ascii_uppercase() } else { q };
            let q = if dot { format!("{q}.") } else { q };
            prop_assert_eq!(tree.route(&q), reference(&entries, default, &q), "query {}", q);
            prop_assert_eq!(tree.route_checked(&q).ok().flatten(), reference(&entries, default, &q), "query {}", q);
        }
    }
}
