//! The check of the `microservices` section: every problem, each with its path.

use super::{network, signal, FACILITIES};
use mware_config::{index, join, quote, Check};
use serde_json::{Map, Value};
use std::collections::HashMap;

const KEYS: &[&str] = &["processes", "log", "udp_mirror", "syslog"];
const PROCESS_KEYS: &[&str] = &[
    "name",
    "argv",
    "env",
    "working_dir",
    "run_on",
    "restart",
    "backoff_ms",
    "backoff_max_ms",
    "max_restarts",
    "restart_window_s",
    "stop_signal",
    "stop_grace_s",
    "limits",
];
const LIMIT_KEYS: &[&str] = &["nofile", "address_space_mb", "cpu_s", "nproc", "core_mb"];

/// `microservices`: processes, log, udp_mirror.
pub(super) fn microservices(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, KEYS, &[]);
    if let Some(list) = m.get("processes") {
        processes(cx, list, &join(p, "processes"));
    }
    if let Some(l) = m.get("log") {
        let lp = join(p, "log");
        if let Some(lm) = cx.object(l, &lp) {
            cx.keys(lm, &lp, &["file_mb", "files"], &[]);
            cx.int(lm, &lp, "file_mb", 1, 4096);
            cx.int(lm, &lp, "files", 1, 100);
        }
    }
    if let Some(u) = m.get("udp_mirror") {
        mirror(cx, u, &join(p, "udp_mirror"));
    }
    if let Some(s) = m.get("syslog") {
        let names: Vec<&str> =
            m.get("processes").and_then(Value::as_array).into_iter().flatten().filter_map(|p| p.get("name")?.as_str()).collect();
        syslog(cx, s, &join(p, "syslog"), &names);
    }
}

/// `syslog`: target, transport, facility, processes (each one of `names`).
fn syslog(cx: &mut Check, v: &Value, p: &str, names: &[&str]) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, &["target", "transport", "facility", "processes"], &["target"]);
    if let Some(t) = cx.nonempty_str(m, p, "target") {
        let ok = t.rsplit_once(':').is_some_and(|(h, port)| {
            !h.trim_matches(['[', ']']).is_empty() && port.parse::<u16>().is_ok_and(|n| n > 0) && !h.contains(char::is_whitespace)
        });
        if !ok {
            cx.report(&join(p, "target"), format!("expected HOST:PORT (such as 10.0.0.5:514 or [::1]:514), found {}", quote(t)));
        }
    }
    cx.choice(m, p, "transport", &["udp", "tcp"]);
    cx.choice(m, p, "facility", &FACILITIES);
    for (ip, s) in cx.strings(m, p, "processes") {
        if !names.contains(&s) {
            cx.report(&ip, format!("expected the name of a process of this section ({}), found {}", names.join(", "), quote(s)));
        }
    }
}

fn processes(cx: &mut Check, v: &Value, p: &str) {
    let Some(list) = cx.list(v, p) else { return };
    let mut names = HashMap::new();
    for (i, t) in list.iter().enumerate() {
        let tp = index(p, i);
        let Some(m) = cx.object(t, &tp) else { continue };
        cx.keys(m, &tp, PROCESS_KEYS, &["name", "argv"]);
        cx.unique_name(m, &tp, &mut names, "process");
        cx.argv(m, &tp, "argv");
        if let Some(e) = m.get("env") {
            cx.env(e, &join(&tp, "env"));
        }
        if let Some(d) = cx.nonempty_str(m, &tp, "working_dir") {
            if d.contains('\0') {
                cx.report(&join(&tp, "working_dir"), format!("expected a directory path, found {}", quote(d)));
            }
        }
        cx.choice(m, &tp, "run_on", &["active", "every"]);
        cx.choice(m, &tp, "restart", &["always", "on-failure", "never"]);
        let lo = cx.int(m, &tp, "backoff_ms", 10, 3_600_000);
        let hi = cx.int(m, &tp, "backoff_max_ms", 10, 3_600_000);
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if hi < lo {
                cx.report(&join(&tp, "backoff_max_ms"), format!("expected at least backoff_ms ({lo}), found {hi}"));
            }
        }
        cx.int(m, &tp, "max_restarts", 0, 10_000);
        cx.int(m, &tp, "restart_window_s", 1, 86_400);
        if let Some(s) = cx.str(m, &tp, "stop_signal") {
            if let Err(e) = signal(s) {
                cx.report(&join(&tp, "stop_signal"), format!("{e}, found {}", quote(s)));
            }
        }
        cx.int(m, &tp, "stop_grace_s", 0, 3600);
        if let Some(l) = m.get("limits") {
            limits(cx, l, &join(&tp, "limits"));
        }
    }
}

fn limits(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, LIMIT_KEYS, &[]);
    cx.int(m, p, "nofile", 8, 1 << 20);
    cx.int(m, p, "address_space_mb", 16, 1 << 30);
    cx.int(m, p, "cpu_s", 1, i64::MAX);
    cx.int(m, p, "nproc", 1, 1 << 22);
    cx.int(m, p, "core_mb", 0, 1 << 30);
}

fn mirror(cx: &mut Check, v: &Value, p: &str) {
    let Some(m): Option<&Map<String, Value>> = cx.object(v, p) else { return };
    cx.keys(m, p, &["ports", "per_source_pps", "global_pps", "allowed_networks"], &["ports"]);
    if let Some(pv) = m.get("ports") {
        let pp = join(p, "ports");
        if let Some(list) = cx.list(pv, &pp) {
            if list.is_empty() {
                cx.report(&pp, "expected at least one UDP port, found an empty list");
            }
            let mut seen = HashMap::new();
            for (i, port) in list.iter().enumerate() {
                let ip = index(&pp, i);
                if let Some(n) = cx.int_value(port, &ip, 1, 65535) {
                    if let Some(first) = seen.insert(n, ip.clone()) {
                        cx.report(&ip, format!("expected each port once, found {n} again (first at {first})"));
                    }
                }
            }
        }
    }
    cx.int(m, p, "per_source_pps", 1, 1_000_000);
    cx.int(m, p, "global_pps", 1, 10_000_000);
    for (ip, s) in cx.strings(m, p, "allowed_networks") {
        if let Err(e) = network(s) {
            cx.report(&ip, format!("{e} (a network such as 10.0.0.0/8), found {}", quote(s)));
        }
    }
}
