//! Addresses and names of the `sip` section: the proxy's `sip:ip:port`, a SIP user name.

use std::net::SocketAddr;

/// The outbound proxy's address from `sip:10.0.0.5:5060` (or `10.0.0.5:5060`).
pub fn proxy_addr(s: &str) -> Option<SocketAddr> {
    let rest = s.strip_prefix("sip:").unwrap_or(s);
    let hostport = rest.split(';').next()?;
    hostport.parse().ok()
}

/// A SIP token-ish user name (RFC 3261 `user-unreserved` subset), 1 to 64 bytes.
pub fn is_sip_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c))
}

/// Longest contact URI accepted, bytes.
pub const MAX_URI: usize = 256;

/// Where a `sip:` contact URI with an IP address points (`sip:gw1@10.0.0.9:5062;transport=udp`
/// -> `10.0.0.9:5062`; 5060 when no port), or what is wrong with it, in words. Names
/// are refused (no DNS: a static contact must not move with a resolver), and so is
/// anything that could end a header line.
pub fn contact_target(s: &str) -> Result<SocketAddr, String> {
    if s.len() > MAX_URI {
        return Err(format!("expected at most {MAX_URI} bytes, found {} bytes", s.len()));
    }
    if let Some(c) = s.chars().find(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | '"' | ',')) {
        return Err(format!("expected no spaces, control characters, <>\",, found {c:?}"));
    }
    let Some(rest) = s.strip_prefix("sip:") else {
        return Err(format!("expected a sip: URI (e.g. \"sip:gw1@10.0.0.9:5060\"), found {s:?}"));
    };
    let rest = rest.split(';').next().unwrap_or_default();
    let hostport = match rest.rsplit_once('@') {
        Some((user, h)) if !user.is_empty() && user.chars().all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$?/%".contains(c)) => h,
        Some((user, _)) => return Err(format!("expected a user part of letters, digits and -_.!~*'()&=+$?/%, found {user:?}")),
        None => rest,
    };
    hostport_addr(hostport).ok_or_else(|| format!("expected an IP address and optional port after sip:, found {hostport:?}"))
}

/// `10.0.0.9:5062`, `10.0.0.9` (5060), `[::1]:5060` as a socket address.
pub fn hostport_addr(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return (a.port() != 0).then_some(a);
    }
    let ip = s.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(s);
    ip.parse::<std::net::IpAddr>().ok().map(|ip| SocketAddr::new(ip, 5060))
}

/// The addresses of the `sip:` URIs of a Path (or Route) header value
/// (`<sip:10.0.0.7:5060;lr>,<sip:10.0.0.8;lr;received=...>`), in order; URIs with a
/// host name are skipped.
pub fn path_addrs(path: &str) -> Vec<SocketAddr> {
    path.split('<')
        .filter_map(|part| part.split('>').next())
        .filter_map(|uri| uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:")))
        .filter_map(|rest| {
            let hp = rest.split(';').next()?;
            let hp = hp.rsplit_once('@').map(|x| x.1).unwrap_or(hp);
            hostport_addr(hp)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_addresses_and_tokens() {
        assert_eq!(proxy_addr("sip:127.0.0.1:5060"), Some("127.0.0.1:5060".parse().unwrap()));
        assert_eq!(proxy_addr("127.0.0.1:5060;transport=tcp"), Some("127.0.0.1:5060".parse().unwrap()));
        assert_eq!(proxy_addr("sip:host"), None);
        assert_eq!(contact_target("sip:gw1@10.0.0.9:5062;transport=udp"), Ok("10.0.0.9:5062".parse().unwrap()));
        assert_eq!(contact_target("sip:10.0.0.9"), Ok("10.0.0.9:5060".parse().unwrap()));
        assert!(contact_target("sip:gw1@gw.example:5060").unwrap_err().contains("IP address"));
        assert!(contact_target("sip:gw1@10.0.0.9\r\nVia: x").unwrap_err().contains("control"));
        assert!(contact_target("tel:123").unwrap_err().contains("sip:"));
        assert!(contact_target(&format!("sip:{}@1.2.3.4", "a".repeat(300))).unwrap_err().contains("at most 256"));
        assert_eq!(
            path_addrs("<sip:127.0.0.1:5070;lr>,<sip:10.0.0.8;lr;received=sip:1.2.3.4:5>"),
            vec!["127.0.0.1:5070".parse().unwrap(), "10.0.0.8:5060".parse().unwrap()]
        );
        assert!(is_sip_token("mware-1") && !is_sip_token("") && !is_sip_token("a b") && !is_sip_token(&"a".repeat(65)));
    }
}
