//! Benchmark (ignored): time from kill -9 of the master's postmaster to the first write
//! accepted by the promoted standby, over several runs; and the time to rebuild the
//! returning old master. Prints the numbers for bench/pgctl.md.
//!
//! `PGCTL_BENCH_PROMOTE_AFTER=5 PGCTL_BENCH_RUNS=5 cargo test -p mware-pgctl --test bench_failover -- --ignored --nocapture`
//! (`PGCTL_BENCH_ROWS` adds that many ~1 kB rows before the kill, to size the rebuild.)

mod common;
use common::*;
use mware_testkit::pg::PgInstance;
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn bench_kill_to_first_write() {
    let promote_after = env("PGCTL_BENCH_PROMOTE_AFTER", 5);
    let runs = env("PGCTL_BENCH_RUNS", 5);
    let rows = env("PGCTL_BENCH_ROWS", 0);
    let mut failover = Vec::new();
    let mut rebuild = Vec::new();
    for run in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let sshd = pinned_sshd(dir.path());
        let db1 = blocking(|| PgInstance::new_primary("db1")).unwrap();
        let db2 = blocking(|| PgInstance::new_standby("db2", &db1)).unwrap();
        blocking(|| db1.psql("CREATE TABLE t(x int, pad text)")).unwrap();
        if rows > 0 {
            blocking(|| db1.psql(&format!("INSERT INTO t SELECT g, repeat('x', 1000) FROM generate_series(1, {rows}) g"))).unwrap();
        }
        let g = group_json(server_json(&db1, &sshd), server_json(&db2, &sshd), promote_after);
        let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;
        ctl.wait_status(Duration::from_secs(600), "healthy", |g| g.reason.starts_with("healthy")).await;
        let size = blocking(|| db1.psql("SELECT pg_size_pretty(pg_database_size('postgres'))")).unwrap();
        let t0 = Instant::now();
        blocking(|| db1.kill9()).unwrap();
        loop {
            if blocking(|| db2.psql("INSERT INTO t VALUES (0, 'after')")).is_ok() {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(300), "no write accepted within 300 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let f = t0.elapsed();
        let t1 = Instant::now();
        blocking(|| db1.start()).unwrap();
        wait_until(Duration::from_secs(3600), "db1 rebuilt", || {
            db1.in_recovery().unwrap_or(false)
                && db2.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").map(|c| c != "0").unwrap_or(false)
        })
        .await;
        let r = t1.elapsed();
        println!(
            "run {run}: promote_after {promote_after} s, db {size}: kill->first write {:.2} s, restart->streaming standby {:.2} s",
            f.as_secs_f64(),
            r.as_secs_f64()
        );
        failover.push(f.as_secs_f64());
        rebuild.push(r.as_secs_f64());
        ctl.stop().await;
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        format!("min {:.2} median {:.2} max {:.2}", v[0], v[v.len() / 2], v[v.len() - 1])
    };
    println!(
        "RESULT promote_after {promote_after} s, {runs} runs: kill->first write {}; rebuild {}",
        stats(&mut failover),
        stats(&mut rebuild)
    );
}
