//! The check of the `users` section: every problem, each with its path.

use crate::address;
use mware_config::{canonical, index, join, quote, Check};
use serde_json::{Map, Value};
use std::collections::HashMap;

const KEYS: &[&str] = &["database", "public_url", "smtp", "argon2", "password_policy", "lifetimes", "limits", "domains"];

/// `users`: database, public_url, smtp, argon2, password_policy, lifetimes, limits, domains.
pub(super) fn users(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, KEYS, &["database", "public_url", "smtp", "domains"]);
    if let Some(d) = m.get("database") {
        database(cx, d, &join(p, "database"));
    }
    if let Some(u) = cx.nonempty_str(m, p, "public_url") {
        let ok = (u.starts_with("https://") || u.starts_with("http://"))
            && !u.ends_with('/')
            && !u.chars().any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#');
        if !ok {
            cx.report(
                &join(p, "public_url"),
                format!("expected a base URL http(s)://host[:port][/path] without a trailing '/', query or fragment, found {}", quote(u)),
            );
        }
    }
    if let Some(s) = m.get("smtp") {
        smtp(cx, s, &join(p, "smtp"));
    }
    if let Some(a) = m.get("argon2") {
        let ap = join(p, "argon2");
        if let Some(am) = cx.object(a, &ap) {
            cx.keys(am, &ap, &["memory_kib", "iterations", "parallelism"], &[]);
            cx.int(am, &ap, "memory_kib", 8192, 4 << 20);
            cx.int(am, &ap, "iterations", 1, 100);
            cx.int(am, &ap, "parallelism", 1, 64);
        }
    }
    if let Some(pp) = m.get("password_policy") {
        policy(cx, pp, &join(p, "password_policy"));
    }
    if let Some(l) = m.get("lifetimes") {
        let lp = join(p, "lifetimes");
        if let Some(lm) = cx.object(l, &lp) {
            cx.keys(lm, &lp, &["recovery_s", "invitation_s", "registration_s", "session_s"], &[]);
            cx.int(lm, &lp, "recovery_s", 60, 86_400);
            cx.int(lm, &lp, "invitation_s", 60, 90 * 86_400);
            cx.int(lm, &lp, "registration_s", 60, 30 * 86_400);
            cx.int(lm, &lp, "session_s", 60, 30 * 86_400);
        }
    }
    if let Some(l) = m.get("limits") {
        let lp = join(p, "limits");
        if let Some(lm) = cx.object(l, &lp) {
            cx.keys(lm, &lp, &["per_ip_per_min", "per_login_per_hour", "per_address_per_hour", "alarm_after", "max_keys"], &[]);
            cx.int(lm, &lp, "per_ip_per_min", 1, 1_000_000);
            cx.int(lm, &lp, "per_login_per_hour", 1, 1_000_000);
            cx.int(lm, &lp, "per_address_per_hour", 1, 1_000_000);
            cx.int(lm, &lp, "alarm_after", 1, 1_000_000);
            cx.int(lm, &lp, "max_keys", 100, 10_000_000);
        }
    }
    if let Some(d) = m.get("domains") {
        domains(cx, d, &join(p, "domains"));
    }
}

fn database(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, &["dsn_env", "ca_file", "pool_size"], &["dsn_env"]);
    cx.env_name(m, p, "dsn_env");
    cx.nonempty_str(m, p, "ca_file");
    cx.int(m, p, "pool_size", 1, 256);
}

fn smtp(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, &["host", "port", "tls", "username_env", "password_env", "from", "timeout_s", "max_attempts"], &["host", "from"]);
    if let Some(h) = cx.nonempty_str(m, p, "host") {
        if h.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
            cx.report(&join(p, "host"), format!("expected a host name or address, found {}", quote(h)));
        }
    }
    cx.port(m, p, "port");
    cx.choice(m, p, "tls", &["starttls", "tls", "none"]);
    cx.env_name(m, p, "username_env");
    cx.env_name(m, p, "password_env");
    if m.contains_key("username_env") != m.contains_key("password_env") {
        cx.report(p, "expected both username_env and password_env, or neither, found one of them");
    }
    if let Some(f) = cx.str(m, p, "from") {
        if let Err(e) = address::parse(f) {
            cx.report(&join(p, "from"), format!("{e}, found {}", quote(f)));
        }
    }
    cx.int(m, p, "timeout_s", 1, 600);
    cx.int(m, p, "max_attempts", 1, 1000);
}

fn policy(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, &["min_length", "max_length", "breached_file"], &[]);
    let lo = cx.int(m, p, "min_length", 8, 1024);
    let hi = cx.int(m, p, "max_length", 8, 1024);
    if let (Some(lo), Some(hi)) = (lo, hi) {
        if hi < lo {
            cx.report(&join(p, "max_length"), format!("expected at least min_length ({lo}), found {hi}"));
        }
    }
    cx.nonempty_str(m, p, "breached_file");
}

