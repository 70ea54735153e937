//! Shared helpers for the daemon's end-to-end tests: start `mware run` as a real
//! process on a free loopback port, wait for it, read its API, collect its output.

#![allow(dead_code)]

pub mod callback;
pub mod calls;
pub mod failover;

use mware_testkit::{free_port, Child};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Path of the built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mware"))
}

/// A running `mware run` process.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    pub api: String,
}

impl Daemon {
    /// Starts `mware run --config FILE --instance NAME` with `env`, logging JSON to `log`.
    pub fn start(config: &Path, instance: &str, api_addr: &str, log: PathBuf, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(bin());
        cmd.args(["--log-format", "json", "run", "--config"]).arg(config).args(["--instance", instance]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env("RUST_LOG", "info");
        let child = Child::spawn(instance, cmd, &log).expect("start mware");
        Daemon { child, log, api: format!("http://{api_addr}") }
    }

    /// GET a JSON document from the API (None when it does not answer).
    pub fn get(&self, path: &str) -> Option<(u16, Value)> {
        get_json(&format!("{}{path}", self.api))
    }

    /// GET with a bearer token (calls that need one, like `/api/v1/config`).
    pub fn get_auth(&self, path: &str, token: &str) -> Option<(u16, Value)> {
        get_json_with(&format!("{}{path}", self.api), Some(token))
    }

    /// Waits until `pred(status)` holds, up to `timeout`.
    pub fn wait_status(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Some((200, v)) = self.get("/api/v1/status") {
                if pred(&v) {
                    return v;
                }
                last = v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("status condition not met within {timeout:?}; last status: {last}\nlog:\n{}", self.log_text());
    }

    /// Everything the process printed.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A blocking GET returning status and JSON body.
pub fn get_json(url: &str) -> Option<(u16, Value)> {
    get_json_with(url, None)
}

/// A blocking GET with an optional bearer token, returning status and JSON body.
pub fn get_json_with(url: &str, token: Option<&str>) -> Option<(u16, Value)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    rt.block_on(async {
        let mut req = reqwest::Client::new().get(url).timeout(Duration::from_secs(3));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.ok()?;
        let code = r.status().as_u16();
        let v = r.json::<Value>().await.unwrap_or(Value::Null);
        Some((code, v))
    })
}

/// A blocking GET of a text document (e.g. `/metrics`).
pub fn get_text(url: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    rt.block_on(async { reqwest::Client::new().get(url).timeout(Duration::from_secs(3)).send().await.ok()?.text().await.ok() })
}

/// A blocking POST with an optional bearer token, returning status and JSON body.
pub fn post_json(url: &str, token: Option<&str>, body: &Value) -> Option<(u16, Value)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    rt.block_on(async {
        let mut rb = reqwest::Client::new().post(url).json(body).timeout(Duration::from_secs(10));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.ok()?;
        let code = r.status().as_u16();
        let v = r.json::<Value>().await.unwrap_or(Value::Null);
        Some((code, v))
    })
}

/// A free port on 127.0.0.1 as `127.0.0.1:PORT`.
pub fn free_addr() -> (u16, String) {
    let p = free_port();
    (p, format!("127.0.0.1:{p}"))
}

/// Three `mware` roles of one group on loopback (order 10, 20, 30, each with its own
/// API port, logs beside the site file).
pub struct Trio {
    cfg: PathBuf,
    names: [&'static str; 3],
    ports: [u16; 3],
    env: Vec<(&'static str, &'static str)>,
}

impl Trio {
    /// Writes `dir/site.json`: `site` (the site document without `servers`) plus one
    /// server holding the three roles of `group`.
    pub fn new(dir: &Path, names: [&'static str; 3], group: u32, mut site: Value, env: &[(&'static str, &'static str)]) -> Trio {
        let ports = [0; 3].map(|_| mware_testkit::free_port());
        let roles: Vec<Value> = (0..3)
            .map(|i| serde_json::json!({"name": names[i], "roletype": "mware", "iface": "lo", "group": group, "order": (i as i64 + 1) * 10, "api_port": ports[i]}))
            .collect();
        site["servers"] = serde_json::json!([{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": roles}]);
        let cfg = dir.join("site.json");
        std::fs::write(&cfg, site.to_string()).unwrap();
        Trio { cfg, names, ports, env: env.to_vec() }
    }

    /// Starts instance `i` (0, 1 or 2).
    pub fn start(&self, i: usize) -> Daemon {
        let log = self.cfg.with_file_name(format!("{}.log", self.names[i]));
        Daemon::start(&self.cfg, self.names[i], &format!("127.0.0.1:{}", self.ports[i]), log, &self.env)
    }

    /// Starts instance `i` with another site file (e.g. other coordination endpoints).
    pub fn start_with(&self, i: usize, cfg: &Path) -> Daemon {
        let log = self.cfg.with_file_name(format!("{}.log", self.names[i]));
        Daemon::start(cfg, self.names[i], &format!("127.0.0.1:{}", self.ports[i]), log, &self.env)
    }

    /// The site file written by [`Trio::new`].
    pub fn config(&self) -> &Path {
        &self.cfg
    }

    /// Starts all three.
    pub fn start_all(&self) -> Vec<Daemon> {
        (0..3).map(|i| self.start(i)).collect()
    }

    /// The name of instance `i`.
    pub fn name(&self, i: usize) -> &'static str {
        self.names[i]
    }
}
