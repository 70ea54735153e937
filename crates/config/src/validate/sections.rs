//! Checks of the site file's own objects: the top level, `coordination`,
//! `api`, `ssh`, `servers[]` and the role instances. Each role's findings are
//! summarised in an [`Inst`] for the cross-instance checks in `cross.rs`.

use super::extra;
use super::walk::{found, index, join, quote, Check};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

const SITE_KEYS: &[&str] = &["site", "coordination", "api", "ssh", "servers"];
const COORD_KEYS: &[&str] = &[
    "backend",
    "path",
    "endpoints",
    "prefix",
    "user",
    "password",
    "tls",
    "lease_ttl_ms",
    "step_down_margin_ms",
    "rank_wait_ms",
    "failback_after_s",
];
const TLS_KEYS: &[&str] = &["ca_file", "cert_file", "key_file"];
const API_KEYS: &[&str] = &[
    "token_env",
    "operator_token_env",
    "drain_timeout_ms",
    "header_read_timeout_ms",
    "idle_timeout_ms",
    "request_timeout_ms",
    "max_connections",
    "allowed_hosts",
];
const SSH_KEYS: &[&str] = &["known_hosts", "trust_on_first_use"];
const SERVER_KEYS: &[&str] = &["name", "ifaces", "roles"];
/// The role keys of the site itself; every other key is a service's section, allowed
/// when a registered section claims it.
pub(crate) const ROLE_KEYS: &[&str] = &[
    "name",
    "roletype",
    "iface",
    "opts",
    "enabled",
    "group",
    "order",
    "include_domains",
    "api_port",
    "enable_audiomatcher",
    "cti_adapters",
];
const ROLE_REQUIRED: &[&str] = &["name", "roletype", "iface", "group", "order"];
/// Role keys that belong to one member. Every other key of a role (the service
/// sections, present and future) belongs to the group and must be the same on every
/// member: a group's services run on whichever member is active.
pub(crate) const PER_MEMBER_KEYS: &[&str] =
    &["name", "roletype", "iface", "opts", "enabled", "group", "order", "include_domains", "api_port"];

/// What the cross-instance checks need to know about one enabled role instance.
#[derive(Debug, Default)]
pub(crate) struct Inst {
    /// `servers[i].roles[j]`.
    pub path: String,
    /// Index of its server.
    pub server: usize,
    /// Role name, when it is a string.
    pub name: Option<String>,
    /// Group number, when valid.
    pub group: Option<u32>,
    /// Order, when valid.
    pub order: Option<i64>,
    /// `include_domains` entries that are valid domain names: (path, normalised name).
    pub domains: Vec<(String, String)>,
    /// True when `include_domains` had no problem at all (so it can be compared).
    pub domains_ok: bool,
    /// Its iface address, when the alias resolves.
    pub addr: Option<IpAddr>,
    /// Its API port, when valid (default 8271).
    pub api_port: Option<u16>,
    /// The group-level keys of the role (its service sections), as written.
    pub sections: Map<String, Value>,
}

/// A server's name (for uniqueness) and its interface aliases.
pub(crate) struct ServerInfo {
    pub path: String,
    pub name: Option<String>,
    pub ifaces: BTreeMap<String, IpAddr>,
}

/// Everything the walk of the whole file learned, for the cross checks.
#[derive(Default)]
pub(crate) struct Walked {
    pub servers: Vec<ServerInfo>,
    pub insts: Vec<Inst>,
    /// Paths of disabled roles (left out of validation).
    pub disabled: Vec<(usize, usize)>,
    /// True when `servers` is a list.
    pub servers_ok: bool,
}

