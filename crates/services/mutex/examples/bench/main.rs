//! Benchmark: the critical sections API on the etcd backend against etcd's own lock
//! API, in the same run, on the same etcd.
//!
//! ```text
//! cargo run --release -p mware-mutex --example bench -- [seconds per case, default 5] [--reqwest] [--rates=R,...] [--etcd-floor] [--http-floor]
//! ```
//!
//! The mware side's clients are hyper HTTP/1.1 connections, one per simulated call
//! script (`--reqwest`: reqwest's pooled client instead, as in the first session's
//! figures); the etcd side's are etcd-client connections, one per client.
//!
//! Cases: uncontended (64 clients, each on its own mutex: acquire + release pairs/s and
//! pair latency) and contended (16 clients on one mutex: grants/s and the wait from
//! asking to being granted), each side on a fresh etcd. Every grant of the service is
//! durable in etcd before it is answered. Prints a Markdown table.
//!
//! `--etcd-floor`: instead, one client's sequential single-key etcd transactions, the
//! latency floor under any durable grant.
//!
//! `--http-floor`: instead, the same 64 clients and requests against an axum route
//! that answers at once (no lock table, no etcd): the HTTP layer's own pairs/s and
//! latency on this machine.
//!
//! `--rates=300,1200,4800`: instead, the uncontended case paced at those rates (pairs/s
//! in all), both sides, with latency counted from each pair's scheduled start.
//!
//! Environment, for experiments: `BENCH_SERVER_THREADS=N` runs the service (HTTP server,
//! lock table, writer, etcd client) on its own N-thread runtime and prints its CPU per
//! pair apart from the clients'; `BENCH_RT=current|N` sets the clients' runtime (one
//! thread, or N workers; default: one per core). `TMPDIR=/dev/shm` puts both etcds on
//! tmpfs, which takes the disk's fsync out (a diagnostic: nothing is durable then).

mod http;
mod load;
mod sides;

use anyhow::Context;
use load::Sample;
use sides::{etcd_case, mware_case};
use std::time::Duration;

