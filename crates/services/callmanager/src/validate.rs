//! Checks of what clients and the site file give: the parties of a call (a `sip:` or
//! `tel:` URI or a plain number, bounded, with nothing that could end a header line or
//! start another header), the proxy address.

pub use mware_sip::addr::{is_sip_token, proxy_addr};

/// Longest `to`/`from`/`caller_id` accepted, in bytes.
pub const MAX_PARTY: usize = 256;

/// The SIP URI a party of a call is dialled at, or what is wrong with it (the text of a
/// 400). `domain` completes plain numbers and `tel:` URIs.
pub fn party(value: &str, domain: &str) -> Result<String, String> {
    if value.len() > MAX_PARTY {
        return Err(format!("expected at most {MAX_PARTY} bytes, found {} bytes", value.len()));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!("expected no control characters (CR, LF, ...), found U+{:04X}", c as u32));
    }
    if value.is_empty() {
        return Err("expected a sip: or tel: URI or a number, found an empty string".into());
    }
    let lower = value.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("tel:").map(|_| &value[4..]) {
        let num = number(rest).ok_or_else(|| format!("expected tel:<digits, +, -, .>, found {value:?}"))?;
        return Ok(format!("sip:{num}@{domain};user=phone"));
    }
    if lower.starts_with("sip:") {
        let rest = &value[4..];
        let (user, host) = rest.split_once('@').ok_or_else(|| format!("expected sip:user@host, found {value:?}"))?;
        if user.is_empty() || !user.chars().all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$;?/%".contains(c)) {
            return Err(format!("expected a user part of letters, digits and -_.!~*'()&=+$;?/%, found {user:?}"));
        }
        let (hostport, params) = host.split_once(';').unwrap_or((host, ""));
        if !is_hostport(hostport) {
            return Err(format!("expected a host name or IP address (and :port) after @, found {hostport:?}"));
        }
        if !params.chars().all(|c| c.is_ascii_alphanumeric() || "-_.=;".contains(c)) {
            return Err(format!("expected URI parameters of letters, digits and -_.=, found {params:?}"));
        }
        return Ok(value.to_string());
    }
    if let Some(scheme) = value.split_once(':').map(|x| x.0).filter(|s| s.chars().all(|c| c.is_ascii_alphabetic())) {
        return Err(format!("expected the scheme sip: or tel:, found {scheme:?}"));
    }
    let num = number(value).ok_or_else(|| format!("expected a sip: or tel: URI or a number (digits, +, *, #), found {value:?}"))?;
    Ok(format!("sip:{num}@{domain}"))
}

/// A dialable number: `+`? then digits, `*`, `#` (visual separators `-` `.` dropped).
fn number(s: &str) -> Option<String> {
    let body = s.strip_prefix('+').unwrap_or(s);
    let digits: String = body.chars().filter(|c| !matches!(c, '-' | '.')).collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
        return None;
    }
    let digits = digits.replace('#', "%23");
    Some(if s.starts_with('+') { format!("+{digits}") } else { digits })
}

fn is_hostport(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
        _ => (s, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
            return false;
        }
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// A display name (`caller_id`): printable, no quotes or backslashes, bounded.
pub fn display(value: &str) -> Result<String, String> {
    if value.len() > MAX_PARTY {
        return Err(format!("expected at most {MAX_PARTY} bytes, found {} bytes", value.len()));
    }
    if let Some(c) = value.chars().find(|c| c.is_control() || *c == '"' || *c == '\\') {
        return Err(format!("expected no control characters, quotes or backslashes, found U+{:04X}", c as u32));
    }
    Ok(value.to_string())
}

/// DTMF digits for `…/dtmf`: 0-9, *, #, A-D, at most 32.
pub fn dtmf(digits: &str) -> Result<(), String> {
    if digits.is_empty() || digits.len() > 32 {
        return Err(format!("expected 1 to 32 digits, found {} characters", digits.len()));
    }
    match digits.chars().find(|c| !(c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))) {
        Some(c) => Err(format!("expected digits 0-9, *, #, A-D, found {c:?}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_are_normalised_or_refused_with_the_reason() {
        assert_eq!(party("1001", "d.test").unwrap(), "sip:1001@d.test");
        assert_eq!(party("+7-495-1", "d.test").unwrap(), "sip:+74951@d.test");
        assert_eq!(party("tel:+123", "d.test").unwrap(), "sip:+123@d.test;user=phone");
        assert_eq!(party("sip:alice@example.test:5070;transport=tcp", "d").unwrap(), "sip:alice@example.test:5070;transport=tcp");
        assert!(party("sip:[::1]", "d").is_err());
        assert_eq!(party("sip:a@[::1]:5060", "d").unwrap(), "sip:a@[::1]:5060");
        let inj = party("sip:a@b\r\nVia: x", "d").unwrap_err();
        assert!(inj.contains("U+000D"), "{inj}");
        assert!(party(&"1".repeat(100_000), "d").unwrap_err().contains("at most 256"));
        assert!(party("http://x", "d").unwrap_err().contains("\"http\""));
        assert!(party("sip:a>@b", "d").is_err());
        assert!(party("sip:a@b;x=<y>", "d").is_err());
        assert!(party("sip:a@b c", "d").is_err());
        assert!(party("12a", "d").is_err());
        assert!(party("", "d").is_err());
        assert!(display("Bob \"x\"").is_err());
        assert!(dtmf("12#*AD").is_ok() && dtmf("1x").is_err() && dtmf("").is_err());
        assert_eq!(proxy_addr("sip:127.0.0.1:5060"), Some("127.0.0.1:5060".parse().unwrap()));
        assert_eq!(proxy_addr("sip:host"), None);
    }
}