/// Walks the whole document, reporting its problems to `cx`. `sections` are the role keys
/// that registered services claim (their values are checked by their services).
pub(crate) fn site(cx: &mut Check, root: &Value, sections: &[&str]) -> Walked {
    let mut w = Walked::default();
    let Some(m) = cx.object(root, "$") else { return w };
    cx.keys(m, "", SITE_KEYS, &["site", "servers"]);
    if let Some(s) = cx.str(m, "", "site") {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            cx.report("site", format!("expected a site name of latin letters, digits, '-' and '_', found {}", quote(s)));
        }
    }
    if let Some(c) = m.get("coordination") {
        coordination(cx, c);
    }
    if let Some(a) = m.get("api") {
        api(cx, a);
    }
    if let Some(s) = m.get("ssh") {
        ssh(cx, s);
    }
    if let Some(list) = m.get("servers").and_then(|v| cx.list(v, "servers")) {
        w.servers_ok = true;
        for (i, s) in list.iter().enumerate() {
            server(cx, s, i, &mut w, sections);
        }
    }
    w
}

fn coordination(cx: &mut Check, v: &Value) {
    let p = "coordination";
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, COORD_KEYS, &[]);
    let backend = cx.choice(m, p, "backend", &["embedded", "etcd"]).unwrap_or_else(|| "embedded".into());
    cx.nonempty_str(m, p, "path");
    let endpoints = cx.strings(m, p, "endpoints");
    let mut all_https = !endpoints.is_empty();
    for (ep, e) in &endpoints {
        let rest = e.strip_prefix("http://").or_else(|| e.strip_prefix("https://"));
        let authority = rest.map(|r| r.split('/').next().unwrap_or_default());
        match authority {
            Some(a) if a.contains('@') => {
                cx.report(ep, "expected no credentials in the endpoint URL (use coordination.user and password), found some (not shown)")
            }
            Some(a) if !a.is_empty() => {}
            _ => cx.report(ep, format!("expected an endpoint URL like http://127.0.0.1:2379 or https://host:2379, found {}", quote(e))),
        }
        all_https &= e.starts_with("https://");
    }
    let no_endpoints = m.get("endpoints").is_none_or(|e| e.as_array().is_some_and(|a| a.is_empty()));
    if backend == "etcd" && no_endpoints {
        cx.report(&join(p, "endpoints"), "expected at least one etcd endpoint for backend \"etcd\", found none");
    }
    cx.nonempty_str(m, p, "prefix");
    let user = cx.nonempty_str(m, p, "user").is_some();
    if cx.secret(m, p, "password") && !user {
        cx.report(&join(p, "password"), "expected a user to go with the password, found no coordination.user");
    }
    if let Some(t) = m.get("tls").filter(|t| !t.is_null()) {
        let tp = join(p, "tls");
        if let Some(tm) = cx.object(t, &tp) {
            cx.keys(tm, &tp, TLS_KEYS, &["ca_file"]);
            cx.nonempty_str(tm, &tp, "ca_file");
            let cert = cx.nonempty_str(tm, &tp, "cert_file").is_some();
            let key = cx.nonempty_str(tm, &tp, "key_file").is_some();
            if cert != key {
                cx.report(&tp, "expected cert_file and key_file together (mutual TLS), found only one of them");
            }
        }
        if backend != "etcd" || !all_https {
            let what = if backend != "etcd" {
                format!("backend {backend:?}")
            } else if endpoints.is_empty() {
                "no endpoints".to_string()
            } else {
                "an http:// endpoint".to_string()
            };
            cx.report(&tp, format!("expected tls only with backend \"etcd\" and https:// endpoints, found {what}"));
        }
    }
    let any_https = endpoints.iter().any(|(_, e)| e.starts_with("https://"));
    if backend == "etcd" && any_https && m.get("tls").is_none_or(|t| t.is_null()) {
        cx.report(&join(p, "tls"), "expected a tls section with ca_file for https:// endpoints (mware trusts no system roots), found none");
    }
    let ttl = if m.contains_key("lease_ttl_ms") { cx.int(m, p, "lease_ttl_ms", 500, 3_600_000) } else { Some(3000) };
    let margin = if m.contains_key("step_down_margin_ms") { cx.int(m, p, "step_down_margin_ms", 1, 3_600_000) } else { Some(1000) };
    if let (Some(ttl), Some(margin)) = (ttl, margin) {
        if margin * 2 >= ttl {
            cx.report(&join(p, "step_down_margin_ms"), format!(
                "expected less than half of lease_ttl_ms ({ttl} ms) so an active instance still has time to renew its lease before it must step down, found {margin}"
            ));
        }
    }
    cx.int(m, p, "rank_wait_ms", 0, 3_600_000);
    cx.int(m, p, "failback_after_s", 0, i64::MAX);
}

