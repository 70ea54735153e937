//! (ignored; benchmark) The users service in a real daemon with a real PostgreSQL:
//! - the cost of a flood after the limit trips: one client floods `POST
//!   /api/users/v1/recovery` with wrk past `per_ip_per_min`; the daemon's CPU (utime +
//!   stime from /proc) per refused request, against nginx's `limit_req` refusing the same
//!   flood in the same run (the peer an operator would put in front);
//! - logins per second (Argon2id with OWASP's parameters dominates) and accepted recovery
//!   requests per second, each with its p99.
//!
//! `cargo test --release -p mware --test users_bench -- --ignored --nocapture`

/// The daemon's allocator, so the floor is measured with it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;

use common::*;
use mware_testkit::pg::PgInstance;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const TOKEN: &str = "users-bench-token";
const DOMAIN: &str = "tenant1.example.ru";
/// The password of the login flood (no such account: one dummy verification each).
const PW: &str = "a long bench password";

fn cpu_s(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// `wrk` POSTing `body` to `url`: (requests, non-2xx, p99 ms, requests/s).
fn wrk(dir: &Path, url: &str, body: &str, conns: u32, secs: u32) -> (u64, u64, f64, f64) {
    let script = dir.join("post.lua");
    std::fs::write(&script, format!("wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{body}'\n"))
        .unwrap();
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s"), "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let num = |after: &str| -> f64 {
        text.lines()
            .find(|l| l.trim_start().starts_with(after))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(|v| {
                let (n, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
                let n: f64 = n.parse().unwrap_or(0.0);
                match unit {
                    "us" => n / 1000.0,
                    "s" => n * 1000.0,
                    _ => n,
                }
            })
            .unwrap_or(0.0)
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let non2xx = text.lines().find(|l| l.contains("Non-2xx")).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    eprintln!("{text}");
    (requests, non2xx, num("99%"), rps)
}

fn daemon(dir: &Path, pg: &PgInstance, limits: serde_json::Value, argon2: serde_json::Value) -> Daemon {
    let (port, addr) = free_addr();
    let site = json!({
        "site": "ub", "coordination": {"backend": "embedded", "path": dir.join("coord.sqlite").display().to_string()},
        "api": {"token_env": "MWARE_API_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [{
            "name": "b10", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "api_port": port,
            "users": {"database": {"dsn_env": "MWARE_USERS_DSN"}, "public_url": "https://id.test",
                      "smtp": {"host": "127.0.0.1", "port": 9, "tls": "none", "from": "noreply@example.ru"},
                      "argon2": argon2, "limits": limits, "domains": [{"name": DOMAIN}]}
        }]}]
    });
    let cfg = dir.join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let dsn = format!("host=127.0.0.1 port={} user=postgres dbname=users sslmode=disable", pg.port);
    let d = Daemon::start(
        &cfg,
        "b10",
        &addr,
        dir.join("b10.log"),
        &[("MWARE_API_TOKEN", TOKEN), ("MWARE_USERS_DSN", dsn.as_str()), ("RUST_LOG", "warn")],
    );
    d.wait_status(Duration::from_secs(30), |v| {
        v["services"].as_array().is_some_and(|s| s.iter().any(|x| x["name"] == "users" && x["state"] == "running"))
    });
    d
}

fn nginx(dir: &Path) -> (mware_testkit::Child, String) {
    let (_, addr) = free_addr();
    std::fs::create_dir_all(dir.join("nginx/logs")).unwrap();
    // Content from a static folder: `limit_req` (preaccess phase) runs before it, which a
    // `return` (rewrite phase) would skip.
    std::fs::create_dir_all(dir.join("nginx/empty")).unwrap();
    let conf = dir.join("nginx/nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{ worker_connections 1024; }}\n\
             http {{ access_log off; limit_req_zone $binary_remote_addr zone=z:10m rate=1r/m; limit_req_status 429;\n\
             server {{ listen {addr}; location / {{ limit_req zone=z; root {p}/empty; }} }} }}\n",
            p = dir.join("nginx").display()
        ),
    )
    .unwrap();
    let mut c = Command::new("/usr/sbin/nginx");
    c.arg("-c").arg(&conf).arg("-p").arg(dir.join("nginx")).args(["-g", "daemon off;"]);
    let child = mware_testkit::Child::spawn("nginx", c, &dir.join("nginx.log")).unwrap();
    mware_testkit::wait_for_port(&addr, Duration::from_secs(10)).unwrap();
    (child, format!("http://{addr}"))
}

/// CPU of nginx's master and worker.
fn nginx_cpu(master: i32) -> f64 {
    let kids = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap_or_default();
    cpu_s(master) + kids.split_whitespace().filter_map(|p| p.parse().ok()).map(cpu_s).sum::<f64>()
}

