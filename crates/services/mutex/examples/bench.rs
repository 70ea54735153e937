//! Benchmark: the critical sections API on the etcd backend against etcd's own lock
//! API, in the same run, on the same etcd.
//!
//! ```text
//! cargo run --release -p mware-mutex --example bench -- [seconds per case, default 5] [--reqwest]
//! ```
//!
//! The mware side's clients are hyper HTTP/1.1 connections, one per simulated call
//! script (`--reqwest`: reqwest's pooled client instead, as in the first session's
//! figures); the etcd side's are etcd-client connections, one per client.
//!
//! Cases: uncontended (64 clients, each on its own mutex: acquire + release pairs/s and
//! pair latency) and contended (16 clients on one mutex: grants/s and the wait from
//! asking to being granted). Every grant of the service is durable in etcd before it is
//! answered. Prints a Markdown table.

use anyhow::Context;
use etcd_client::{Client, LockOptions};
use mware_config::{Backend, Coordination, Site};
use mware_coord::{Activity, Coordinator, EtcdCoordinator, Fence, MemberInfo, Settings};
use mware_host::{Service, ServiceContext, ServiceState};
use mware_mutex::MutexService;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The daemon's allocator (see the `mware` binary).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Sample {
    ops: usize,
    secs: f64,
    lat_us: Vec<u64>,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    fn pct(&mut self, p: f64) -> f64 {
        self.lat_us.sort_unstable();
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat_us.len() as f64 - 1.0) * p).round() as usize;
        self.lat_us[i] as f64 / 1000.0
    }
}

/// Runs `clients` loops of `op` for `dur`; each op returns its latency to record.
///
/// `rate`: `None` runs each client flat out (closed loop). `Some(r)` paces the clients
/// to `r` ops/s in all, each client starting its ops on a fixed schedule; an op that
/// starts late (the one before took longer than the interval) counts the delay in
/// its latency, so a stall shows in the percentiles instead of hiding behind fewer ops.
async fn drive<F, Fut>(clients: usize, dur: Duration, rate: Option<f64>, op: F) -> Sample
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Duration>> + Send,
{
    let start = Instant::now();
    let end = start + dur;
    let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = vec![];
                let mut due = interval.map(|iv| start + iv.mul_f64(i as f64 / clients as f64));
                while Instant::now() < end {
                    let late = match due {
                        Some(at) => {
                            tokio::time::sleep_until(at.into()).await;
                            Instant::now().saturating_duration_since(at)
                        }
                        None => Duration::ZERO,
                    };
                    lat.push((late + op(i).await.expect("operation")).as_micros() as u64);
                    due = due.zip(interval).map(|(at, iv)| at + iv);
                }
                lat
            })
        })
        .collect();
    let mut lat_us = vec![];
    for t in tasks {
        lat_us.extend(t.await.unwrap());
    }
    Sample { ops: lat_us.len(), secs: start.elapsed().as_secs_f64(), lat_us }
}

/// One simulated call script's HTTP/1.1 connection (hyper's client, no pool).
struct Conn {
    tx: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    host: String,
}

impl Conn {
    async fn open(base: &str) -> anyhow::Result<Conn> {
        let host = base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&host).await?;
        stream.set_nodelay(true)?;
        let (tx, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Conn { tx, host })
    }

    async fn post(&mut self, path: &str, body: String) -> anyhow::Result<(u16, bytes::Bytes)> {
        use http_body_util::BodyExt;
        let req = hyper::Request::post(path)
            .header("host", &self.host)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
        self.tx.ready().await?;
        let r = self.tx.send_request(req).await?;
        let status = r.status().as_u16();
        Ok((status, r.into_body().collect().await?.to_bytes()))
    }
}

/// The HTTP client the mware side uses: hyper (default) or reqwest (`--reqwest`).
enum Http {
    Hyper(Conn),
    Reqwest(reqwest::Client, String),
}

impl Http {
    async fn post(&mut self, path: &str, body: String) -> anyhow::Result<(u16, bytes::Bytes)> {
        match self {
            Http::Hyper(c) => c.post(path, body).await,
            Http::Reqwest(c, base) => {
                let r = c.post(format!("{base}{path}")).header("content-type", "application/json").body(body).send().await?;
                Ok((r.status().as_u16(), r.bytes().await?))
            }
        }
    }
}

/// The part of a grant the bench needs.
#[derive(serde::Deserialize)]
struct Granted {
    token: u64,
}

