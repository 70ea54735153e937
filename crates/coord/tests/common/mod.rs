//! Shared test support: member processes (the `member` example), their JSON event
//! lines, active intervals and the overlap check. (The TCP proxy that cuts a member
//! off from etcd is `mware_testkit::Proxy`.)
#![allow(dead_code)]

use mware_testkit::Child;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

/// The `member` example binary, built on first use.
pub fn member_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().expect("test exe");
    // target/<profile>/deps/<test> -> target/<profile>/examples/member
    let bin = exe.parent().unwrap().parent().unwrap().join("examples").join("member");
    BUILD.call_once(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "mware-coord", "--example", "member"])
            .status()
            .expect("run cargo build --example member");
        assert!(st.success(), "cargo build --example member failed");
    });
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

/// A member process and its event log.
pub struct Member {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Member {
    /// Starts `member` with `args` (after the instance/group/order flags).
    pub fn start(dir: &Path, name: &str, group: u32, order: i64, args: &[String]) -> Member {
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(member_bin());
        cmd.args(["--instance", name, "--group", &group.to_string(), "--order", &order.to_string()]);
        cmd.args(args);
        cmd.env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "mware_coord=info".into()));
        let child = Child::spawn(name, cmd, &log).expect("start member");
        Member { name: name.into(), child, log }
    }

    /// The JSON event lines printed so far.
    pub fn events(&self) -> Vec<Value> {
        events(&self.log)
    }

    /// The last activity line (`active` or `passive`), if any.
    pub fn last_activity(&self) -> Option<Value> {
        self.events().into_iter().rev().find(|e| matches!(e["event"].as_str(), Some("active" | "passive")))
    }

    /// Whether the last activity line says active.
    pub fn is_active(&self) -> bool {
        self.last_activity().is_some_and(|e| e["event"] == "active")
    }
}

/// Parses the JSON event lines of a log (lines that are JSON objects with an `event`).
pub fn events(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("event").is_some())
        .collect()
}

/// Waits until `f` holds, up to `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for: {what}");
}

pub use mware_config::now_ms;

/// An interval during which `instance` was active: from its `active` line to its
/// `passive` line, or to `end_ms` (the kill time) when it was killed while active.
#[derive(Debug, Clone)]
pub struct Interval {
    pub instance: String,
    pub epoch: u64,
    pub from: u64,
    pub to: u64,
}

/// Active intervals of one member; `killed_at` closes an open interval.
pub fn intervals(m: &Member, killed_at: Option<u64>) -> Vec<Interval> {
    let mut out = Vec::new();
    let mut open: Option<(u64, u64)> = None;
    for e in m.events() {
        let ts = e["ts_ms"].as_u64().unwrap_or(0);
        match e["event"].as_str() {
            Some("active") => open = Some((ts, e["epoch"].as_u64().unwrap_or(0))),
            Some("passive") => {
                if let Some((from, epoch)) = open.take() {
                    out.push(Interval { instance: m.name.clone(), epoch, from, to: ts });
                }
            }
            _ => {}
        }
    }
    if let Some((from, epoch)) = open {
        out.push(Interval { instance: m.name.clone(), epoch, from, to: killed_at.unwrap_or(u64::MAX) });
    }
    out
}

/// Panics if two intervals of different instances overlap; returns them sorted.
pub fn assert_no_overlap(mut all: Vec<Interval>) -> Vec<Interval> {
    all.sort_by_key(|i| i.from);
    for w in all.windows(2) {
        assert!(
            w[0].to <= w[1].from,
            "active intervals overlap: {} (epoch {}) {}..{} and {} (epoch {}) {}..{}",
            w[0].instance,
            w[0].epoch,
            w[0].from,
            w[0].to,
            w[1].instance,
            w[1].epoch,
            w[1].from,
            w[1].to
        );
        assert!(w[0].epoch < w[1].epoch || w[0].instance == w[1].instance, "epochs must grow: {all:?}");
    }
    all
}

/// Backend flags for the `member` example against etcd.
pub fn etcd_args(endpoint: &str, prefix: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["--backend", "etcd", "--endpoints", endpoint, "--prefix", prefix].iter().map(|s| s.to_string()).collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}