/// The daemon's allocator (see the `mware` binary).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    if let Ok(n) = std::env::var("BENCH_SERVER_THREADS") {
        let srv = tokio::runtime::Builder::new_multi_thread().worker_threads(n.parse()?).thread_name("srv").enable_all().build()?;
        let _ = sides::SERVER.set(srv.handle().clone());
        std::mem::forget(srv);
    }
    let rt = match std::env::var("BENCH_RT").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        Ok(n) if n.parse::<usize>().is_ok() => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(n.parse()?).enable_all().build()?
        }
        _ => tokio::runtime::Builder::new_multi_thread().thread_name("cli").enable_all().build()?,
    };
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: u64 = args.iter().find(|a| !a.starts_with("--")).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let dur = Duration::from_secs(secs);
    let use_reqwest = args.iter().any(|a| a == "--reqwest");
    let rq = reqwest::Client::builder().pool_max_idle_per_host(128).build()?;
    let rq = use_reqwest.then_some(&rq);
    // `--etcd-floor`: only one client's sequential etcd writes (the latency floor).
    if args.iter().any(|a| a == "--etcd-floor") {
        let mut s = sides::etcd_single_writes(dur).await?;
        let (p50, p99, p999) = (s.pct(0.5), s.pct(0.99), s.pct(0.999));
        println!("one client, one etcd txn at a time: {} writes, p50 {p50:.2} / p99 {p99:.2} / p99.9 {p999:.2} ms", s.ops);
        return Ok(());
    }
    // `--http-floor`: only the HTTP layer, answering at once.
    if args.iter().any(|a| a == "--http-floor") {
        let mut s = sides::http_floor(64, dur).await?;
        println!("64 clients, acquire+release answered at once (no lock table, no etcd): {:.0} pairs/s, pair p50 {:.2} / p99 {:.2} / p99.9 {:.2} ms", s.rate(), s.pct(0.5), s.pct(0.99), s.pct(0.999));
        return Ok(());
    }
    // `--rates=600,1200`: only the paced uncontended case at those rates, both sides.
    if let Some(list) = args.iter().find_map(|a| a.strip_prefix("--rates=")) {
        println!("| pairs/s asked | mware achieved, p50 / p99 / p99.9 (ms) | etcd lock achieved, p50 / p99 / p99.9 (ms) |\n|---|---|---|");
        for r in list.split(',').map(str::parse::<f64>) {
            let r = r.context("--rates: expected numbers separated by commas")?;
            let (mut a, mut acq, w) = mware_case(64, dur, false, Some(r), rq).await?;
            eprintln!(
                "{r}/s: acquire p50 {:.2} / p99 {:.2} ms; {} writes, mean {:.2} ms; write time buckets: {}",
                acq.pct(0.5),
                acq.pct(0.99),
                w.count,
                w.secs * 1000.0 / w.count.max(1) as f64,
                w.hist
            );
            let mut b = etcd_case(64, dur, false, Some(r)).await?.0;
            let cell = |s: &mut Sample| format!("{:.0}, {:.2} / {:.2} / {:.2}", s.rate(), s.pct(0.5), s.pct(0.99), s.pct(0.999));
            println!("| {r:.0} | {} | {} |", cell(&mut a), cell(&mut b));
        }
        return Ok(());
    }

    // Every case gets a fresh etcd: etcd slows down as its revision history grows (no
    // compaction here), so the case run second would otherwise pay for the first.
    let (mut ours_u, mut acq_u, w_u) = mware_case(64, dur, false, None, rq).await?;
    let (mut etcd_u, cpu_eu) = etcd_case(64, dur, false, None).await?;
    let (mut ours_c, _, w_c) = mware_case(16, dur, true, None, rq).await?;
    let (mut etcd_c, cpu_ec) = etcd_case(16, dur, true, None).await?;

    println!("| case | mware mutex API | etcd lock API | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| uncontended, 64 clients: acquire+release pairs/s | {:.0} | {:.0} | {:.1}x |",
        ours_u.rate(),
        etcd_u.rate(),
        ours_u.rate() / etcd_u.rate()
    );
    println!(
        "| uncontended: pair latency p50 / p99 (ms) | {:.2} / {:.2} | {:.2} / {:.2} | |",
        ours_u.pct(0.5),
        ours_u.pct(0.99),
        etcd_u.pct(0.5),
        etcd_u.pct(0.99)
    );
    println!("| uncontended: acquire latency p50 / p99 (ms) | {:.2} / {:.2} | | |", acq_u.pct(0.5), acq_u.pct(0.99));
    println!(
        "| contended, 16 clients on one mutex: grants/s | {:.0} | {:.0} | {:.1}x |",
        ours_c.rate(),
        etcd_c.rate(),
        ours_c.rate() / etcd_c.rate()
    );
    println!(
        "| contended: wait for the grant p50 / p99 (ms) | {:.2} / {:.2} | {:.2} / {:.2} | |",
        ours_c.pct(0.5),
        ours_c.pct(0.99),
        etcd_c.pct(0.5),
        etcd_c.pct(0.99)
    );
    println!(
        "\n{secs} s per case, each on a fresh etcd. Coordinator writes: uncontended {} for {} changes ({:.1} per write), contended {} for {} changes ({:.1} per write).",
        w_u.count,
        ours_u.ops * 2,
        (ours_u.ops * 2) as f64 / w_u.count.max(1) as f64,
        w_c.count,
        ours_c.ops * 2,
        (ours_c.ops * 2) as f64 / w_c.count.max(1) as f64
    );
    println!(
        "Mean coordinator write: uncontended {:.2} ms, contended {:.2} ms.",
        w_u.secs * 1000.0 / w_u.count.max(1) as f64,
        w_c.secs * 1000.0 / w_c.count.max(1) as f64
    );
    println!("Hand-overs that waited for the waiter's line record to be written: {} of {} grants.", w_c.handovers_after_record, ours_c.ops);
    println!(
        "CPU per pair/grant (bench process, etcd): uncontended mware {}, etcd lock {}; contended mware {}, etcd lock {}.",
        w_u.cpu.per_op_us(ours_u.ops),
        cpu_eu.per_op_us(etcd_u.ops),
        w_c.cpu.per_op_us(ours_c.ops),
        cpu_ec.per_op_us(etcd_c.ops)
    );
    println!("Coordinator write time, uncontended (cumulative count by upper bound in s): {}", w_u.hist);
    Ok(())
}