fn api(cx: &mut Check, v: &Value) {
    let p = "api";
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, API_KEYS, &[]);
    let token = cx.env_name(m, p, "token_env");
    let operator = cx.env_name(m, p, "operator_token_env");
    if let (Some(t), Some(o)) = (token, operator) {
        if t == o {
            cx.report(
                &join(p, "operator_token_env"),
                format!(
                "expected another variable than token_env, found the same ({}): the operator's calls would take the call scripts' token",
                quote(&o)
            ),
            );
        }
    }
    cx.int(m, p, "drain_timeout_ms", 0, 3_600_000);
    cx.int(m, p, "header_read_timeout_ms", 100, 600_000);
    cx.int(m, p, "idle_timeout_ms", 100, 86_400_000);
    cx.int(m, p, "request_timeout_ms", 100, 86_400_000);
    cx.int(m, p, "max_connections", 1, 1_000_000);
    for (ip, h) in cx.strings(m, p, "allowed_hosts") {
        if !valid_host_entry(h) {
            cx.report(&ip, format!("expected a host name or address, with :port or without (any port), found {}", quote(h)));
        }
    }
}

/// `name`, `addr` or `[v6]`, each with or without `:port`; or a bare IPv6 address.
fn valid_host_entry(h: &str) -> bool {
    let port_ok = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
    if let Some(rest) = h.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((v6, "")) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            Some((v6, tail)) => v6.parse::<std::net::Ipv6Addr>().is_ok() && tail.strip_prefix(':').is_some_and(port_ok),
            None => false,
        };
    }
    if h.matches(':').count() > 1 {
        return h.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let (host, port) = h.split_once(':').map_or((h, None), |(a, b)| (a, Some(b)));
    port.is_none_or(port_ok)
        && !host.is_empty()
        && host.len() <= 253
        && host
            .trim_end_matches('.')
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

fn ssh(cx: &mut Check, v: &Value) {
    let p = "ssh";
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, SSH_KEYS, &[]);
    if let Some(f) = cx.nonempty_str(m, p, "known_hosts") {
        if f.contains('\0') || f.ends_with('/') {
            cx.report(&join(p, "known_hosts"), format!("expected a file path, found {}", quote(f)));
        }
    }
    cx.bool(m, p, "trust_on_first_use");
}

