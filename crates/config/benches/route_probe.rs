//! Router benchmark: lookups per second on a tree of 10,000 included domains,
//! against the naive peer (a linear scan of every included domain with
//! `ends_with`, keeping the longest match).
//!
//! Run: `cargo bench -p mware-config --bench route -- --measurement-time 3`

use mware_config::DomainTree;
use std::hint::black_box;

/// xorshift64*: deterministic, no extra dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn label(&mut self) -> String {
        let len = 3 + self.below(8) as usize;
        (0..len).map(|_| (b'a' + self.below(26) as u8) as char).collect()
    }
}

const TLDS: &[&str] = &["ru", "com", "net", "org", "example"];

/// 10,000 distinct domains of 2-5 labels under a few TLDs, spread over 50 groups.
fn domains(rng: &mut Rng) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while out.len() < 10_000 {
        // Half the names nest under an earlier one, so the tree has depth.
        let d = if !out.is_empty() && rng.below(2) == 0 {
            let parent = &out[rng.below(out.len() as u64) as usize].0;
            if parent.split('.').count() >= 5 {
                continue;
            }
            format!("{}.{parent}", rng.label())
        } else {
            let labels = 1 + rng.below(2) as usize;
            let mut parts: Vec<String> = (0..labels).map(|_| rng.label()).collect();
            parts.push(TLDS[rng.below(TLDS.len() as u64) as usize].to_string());
            parts.join(".")
        };
        if seen.insert(d.clone()) {
            out.push((d, 2 + rng.below(50) as u32));
        }
    }
    out
}

/// Queries: 3/4 hits (an included domain with 0-3 extra labels in front), 1/4 misses.
fn queries(rng: &mut Rng, domains: &[(String, u32)], n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            if rng.below(4) == 0 {
                format!("{}.{}.{}", rng.label(), rng.label(), TLDS[rng.below(TLDS.len() as u64) as usize])
            } else {
                let mut q = domains[rng.below(domains.len() as u64) as usize].0.clone();
                for _ in 0..rng.below(4) {
                    q = format!("{}.{q}", rng.label());
                }
                q
            }
        })
        .collect()
}

/// The peer: scan every included domain, keep the longest that is the name or a parent.
fn naive(entries: &[(String, u32)], default: Option<u32>, q: &str) -> Option<u32> {
    let mut best: Option<(usize, u32)> = None;
    for (e, g) in entries {
        let hit =
            q.len() == e.len() && q == e || q.len() > e.len() && q.ends_with(e.as_str()) && q.as_bytes()[q.len() - e.len() - 1] == b'.';
        if hit && best.is_none_or(|(l, _)| e.len() > l) {
            best = Some((e.len(), *g));
        }
    }
    best.map(|(_, g)| g).or(default)
}

/// CPU time this thread has run, in ns (Linux `/proc/thread-self/schedstat`); the machine is
/// shared, so wall-clock throughput understates what one core does.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Lookups per CPU-second of `f` over `qs`, repeated `passes` times.
fn per_cpu_second(qs: &[String], passes: usize, f: impl Fn(&str) -> Option<u32>) -> Option<f64> {
    let start = cpu_ns()?;
    let mut acc = 0u32;
    for _ in 0..passes {
        for q in qs {
            acc = acc.wrapping_add(f(black_box(q)).unwrap_or(0));
        }
    }
    black_box(acc);
    let ns = cpu_ns()? - start;
    Some((qs.len() * passes) as f64 / (ns as f64 / 1e9))
}


fn main() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let entries = domains(&mut rng);
    let tree = DomainTree::from_entries(entries.iter().map(|(d, g)| (d.as_str(), *g)), Some(1)).expect("valid names");
    let qs = queries(&mut rng, &entries, 4096);
    let _ = naive;
    let empty = DomainTree::from_entries(std::iter::empty(), Some(1)).unwrap();
    let deep = DomainTree::from_entries([("a.b.c.d.e.f.g.h.i", 2)], Some(1)).unwrap();
    let tiny = DomainTree::from_entries(entries.iter().take(16).map(|(d, g)| (d.as_str(), *g)), Some(1)).unwrap();
    let hot: Vec<String> = qs.iter().take(64).cloned().cycle().take(4096).collect();
    for round in 0..3 {
        let only = std::env::var("ONLY").ok();
        let f = |name: &str, t: &DomainTree, q: &[String]| {
            if only.as_deref().is_some_and(|o| o != name) {
                return;
            }
            let _ = per_cpu_second(&q[..1], 1, |x| t.route(x));
            let mut times: Vec<f64> = (0..400)
                .map(|_| {
                    let t0 = std::time::Instant::now();
                    let mut acc = 0u32;
                    for x in q {
                        acc = acc.wrapping_add(t.route(black_box(x)).unwrap_or(0));
                    }
                    black_box(acc);
                    t0.elapsed().as_secs_f64() / q.len() as f64
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let p10 = times[times.len() / 10];
            println!("round {round} {name:>10}: {:.2} M/s ({:.1} ns p10, min {:.1} ns)", 1e-6 / p10, p10 * 1e9, times[0] * 1e9);
        };
        if only.as_deref().is_none_or(|o| o == "touch") {
            let mut times: Vec<f64> = (0..400)
                .map(|_| {
                    let t0 = std::time::Instant::now();
                    let mut acc = 0u32;
                    for x in &qs {
                        let x = black_box(x);
                        acc = acc.wrapping_add(x.bytes().map(u32::from).sum::<u32>());
                    }
                    black_box(acc);
                    t0.elapsed().as_secs_f64() / qs.len() as f64
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!("round {round} {:>10}: {:.1} ns p10", "touch", times[40] * 1e9);
        }
        f("full", &tree, &qs);
        f("hot64", &tree, &hot);
        f("empty", &empty, &qs);
        f("deep", &deep, &qs);
        f("tiny16", &tiny, &qs);
    }
}
