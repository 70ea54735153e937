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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_addresses_and_tokens() {
        assert_eq!(proxy_addr("sip:127.0.0.1:5060"), Some("127.0.0.1:5060".parse().unwrap()));
        assert_eq!(proxy_addr("127.0.0.1:5060;transport=tcp"), Some("127.0.0.1:5060".parse().unwrap()));
        assert_eq!(proxy_addr("sip:host"), None);
        assert!(is_sip_token("mware-1") && !is_sip_token("") && !is_sip_token("a b") && !is_sip_token(&"a".repeat(65)));
    }
}
