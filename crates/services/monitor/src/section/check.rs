//! The check of the `monitoring` section: `enabled` and the probes, every problem with
//! its path.

use mware_config::{canonical, index, is_host_port, join, quote, Check};
use serde_json::{Map, Value};
use std::collections::HashMap;

const MONITORING_KEYS: &[&str] = &["enabled", "probes"];
const COMMON: &[&str] = &["name", "kind", "target", "interval_ms", "timeout_ms", "fail_after", "recover_after"];
/// Each kind with the keys only it takes, and whether it takes `target`.
const KINDS: &[(&str, &[&str], bool)] = &[
    ("dns", &["resolver", "expect"], true),
    ("tcp", &[], true),
    ("http", &["status", "body_contains"], true),
    ("postgres", &["dsn", "query"], false),
    ("megaco", &["mid"], true),
    ("fsync", &["copies", "ssh_copies"], true),
    ("command", &["command"], false),
];

/// `monitoring`: `enabled` and the probes.
pub(super) fn monitoring(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, MONITORING_KEYS, &[]);
    cx.bool(m, p, "enabled");
    let pp = join(p, "probes");
    let Some(list) = m.get("probes").and_then(|v| cx.list(v, &pp)) else {
        return;
    };
    let mut names = HashMap::new();
    for (i, probe) in list.iter().enumerate() {
        let ip = index(&pp, i);
        if let Some(pm) = cx.object(probe, &ip) {
            self::probe(cx, pm, &ip, &mut names);
        }
    }
}

fn probe(cx: &mut Check, m: &Map<String, Value>, p: &str, names: &mut HashMap<String, String>) {
    let all: Vec<&str> = COMMON.iter().chain(KINDS.iter().flat_map(|k| k.1.iter())).copied().collect();
    cx.keys(m, p, &all, &["name", "kind"]);
    cx.unique_name(m, p, names, "probe");
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.0).collect();
    let kind_name = cx.choice(m, p, "kind", &kinds);
    let target = cx.nonempty_str(m, p, "target");
    timing(cx, m, p);
    // Every kind's keys are type-checked wherever they appear.
    lookup_values(cx, m, p);
    copy_values(cx, m, p, target);
    cx.argv(m, p, "command");
    let Some(kind_name) = kind_name else { return };
    keys_of_the_kind(cx, m, p, &kind_name);
    required_of_the_kind(cx, m, p, &kind_name);
    if let Some(t) = target {
        target_form(cx, &kind_name, t, &join(p, "target"));
    }
}

/// `interval_ms`, `timeout_ms` (within the interval), `fail_after`, `recover_after`.
fn timing(cx: &mut Check, m: &Map<String, Value>, p: &str) {
    let interval = cx.int(m, p, "interval_ms", 100, 86_400_000).unwrap_or(10_000);
    if let Some(t) = cx.int(m, p, "timeout_ms", 10, 3_600_000) {
        if t > interval {
            cx.report(
                &join(p, "timeout_ms"),
                format!("expected at most interval_ms ({interval} ms): a check must end before the next one starts; found {t}"),
            );
        }
    }
    cx.int(m, p, "fail_after", 1, 100);
    cx.int(m, p, "recover_after", 1, 100);
}

/// The keys of the dns, http, postgres and megaco kinds.
fn lookup_values(cx: &mut Check, m: &Map<String, Value>, p: &str) {
    if let Some(r) = cx.nonempty_str(m, p, "resolver") {
        if r.parse::<std::net::IpAddr>().is_err() && r.parse::<std::net::SocketAddr>().is_err() {
            cx.report(&join(p, "resolver"), format!("expected an IP address or ip:port, found {}", quote(r)));
        }
    }
    for (ep, e) in cx.strings(m, p, "expect") {
        if e.parse::<std::net::IpAddr>().is_err() {
            cx.report(&ep, format!("expected an IP address, found {}", quote(e)));
        }
    }
    cx.int(m, p, "status", 100, 599);
    cx.nonempty_str(m, p, "body_contains");
    if cx.secret(m, p, "dsn") && m.get("dsn").and_then(Value::as_str).is_some_and(|s| s.trim().is_empty()) {
        cx.report(&join(p, "dsn"), "expected a PostgreSQL connection string, found an empty one");
    }
    cx.nonempty_str(m, p, "query");
    if let Some(mid) = cx.nonempty_str(m, p, "mid") {
        if !mid.chars().all(|c| c.is_ascii_alphanumeric() || "[]:.-_<>".contains(c)) {
            cx.report(
                &join(p, "mid"),
                format!("expected an H.248 mId like [10.0.0.1]:2944 or <mgc1> (letters, digits and []:.-_<>), found {}", quote(mid)),
            );
        }
    }
}

