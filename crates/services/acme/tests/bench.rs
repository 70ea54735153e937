//! Benchmark (ignored by default): time to a certificate and ACME requests per
//! certificate, mware against certbot and lego (Debian), all three issuing the same two
//! names by HTTP-01 from the same pebble in the same run, alternating, each run with a
//! fresh account. Requests are counted from pebble's log (one line per request served).
//!
//! mware: from the start of the service (already active; the election is not counted)
//! until the certificate is stored, and until it is also deployed over SSH to a test sshd
//! and read back. certbot (`certonly --standalone`) and lego (`run --http`): the whole
//! process, until it exits with the certificate on local disk (no deploy).
//!
//! `ACME_BENCH_RUNS=5 cargo test -p mware-acme --test bench -- --ignored --nocapture`

mod common;

use common::*;
use mware_testkit::pebble::{Pebble, PebbleOpts};
use mware_testkit::sshd::{Sshd, SSH_PASSWORD, SSH_USER};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

const NAMES: [&str; 2] = ["www.example.com", "api.example.com"];
const REQ: &str = "-> calling handler()";

fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn run_tool(name: &str, mut cmd: Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let s = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{name}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    s
}

fn certbot(p: &Pebble, port: u16, dir: &std::path::Path) -> f64 {
    let mut c = Command::new("certbot");
    c.args(["certonly", "--non-interactive", "--agree-tos", "--register-unsafely-without-email", "--standalone"]);
    c.args(["--http-01-port", &port.to_string(), "--http-01-address", "127.0.0.1", "--server", &p.directory]);
    for (k, d) in [("--config-dir", "c"), ("--work-dir", "w"), ("--logs-dir", "l")] {
        c.arg(k).arg(dir.join(d));
    }
    for n in NAMES {
        c.args(["-d", n]);
    }
    c.env("REQUESTS_CA_BUNDLE", &p.ca_file);
    run_tool("certbot", c)
}

fn lego(p: &Pebble, port: u16, dir: &std::path::Path) -> f64 {
    let mut c = Command::new("lego");
    c.args(["--server", &p.directory, "--email", "noc@example.com", "--accept-tos", "--key-type", "ec256", "--http"]);
    c.args(["--http.port", &format!("127.0.0.1:{port}")]).arg("--path").arg(dir);
    for n in NAMES {
        c.args(["--domains", n]);
    }
    c.arg("run").env("LEGO_CA_CERTIFICATES", &p.ca_file);
    run_tool("lego", c)
}

/// mware's service on a fresh coordinator: (seconds to the certificate, seconds to deployed).
async fn mware(p: &Pebble, port: u16, sshd: &Sshd, dir: &std::path::Path) -> (f64, f64) {
    let known = dir.join("known_hosts");
    sshd.pin_in(&known).unwrap();
    let tdir = target_dir(dir, "web");
    let acme = json!({"directory_url": p.directory, "ca_file": p.ca_file, "http01": {"port": port},
        "certificates": [{"name": "web", "names": NAMES, "targets": [{"name": "web1", "host": "127.0.0.1", "port": sshd.port,
            "user": SSH_USER, "password": SSH_PASSWORD, "dir": tdir}]}]});
    let coord = open(dir).await;
    let (_m, fence) = become_active(&coord, "mware1").await;
    let t = Instant::now();
    let run = start(coord.clone(), fence, site(acme, &known)).await;
    let mut issued = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let deployed = loop {
        let r = mware_acme::store::load(coord.as_ref(), GROUP, "web").await.unwrap();
        if r.issued.is_some() && issued.is_none() {
            issued = Some(t.elapsed().as_secs_f64());
        }
        if r.deploys.get("web1").is_some_and(|d| d.serial.is_some()) {
            break t.elapsed().as_secs_f64();
        }
        assert!(Instant::now() < deadline, "mware: {:?}", r.last_error);
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    run.stop().await;
    (issued.unwrap_or(deployed), deployed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn acme_time_and_requests_against_certbot_and_lego() {
    let runs: usize = std::env::var("ACME_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let port = mware_testkit::free_port();
    let pebble = Pebble::start(&PebbleOpts::new(port)).unwrap();
    let sshd = Sshd::start().unwrap();
    let (mut mi, mut md, mut cb, mut lg) = (vec![], vec![], vec![], vec![]);
    let (mut mr, mut cr, mut lr) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        let before = pebble.count(REQ);
        let d = tempfile::tempdir().unwrap();
        let (i, dep) = mware(&pebble, port, &sshd, d.path()).await;
        mi.push(i);
        md.push(dep);
        let after = pebble.count(REQ);
        mr.push((after - before) as f64);
        let d = tempfile::tempdir().unwrap();
        cb.push(certbot(&pebble, port, d.path()));
        let after2 = pebble.count(REQ);
        cr.push((after2 - after) as f64);
        let d = tempfile::tempdir().unwrap();
        lg.push(lego(&pebble, port, d.path()));
        lr.push((pebble.count(REQ) - after2) as f64);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("runs: {runs}; load average: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    for (name, v) in
        [("mware to certificate (s)", &mut mi), ("mware to deployed (s)", &mut md), ("certbot (s)", &mut cb), ("lego (s)", &mut lg)]
    {
        let (a, m, b) = stats(v);
        println!("{name:<28} min {a:.3} median {m:.3} max {b:.3}");
    }
    for (name, v) in [("mware requests", &mut mr), ("certbot requests", &mut cr), ("lego requests", &mut lr)] {
        let (a, m, b) = stats(v);
        println!("{name:<28} min {a} median {m} max {b}");
    }
    let med = |v: &mut Vec<f64>| stats(v).1;
    let fastest = med(&mut cb).min(med(&mut lg));
    println!("ratio mware/fastest peer: to certificate {:.2}x, to deployed {:.2}x", med(&mut mi) / fastest, med(&mut md) / fastest);
}