fn server(cx: &mut Check, v: &Value, i: usize, w: &mut Walked, sections: &[&str]) {
    let p = index("servers", i);
    let mut info = ServerInfo { path: p.clone(), name: None, ifaces: BTreeMap::new() };
    let Some(m) = cx.object(v, &p) else {
        w.servers.push(info);
        return;
    };
    cx.keys(m, &p, SERVER_KEYS, &["name", "ifaces"]);
    info.name = cx.nonempty_str(m, &p, "name").map(str::to_string);
    if let Some(ifs) = m.get("ifaces").and_then(|v| cx.object(v, &join(&p, "ifaces"))) {
        let ip = join(&p, "ifaces");
        for (alias, addr) in ifs {
            let ap = join(&ip, alias);
            if alias.is_empty() || alias == "default" {
                cx.report(&ap, format!("expected an interface alias other than \"\" and \"default\", found {alias:?}"));
            }
            match addr.as_str().map(|s| (s, s.parse::<IpAddr>())) {
                Some((_, Ok(a))) => {
                    info.ifaces.insert(alias.clone(), a);
                }
                Some((s, Err(_))) => cx.report(&ap, format!("expected an IP address, found {}", quote(s))),
                None => cx.report(&ap, format!("expected an IP address string, found {}", found(addr))),
            }
        }
    }
    if let Some(roles) = m.get("roles").and_then(|v| cx.list(v, &join(&p, "roles"))) {
        for (j, r) in roles.iter().enumerate() {
            let rp = index(&join(&p, "roles"), j);
            let Some(rm) = cx.object(r, &rp) else { continue };
            if cx.bool(rm, &rp, "enabled") == Some(false) {
                w.disabled.push((i, j));
                continue;
            }
            let raw_ifaces = m.get("ifaces").and_then(Value::as_object);
            let inst = role(cx, rm, &rp, i, &info, raw_ifaces, sections);
            w.insts.push(inst);
        }
    }
    w.servers.push(info);
}

fn role(
    cx: &mut Check,
    m: &Map<String, Value>,
    p: &str,
    server: usize,
    info: &ServerInfo,
    raw_ifaces: Option<&Map<String, Value>>,
    section_keys: &[&str],
) -> Inst {
    let sections = m.iter().filter(|(k, _)| !PER_MEMBER_KEYS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut inst = Inst { path: p.to_string(), server, api_port: Some(8271), sections, ..Inst::default() };
    let allowed: Vec<&str> = ROLE_KEYS.iter().chain(section_keys).copied().collect();
    cx.keys(m, p, &allowed, ROLE_REQUIRED);
    if let Some(n) = cx.str(m, p, "name") {
        let ok = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && n.chars().all(|c| c.is_ascii_alphanumeric());
        if !ok {
            cx.report(&join(p, "name"), format!("expected latin letters and digits starting with a letter, found {}", quote(n)));
        }
        inst.name = Some(n.to_string());
    }
    if let Some(t) = m.get("roletype") {
        if t.as_str() != Some("mware") {
            cx.report(&join(p, "roletype"), format!("expected \"mware\", found {}", found(t)));
        }
    }
    if let Some(alias) = cx.str(m, p, "iface") {
        if let Some(a) = info.ifaces.get(alias) {
            inst.addr = Some(*a);
        } else if !raw_ifaces.is_some_and(|r| r.contains_key(alias)) {
            let known: Vec<&str> = raw_ifaces.map(|r| r.keys().map(String::as_str).collect()).unwrap_or_default();
            cx.report(
                &join(p, "iface"),
                format!(
                    "expected an interface alias of this server ({}), found {}",
                    if known.is_empty() { "it has none".to_string() } else { known.join(", ") },
                    quote(alias)
                ),
            );
        }
    }
    if let Some(o) = m.get("opts") {
        if !matches!(o, Value::Object(_) | Value::Array(_) | Value::Null) {
            cx.report(&join(p, "opts"), format!("expected an object or a list, found {}", found(o)));
        }
    }
    inst.group = cx.int(m, p, "group", 1, 9_999_999).map(|g| g as u32);
    inst.order = cx.int(m, p, "order", i64::MIN, i64::MAX);
    let before = cx.count();
    for (dp, d) in cx.strings(m, p, "include_domains") {
        match crate::domain::canonical(d) {
            Ok(c) => inst.domains.push((dp, c)),
            Err(e) => cx.report(&dp, e.to_string()),
        }
    }
    inst.domains_ok = cx.count() == before;
    if m.contains_key("api_port") {
        inst.api_port = cx.port(m, p, "api_port");
    }
    cx.bool(m, p, "enable_audiomatcher");
    if let Some(c) = m.get("cti_adapters") {
        extra::cti_adapters(cx, c, &join(p, "cti_adapters"), raw_ifaces);
    }
    inst
}
