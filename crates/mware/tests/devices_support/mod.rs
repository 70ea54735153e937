//! Helpers of the devicemanager end-to-end tests: a one-group site with a
//! `devicemanager` section, pollers as real `mware poller` processes, slow HTTP devices,
//! and job calls.

#![allow(dead_code)]

use crate::common::*;
use mware_testkit::Child;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// devicemanager's own token (`devicemanager.token_env` = `MWARE_DM_TOKEN`): job calls.
pub const TOKEN: &str = "dm-e2e-token";
/// The API token (call scripts'): refused for job calls.
pub const API_TOKEN: &str = "dm-e2e-api-token";

/// A site of one group (members `names`, order 10, 20, ...) on the embedded coordinator.
pub struct DmSite {
    pub cfg: PathBuf,
    pub ports: Vec<u16>,
    pub names: Vec<String>,
    pub dir: PathBuf,
}

impl DmSite {
    /// `dm` is the group's section; unless it says otherwise, jobs take the token
    /// [`TOKEN`] (`token_env`) and may reach loopback (`allowed_targets` of the pool and
    /// each satellite: `127.0.0.0/8`, where the tests' devices listen).
    pub fn new(dir: &Path, names: &[&str], mut dm: Value) -> DmSite {
        if dm.get("token_env").is_none() {
            dm["token_env"] = json!("MWARE_DM_TOKEN");
        }
        if dm.get("allowed_targets").is_none() {
            let mut allow = serde_json::Map::new();
            allow.insert("pool".into(), json!(["127.0.0.0/8"]));
            for s in dm["satellites"].as_array().cloned().unwrap_or_default() {
                allow.insert(s.as_str().unwrap().to_string(), json!(["127.0.0.0/8"]));
            }
            dm["allowed_targets"] = Value::Object(allow);
        }
        let ports: Vec<u16> = names.iter().map(|_| mware_testkit::free_port()).collect();
        let roles: Vec<Value> = names
            .iter()
            .zip(&ports)
            .enumerate()
            .map(|(i, (n, p))| json!({"name": n, "roletype": "mware", "iface": "lo", "group": 5, "order": 10 * (i + 1), "api_port": p, "devicemanager": dm}))
            .collect();
        let site = json!({
            "site": "dm",
            "coordination": {"backend": "embedded", "path": dir.join("var/coord.sqlite").display().to_string(), "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
            "ssh": {"known_hosts": dir.join("known_hosts").display().to_string()},
            "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": roles}]
        });
        let cfg = dir.join("site.json");
        std::fs::write(&cfg, serde_json::to_string_pretty(&site).unwrap()).unwrap();
        DmSite { cfg, ports, names: names.iter().map(|s| s.to_string()).collect(), dir: dir.to_path_buf() }
    }

    pub fn start(&self, i: usize) -> Daemon {
        let n = &self.names[i];
        Daemon::start(
            &self.cfg,
            n,
            &format!("127.0.0.1:{}", self.ports[i]),
            self.dir.join(format!("{n}.log")),
            &[("MWARE_API_TOKEN", API_TOKEN), ("MWARE_DM_TOKEN", TOKEN)],
        )
    }
}

/// Waits until `d` is active with devicemanager running (and, with a broker, connected).
pub fn wait_serving(d: &Daemon, secs: u64) -> Value {
    d.wait_status(Duration::from_secs(secs), |v| {
        v["state"] == "active"
            && v["services"].as_array().is_some_and(|s| {
                s.iter().any(|x| x["name"] == "devicemanager" && x["state"] == "running" && x["detail"]["broker_connected"] != false)
            })
    })
}

/// A `mware poller` process.
pub fn poller(dir: &Path, dsn: &str, satellite: Option<&str>, name: &str, concurrency: u16) -> Child {
    poller_with(dir, dsn, satellite, name, concurrency, &[])
}

/// A `mware poller` process with more arguments.
pub fn poller_with(dir: &Path, dsn: &str, satellite: Option<&str>, name: &str, concurrency: u16, more: &[&str]) -> Child {
    let mut cmd = Command::new(bin());
    cmd.args(["--log-format", "json", "poller", "--name", name, "--concurrency", &concurrency.to_string(), "--heartbeat-ms", "500"]);
    cmd.arg("--known-hosts").arg(dir.join("poller_known_hosts"));
    if let Some(s) = satellite {
        cmd.args(["--satellite", s]);
    }
    cmd.args(more);
    cmd.env("MWARE_AMQP_DSN", dsn).env("RUST_LOG", "info");
    Child::spawn(name, cmd, &dir.join(format!("{name}.log"))).expect("start poller")
}

pub fn submit(d: &Daemon, body: &Value) -> (u16, Value) {
    post_json(&format!("{}/api/devicemanager/v1/jobs", d.api), Some(TOKEN), body).expect("api answers")
}

pub fn submit_batch(d: &Daemon, jobs: Vec<Value>) -> Vec<String> {
    let (code, v) =
        post_json(&format!("{}/api/devicemanager/v1/jobs:batch", d.api), Some(TOKEN), &json!({"jobs": jobs})).expect("api answers");
    assert_eq!(code, 202, "{v}");
    v["ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_string()).collect()
}

pub fn job(d: &Daemon, id: &str) -> Value {
    let (code, v) = get_json_with(&format!("{}/api/devicemanager/v1/jobs/{id}", d.api), Some(TOKEN)).expect("api answers");
    assert_eq!(code, 200, "{v}");
    v
}

/// Waits until the job has ended (state done, failed or expired).
pub fn wait_end(d: &Daemon, id: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some((200, v)) = get_json_with(&format!("{}/api/devicemanager/v1/jobs/{id}?wait_ms=1000", d.api), Some(TOKEN)) {
            if ["done", "failed", "expired"].contains(&v["state"].as_str().unwrap_or("")) {
                return v;
            }
            if Instant::now() > deadline {
                panic!("job {id} did not end within {secs} s: {v}\nlog:\n{}", d.log_text());
            }
        } else if Instant::now() > deadline {
            panic!("no answer about job {id}; log:\n{}", d.log_text());
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Waits until `pred(job)`.
pub fn wait_job(d: &Daemon, id: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some((200, v)) = get_json_with(&format!("{}/api/devicemanager/v1/jobs/{id}", d.api), Some(TOKEN)) {
            if pred(&v) {
                return v;
            }
            if Instant::now() > deadline {
                panic!("job {id}: condition not met within {secs} s: {v}");
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A device answering HTTP after `delay`, counting requests. Runs on its own thread.
pub struct SlowHttp {
    pub addr: String,
    pub hits: Arc<AtomicUsize>,
}

impl SlowHttp {
    pub fn start(delay: Duration) -> SlowHttp {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let h = h.clone();
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut buf = [0u8; 2048];
                    let _ = s.read(&mut buf);
                    h.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(delay);
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                });
            }
        });
        SlowHttp { addr, hits }
    }
}

/// A TCP listener that accepts and forgets connections (the target of `tcp.check`).
pub fn tcp_target() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || for _ in l.incoming() {});
    addr
}

/// The TCP/UDP sockets process `pid` listens on or has bound for receiving (LISTEN, or an
/// unconnected UDP socket), from /proc: a poller must have none.
pub fn listening_sockets(pid: i32) -> Vec<String> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| l.to_str().and_then(|s| s.strip_prefix("socket:[")).map(|s| s.trim_end_matches(']').to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![];
    for (file, listen_state) in [("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == listen_state && inodes.contains(f[9]) {
                out.push(format!("{file} {}", f[1]));
            }
        }
    }
    out
}
