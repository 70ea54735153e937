//! Benchmark (ignored by default): failover time of a group of three real `mware run`
//! processes with the default lease (3000 ms), on a real etcd and on the embedded
//! coordinator. Each round kills -9 the active instance and measures, polling every
//! instance every 10 ms (never two active):
//! - until another instance reports `active` in `/api/v1/status`;
//! - until the critical-sections service grants a mutex through a surviving instance
//!   (the first answered request of a service);
//! - until the new active instance shows its provisioning service (PostgreSQL on 5432)
//!   running;
//! - until a provisioning call (Asterisk's res_config_curl `single` read of a provisioned
//!   row, through a surviving instance) is answered with the row.
//!
//! The killed one is restarted before the next round.
//!
//! Run: `cargo test -p mware --release --test failover_bench -- --ignored --nocapture --test-threads=1`
//! (`MWARE_BENCH_ROUNDS`, default 20).

mod common;

use common::failover::{quantile, Poller, POLL};
use common::*;
use mware_testkit::etcd::Etcd;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token";

fn rounds() -> usize {
    std::env::var("MWARE_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20)
}

/// The provisioned entity (Asterisk's `entityid`) and its credential.
const EID: &str = "12:34:56:78:9a:bc";
const PROV_USER: &str = "ast1";
const PROV_PASS: &str = "bench-prov-pass";

fn psql(db: &str, sql: &str) {
    let out = std::process::Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qAtc", sql]).output().unwrap();
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
}

/// A database of its own with one endpoint row of the group's domain (dropped at the end).
struct ProvDb(String);

impl ProvDb {
    fn new(tag: &str) -> ProvDb {
        let db = format!("fobench_{tag}_{}", std::process::id());
        psql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
        psql("postgres", &format!("CREATE DATABASE {db}"));
        psql(
            &db,
            "CREATE TABLE ps_endpoints (id varchar(40) NOT NULL, domain varchar(80) NOT NULL, context varchar(40), PRIMARY KEY (domain, id));
             INSERT INTO ps_endpoints VALUES ('1001', 'calls.example.ru', 'internal');",
        );
        ProvDb(db)
    }
}

impl Drop for ProvDb {
    fn drop(&mut self) {
        psql("postgres", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}

/// The site's roles carry the provisioning section (PostgreSQL on 5432) with one entity.
fn with_provisioning(trio: &Trio, db: &ProvDb) {
    let mut site: Value = serde_json::from_str(&std::fs::read_to_string(trio.config()).unwrap()).unwrap();
    for r in site["servers"][0]["roles"].as_array_mut().unwrap() {
        r["provisioning"] = json!({
            "dsn": format!("host=127.0.0.1 port=5432 user=postgres dbname={}", db.0),
            "entities": {EID: {"domains": ["calls.example.ru"], "user": PROV_USER, "password": PROV_PASS}}
        });
    }
    std::fs::write(trio.config(), site.to_string()).unwrap();
}

fn service_running(st: &Value, name: &str) -> bool {
    st["state"] == "active" && st["services"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == name && s["state"] == "running"))
}

fn bench(backend: &str, site: Value, dir: &std::path::Path) {
    let trio = Trio::new(dir, ["b10", "b20", "b30"], 1, site, &[("BENCH_TOKEN", TOKEN)]);
    let db = ProvDb::new(backend);
    with_provisioning(&trio, &db);
    let mut ds = vec![trio.start(0)];
    ds[0].wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    ds.extend([trio.start(1), trio.start(2)]);
    let p = Poller::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let (mut active, mut granted, mut provisioning, mut answered) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds() {
        let victim = p.settle(&ds, Duration::from_secs(30));
        ds[victim].wait_status(Duration::from_secs(20), |v| service_running(v, "mutex") && service_running(v, "provisioning"));
        let survivor = (victim + 1) % 3;
        let url = format!("{}/api/v1/domains/calls.example.ru/mutexes/round-{round}/acquire", ds[survivor].api);
        let prov = format!("{}/provision/asterisk/{EID}/endpoint/single", ds[survivor].api);
        let t0 = Instant::now();
        ds[victim].child.kill9();
        let (mut a, mut g, mut pr, mut ans) = (None, None, None, None);
        while a.is_none() || g.is_none() || pr.is_none() || ans.is_none() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "round {round}: active {a:?} granted {g:?} provisioning {pr:?} answered {ans:?} after 20 s"
            );
            let st = p.statuses(&ds);
            let on: Vec<usize> = (0..3).filter(|&i| i != victim && st[i]["state"] == "active").collect();
            assert!(on.len() <= 1, "two active: {on:?}");
            if let Some(&i) = on.first() {
                a = a.or(Some(t0.elapsed()));
                if service_running(&st[i], "provisioning") {
                    pr = pr.or(Some(t0.elapsed()));
                }
            }
            if g.is_none() {
                let req = http.post(&url).bearer_auth(TOKEN).json(&json!({"owner": "bench", "ttl_ms": 5000, "wait_ms": 0}));
                if rt.block_on(async { req.send().await }).is_ok_and(|r| r.status() == 200) {
                    g = Some(t0.elapsed());
                }
            }
            if ans.is_none() {
                let req = http
                    .post(&prov)
                    .basic_auth(PROV_USER, Some(PROV_PASS))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("id=1001");
                let got = rt.block_on(async {
                    let r = req.send().await.ok()?;
                    (r.status() == 200).then_some(())?;
                    r.text().await.ok()
                });
                if got.is_some_and(|b| b.starts_with("id=1001&")) {
                    ans = Some(t0.elapsed());
                }
            }
            std::thread::sleep(POLL);
        }
        let ms = |d: Option<Duration>| d.unwrap().as_secs_f64() * 1000.0;
        eprintln!(
            "{backend} round {round}: kill -9 of {} -> active {:.0} ms, mutex granted {:.0} ms, provisioning running {:.0} ms, provisioning answered {:.0} ms",
            trio.name(victim),
            ms(a),
            ms(g),
            ms(pr),
            ms(ans)
        );
        active.push(ms(a));
        granted.push(ms(g));
        provisioning.push(ms(pr));
        answered.push(ms(ans));
        ds[victim] = trio.start(victim);
    }
    for (what, v) in [
        ("next active", &active),
        ("first mutex grant", &granted),
        ("provisioning running", &provisioning),
        ("provisioning answered", &answered),
    ] {
        println!(
            "{backend}: kill -9 -> {what} (lease 3000 ms, {} rounds): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            v.len(),
            quantile(v, 0.5),
            quantile(v, 0.95),
            quantile(v, 1.0)
        );
    }
}

#[test]
#[ignore]
fn failover_time_kill9_default_lease_etcd() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site =
        json!({"site": "bench", "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()]}, "api": {"token_env": "BENCH_TOKEN"}});
    bench("etcd", site, dir.path());
}

#[test]
#[ignore]
fn failover_time_kill9_default_lease_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coord.sqlite");
    let site = json!({"site": "bench", "coordination": {"backend": "embedded", "path": path}, "api": {"token_env": "BENCH_TOKEN"}});
    bench("embedded", site, dir.path());
}