fn domains(cx: &mut Check, v: &Value, p: &str) {
    let Some(list) = cx.list(v, p) else { return };
    if list.is_empty() {
        cx.report(p, "expected at least one domain, found an empty list");
    }
    let mut seen: HashMap<String, String> = HashMap::new();
    for (i, d) in list.iter().enumerate() {
        let dp = index(p, i);
        let Some(m) = cx.object(d, &dp) else { continue };
        cx.keys(m, &dp, &["name", "self_registration", "templates_dir", "roles", "oidc"], &["name"]);
        if let Some(n) = cx.nonempty_str(m, &dp, "name") {
            match canonical(n) {
                Ok(c) if c == n => {
                    if let Some(first) = seen.insert(c, dp.clone()) {
                        cx.report(&join(&dp, "name"), format!("expected each domain once, found {} again (first at {first})", quote(n)));
                    }
                }
                Ok(c) => cx.report(&join(&dp, "name"), format!("expected the canonical name {}, found {}", quote(&c), quote(n))),
                Err(e) => cx.report(&join(&dp, "name"), format!("expected a domain name ({e}), found {}", quote(n))),
            }
        }
        if let Some(r) = m.get("self_registration") {
            registration(cx, r, &join(&dp, "self_registration"));
        }
        cx.nonempty_str(m, &dp, "templates_dir");
        roles(cx, m, &dp);
        if let Some(o) = m.get("oidc") {
            oidc(cx, o, &join(&dp, "oidc"));
        }
    }
}

const OIDC_KEYS: &[&str] = &[
    "name",
    "profile",
    "issuer",
    "client_id",
    "client_secret_env",
    "scopes",
    "user_claim",
    "allowed_values",
    "sign_command",
    "verify_command",
];

fn oidc(cx: &mut Check, v: &Value, p: &str) {
    let Some(list) = cx.list(v, p) else { return };
    let mut names = HashMap::new();
    for (i, o) in list.iter().enumerate() {
        let op = index(p, i);
        let Some(m) = cx.object(o, &op) else { continue };
        cx.keys(m, &op, OIDC_KEYS, &["name", "issuer", "client_id"]);
        cx.unique_name(m, &op, &mut names, "provider");
        let profile = cx.choice(m, &op, "profile", &["generic", "esia"]).unwrap_or_else(|| "generic".into());
        if let Some(u) = cx.nonempty_str(m, &op, "issuer") {
            let local = u.starts_with("http://127.0.0.1") || u.starts_with("http://localhost") || u.starts_with("http://[::1]");
            if !(u.starts_with("https://") || local) || u.chars().any(|c| c.is_whitespace() || c == '?' || c == '#') {
                cx.report(
                    &join(&op, "issuer"),
                    format!("expected an https:// issuer URL (http only on loopback) without query or fragment, found {}", quote(u)),
                );
            }
        }
        cx.nonempty_str(m, &op, "client_id");
        cx.env_name(m, &op, "client_secret_env");
        if profile == "generic" && !m.contains_key("client_secret_env") {
            cx.report(&op, "expected client_secret_env for a generic provider, found none");
        }
        if profile == "esia" && !m.contains_key("sign_command") {
            cx.report(&op, "expected sign_command (the signing hook) for the esia profile, found none");
        }
        if profile == "esia" && !m.contains_key("verify_command") {
            cx.report(&op, "expected verify_command (the hook that checks ESIA's signatures) for the esia profile, found none");
        }
        if m.contains_key("sign_command") {
            cx.argv(m, &op, "sign_command");
        }
        if m.contains_key("verify_command") {
            cx.argv(m, &op, "verify_command");
            if let Some(Value::Array(a)) = m.get("verify_command") {
                let has = |k: &str| a.iter().any(|x| x.as_str().is_some_and(|s| s.contains(k)));
                for k in ["{data}", "{signature}"].into_iter().filter(|k| !has(k)) {
                    cx.report(&join(&op, "verify_command"), format!("expected an argument containing {k}, found none"));
                }
            }
        }
        for (sp, s) in cx.strings(m, &op, "scopes") {
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                cx.report(&sp, format!("expected one scope without spaces, found {}", quote(s)));
            }
        }
        cx.choice(m, &op, "user_claim", &["email", "sub", "preferred_username"]);
        cx.strings(m, &op, "allowed_values");
    }
}

fn registration(cx: &mut Check, v: &Value, p: &str) {
    let Some(m): Option<&Map<String, Value>> = cx.object(v, p) else { return };
    cx.keys(m, p, &["enabled", "allowed_email_domains", "approval"], &[]);
    cx.bool(m, p, "enabled");
    cx.bool(m, p, "approval");
    for (ip, s) in cx.strings(m, p, "allowed_email_domains") {
        if canonical(s).map(|c| c != s).unwrap_or(true) {
            cx.report(&ip, format!("expected a canonical e-mail domain (lowercase, punycode), found {}", quote(s)));
        }
    }
}

fn roles(cx: &mut Check, m: &Map<String, Value>, p: &str) {
    let list = cx.strings(m, p, "roles");
    if m.get("roles").and_then(Value::as_array).is_some_and(Vec::is_empty) {
        cx.report(&join(p, "roles"), "expected at least one role, found an empty list");
    }
    for (ip, s) in list {
        if !mware_config::is_item_name(s) {
            cx.report(&ip, format!("expected a role name (1 to 64 latin letters, digits, '_', '-', '.'), found {}", quote(s)));
        }
    }
}