/// The fsync kind's `copies` (absolute, not the target) and `ssh_copies`.
fn copy_values(cx: &mut Check, m: &Map<String, Value>, p: &str, target: Option<&str>) {
    let copies = cx.strings(m, p, "copies");
    for (cp, c) in &copies {
        if !c.starts_with('/') || c.contains('\0') {
            cx.report(cp, format!("expected an absolute folder path, found {}", quote(c)));
        } else if target == Some(*c) {
            cx.report(cp, format!("expected another folder than target, found the same ({})", quote(c)));
        }
    }
    if let Some(list) = m.get("ssh_copies").and_then(|v| cx.list(v, &join(p, "ssh_copies"))) {
        for (i, c) in list.iter().enumerate() {
            ssh_copy(cx, c, &index(&join(p, "ssh_copies"), i));
        }
    }
}

/// No key of another kind, and `target` exactly when the kind takes one.
fn keys_of_the_kind(cx: &mut Check, m: &Map<String, Value>, p: &str, kind_name: &str) {
    let &(_, own, takes_target) = KINDS.iter().find(|k| k.0 == kind_name).expect("a known kind");
    for key in m.keys() {
        let other = KINDS.iter().find(|k| k.0 != kind_name && k.1.contains(&key.as_str()) && !own.contains(&key.as_str()));
        if let Some((o, _, _)) = other {
            cx.report(
                &join(p, key),
                format!("expected the keys of a {kind_name} probe ({}), found {key:?}, a key of {o} probes", keys_of(own, takes_target)),
            );
        }
    }
    match (takes_target, m.contains_key("target")) {
        (false, true) => {
            cx.report(&join(p, "target"), format!("expected no target for a {kind_name} probe ({}), found one", keys_of(own, false)))
        }
        (true, false) => {
            cx.report(&join(p, "target"), format!("expected the required key \"target\" for a {kind_name} probe, found it missing"))
        }
        _ => {}
    }
}

/// The keys a kind cannot do without: postgres `dsn`, fsync a copy, command `command`.
fn required_of_the_kind(cx: &mut Check, m: &Map<String, Value>, p: &str, kind_name: &str) {
    let need = |cx: &mut Check, key: &str| {
        if !m.contains_key(key) {
            cx.report(&join(p, key), format!("expected the required key {key:?} for a {kind_name} probe, found it missing"));
        }
    };
    match kind_name {
        "postgres" => need(cx, "dsn"),
        "fsync" => {
            let count = |k: &str| m.get(k).and_then(Value::as_array).map_or(0, Vec::len);
            let typed = ["copies", "ssh_copies"].iter().all(|k| m.get(*k).is_none_or(Value::is_array));
            if typed && count("copies") + count("ssh_copies") == 0 {
                cx.report(&join(p, "copies"), "expected at least one other copy of the folder (copies or ssh_copies), found none");
            }
        }
        "command" => need(cx, "command"),
        _ => {}
    }
}

const SSH_COPY_KEYS: &[&str] = &["host", "port", "user", "password", "key_file", "path"];

/// One `ssh_copies` entry: host, port, user, password or key file, absolute path.
fn ssh_copy(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, SSH_COPY_KEYS, &["host", "user", "path"]);
    cx.nonempty_str(m, p, "host");
    cx.port(m, p, "port");
    cx.nonempty_str(m, p, "user");
    let pw = cx.secret(m, p, "password");
    let key = cx.nonempty_str(m, p, "key_file").is_some();
    if pw == key {
        cx.report(p, format!("expected either password or key_file, found {}", if pw { "both" } else { "neither" }));
    }
    if let Some(path) = cx.nonempty_str(m, p, "path") {
        if !path.starts_with('/') || path.contains('\0') {
            cx.report(&join(p, "path"), format!("expected an absolute folder path, found {}", quote(path)));
        }
    }
}

/// What `target` must look like for each kind.
fn target_form(cx: &mut Check, kind_name: &str, t: &str, tp: &str) {
    match kind_name {
        "dns" => {
            if let Err(e) = canonical(t) {
                cx.report(tp, e.to_string());
            }
        }
        "tcp" | "megaco" if !is_host_port(t) => {
            cx.report(tp, format!("expected host:port (an IPv6 address in brackets), found {}", quote(t)))
        }
        "http" => match t.strip_prefix("http://") {
            Some(rest) => {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                if authority.contains('@') {
                    cx.report(tp, "expected no credentials in the URL, found some (not shown)");
                } else if authority.is_empty() {
                    cx.report(tp, format!("expected a URL like http://host:port/path, found {}", quote(t)));
                }
            }
            None => cx.report(tp, format!("expected an http:// URL (probes do not speak TLS), found {}", quote(t))),
        },
        "fsync" if !t.starts_with('/') || t.contains('\0') => {
            cx.report(tp, format!("expected an absolute folder path, found {}", quote(t)))
        }
        _ => {}
    }
}

fn keys_of(own: &[&str], takes_target: bool) -> String {
    let mut k: Vec<&str> = COMMON.iter().copied().filter(|c| takes_target || *c != "target").collect();
    k.extend(own);
    k.join(", ")
}
