//! The two sides: a mware mutex service on its own etcd, and etcd's lock API on its
//! own etcd, each driven by [`crate::load::drive`].

use crate::http::{clients, http_pair};
use crate::load::{cpu_secs, drive, Cpu, Sample};
use anyhow::Context;
use etcd_client::{Client, LockOptions};
use mware_config::{Backend, Coordination, Site};
use mware_coord::{Coordinator, EtcdCoordinator, Fence, MemberInfo, Settings};
use mware_host::{Service, ServiceContext, ServiceState};
use mware_mutex::MutexService;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

async fn etcd_pair(c: &mut Client, lease: i64, name: &str, contended: bool) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let l = c.lock(name, Some(LockOptions::new().with_lease(lease))).await?;
    let waited = t0.elapsed();
    c.unlock(l.key().to_vec()).await?;
    Ok(if contended { waited } else { t0.elapsed() })
}

pub async fn etcd_case(clients: usize, dur: Duration, one_name: bool, rate: Option<f64>) -> anyhow::Result<(Sample, Cpu)> {
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

/// One sample's value from the service's metrics (`name` as exposed, e.g.
/// `mware_mutex_coord_writes_total`); 0 when absent.
fn metric(reg: &Registry, name: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, reg).expect("encode metrics");
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' '))).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
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
        let info = MemberInfo {
            instance: "mware1".into(),
            group: 1,
            order: 10,
            address: "127.0.0.1:1".into(),
            version: "bench".into(),
            since_ms: 0,
        };
        let mut member = coord.join(info).await?;
        let epoch = member.wait_active().await?;
        let mut reg = Registry::default();
        let svc = MutexService::new(&mut reg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let router = svc.routes().into_router();
        // As the daemon serves: mware-http with the default limits (TCP_NODELAY, timeouts).
        if std::env::var("BENCH_AXUM_SERVE").is_ok() {
            // The server before mware-http, for an A/B: axum::serve with TCP_NODELAY.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            tokio::spawn(async move { axum::serve(listener, router).await });
        } else {
            let limits = mware_http::Limits::default();
            tokio::spawn(mware_http::serve(listener, router, limits, mware_http::Stats::default(), CancellationToken::new()));
        }
        let (_site_tx, site_rx) = tokio::sync::watch::channel(Arc::new(site()));
        let cancel = CancellationToken::new();
        let ctx = ServiceContext::new("mutex", "mware1", Fence { group: 1, epoch }, coord, site_rx, cancel.clone(), member.lease.clone());
        let status = ctx.status.clone();
        let s2 = svc.clone();
        let run = tokio::spawn(async move {
            let _keep = _site_tx;
            let _ = s2.run(ctx).await;
        });
        while status.get().state != ServiceState::Running {
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
pub struct Writes {
    pub count: u64,
    pub secs: f64,
    pub hist: String,
    pub handovers_after_record: u64,
    pub cpu: Cpu,
}

/// The runtime the service runs on when it is given its own (`BENCH_SERVER_THREADS`).
pub static SERVER: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();

/// CPU seconds used so far by this process's threads named `prefix`*.
fn threads_cpu(prefix: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    dir.flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix)))
        .map(|t| cpu_secs(&format!("self/task/{}", t.file_name().to_string_lossy())))
        .sum()
}

pub async fn mware_case(
    clients_n: usize,
    dur: Duration,
    contended: bool,
    rate: Option<f64>,
    rq: Option<&reqwest::Client>,
) -> anyhow::Result<(Sample, Sample, Writes)> {
    let m = match SERVER.get() {
        Some(h) => h.spawn(Mware::start()).await??,
        None => Mware::start().await?,
    };
    let srv0 = threads_cpu("srv");
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
    if SERVER.get().is_some() {
        eprintln!("service threads: {:.0} µs per op", (threads_cpu("srv") - srv0) * 1e6 / sample.ops.max(1) as f64);
    }
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

/// The floor under any durable grant: one client writing one small key per etcd
/// transaction (compared on a key, as the service's fenced writes are), one after the
/// other, on a fresh etcd with nothing else running.
pub async fn etcd_single_writes(dur: Duration) -> anyhow::Result<Sample> {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    let etcd = mware_testkit::etcd::Etcd::start().context("start etcd")?;
    let c = Client::connect([etcd.endpoint()], None).await?;
    let written = Arc::new(tokio::sync::Mutex::new(0u64));
    Ok(drive(1, dur, None, move |_| {
        let mut c = c.clone();
        let n = written.clone();
        async move {
            let mut n = n.lock().await;
            *n += 1;
            let txn = Txn::new().when([Compare::version("fence", CompareOp::Equal, 0)]).and_then([TxnOp::put(
                format!("k/{}", *n),
                vec![b'v'; 100],
                None,
            )]);
            let t0 = Instant::now();
            c.txn(txn).await?;
            Ok(t0.elapsed())
        }
    })
    .await)
}

/// The HTTP layer alone: the same clients and requests against routes that answer at
/// once with a fixed grant (no lock table, no etcd), served as the daemon serves.
pub async fn http_floor(clients_n: usize, dur: Duration) -> anyhow::Result<Sample> {
    use axum::routing::post;
    let grant = || async { axum::Json(json!({"token": 1, "expires_at": "2026-11-21T00:00:00.000Z", "expires_at_ms": 0, "owner": "c"})) };
    let released = || async { axum::Json(json!({"released": true})) };
    let router = axum::Router::new()
        .route("/api/v1/domains/{domain}/mutexes/{name}/acquire", post(grant))
        .route("/api/v1/domains/{domain}/mutexes/{name}/release", post(released));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let cs = clients(&base, clients_n, None).await?;
    let sample = drive(clients_n, dur, None, move |i| {
        let cs = cs.clone();
        async move { Ok(http_pair(&mut *cs[i].lock().await, &format!("m{i}"), &format!("c{i}"), 0).await?.1) }
    })
    .await;
    server.abort();
    Ok(sample)
}