/// One acquire + release; returns (time to the grant, the case's figure: the pair when
/// uncontended, the wait for the grant when contended). Bodies are written and read
/// as a call script would: only the fields it needs.
async fn http_pair(http: &mut Http, name: &str, owner: &str, wait_ms: u64) -> anyhow::Result<(Duration, Duration)> {
    let t0 = Instant::now();
    let path = format!("/api/v1/domains/bench.example.ru/mutexes/{name}");
    let body = format!(r#"{{"owner":"{owner}","ttl_ms":30000,"wait_ms":{wait_ms}}}"#);
    let (s, v) = http.post(&format!("{path}/acquire"), body).await?;
    anyhow::ensure!(s == 200, "acquire answered {s}: {}", String::from_utf8_lossy(&v));
    let token = serde_json::from_slice::<Granted>(&v)?.token;
    let waited = t0.elapsed();
    let (s, v) = http.post(&format!("{path}/release"), format!(r#"{{"owner":"{owner}","token":{token}}}"#)).await?;
    anyhow::ensure!(s == 200, "release answered {s}: {}", String::from_utf8_lossy(&v));
    Ok((waited, if wait_ms == 0 { t0.elapsed() } else { waited }))
}

/// One client per simulated call script, each with its own connection.
async fn clients(base: &str, n: usize, reqwest_client: Option<&reqwest::Client>) -> anyhow::Result<Arc<Vec<tokio::sync::Mutex<Http>>>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(tokio::sync::Mutex::new(match reqwest_client {
            Some(c) => Http::Reqwest(c.clone(), base.to_string()),
            None => Http::Hyper(Conn::open(base).await?),
        }));
    }
    Ok(Arc::new(v))
}

async fn etcd_pair(c: &mut Client, lease: i64, name: &str, contended: bool) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let l = c.lock(name, Some(LockOptions::new().with_lease(lease))).await?;
    let waited = t0.elapsed();
    c.unlock(l.key().to_vec()).await?;
    Ok(if contended { waited } else { t0.elapsed() })
}

async fn etcd_case(clients: usize, dur: Duration, one_name: bool, rate: Option<f64>) -> anyhow::Result<(Sample, Cpu)> {
    let etcd = mware_testkit::etcd::Etcd::start().context("start etcd")?;
    let etcd_pid = etcd.pid().unwrap_or(0).to_string();
    let endpoint = &etcd.endpoint();
    let mut conns = vec![];
    for _ in 0..clients {
        let mut c = Client::connect([endpoint], None).await?;
        let lease = c.lease_grant(60, None).await?.id();
        conns.push(Arc::new(tokio::sync::Mutex::new((c, lease))));
    }
    let conns = Arc::new(conns);
    let cpu0 = (cpu_secs("self"), cpu_secs(&etcd_pid));
    let sample = drive(clients, dur, rate, move |i| {
        let conns = conns.clone();
        async move {
            let mut g = conns[i].lock().await;
            let (c, lease) = &mut *g;
            let name = if one_name { "bench/one".to_string() } else { format!("bench/m{i}") };
            etcd_pair(c, *lease, &name, one_name).await
        }
    })
    .await;
    Ok((sample, Cpu(cpu_secs("self") - cpu0.0, cpu_secs(&etcd_pid) - cpu0.1)))
}

