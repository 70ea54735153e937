//! The CTI fan-out benchmark (issue 26): call events per second to N WebSocket CTI
//! clients, delivery latency (p50/p99/max) and the server's CPU per event, against
//! Kamailio's own fan-out (evapi, `bench/cti/evapi.cfg`) in the same run.
//!
//! mware: the call tracking service runs in a child process (this program with
//! `server`), the events are posted to its API as the reference Kamailio posts them
//! (every 20 ms what is due, up to 100 per POST, one POST after the other; each call
//! ringing, answered, ended; an ended call is journaled, fenced, in the
//! embedded coordinator), and N clients subscribed to the domain read them from the
//! `websocket-json` adapter. The peer: Kamailio's evapi relaying as many events, made by
//! an rtimer process every 20 ms, to N TCP clients (netstrings). Latency is from the
//! event's `at_ms` (when it was made) to when a client read it; CPU is the server
//! processes' user+system time over the window (Kamailio: all its processes).
//!
//! `cargo run --release -p mware-calltracking --example cti_bench -- 2000 100 10`
//! (events/s, clients, seconds).

use futures::{SinkExt, StreamExt};
use mware_host::Service;
use serde_json::json;
use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

static CLIENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
static SECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn now_ms() -> u64 {
    mware_config::now_ms()
}

/// user+system CPU of the processes whose process group is `pgid` (or the one `pid`), ms.
fn cpu_ms(pid: i32, group: bool) -> u64 {
    let tick = 1000 / unsafe_clk_tck();
    let mut total = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let Some(rest) = text.rsplit_once(')').map(|x| x.1) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (own, pgrp) = (e.file_name().to_string_lossy().parse::<i32>().unwrap_or(-1), f[2].parse::<i32>().unwrap_or(-2));
        if (group && pgrp == pid) || (!group && own == pid) {
            total += (f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0)) * tick;
        }
    }
    total
}

fn unsafe_clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as u64
}

fn report(name: &str, lat: &mut [u64], events: u64, cpu_ms: u64) -> (u64, f64) {
    lat.sort_unstable();
    let q = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0);
    let per = cpu_ms as f64 * 1000.0 / events.max(1) as f64;
    println!(
        "{name:<8} delivered {:>8} frames ({:.0} per client per s)  p50 {:>4} ms  p99 {:>4} ms  max {:>5} ms  server CPU {cpu_ms} ms = {per:.1} µs per event ({events} events)",
        lat.len(),
        lat.len() as f64 / CLIENTS.load(std::sync::atomic::Ordering::Relaxed).max(1) as f64 / SECS.load(std::sync::atomic::Ordering::Relaxed).max(1) as f64,
        q(0.5),
        q(0.99),
        lat.last().copied().unwrap_or(0)
    );
    (q(0.99), per)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("server") {
        return server(&args[2], args[3].parse()?, args[4].parse()?).await;
    }
    let rate: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let clients: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let secs: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10);
    CLIENTS.store(clients as u64, std::sync::atomic::Ordering::Relaxed);
    SECS.store(secs, std::sync::atomic::Ordering::Relaxed);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{rate} events/s to {clients} clients for {secs} s; load average {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let dir = tempfile::tempdir()?;
    let (p99_k, cpu_k) = evapi(dir.path(), rate, clients, secs).await?;
    let (p99_m, cpu_m) = mware(dir.path(), rate, clients, secs).await?;
    println!("ratio mware/evapi: p99 {:.2}x, CPU per event {:.2}x", p99_m as f64 / p99_k.max(1) as f64, cpu_m / cpu_k.max(0.001));
    Ok(())
}

/// Latencies of frames read within [from, to] (ms since the epoch).
type Lat = Arc<Mutex<Vec<u64>>>;

fn record(lat: &Lat, at_ms: u64, window: (u64, u64)) {
    let now = now_ms();
    if now >= window.0 && now <= window.1 {
        lat.lock().unwrap().push(now.saturating_sub(at_ms));
    }
}

async fn evapi(dir: &std::path::Path, rate: u64, clients: usize, secs: u64) -> anyhow::Result<(u64, f64)> {
    let cfg = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../bench/cti/evapi.cfg");
    let port = mware_testkit::proc::free_port();
    let defines = [format!("EVAPI_ADDR=\"127.0.0.1:{port}\""), format!("BATCH={}", (rate / 50).max(1))];
    let kam = mware_testkit::sip::Kamailio::start_on(
        &cfg,
        dir,
        &defines.iter().map(String::as_str).collect::<Vec<_>>(),
        mware_testkit::sip::free_sip_port(),
        mware_testkit::proc::free_port(),
    )?;
    let lat: Lat = Arc::default();
    let window = (now_ms() + 2000, now_ms() + 2000 + secs * 1000);
    for _ in 0..clients {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let lat = lat.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1 << 16);
            let mut chunk = [0u8; 16384];
            while let Ok(n) = s.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                // netstrings: <len>:<data>,
                while let Some(colon) = buf.iter().position(|b| *b == b':') {
                    let len: usize = std::str::from_utf8(&buf[..colon]).ok().and_then(|l| l.parse().ok()).unwrap_or(0);
                    if buf.len() < colon + 1 + len + 1 {
                        break;
                    }
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf[colon + 1..colon + 1 + len]) {
                        record(&lat, v["at_ms"].as_u64().unwrap_or(0), window);
                    }
                    buf.drain(..colon + 2 + len);
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(window.0.saturating_sub(now_ms()))).await;
    let c0 = cpu_ms(kam.pid(), true);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu = cpu_ms(kam.pid(), true) - c0;
    let mut l = lat.lock().unwrap().clone();
    Ok(report("evapi", &mut l, rate * secs, cpu))
}

