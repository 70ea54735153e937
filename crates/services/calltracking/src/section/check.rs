//! The check of the `calltracking` section: every problem, each with its path.

use mware_config::{index, join, Check};
use serde_json::{Map, Value};
use std::collections::HashMap;

const KEYS: &[&str] =
    &["registrar_rpc", "resync_ms", "static_registrations", "options", "sg", "sg_check", "journal_size", "max_live_calls", "external"];

/// `calltracking`.
pub(super) fn calltracking(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, KEYS, &["registrar_rpc"]);
    if let Some(u) = cx.str(m, p, "registrar_rpc") {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            cx.report(&join(p, "registrar_rpc"), format!("expected an http:// or https:// URL, found {u:?}"));
        }
    }
    cx.int(m, p, "resync_ms", 100, 600_000);
    cx.int(m, p, "journal_size", 1, 100_000);
    cx.int(m, p, "max_live_calls", 1, 1_000_000);
    if let Some(l) = m.get("static_registrations") {
        statics(cx, l, &join(p, "static_registrations"));
    }
    if let Some(o) = m.get("options") {
        timing(cx, o, &join(p, "options"), &["interval_ms", "timeout_ms"]);
    }
    if let Some(l) = m.get("sg") {
        sgs(cx, l, &join(p, "sg"));
    }
    if let Some(o) = m.get("sg_check") {
        timing(cx, o, &join(p, "sg_check"), &["interval_ms", "timeout_ms", "fail_after"]);
    }
    if let Some(e) = m.get("external") {
        external(cx, e, &join(p, "external"));
    }
}

fn external(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, &["listen", "expires_s", "numbers"], &[]);
    if let Some(l) = cx.str(m, p, "listen") {
        if l.parse::<std::net::SocketAddr>().is_err() {
            cx.report(&join(p, "listen"), format!("expected <IP>:<port>, e.g. \"10.0.0.9:5090\" or \"0.0.0.0:0\", found {l:?}"));
        }
    }
    cx.int(m, p, "expires_s", 10, 86_400);
    let Some(l) = m.get("numbers") else { return };
    let lp = join(p, "numbers");
    let Some(list) = cx.list(l, &lp) else { return };
    let mut seen: HashMap<String, String> = HashMap::new();
    for (i, e) in list.iter().enumerate() {
        let ep = index(&lp, i);
        let Some(n) = cx.object(e, &ep) else { continue };
        cx.keys(n, &ep, &["domain", "number", "server"], &["domain", "number", "server"]);
        let domain = cx.nonempty_str(n, &ep, "domain").and_then(|d| match crate::validate::domain(d) {
            Ok(d) => Some(d),
            Err(e) => {
                cx.report(&join(&ep, "domain"), e);
                None
            }
        });
        let number = cx.str(n, &ep, "number");
        if let Some(u) = number {
            if let Err(e) = crate::dialoginfo::check_uri(u) {
                cx.report(&join(&ep, "number"), e);
            }
        }
        if let Some(a) = cx.str(n, &ep, "server") {
            if mware_sip::addr::contact_target(a).is_err() {
                cx.report(&join(&ep, "server"), format!("expected sip:<IP address>[:port], e.g. \"sip:10.0.1.5:5060\", found {a:?}"));
            }
        }
        if let (Some(d), Some(u)) = (domain, number) {
            let key = format!("{d} {u}");
            if let Some(first) = seen.insert(key, ep.clone()) {
                cx.report(&ep, format!("expected each number once per domain, found {u} for {d} again (first at {first})"));
            }
        }
    }
}

fn statics(cx: &mut Check, v: &Value, p: &str) {
    let Some(list) = cx.list(v, p) else { return };
    let mut seen: HashMap<String, String> = HashMap::new();
    for (i, e) in list.iter().enumerate() {
        let ep = index(p, i);
        let Some(m) = cx.object(e, &ep) else { continue };
        cx.keys(m, &ep, &["domain", "user", "contact", "transport"], &["domain", "user", "contact"]);
        let domain = cx.nonempty_str(m, &ep, "domain");
        if let Some(d) = domain {
            if let Err(e) = crate::validate::domain(d) {
                cx.report(&join(&ep, "domain"), e);
            }
        }
        let user = cx.str(m, &ep, "user");
        if let Some(u) = user {
            if let Err(e) = crate::validate::user(u) {
                cx.report(&join(&ep, "user"), e);
            }
        }
        if let Some(c) = cx.str(m, &ep, "contact") {
            if let Err(e) = mware_sip::addr::contact_target(c) {
                cx.report(&join(&ep, "contact"), e);
            }
        }
        cx.choice(m, &ep, "transport", &["udp", "tcp"]);
        if let (Some(d), Some(u)) = (domain, user) {
            let aor = format!("{}@{}", u, d.to_ascii_lowercase());
            if let Some(first) = seen.insert(aor.clone(), ep.clone()) {
                cx.report(&ep, format!("expected each account once, found {aor} again (first at {first})"));
            }
        }
    }
}

fn sgs(cx: &mut Check, v: &Value, p: &str) {
    let Some(list) = cx.list(v, p) else { return };
    let mut names = HashMap::new();
    for (i, e) in list.iter().enumerate() {
        let ep = index(p, i);
        let Some(m) = cx.object(e, &ep) else { continue };
        cx.keys(m, &ep, &["name", "address", "path_address"], &["name", "address"]);
        cx.unique_name(m, &ep, &mut names, "sg");
        for k in ["address", "path_address"] {
            if let Some(a) = cx.str(m, &ep, k) {
                if mware_sip::addr::contact_target(a).is_err() {
                    cx.report(&join(&ep, k), format!("expected sip:<IP address>[:port], e.g. \"sip:10.0.0.7:5060\", found {a:?}"));
                }
            }
        }
    }
}

fn timing(cx: &mut Check, v: &Value, p: &str, keys: &[&str]) {
    let Some(m): Option<&Map<String, Value>> = cx.object(v, p) else { return };
    cx.keys(m, p, keys, &[]);
    let interval = cx.int(m, p, "interval_ms", 100, 3_600_000);
    let timeout = cx.int(m, p, "timeout_ms", 50, 60_000);
    if keys.contains(&"fail_after") {
        cx.int(m, p, "fail_after", 1, 100);
    }
    if let (Some(i), Some(t)) = (interval, timeout) {
        if t > i {
            cx.report(&join(p, "timeout_ms"), format!("expected at most interval_ms ({i}), found {t}"));
        }
    }
}