/// The highest paced rate (ops/s in all) at which `probe` keeps its p99 within
/// `slo_ms` and achieves the rate: bisection on a log scale between `max / 20` and
/// `max` (the closed-loop rate, whose p99 is over the target), `probes` runs.
async fn slo_rate<F, Fut>(what: &str, max: f64, probes: usize, slo_ms: f64, probe: F) -> anyhow::Result<Option<(f64, Sample)>>
where
    F: Fn(f64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Sample>>,
{
    let (mut lo, mut hi) = (max / 20.0, max);
    let mut best = None;
    for _ in 0..probes {
        let r = (lo * hi).sqrt();
        let mut s = probe(r).await?;
        let ok = s.pct(0.99) <= slo_ms && s.rate() >= 0.97 * r;
        eprintln!("{what}: paced at {r:.0}/s: achieved {:.0}/s, p99 {:.2} ms: {}", s.rate(), s.pct(0.99), if ok { "within" } else { "over" });
        if ok {
            lo = r;
            best = Some((r, s));
        } else {
            hi = r;
        }
    }
    Ok(best)
}

/// One sample's value from the service's metrics (`name` as exposed, e.g.
/// `mware_mutex_coord_writes_total`); 0 when absent.
fn metric(reg: &Registry, name: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, reg).expect("encode metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A histogram's cumulative buckets as `le=count` pairs.
fn buckets(reg: &Registry, name: &str) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, reg).expect("encode metrics");
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|r| {
            let le = r.split("le=\"").nth(1)?.split('"').next()?;
            Some(format!("{le}={}", r.rsplit(' ').next()?))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Coordinator writes made so far.
fn writes(reg: &Registry) -> u64 {
    metric(reg, "mware_mutex_coord_writes_total") as u64
}

/// Seconds spent in coordinator writes so far (the histogram's sum).
fn write_time(reg: &Registry) -> f64 {
    metric(reg, "mware_mutex_coord_write_seconds_sum")
}

fn site() -> Site {
    serde_json::from_value(json!({"site": "bench", "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"},
        "roles": [{"name": "mware1", "roletype": "mware", "iface": "eth0", "group": 1, "order": 10}]}]}))
    .expect("site")
}

