//! Benchmark: log lines per second from a supervised process into the site's log, and the
//! supervisor's CPU per line. Supervises one writer (`argv` after `--`, which must write
//! exactly LINES lines and record its start time, `date +%s.%N`, in STARTFILE) with the
//! microservices supervisor, waits until the store has written every line, and prints one
//! JSON object: lines, seconds from the writer's start, lines/s, this process's CPU
//! (user + system, the writer's own excluded) spent meanwhile, µs of CPU per line, and
//! this process's peak resident memory (`VmHWM`).
//! `bench/microservices.sh` runs it against supervisord with the same writer.
//!
//! With `LOG_BENCH_SYSLOG=1` every line is also forwarded (RFC 5424 over UDP) to a socket
//! of this process that is never read (the kernel drops what its buffer cannot hold): the
//! forwarder's cost (records built from the raw batches, one datagram per line) is then
//! in the CPU figure, and the output adds the forwarder's sent and dropped counts.
//!
//! `cargo run --release -p mware-microservices --example log_bench -- LINES LOGDIR STARTFILE -- ARGV...`

use mware_microservices::{MicroService, RunOn};
use nix::sys::resource::{getrusage, UsageWho};
use prometheus_client::registry::Registry;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn cpu_s() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

fn now_s() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sep = args.iter().position(|a| a == "--").expect("usage: log_bench LINES LOGDIR STARTFILE -- ARGV...");
    let (lines, dir, startfile) = (args[1].parse::<u64>().expect("LINES"), &args[2], &args[3]);
    let argv = &args[sep + 1..];
    // A socket nobody reads: the forwarder's datagrams go to its buffer, then nowhere.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp sink");
    let forward = std::env::var("LOG_BENCH_SYSLOG").is_ok_and(|v| v == "1");
    let mut ms = json!({"processes": [{"name": "writer", "argv": argv, "restart": "never"}], "log": {"file_mb": 64, "files": 4}});
    if forward {
        ms["syslog"] = json!({"target": sink.local_addr().unwrap().to_string()});
    }
    let site = json!({"site": "b", "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [
        {"name": "b1", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "microservices": ms}]}]});
    let site = mware_config::validate(&site.to_string(), &mware_microservices::plugin().sections).expect("bench site").site;
    let mut registry = Registry::default();
    let svc = MicroService::with_log_dir(&mut registry, dir);
    svc.open_store("b1", &site).expect("store");
    let store = svc.store().unwrap().clone();
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(site));
    if forward {
        svc.start_forward("b1", rx.clone());
    }
    let cpu0 = cpu_s();
    let cancel = CancellationToken::new();
    let s = svc.clone();
    let c = cancel.clone();
    let task = tokio::spawn(async move { s.supervise_set("b1".into(), rx, RunOn::Active, c).await });
    while store.counters.written.get() < lines {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let end = now_s();
    let cpu = cpu_s() - cpu0;
    let start: f64 = std::fs::read_to_string(startfile).expect("the writer's start file").trim().parse().expect("start time");
    cancel.cancel();
    let _ = task.await;
    let secs = end - start;
    let mut out = json!({"peer": if forward { "mware+syslog" } else { "mware" }, "lines": lines, "lost": store.counters.lost.get(),
               "stalls": store.counters.stalls.get(), "seconds": secs,
               "lines_per_s": lines as f64 / secs, "cpu_s": cpu, "cpu_us_per_line": cpu * 1e6 / lines as f64});
    // Peak resident memory of this process (the supervisor and its store) over the run.
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()));
    out["vm_hwm_kb"] = json!(hwm);
    if forward {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("metrics");
        let get = |name: &str| text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
        out["syslog_sent"] = json!(get("mware_microservices_syslog_sent_total"));
        out["syslog_dropped"] = json!(get("mware_microservices_syslog_dropped_total"));
    }
    println!("{out}");
}
