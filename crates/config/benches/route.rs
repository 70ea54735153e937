//! Router benchmark: lookups per second on a tree of 10,000 included domains,
//! against the naive peer (a linear scan of every included domain with
//! `ends_with`, keeping the longest match).
//!
//! Run: `cargo bench -p mware-config --bench route -- --measurement-time 3`
//!
//! Before criterion runs, it prints where a lookup's time goes (each figure the 10th
//! percentile of 400 timed passes over the queries, which a busy machine disturbs least)
//! and a floor: one FxHash probe of the whole name in a `HashMap` of the 10,000 names, with
//! no check and no suffixes, the least a name-to-group map can do per lookup. It also
//! times the same queries packed back to back in one buffer, as names arrive in a stream
//! of requests: each query is then not a separate heap allocation whose first byte is a
//! cache miss.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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

/// One pass of `f` over `qs`: the sum of the groups, so no call is optimised away.
#[inline(always)]
fn pass<Q: AsRef<str>>(qs: &[Q], f: &impl Fn(&str) -> Option<u32>) -> u32 {
    qs.iter().fold(0u32, |acc, q| acc.wrapping_add(f(black_box(q.as_ref())).unwrap_or(0)))
}

/// Lookups per CPU-second of `f` over `qs`, repeated `passes` times.
fn per_cpu_second(qs: &[String], passes: usize, f: impl Fn(&str) -> Option<u32>) -> Option<f64> {
    let start = cpu_ns()?;
    let acc = (0..passes).fold(0u32, |acc, _| acc.wrapping_add(pass(qs, &f)));
    black_box(acc);
    let ns = cpu_ns()? - start;
    Some((qs.len() * passes) as f64 / (ns as f64 / 1e9))
}

/// Nanoseconds per call of `f` over `qs`: the 10th percentile of 400 passes.
fn p10_ns<Q: AsRef<str>>(qs: &[Q], f: impl Fn(&str) -> Option<u32>) -> f64 {
    let mut times: Vec<f64> = (0..400)
        .map(|_| {
            let t0 = std::time::Instant::now();
            black_box(pass(qs, &f));
            t0.elapsed().as_secs_f64() * 1e9 / qs.len() as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 10]
}

/// Where a lookup's time goes, and the floor.
fn breakdown(entries: &[(String, u32)], tree: &DomainTree, qs: &[String]) {
    let empty = DomainTree::from_entries(std::iter::empty(), Some(1)).expect("valid");
    let map: std::collections::HashMap<&str, u32, rustc_hash::FxBuildHasher> = entries.iter().map(|(d, g)| (d.as_str(), *g)).collect();
    let check = p10_ns(qs, |q| empty.route(q));
    let full = p10_ns(qs, |q| tree.route(q));
    let floor = p10_ns(qs, |q| map.get(q).copied().or(Some(1)));
    let packed = qs.concat();
    let mut at = 0;
    let views: Vec<&str> = qs
        .iter()
        .map(|q| {
            at += q.len();
            &packed[at - q.len()..at]
        })
        .collect();
    let stream = p10_ns(&views, |q| tree.route(q));
    println!(
        "where the time goes (ns a lookup, p10): the name's check alone (no domain named) {check:.1}, whole lookup {full:.1} ({:.2} M/s), queries packed in one buffer {stream:.1} ({:.2} M/s); floor: one FxHash probe of the whole name, unchecked, {floor:.1}",
        1e3 / full,
        1e3 / stream
    );
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let entries = domains(&mut rng);
    let tree = DomainTree::from_entries(entries.iter().map(|(d, g)| (d.as_str(), *g)), Some(1)).expect("valid names");
    let qs = queries(&mut rng, &entries, 4096);
    for q in qs.iter().take(512) {
        assert_eq!(tree.route(q), naive(&entries, Some(1), q), "{q}");
    }
    breakdown(&entries, &tree, &qs);
    let fast = per_cpu_second(&qs, 300, |q| tree.route(q));
    let slow = per_cpu_second(&qs[..256], 4, |q| naive(&entries, Some(1), q));
    if let (Some(f), Some(s)) = (fast, slow) {
        println!("cpu-time throughput: hash_walk {:.2} M lookups/s, naive_scan {:.1} K lookups/s, ratio {:.0}x", f / 1e6, s / 1e3, f / s);
    }
    let mut g = c.benchmark_group("route_10k_domains");
    g.throughput(Throughput::Elements(qs.len() as u64));
    g.bench_function(BenchmarkId::new("hash_walk", qs.len()), |b| b.iter(|| pass(&qs, &|q| tree.route(q))));
    let upper: Vec<String> = qs.iter().map(|q| q.to_ascii_uppercase()).collect();
    g.bench_function(BenchmarkId::new("hash_walk_uppercase", qs.len()), |b| b.iter(|| pass(&upper, &|q| tree.route(q))));
    let few = &qs[..256];
    g.throughput(Throughput::Elements(few.len() as u64));
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("naive_scan", few.len()), |b| b.iter(|| pass(few, &|q| naive(&entries, Some(1), q))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