/// CPU seconds (user + system) used so far by process `pid` ("self" for this one).
fn cpu_secs(pid: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let f: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU used during a case: (this process, etcd), seconds.
struct Cpu(f64, f64);

impl Cpu {
    fn per_op_us(&self, ops: usize) -> String {
        format!("{:.0} µs + etcd {:.0} µs", self.0 * 1e6 / ops.max(1) as f64, self.1 * 1e6 / ops.max(1) as f64)
    }
}

/// A running mware mutex service on its own etcd, for one case.
struct Mware {
    base: String,
    reg: Registry,
    cancel: CancellationToken,
    run: tokio::task::JoinHandle<()>,
    member: mware_coord::Membership,
    etcd: mware_testkit::etcd::Etcd,
}

impl Mware {
    async fn start() -> anyhow::Result<Mware> {
        let etcd = mware_testkit::etcd::Etcd::start().context("start etcd")?;
        let c = Coordination { backend: Backend::Etcd, endpoints: vec![etcd.endpoint()], ..Default::default() };
        let coord: Arc<dyn Coordinator> = Arc::new(EtcdCoordinator::connect(Settings { site: "bench".into(), coordination: c }).await?);
        let info = MemberInfo { instance: "mware1".into(), group: 1, order: 10, address: "127.0.0.1:1".into(), version: "bench".into(), since_ms: 0 };
        let mut member = coord.join(info).await?;
        let epoch = loop {
            if let Activity::Active { epoch, .. } = &*member.activity.borrow_and_update() {
                break *epoch;
            }
            member.activity.changed().await?;
        };
        let mut reg = Registry::default();
        let svc = MutexService::new(&mut reg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let router = svc.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let (_site_tx, site_rx) = tokio::sync::watch::channel(Arc::new(site()));
        let cancel = CancellationToken::new();
        let ctx = ServiceContext { instance: "mware1".into(), fence: Fence { group: 1, epoch }, coord, site: site_rx, cancel: cancel.clone(), lease: member.lease.clone() };
        let s2 = svc.clone();
        let run = tokio::spawn(async move {
            let _keep = _site_tx;
            let _ = s2.run(ctx).await;
        });
        while svc.status().state != ServiceState::Running {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Mware { base, reg, cancel, run, member, etcd })
    }

    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.run.await;
        self.member.leave().await;
    }
}

/// What one mware case measured beside the latencies.
struct Writes {
    count: u64,
    secs: f64,
    hist: String,
    handovers_after_record: u64,
    cpu: Cpu,
}

async fn mware_case(clients_n: usize, dur: Duration, contended: bool, rate: Option<f64>, rq: Option<&reqwest::Client>) -> anyhow::Result<(Sample, Sample, Writes)> {
    let m = Mware::start().await?;
    let cs = clients(&m.base, clients_n, rq).await?;
    let acq = Arc::new(std::sync::Mutex::new(Vec::new()));
    let acq2 = acq.clone();
    let wait_ms = if contended { 30_000 } else { 0 };
    let etcd_pid = m.etcd.pid().unwrap_or(0).to_string();
    let cpu0 = (cpu_secs("self"), cpu_secs(&etcd_pid));
    let sample = drive(clients_n, dur, rate, move |i| {
        let cs = cs.clone();
        let acq = acq2.clone();
        async move {
            let name = if contended { "one".to_string() } else { format!("m{i}") };
            let (acquired, pair) = http_pair(&mut *cs[i].lock().await, &name, &format!("c{i}"), wait_ms).await?;
            acq.lock().unwrap().push(acquired.as_micros() as u64);
            Ok(pair)
        }
    })
    .await;
    let cpu = Cpu(cpu_secs("self") - cpu0.0, cpu_secs(&etcd_pid) - cpu0.1);
    let lat_us = std::mem::take(&mut *acq.lock().unwrap());
    let acquired = Sample { ops: lat_us.len(), secs: sample.secs, lat_us };
    let w = Writes {
        count: writes(&m.reg),
        secs: write_time(&m.reg),
        hist: buckets(&m.reg, "mware_mutex_coord_write_seconds_bucket"),
        handovers_after_record: metric(&m.reg, "mware_mutex_handovers_after_record_total") as u64,
        cpu,
    };
    m.stop().await;
    Ok((sample, acquired, w))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: u64 = args.iter().find(|a| !a.starts_with("--")).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let dur = Duration::from_secs(secs);
    let use_reqwest = args.iter().any(|a| a == "--reqwest");
    let rq = reqwest::Client::builder().pool_max_idle_per_host(128).build()?;
    let rq = use_reqwest.then_some(&rq);
    // `--rates=600,1200`: only the paced uncontended case at those rates, both sides.
    if let Some(list) = args.iter().find_map(|a| a.strip_prefix("--rates=")) {
        println!("| pairs/s asked | mware achieved, p50 / p99 / p99.9 (ms) | etcd lock achieved, p50 / p99 / p99.9 (ms) |\n|---|---|---|");
        for r in list.split(',').map(str::parse::<f64>) {
            let r = r.context("--rates: expected numbers separated by commas")?;
            let (mut a, _, w) = mware_case(64, dur, false, Some(r), rq).await?;
            eprintln!("{r}/s: {} writes, mean {:.2} ms; write time buckets: {}", w.count, w.secs * 1000.0 / w.count.max(1) as f64, w.hist);
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
    // The latency target: the highest rate each side sustains, the same 64 clients
    // paced, with a pair p99 of at most 10 ms.
    let probe_dur = Duration::from_secs(secs.clamp(2, 4));
    let slo_ours = slo_rate("mware", ours_u.rate(), 6, 10.0, |r| async move { Ok(mware_case(64, probe_dur, false, Some(r), rq).await?.0) }).await?;
    let slo_etcd = slo_rate("etcd lock", etcd_u.rate(), 6, 10.0, |r| async move { Ok(etcd_case(64, probe_dur, false, Some(r)).await?.0) }).await?;
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
    println!("| uncontended: pair latency p50 / p99 (ms) | {:.2} / {:.2} | {:.2} / {:.2} | |", ours_u.pct(0.5), ours_u.pct(0.99), etcd_u.pct(0.5), etcd_u.pct(0.99));
    println!("| uncontended: acquire latency p50 / p99 (ms) | {:.2} / {:.2} | | |", acq_u.pct(0.5), acq_u.pct(0.99));
    let slo_cell = |x: &mut Option<(f64, Sample)>| match x {
        Some((r, s)) => format!("{r:.0} (p50 {:.2}, p99 {:.2} ms)", s.pct(0.5), s.pct(0.99)),
        None => "none found".to_string(),
    };
    let slo_ratio = match (&slo_ours, &slo_etcd) {
        (Some((a, _)), Some((b, _))) => format!("{:.1}x", a / b),
        _ => String::new(),
    };
    let (mut slo_ours, mut slo_etcd) = (slo_ours, slo_etcd);
    println!("| uncontended, 64 clients paced: highest pairs/s with pair p99 ≤ 10 ms | {} | {} | {slo_ratio} |", slo_cell(&mut slo_ours), slo_cell(&mut slo_etcd));
    println!(
        "| contended, 16 clients on one mutex: grants/s | {:.0} | {:.0} | {:.1}x |",
        ours_c.rate(),
        etcd_c.rate(),
        ours_c.rate() / etcd_c.rate()
    );
    println!("| contended: wait for the grant p50 / p99 (ms) | {:.2} / {:.2} | {:.2} / {:.2} | |", ours_c.pct(0.5), ours_c.pct(0.99), etcd_c.pct(0.5), etcd_c.pct(0.99));
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
