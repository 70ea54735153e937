//! The check of the `acme` section: every problem, each with its path.

use super::{dns_name, mode};
use mware_config::{index, is_host_port, join, quote, Check};
use serde_json::{Map, Value};
use std::collections::HashMap;

const KEYS: &[&str] = &["directory_url", "ca_file", "contact", "renew_before_days", "alarm_before_days", "http01", "dns01", "certificates"];
const DNS_KEYS: &[&str] = &["server", "zone", "tsig_key_name", "tsig_algorithm", "tsig_key_env", "ttl", "propagation_s"];
const CERT_KEYS: &[&str] = &["name", "names", "key_type", "challenge", "renew_before_days", "targets"];
const TARGET_KEYS: &[&str] = &[
    "name",
    "host",
    "port",
    "user",
    "password",
    "key_file",
    "dir",
    "cert_file",
    "key_file_name",
    "cert_mode",
    "key_mode",
    "owner",
    "reload",
];

/// `acme`: the directory, the account, the challenges' settings and the certificates.
pub(super) fn acme(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, KEYS, &[]);
    if let Some(u) = cx.nonempty_str(m, p, "directory_url") {
        if !(u.starts_with("https://") && u.len() > "https://".len()) {
            cx.report(&join(p, "directory_url"), format!("expected an https:// URL of an ACME directory, found {}", quote(u)));
        }
    }
    cx.nonempty_str(m, p, "ca_file");
    for (ip, c) in cx.strings(m, p, "contact") {
        if !c.starts_with("mailto:") || !c.contains('@') {
            cx.report(&ip, format!("expected a contact such as \"mailto:ops@example.ru\", found {}", quote(c)));
        }
    }
    let renew = cx.int(m, p, "renew_before_days", 1, 365);
    let alarm = cx.int(m, p, "alarm_before_days", 0, 365);
    if let (Some(r), Some(a)) = (renew.or(Some(30)), alarm) {
        if a >= r {
            cx.report(
                &join(p, "alarm_before_days"),
                format!("expected fewer days than renew_before_days ({r}): the alarm is for a renewal that did not succeed, found {a}"),
            );
        }
    }
    if let Some(h) = m.get("http01") {
        let hp = join(p, "http01");
        if let Some(hm) = cx.object(h, &hp) {
            cx.keys(hm, &hp, &["port"], &[]);
            cx.port(hm, &hp, "port");
        }
    }
    let has_dns = match m.get("dns01") {
        Some(d) => {
            dns01(cx, d, &join(p, "dns01"));
            true
        }
        None => false,
    };
    let zone = m.get("dns01").and_then(|d| d.get("zone")).and_then(Value::as_str).map(|z| z.trim_end_matches('.').to_ascii_lowercase());
    if let Some(list) = m.get("certificates") {
        certificates(cx, list, &join(p, "certificates"), has_dns, zone.as_deref());
    }
}

fn dns01(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, DNS_KEYS, &["server", "zone", "tsig_key_name", "tsig_key_env"]);
    if let Some(s) = cx.nonempty_str(m, p, "server") {
        if s.parse::<std::net::SocketAddr>().is_err() {
            cx.report(&join(p, "server"), format!("expected ADDRESS:PORT of the DNS server (192.0.2.53:53), found {}", quote(s)));
        }
    }
    if let Some(z) = cx.nonempty_str(m, p, "zone") {
        if let Err(e) = dns_name(z.trim_end_matches('.'), false) {
            cx.report(&join(p, "zone"), format!("{e}, found {}", quote(z)));
        }
    }
    if let Some(k) = cx.nonempty_str(m, p, "tsig_key_name") {
        if k.chars().any(|c| c.is_whitespace() || c == '"') {
            cx.report(&join(p, "tsig_key_name"), format!("expected a key name without spaces or quotes, found {}", quote(k)));
        }
    }
    cx.choice(m, p, "tsig_algorithm", &["hmac-sha256", "hmac-sha384", "hmac-sha512"]);
    cx.env_name(m, p, "tsig_key_env");
    cx.int(m, p, "ttl", 1, 86_400);
    cx.int(m, p, "propagation_s", 0, 3600);
}

fn certificates(cx: &mut Check, v: &Value, p: &str, has_dns: bool, zone: Option<&str>) {
    let Some(list) = cx.list(v, p) else { return };
    let mut names = HashMap::new();
    for (i, c) in list.iter().enumerate() {
        let cp = index(p, i);
        let Some(m) = cx.object(c, &cp) else { continue };
        cx.keys(m, &cp, CERT_KEYS, &["name", "names"]);
        cx.unique_name(m, &cp, &mut names, "certificate");
        cx.choice(m, &cp, "key_type", &["ecdsa-p256", "rsa-2048", "rsa-3072"]);
        let challenge = cx.choice(m, &cp, "challenge", &["http-01", "dns-01"]);
        let dns = challenge.as_deref() == Some("dns-01");
        if dns && !has_dns {
            cx.report(&join(&cp, "challenge"), "expected \"http-01\", or a dns01 section for \"dns-01\", found \"dns-01\" without dns01");
        }
        cert_names(cx, m, &cp, dns, zone);
        cx.int(m, &cp, "renew_before_days", 1, 365);
        if let Some(t) = m.get("targets") {
            targets(cx, t, &join(&cp, "targets"));
        }
    }
}