/// The floor: the flood of `body` to a bare router answering every request with a static
/// 429 (what the daemon's gate answers), served in this process on a multi-thread runtime
/// like the daemon's, by `axum::serve` (`mware_server` false) or `mware_http::serve`:
/// (requests, CPU µs per request).
fn floor(dir: &Path, body: &str, mware_server: bool) -> (u64, f64) {
    use axum::http::{header, StatusCode};
    const ANSWER: &str = r#"{"error":"too many requests for this ip: try again later","retryable":true}"#;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async {
        (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "60"), (header::CONTENT_TYPE, "application/json")], ANSWER)
    });
    let cancel = tokio_util::sync::CancellationToken::new();
    if mware_server {
        rt.spawn(mware_http::serve(listener, app, mware_http::Limits::default(), mware_http::Stats::default(), cancel.clone()));
    } else {
        let stop = cancel.clone();
        rt.spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await });
    }
    let me = std::process::id() as i32;
    let c0 = cpu_s(me);
    let (n, refused, _, rps) = wrk(dir, &format!("http://{addr}/api/users/v1/recovery"), body, 16, 10);
    let us = (cpu_s(me) - c0) * 1e6 / n.max(1) as f64;
    assert!(refused + 16 >= n, "every answer of the bare router is a 429: {refused} of {n}");
    eprintln!(
        "REFUSED floor ({}): {n} requests, {rps:.0}/s, CPU {us:.1} us per request",
        if mware_server { "bare router, mware_http::serve" } else { "bare router, axum::serve" }
    );
    cancel.cancel();
    rt.shutdown_timeout(Duration::from_secs(5));
    (n, us)
}

#[test]
#[ignore]
fn refused_flood_cost_and_login_and_recovery_rates() {
    let pg = PgInstance::new_primary("users-bench").unwrap();
    pg.psql("CREATE DATABASE users").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("load before: {load}");

    // 1. A refused flood: mware (limit 1/min per IP) vs nginx limit_req (1/min).
    let d = daemon(dir.path(), &pg, json!({"per_ip_per_min": 1}), json!({}));
    let body = format!("{{\"domain\":\"{DOMAIN}\",\"login\":\"flood@example.ru\"}}");
    let url = format!("{}/api/users/v1/recovery", d.api);
    let c0 = cpu_s(d.child.pid());
    let (n, non2xx, p99, rps) = wrk(dir.path(), &url, &body, 16, 10);
    let mware_us = (cpu_s(d.child.pid()) - c0) * 1e6 / n.max(1) as f64;
    let (ng, ng_url) = nginx(dir.path());
    let c0 = nginx_cpu(ng.pid());
    let (nn, nnon2xx, np99, nrps) = wrk(dir.path(), &format!("{ng_url}/api/users/v1/recovery"), &body, 16, 10);
    let nginx_us = (nginx_cpu(ng.pid()) - c0) * 1e6 / nn.max(1) as f64;
    eprintln!("REFUSED mware: {n} requests ({non2xx} refused), {rps:.0}/s, p99 {p99:.2} ms, CPU {mware_us:.1} us per request");
    eprintln!("REFUSED nginx: {nn} requests ({nnon2xx} refused), {nrps:.0}/s, p99 {np99:.2} ms, CPU {nginx_us:.1} us per request");
    eprintln!("REFUSED ratio mware/nginx CPU per request: {:.2}", mware_us / nginx_us);
    drop(ng);
    drop(d);
    let (_, axum_us) = floor(dir.path(), &body, false);
    let (_, server_us) = floor(dir.path(), &body, true);
    eprintln!(
        "REFUSED summary: mware {mware_us:.1} us, nginx {nginx_us:.1} us (ratio {:.2}), floor axum::serve {axum_us:.1} us, \
         mware_http::serve {server_us:.1} us; mware above its own server's floor: {:.1} us",
        mware_us / nginx_us,
        mware_us - server_us
    );
    eprintln!("load after the refused floods: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default());

    // 2. Logins/s (OWASP Argon2id) and accepted recovery requests/s, limits out of the way.
    let dir2 = tempfile::tempdir().unwrap();
    let free = json!({"per_ip_per_min": 1000000, "per_login_per_hour": 1000000, "per_address_per_hour": 1000000});
    let d = daemon(dir2.path(), &pg, free, json!({}));
    eprintln!("load now: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default());
    let login = format!("{{\"domain\":\"{DOMAIN}\",\"login\":\"nobody@example.ru\",\"password\":\"{PW}\"}}");
    let (n, non2xx, p99, rps) = wrk(dir2.path(), &format!("{}/api/users/v1/login", d.api), &login, 4, 10);
    eprintln!("LOGIN (failed, one Argon2id verification each): {n} requests ({non2xx} non-2xx), {rps:.1}/s, p99 {p99:.1} ms");
    let (n, non2xx, p99, rps) = wrk(dir2.path(), &format!("{}/api/users/v1/recovery", d.api), &body, 16, 10);
    eprintln!("RECOVERY (accepted): {n} requests ({non2xx} non-2xx), {rps:.0}/s, p99 {p99:.2} ms");
}
