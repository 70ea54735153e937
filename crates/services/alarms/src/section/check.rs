//! Checks of a group's `alarms` section: the syslog ports and limits, each rule (a
//! unique name, known facilities and severities, regexes that compile, with the
//! parser's reason), the monitoring severities, each SNMP manager (address, version,
//! and the v3 user with both passwords) and the Telegram bot (an http(s) base URL, the
//! name of the token's variable, at least one chat).

use super::{FACILITIES, SEVERITIES};
use mware_config::{found, index, is_host_port, is_item_name, join, quote, Check};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Most SNMP managers: every write of the outbox carries each channel's cursor, and a
/// write stays below etcd's 128 operations per transaction.
const MAX_MANAGERS: usize = 16;
const KEYS: &[&str] = &["enabled", "syslog", "rules", "window_ms", "monitoring", "snmp", "telegram", "history", "max_outbox"];
const SYSLOG_KEYS: &[&str] =
    &["udp_port", "tcp_port", "max_message_bytes", "max_connections", "max_connections_per_peer", "tcp_idle_timeout_ms"];
const RULE_KEYS: &[&str] = &["name", "facility", "severity", "host", "app", "message", "alarm_severity", "max_per_window"];
const MON_KEYS: &[&str] = &["enabled", "failing", "warning", "ok"];
const SNMP_KEYS: &[&str] = &[
    "address",
    "version",
    "community",
    "inform",
    "timeout_ms",
    "user",
    "auth_protocol",
    "auth_password",
    "priv_protocol",
    "priv_password",
    "engine_id",
];
const TG_KEYS: &[&str] = &["api_base", "token_env", "chat_ids", "poll_timeout_s"];

/// `alarms`: see the section's type.
pub(super) fn section(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, KEYS, &[]);
    cx.bool(m, p, "enabled");
    if let Some(s) = m.get("syslog").filter(|v| !v.is_null()) {
        syslog(cx, s, &join(p, "syslog"));
    }
    if let Some(list) = m.get("rules").and_then(|v| cx.list(v, &join(p, "rules"))) {
        let mut names = HashMap::new();
        for (i, r) in list.iter().enumerate() {
            let rp = index(&join(p, "rules"), i);
            if let Some(rm) = cx.object(r, &rp) {
                rule(cx, rm, &rp, &mut names);
            }
        }
    }
    cx.int(m, p, "window_ms", 100, 86_400_000);
    if let Some(mon) = m.get("monitoring") {
        let mp = join(p, "monitoring");
        if let Some(mm) = cx.object(mon, &mp) {
            cx.keys(mm, &mp, MON_KEYS, &[]);
            cx.bool(mm, &mp, "enabled");
            for k in ["failing", "warning", "ok"] {
                cx.choice(mm, &mp, k, SEVERITIES);
            }
        }
    }
    if let Some(list) = m.get("snmp").and_then(|v| cx.list(v, &join(p, "snmp"))) {
        if list.len() > MAX_MANAGERS {
            cx.report(
                &join(p, "snmp"),
                format!("expected at most {MAX_MANAGERS} managers (each one's cursor is written with every batch), found {}", list.len()),
            );
        }
        for (i, s) in list.iter().enumerate() {
            let sp = index(&join(p, "snmp"), i);
            if let Some(sm) = cx.object(s, &sp) {
                manager(cx, sm, &sp);
            }
        }
    }
    if let Some(t) = m.get("telegram").filter(|v| !v.is_null()) {
        telegram(cx, t, &join(p, "telegram"));
    }
    cx.int(m, p, "history", 1, 100_000);
    cx.int(m, p, "max_outbox", 1, 10_000_000);
}

fn syslog(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, SYSLOG_KEYS, &[]);
    cx.port(m, p, "udp_port");
    cx.port(m, p, "tcp_port");
    if !m.contains_key("udp_port") && !m.contains_key("tcp_port") {
        cx.report(p, "expected udp_port, tcp_port or both, found neither");
    }
    cx.int(m, p, "max_message_bytes", 480, 1_048_576);
    let total = cx.int(m, p, "max_connections", 1, 65_536);
    let per_peer = cx.int(m, p, "max_connections_per_peer", 1, 65_536);
    // A given per-peer cap against the total as it applies (the default per-peer cap is
    // always below it: SyslogIn::per_peer).
    let total = if m.contains_key("max_connections") { total } else { Some(256) };
    if let (Some(total), Some(per_peer)) = (total, per_peer) {
        if total > 1 && per_peer >= total {
            cx.report(
                &join(p, "max_connections_per_peer"),
                format!("expected fewer than max_connections ({total}) so one peer cannot take every slot, found {per_peer}"),
            );
        }
    }
    cx.int(m, p, "tcp_idle_timeout_ms", 100, 86_400_000);
}