async fn mware(dir: &std::path::Path, rate: u64, clients: usize, secs: u64) -> anyhow::Result<(u64, f64)> {
    let (api_port, cti_port) = (mware_testkit::proc::free_port(), mware_testkit::proc::free_port());
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["server", &dir.display().to_string(), &api_port.to_string(), &cti_port.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
    anyhow::ensure!(line.starts_with("ready"), "server: {line}");
    let lat: Lat = Arc::default();
    let window = (now_ms() + 2000, now_ms() + 2000 + secs * 1000);
    for _ in 0..clients {
        let s = tokio::net::TcpStream::connect(("127.0.0.1", cti_port)).await?;
        let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://127.0.0.1:{cti_port}/"), s).await?;
        ws.send(tokio_tungstenite::tungstenite::Message::text(json!({"subscribe": {"domain": "example.test"}}).to_string())).await?;
        let lat = lat.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.into_data()) {
                    if let Some(at) = v["at_ms"].as_u64() {
                        record(&lat, at, window);
                    }
                }
            }
        });
    }
    let url = format!("http://127.0.0.1:{api_port}/api/calltracking/v1/events");
    let posted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = posted.clone();
    let gen = tokio::spawn(async move {
        let http = reqwest::Client::new();
        // As Kamailio's timer process does: every 20 ms, what is due (up to 100 per POST),
        // one POST after the other.
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (t0, mut n) = (Instant::now(), 0u64);
        loop {
            tick.tick().await;
            let due = (t0.elapsed().as_millis() as u64 * rate / 1000).saturating_sub(n);
            let batch = due.min(100);
            if batch == 0 {
                continue;
            }
            let at = now_ms();
            let events: Vec<_> = (0..batch)
                .map(|_| {
                    n += 1;
                    let call = n / 3;
                    let event = ["ringing", "answered", "ended"][(n % 3) as usize];
                    json!({"event": event, "id": format!("c{call}"), "from": "caller", "to": format!("u{}", call % 1000), "domain": "example.test", "at_ms": at})
                })
                .collect();
            if http.post(&url).json(&events).send().await.is_ok_and(|r| r.status().is_success()) {
                counted.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(window.0.saturating_sub(now_ms()))).await;
    let (c0, p0) = (cpu_ms(child.id() as i32, false), posted.load(std::sync::atomic::Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu = cpu_ms(child.id() as i32, false) - c0;
    let applied = posted.load(std::sync::atomic::Ordering::Relaxed) - p0;
    println!("mware    events posted and applied in the window: {applied} ({} /s)", applied / secs.max(1));
    gen.abort();
    let _ = child.kill();
    let _ = child.wait();
    let mut l = lat.lock().unwrap().clone();
    Ok(report("mware", &mut l, rate * secs, cpu))
}

/// The call tracking service with a `websocket-json` adapter and its API, until killed.
async fn server(dir: &str, api_port: u16, cti_port: u16) -> anyhow::Result<()> {
    let dir = std::path::Path::new(dir);
    let site = json!({"site": "bench", "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
        {"name": "mware1", "roletype": "mware", "iface": "eth0", "group": 1, "order": 10,
         "calltracking": {"registrar_rpc": "http://127.0.0.1:9/RPC", "max_live_calls": 100000},
         "cti_adapters": [{"key": "websocket-json", "iface": "default", "port": cti_port}]}]}]});
    let site =
        mware_config::validate(&site.to_string(), &mware_calltracking::plugin().sections).map_err(|p| anyhow::anyhow!("{p:?}"))?.site;
    let c = mware_config::Coordination {
        backend: mware_config::Backend::Embedded,
        path: dir.join("bench-coord.sqlite").display().to_string(),
        ..Default::default()
    };
    let coord: Arc<dyn mware_coord::Coordinator> =
        Arc::new(mware_coord::EmbeddedCoordinator::open(mware_coord::Settings { site: "bench".into(), coordination: c }).await?);
    let info = mware_coord::MemberInfo {
        instance: "mware1".into(),
        group: 1,
        order: 10,
        address: "127.0.0.1:1".into(),
        version: "bench".into(),
        since_ms: now_ms(),
    };
    let mut m = coord.join(info).await?;
    let epoch = m.wait_active().await?;
    let svc = mware_calltracking::CallTracking::new(&mut prometheus_client::registry::Registry::default());
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(site));
    let fence = mware_coord::Fence { group: 1, epoch };
    let ctx = mware_host::ServiceContext::new("calltracking", "mware1", fence, coord, rx, Default::default(), Arc::new(Default::default()));
    let s = svc.clone();
    tokio::spawn(async move { s.run(ctx).await });
    let l = tokio::net::TcpListener::bind(("127.0.0.1", api_port)).await?;
    let router = svc.routes().into_router();
    tokio::spawn(async move { axum::serve(l, router).await });
    let t0 = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", cti_port)).await.is_err() {
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(10), "the adapter did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("ready");
    std::future::pending::<()>().await;
    Ok(())
}
