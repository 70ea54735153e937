//! The referee (en seed): a host the controller must reach before it promotes. If it
//! cannot, it assumes it is on the isolated side and does nothing.
//!
//! `host:port` (or `[v6]:port`) must accept a TCP connection. A bare `host` (like the
//! seed's `8.8.8.8`) counts as reachable when any of ports 22, 53, 443 accepts or
//! actively refuses a connection (a refusal is an answer from the host); there is no
//! ICMP without privileges.

use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The explicit `host:port` of a referee setting, or `None` for a bare host.
pub fn explicit(referee: &str) -> Option<String> {
    let r = referee.trim();
    if r.starts_with('[') && r.contains("]:") {
        return Some(r.to_string());
    }
    match r.rsplit_once(':') {
        Some((_, p)) if p.parse::<u16>().is_ok() && r.matches(':').count() == 1 => Some(r.to_string()),
        _ => None,
    }
}

/// True when the referee answers within 2 s.
pub async fn reachable(referee: &str) -> bool {
    if let Some(addr) = explicit(referee) {
        return matches!(tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr)).await, Ok(Ok(_)));
    }
    let host = referee.trim().trim_start_matches('[').trim_end_matches(']').to_string();
    let tries = [22u16, 53, 443].map(|p| {
        let host = host.clone();
        async move {
            match tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), p))).await {
                Ok(Ok(_)) => true,
                Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
                Err(_) => false,
            }
        }
    });
    let [a, b, c] = tries;
    let (a, b, c) = tokio::join!(a, b, c);
    a || b || c
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses() {
        assert_eq!(super::explicit("8.8.8.8"), None);
        assert_eq!(super::explicit("db.local:53").as_deref(), Some("db.local:53"));
        assert_eq!(super::explicit("::1"), None);
        assert_eq!(super::explicit("[::1]:80").as_deref(), Some("[::1]:80"));
    }
}
