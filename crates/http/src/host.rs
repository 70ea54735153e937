//! The `Host` header check against DNS rebinding: a web page on another site whose name
//! an attacker points at this server's address makes the browser send that name as
//! `Host`. A server that answers only the names and addresses it is known by refuses
//! such requests with 421 Misdirected Request.
//!
//! An allowed entry is a host name, an address (`10.0.0.1`, `::1` or `[::1]`), either
//! with a port (only that port) or without (any port). A request without a `Host`
//! header (no browser sends one) is not refused.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The host and port of a `Host` header (brackets of an IPv6 address removed,
/// lowercase, a trailing dot removed); `None` when it is not `host[:port]`.
pub fn split(value: &str) -> Option<(String, Option<u16>)> {
    let v = value.trim();
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        match tail {
            "" => (h, None),
            t => (h, Some(t.strip_prefix(':')?.parse::<u16>().ok()?)),
        }
    } else if v.matches(':').count() > 1 {
        (v, None) // a bare IPv6 address (as an entry, never in a header)
    } else {
        match v.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().ok()?)),
            None => (v, None),
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    ok.then_some((host, port))
}

/// True when the entry `allowed` (`name`, `addr`, `[v6]`, each with or without `:port`)
/// admits `host` and `port` as [`split`] gives them.
pub fn matches(allowed: &str, host: &str, port: Option<u16>) -> bool {
    let Some((h, p)) = split(allowed) else { return false };
    let same_host = match (h.parse::<std::net::IpAddr>(), host.parse::<std::net::IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => h == host,
    };
    same_host && (p.is_none() || p == port)
}

/// The host of a request's `Host` header when `allowed` refuses it (`None`: accepted,
/// or no header).
pub fn refused<'a>(headers: &HeaderMap, mut allowed: impl Iterator<Item = &'a str>) -> Option<String> {
    let value = headers.get(header::HOST)?;
    let text = String::from_utf8_lossy(value.as_bytes()).to_string();
    match split(&text) {
        Some((host, port)) if allowed.any(|a| matches(a, &host, port)) => None,
        _ => Some(text.chars().take(80).collect()),
    }
}

/// The 421 answer naming the refused host.
pub fn misdirected(host: &str, setting: &str) -> Response {
    let msg = format!("expected a Host header naming this server (one of its addresses or {setting}), found {host:?}");
    crate::ApiError::new(StatusCode::MISDIRECTED_REQUEST, msg).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_headers() {
        assert_eq!(split("Example.NET.:8271"), Some(("example.net".into(), Some(8271))));
        assert_eq!(split("[::1]:80"), Some(("::1".into(), Some(80))));
        assert_eq!(split("[::1]"), Some(("::1".into(), None)));
        assert_eq!(split("::1"), Some(("::1".into(), None)));
        assert_eq!(split("10.0.0.1"), Some(("10.0.0.1".into(), None)));
        for bad in ["", "a:b", "[::1", "x:99999", "a b", "evil/x"] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }

    #[test]
    fn entries_with_and_without_port() {
        assert!(matches("localhost", "localhost", Some(8271)));
        assert!(matches("localhost", "localhost", None));
        assert!(matches("10.0.0.1:8271", "10.0.0.1", Some(8271)));
        assert!(!matches("10.0.0.1:8271", "10.0.0.1", Some(8272)));
        assert!(matches("[::1]", "::1", Some(1)));
        assert!(matches("::1", "::1", None));
        assert!(matches("[::ffff:7f00:1]", "::ffff:127.0.0.1", None));
        assert!(!matches("localhost", "evil.example", None));
        assert!(!matches("example.net", "sub.example.net", None));
    }

    #[test]
    fn refuses_other_hosts_only() {
        let mut h = HeaderMap::new();
        assert_eq!(refused(&h, ["a"].into_iter()), None, "no Host header");
        h.insert(header::HOST, "evil.example".parse().unwrap());
        assert_eq!(refused(&h, ["localhost", "127.0.0.1"].into_iter()).as_deref(), Some("evil.example"));
        h.insert(header::HOST, "127.0.0.1:8271".parse().unwrap());
        assert_eq!(refused(&h, ["localhost", "127.0.0.1"].into_iter()), None);
    }
}
