//! Benchmark: how many tcp probes one active instance sustains at a 1 s interval, with
//! the check latency p99 and the CPU per check, against Prometheus' blackbox_exporter
//! (Debian's `prometheus-blackbox-exporter`) probing the same targets at the same rate.
//!
//! ```text
//! cargo run --release -p mware-monitor --example probe_bench -- [PROBES] [SECONDS] [BLACKBOX]
//! ```
//! (defaults: 2000 probes, 30 s measured after 5 s of warm-up,
//! `/var/tmp/mware-blackbox/usr/bin/prometheus-blackbox-exporter`, unpacked by
//! `scripts/setup.sh`).
//!
//! The targets are PROBES listeners on loopback ports in a child process of their own
//! (it accepts and closes), so neither side pays for them. mware's side is the
//! monitoring service's real probe engine (one task per probe, the state machine, the
//! metrics) in this process; its CPU is this process's (getrusage) over the window, and
//! the latency is each check's as the engine measured it (sampled every 0.9 s, so most
//! checks). State changes go to a channel that is drained (the coordinator write happens
//! only on a change: once per probe at the start). blackbox_exporter's side: this
//! process sends each target's `/probe?module=tcp_connect` once per second (phases
//! spread evenly, as the engine spreads its probes); its CPU is the exporter process's
//! (/proc/PID/stat) over the window and the latency its own `probe_duration_seconds`.
//! The two sides run one after the other, not at once.

use mware_monitor::{start_probes, CheckLabels, EngineCtx, Metrics, Probe, Views};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const WARMUP: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("listen") {
        return listen(args[2].parse().unwrap());
    }
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(30);
    let bb = args.get(3).cloned().unwrap_or_else(|| "/var/tmp/mware-blackbox/usr/bin/prometheus-blackbox-exporter".into());
    let window = Duration::from_secs(secs);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["listen", &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut ports = vec![];
    for _ in 0..n {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        ports.push(l.trim().parse::<u16>().unwrap());
    }
    eprintln!("{n} listeners ready in child {}", child.id());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let ours = rt.block_on(mware_side(&ports, window));
    drop(rt);
    let theirs = tokio::runtime::Runtime::new().unwrap().block_on(blackbox_side(&ports, window, &bb));
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();

    println!(
        "probes {n}, interval 1 s, measured {secs} s after {} s warm-up, {} cores",
        WARMUP.as_secs(),
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    for (who, r) in [("mware", &ours), ("blackbox_exporter", &theirs)] {
        println!(
            "{who:<18} checks/s {:>7.1}  CPU {:>6.1} % of a core  CPU/check {:>6.1} us  latency p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>7.3} ms  failed {}",
            r.checks as f64 / r.secs,
            r.cpu.as_secs_f64() / r.secs * 100.0,
            r.cpu.as_secs_f64() * 1e6 / r.checks.max(1) as f64,
            pct(&r.lat, 0.50),
            pct(&r.lat, 0.99),
            pct(&r.lat, 1.0),
            r.failed
        );
    }
    println!(
        "ratio (mware / blackbox_exporter): CPU per check {:.2}, p99 {:.2}",
        (ours.cpu.as_secs_f64() / ours.checks.max(1) as f64) / (theirs.cpu.as_secs_f64() / theirs.checks.max(1) as f64),
        pct(&ours.lat, 0.99) / pct(&theirs.lat, 0.99)
    );
}

struct Result {
    /// The window actually measured, seconds.
    secs: f64,
    checks: u64,
    failed: u64,
    cpu: Duration,
    lat: Vec<f64>,
}

fn pct(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// PROBES listeners that accept and close; prints their ports; ends when stdin closes.
fn listen(n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let mut stdout = std::io::stdout();
        for _ in 0..n {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            writeln!(stdout, "{}", l.local_addr().unwrap().port()).unwrap();
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    drop(s);
                }
            });
        }
        stdout.flush().unwrap();
        tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            let _ = std::io::stdin().read_line(&mut s);
        })
        .await
        .unwrap();
    });
}