fn rule(cx: &mut Check, m: &Map<String, Value>, p: &str, names: &mut HashMap<String, String>) {
    cx.keys(m, p, RULE_KEYS, &["name"]);
    if let Some(n) = cx.str(m, p, "name") {
        let np = join(p, "name");
        if !is_item_name(n) {
            cx.report(&np, format!("expected a rule name of 1 to 64 latin letters, digits, '_', '-' and '.', found {}", quote(n)));
        } else if let Some(first) = names.get(n) {
            cx.report(&np, format!("expected a rule name unique in the group, found {} again (first at {first})", quote(n)));
        } else {
            names.insert(n.to_string(), np);
        }
    }
    for (fp, f) in cx.strings(m, p, "facility") {
        if !FACILITIES.contains(&f) {
            cx.report(&fp, format!("expected a syslog facility ({}), found {}", FACILITIES.join(", "), quote(f)));
        }
    }
    cx.choice(m, p, "severity", SEVERITIES);
    cx.choice(m, p, "alarm_severity", SEVERITIES);
    for k in ["host", "app", "message"] {
        if let Some(re) = cx.str(m, p, k) {
            if let Err(e) = regex::Regex::new(re) {
                let why = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                cx.report(&join(p, k), format!("expected a regular expression, found {}: {why}", quote(re)));
            }
        }
    }
    cx.int(m, p, "max_per_window", 1, 1_000_000);
}

fn manager(cx: &mut Check, m: &Map<String, Value>, p: &str) {
    cx.keys(m, p, SNMP_KEYS, &["address"]);
    if let Some(a) = cx.str(m, p, "address") {
        if !is_host_port(a) {
            cx.report(&join(p, "address"), format!("expected host:port of an SNMP manager (such as 10.0.0.5:162), found {}", quote(a)));
        }
    }
    let version = cx.choice(m, p, "version", &["v2c", "v3"]).unwrap_or_else(|| "v2c".into());
    cx.secret(m, p, "community");
    cx.bool(m, p, "inform");
    cx.int(m, p, "timeout_ms", 10, 60_000);
    cx.choice(m, p, "auth_protocol", &["sha1", "sha256", "sha512"]);
    cx.choice(m, p, "priv_protocol", &["aes128", "aes256", "des"]);
    cx.secret(m, p, "auth_password");
    cx.secret(m, p, "priv_password");
    if let Some(e) = cx.str(m, p, "engine_id") {
        if e.len() < 10 || e.len() > 64 || e.len() % 2 != 0 || !e.bytes().all(|b| b.is_ascii_hexdigit()) {
            cx.report(&join(p, "engine_id"), format!("expected 5 to 32 bytes in hex (10 to 64 hex digits), found {}", quote(e)));
        }
    }
    if version == "v3" {
        if cx.nonempty_str(m, p, "user").is_none() && !m.contains_key("user") {
            cx.report(p, "expected user, auth_password and priv_password for v3 (authPriv), found no user");
        }
        for k in ["auth_password", "priv_password"] {
            let ok = m.get(k).and_then(Value::as_str).is_some_and(|s| s.len() >= 8);
            if !ok {
                cx.report(
                    &join(p, k),
                    "expected a password of at least 8 characters for v3 (authPriv), found none or a shorter one (not shown)",
                );
            }
        }
        if m.contains_key("community") {
            cx.report(&join(p, "community"), "expected no community with v3 (it uses user and passwords), found one (not shown)");
        }
    } else {
        for k in ["user", "auth_protocol", "auth_password", "priv_protocol", "priv_password", "engine_id"] {
            if m.contains_key(k) {
                cx.report(&join(p, k), "expected this key only with \"version\": \"v3\", found it with v2c");
            }
        }
    }
}

fn telegram(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, TG_KEYS, &["token_env", "chat_ids"]);
    if let Some(b) = cx.str(m, p, "api_base") {
        if !(b.starts_with("https://") || b.starts_with("http://")) || b.len() < 10 {
            cx.report(&join(p, "api_base"), format!("expected an http(s) URL such as https://api.telegram.org, found {}", quote(b)));
        }
    }
    if let Some(t) = cx.str(m, p, "token_env") {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || t.as_bytes()[0].is_ascii_digit() {
            cx.report(
                &join(p, "token_env"),
                format!("expected the name of an environment variable (letters, digits and '_'), found {}", quote(t)),
            );
        }
    }
    if let Some(v) = m.get("chat_ids") {
        let cp = join(p, "chat_ids");
        if let Some(list) = cx.list(v, &cp) {
            if list.is_empty() {
                cx.report(&cp, "expected at least one chat id, found an empty list");
            }
            for (i, c) in list.iter().enumerate() {
                if c.as_i64().is_none() {
                    cx.report(&index(&cp, i), format!("expected a chat id (an integer), found {}", found(c)));
                }
            }
        }
    }
    cx.int(m, p, "poll_timeout_s", 1, 50);
}