fn cert_names(cx: &mut Check, m: &Map<String, Value>, cp: &str, dns: bool, zone: Option<&str>) {
    let np = join(cp, "names");
    if m.get("names").and_then(Value::as_array).is_some_and(Vec::is_empty) {
        cx.report(&np, "expected at least one DNS name, found an empty list");
    }
    let mut seen: HashMap<String, String> = HashMap::new();
    let listed = cx.strings(m, cp, "names");
    if listed.len() > 100 {
        cx.report(&np, format!("expected at most 100 names (the CA's limit), found {}", listed.len()));
    }
    for (ip, n) in listed {
        if let Err(e) = dns_name(n, dns) {
            cx.report(&ip, format!("{e}, found {}", quote(n)));
            continue;
        }
        let low = n.to_ascii_lowercase();
        if let Some(first) = seen.insert(low.clone(), ip.clone()) {
            cx.report(&ip, format!("expected each name once, found {} again (first at {first})", quote(n)));
        }
        if let (true, Some(z)) = (dns, zone) {
            let bare = low.trim_start_matches("*.");
            if bare != z && !bare.ends_with(&format!(".{z}")) {
                cx.report(&ip, format!("expected a name in the dns01 zone {z:?} (it is updated there), found {}", quote(n)));
            }
        }
    }
}

fn targets(cx: &mut Check, v: &Value, p: &str) {
    let Some(list) = cx.list(v, p) else { return };
    let mut names = HashMap::new();
    for (i, t) in list.iter().enumerate() {
        let tp = index(p, i);
        let Some(m) = cx.object(t, &tp) else { continue };
        cx.keys(m, &tp, TARGET_KEYS, &["name", "host", "user", "dir"]);
        cx.unique_name(m, &tp, &mut names, "target");
        if let Some(h) = cx.nonempty_str(m, &tp, "host") {
            if !is_host_port(&format!("{h}:22")) && h.parse::<std::net::Ipv6Addr>().is_err() {
                cx.report(&join(&tp, "host"), format!("expected a host name or an address, found {}", quote(h)));
            }
        }
        cx.port(m, &tp, "port");
        cx.nonempty_str(m, &tp, "user");
        let pw = cx.secret(m, &tp, "password");
        let kf = cx.nonempty_str(m, &tp, "key_file").is_some();
        if pw == kf {
            let found = if pw { "both" } else { "neither" };
            cx.report(&tp, format!("expected one of password and key_file to log in over SSH, found {found}"));
        }
        if let Some(d) = cx.nonempty_str(m, &tp, "dir") {
            if !d.starts_with('/') || d.contains('\0') {
                cx.report(&join(&tp, "dir"), format!("expected an absolute folder path, found {}", quote(d)));
            }
        }
        let files = ["cert_file", "key_file_name"].map(|k| (k, cx.nonempty_str(m, &tp, k)));
        for (k, f) in files {
            if let Some(f) = f {
                if f.contains('/') || f.contains('\0') || f == "." || f == ".." || f.starts_with(".mware-") {
                    cx.report(&join(&tp, k), format!("expected a file name (no '/', not starting with .mware-), found {}", quote(f)));
                }
            }
        }
        if let (Some(a), Some(b)) = (files[0].1, files[1].1) {
            if a == b {
                cx.report(&join(&tp, "key_file_name"), format!("expected a name other than cert_file's, found {} for both", quote(a)));
            }
        }
        for k in ["cert_mode", "key_mode"] {
            if let Some(s) = cx.str(m, &tp, k) {
                if let Err(e) = mode(s) {
                    cx.report(&join(&tp, k), format!("{e}, found {}", quote(s)));
                }
            }
        }
        if let Some(o) = cx.nonempty_str(m, &tp, "owner") {
            let ok = o.split(':').count() <= 2
                && o.split(':').all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)));
            if !ok {
                cx.report(&join(&tp, "owner"), format!("expected \"user\" or \"user:group\", found {}", quote(o)));
            }
        }
        // An empty list: no reload command.
        if m.get("reload").and_then(Value::as_array).is_none_or(|l| !l.is_empty()) {
            cx.argv(m, &tp, "reload");
        }
    }
}
