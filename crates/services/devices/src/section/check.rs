//! Checks of a group's `devicemanager` section (database and amqp are secrets: their
//! values are never shown).

use mware_config::{found, index, join, quote, Check};
use serde_json::Value;
use std::collections::BTreeSet;

const KEYS: &[&str] = &[
    "database",
    "amqp",
    "satellites",
    "max_deliveries",
    "max_batch",
    "max_timeout_ms",
    "default_timeout_ms",
    "concurrency",
    "keep_hours",
    "token_env",
    "allowed_targets",
];

/// `devicemanager`: device jobs (see the section's type).
pub(super) fn section(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, KEYS, &[]);
    if cx.secret(m, p, "database") && m.get("database").and_then(Value::as_str).is_some_and(|s| s.trim().is_empty()) {
        cx.report(
            &join(p, "database"),
            "expected a PostgreSQL connection string, found an empty one (leave the key out for the embedded file)",
        );
    }
    if cx.secret(m, p, "amqp") {
        let s = m.get("amqp").and_then(Value::as_str).unwrap_or_default();
        if !(s.starts_with("amqp://") || s.starts_with("amqps://")) || s.len() < 8 {
            cx.report(&join(p, "amqp"), "expected a URL like amqp://user:pass@host:5672/%2f, found another value (not shown: a secret)");
        }
    }
    if let Some(list) = m.get("satellites").and_then(|s| cx.list(s, &join(p, "satellites"))) {
        let mut seen = BTreeSet::new();
        for (i, s) in list.iter().enumerate() {
            let ip = index(&join(p, "satellites"), i);
            match s.as_str() {
                Some(id) if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => {
                    if id == "pool" {
                        cx.report(&ip, "expected another id than \"pool\" (it names the jobs without a satellite in the API)");
                    } else if !seen.insert(id) {
                        cx.report(&ip, format!("expected each satellite once, found {} again", quote(id)));
                    }
                }
                _ => cx.report(&ip, format!("expected a satellite id of 1 to 64 latin letters, digits, '_' and '-', found {}", found(s))),
            }
        }
    }
    cx.int(m, p, "max_deliveries", 1, 1000);
    cx.int(m, p, "max_batch", 1, 100_000);
    let max = if m.contains_key("max_timeout_ms") { cx.int(m, p, "max_timeout_ms", 100, 86_400_000) } else { Some(3_600_000) };
    let def = if m.contains_key("default_timeout_ms") { cx.int(m, p, "default_timeout_ms", 100, 86_400_000) } else { Some(30_000) };
    if let (Some(d), Some(mx)) = (def, max) {
        if d > mx {
            cx.report(&join(p, "default_timeout_ms"), format!("expected at most max_timeout_ms ({mx}), found {d}"));
        }
    }
    cx.int(m, p, "concurrency", 1, 10_000);
    cx.int(m, p, "keep_hours", 1, 87_600);
    cx.env_name(m, p, "token_env");
    if let Some(t) = m.get("allowed_targets") {
        let sats: BTreeSet<&str> = m.get("satellites").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        allowed_targets(cx, t, &join(p, "allowed_targets"), &sats);
    }
}

/// `allowed_targets`: `{"pool" | satellite: [pattern, ...]}`.
fn allowed_targets(cx: &mut Check, v: &Value, p: &str, sats: &BTreeSet<&str>) {
    let Some(m) = cx.object(v, p) else { return };
    for (sat, list) in m {
        let sp = join(p, sat);
        if sat != "pool" && !sats.contains(sat.as_str()) {
            let known: Vec<&str> = std::iter::once("pool").chain(sats.iter().copied()).collect();
            cx.report(
                &sp,
                format!("expected pool or a satellite of devicemanager.satellites ({}), found {}", known.join(", "), quote(sat)),
            );
        }
        let Some(items) = cx.list(list, &sp) else { continue };
        for (i, item) in items.iter().enumerate() {
            match item.as_str().map(mware_jobs::TargetPattern::parse) {
                Some(Ok(_)) => {}
                Some(Err(e)) => cx.report(&index(&sp, i), e),
                None => cx.report(&index(&sp, i), format!("expected a string, found {}", found(item))),
            }
        }
    }
}