fn cpu_self() -> Duration {
    let r = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(r.user_time()) + tv(r.system_time())
}

fn cpu_of(pid: u32) -> Duration {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // CLK_TCK = 100
}

async fn mware_side(ports: &[u16], window: Duration) -> Result {
    let probes: Vec<Probe> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| serde_json::from_value(serde_json::json!({"name": format!("p{i}"), "kind": "tcp", "target": format!("127.0.0.1:{p}"), "interval_ms": 1000, "timeout_ms": 1000})).unwrap())
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel(8192);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let metrics = Metrics::new(&mut Default::default());
    let views: Views = Arc::default();
    let cancel = CancellationToken::new();
    let cx = EngineCtx {
        persist: tx,
        metrics: metrics.clone(),
        instance: "bench".into(),
        cancel: cancel.clone(),
        views: views.clone(),
        env: mware_monitor::ProbeEnv::new(&Default::default()),
    };
    let tracker = TaskTracker::new();
    start_probes(&probes, &HashMap::new(), &cx, &tracker);
    tokio::time::sleep(WARMUP).await;
    let count = |r: &str| -> u64 {
        probes.iter().map(|p| metrics.checks.get_or_create(&CheckLabels { probe: p.name.clone(), result: r.into() }).get()).sum()
    };
    let (ok0, bad0, cpu0) = (count("ok"), count("failed"), cpu_self());
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut lat = vec![];
    let t0 = Instant::now();
    let end = t0 + window;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(900)).await;
        for v in views.lock().unwrap().values() {
            if let (Some(at), Some(l)) = (v.last_ms, v.latency_ms) {
                if seen.insert(v.name.clone(), at) != Some(at) {
                    lat.push(l);
                }
            }
        }
    }
    let cpu = cpu_self() - cpu0;
    let (ok, bad) = (count("ok") - ok0, count("failed") - bad0);
    let secs = t0.elapsed().as_secs_f64();
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    Result { secs, checks: ok + bad, failed: bad, cpu, lat }
}

async fn blackbox_side(ports: &[u16], window: Duration, bin: &str) -> Result {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("blackbox.yml");
    std::fs::write(&cfg, "modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 1s\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut bb = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e} (scripts/setup.sh unpacks it)"));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(4096).build().unwrap();
    for _ in 0..100 {
        if client.get(format!("{base}/metrics")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let samples: Arc<Mutex<Vec<(Instant, bool, f64)>>> = Arc::default();
    let stop = CancellationToken::new();
    let n = ports.len();
    for (i, p) in ports.iter().enumerate() {
        let (client, url, samples, stop) =
            (client.clone(), format!("{base}/probe?module=tcp_connect&target=127.0.0.1:{p}"), samples.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_micros(1_000_000 * i as u64 / n as u64)).await;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Ok(r) = client.get(&url).send().await else {
                    continue;
                };
                let Ok(body) = r.text().await else { continue };
                let val = |k: &str| body.lines().find_map(|l| l.strip_prefix(k).and_then(|v| v.trim().parse::<f64>().ok()));
                if let Some(d) = val("probe_duration_seconds ") {
                    samples.lock().unwrap().push((Instant::now(), val("probe_success ") == Some(1.0), d * 1000.0));
                }
            }
        });
    }
    tokio::time::sleep(WARMUP).await;
    let (t0, cpu0) = (Instant::now(), cpu_of(bb.id()));
    tokio::time::sleep(window).await;
    let cpu = cpu_of(bb.id()) - cpu0;
    let t1 = Instant::now();
    stop.cancel();
    let _ = bb.kill();
    let _ = bb.wait();
    let s = samples.lock().unwrap();
    let inside: Vec<&(Instant, bool, f64)> = s.iter().filter(|(at, _, _)| *at >= t0 && *at < t1).collect();
    Result {
        secs: (t1 - t0).as_secs_f64(),
        checks: inside.len() as u64,
        failed: inside.iter().filter(|x| !x.1).count() as u64,
        cpu,
        lat: inside.iter().map(|x| x.2).collect(),
    }
}
