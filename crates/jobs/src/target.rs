//! (new) Patterns naming network targets: an address range (`10.0.0.0/8`, `::1/128`),
//! one address (`192.0.2.7`), a host name (`sw1.example.net`) or every name under a
//! domain (`*.example.net`). Used by `devicemanager.allowed_targets`; one parser for the
//! validator, the service and the pollers.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// One entry of an allow-list of targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TargetPattern {
    /// Addresses in a range: the network address (host bits zero) and the prefix length.
    Net(IpAddr, u8),
    /// One host name, lowercase.
    Name(String),
    /// Every name under this domain (lowercase, without the `*.`); not the domain itself.
    Under(String),
}

/// True when `name` is a host name (labels of letters, digits, `-` and `_`).
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// `ip` as a 128-bit number and its width (32 or 128), IPv4-mapped IPv6 as IPv4.
fn bits(ip: IpAddr) -> (u128, u8) {
    match ip.to_canonical() {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// The first `len` bits of a `width`-bit number.
fn mask(v: u128, len: u8, width: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let keep = u128::MAX << (128 - u32::from(len));
        (v << (128 - u32::from(width))) & keep
    }
}

impl TargetPattern {
    /// Parses an entry; the error says what was expected.
    pub fn parse(s: &str) -> Result<TargetPattern, String> {
        let expected = "expected an address (192.0.2.7), a range (10.0.0.0/8, fd00::/8), a host name (sw1.example.net) or *.domain";
        let s = s.trim();
        if let Some((a, len)) = s.split_once('/') {
            let ip: IpAddr = a.parse().map_err(|_| format!("{expected}, found {s:?}"))?;
            let ip = ip.to_canonical();
            let width = bits(ip).1;
            let len: u8 = len
                .parse()
                .ok()
                .filter(|l| *l <= width)
                .ok_or_else(|| format!("expected a prefix length from 0 to {width}, found {s:?}"))?;
            let net = TargetPattern::Net(ip, len);
            let (v, _) = bits(ip);
            if mask(v, len, width) != v << (128 - u32::from(width)) {
                return Err(format!("expected the range's first address ({}/{len}), found {s:?} (host bits set)", net.first()));
            }
            return Ok(net);
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            let ip = ip.to_canonical();
            return Ok(TargetPattern::Net(ip, bits(ip).1));
        }
        let lower = s.to_ascii_lowercase();
        if let Some(dom) = lower.strip_prefix("*.") {
            if is_host_name(dom) {
                return Ok(TargetPattern::Under(dom.to_string()));
            }
        } else if is_host_name(&lower) && !lower.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Ok(TargetPattern::Name(lower));
        }
        Err(format!("{expected}, found {s:?}"))
    }

    /// The first address of a range.
    fn first(&self) -> String {
        match self {
            TargetPattern::Net(ip, len) => {
                let (v, width) = bits(*ip);
                let first = mask(v, *len, width) >> (128 - u32::from(width));
                if width == 32 {
                    std::net::Ipv4Addr::from(first as u32).to_string()
                } else {
                    std::net::Ipv6Addr::from(first).to_string()
                }
            }
            other => other.to_string(),
        }
    }

    /// True when `ip` is in this range (false for names).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let TargetPattern::Net(net, len) = self else { return false };
        let ((a, wa), (b, wb)) = (bits(*net), bits(ip));
        wa == wb && mask(a, *len, wa) == mask(b, *len, wb)
    }

    /// True when this range lies wholly inside `other` (a range): `127.0.0.1/32` is inside
    /// `127.0.0.0/8`, `0.0.0.0/0` is not.
    pub fn within(&self, other: &TargetPattern) -> bool {
        match (self, other) {
            (TargetPattern::Net(ip, len), TargetPattern::Net(_, olen)) => len >= olen && other.contains(*ip),
            _ => false,
        }
    }

    /// True when the host name `name` matches (false for ranges).
    pub fn matches_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match self {
            TargetPattern::Name(n) => *n == name,
            TargetPattern::Under(d) => name.strip_suffix(d.as_str()).is_some_and(|head| head.ends_with('.') && head.len() > 1),
            TargetPattern::Net(..) => false,
        }
    }
}

impl fmt::Display for TargetPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetPattern::Net(ip, len) if *len == bits(*ip).1 => write!(f, "{ip}"),
            TargetPattern::Net(ip, len) => write!(f, "{ip}/{len}"),
            TargetPattern::Name(n) => f.write_str(n),
            TargetPattern::Under(d) => write!(f, "*.{d}"),
        }
    }
}

impl TryFrom<String> for TargetPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        TargetPattern::parse(&s)
    }
}

impl From<TargetPattern> for String {
    fn from(p: TargetPattern) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TargetPattern {
        TargetPattern::parse(s).unwrap()
    }

    #[test]
    fn parses_ranges_addresses_and_names() {
        assert_eq!(p("10.0.0.0/8"), TargetPattern::Net("10.0.0.0".parse().unwrap(), 8));
        assert_eq!(p("127.0.0.1"), TargetPattern::Net("127.0.0.1".parse().unwrap(), 32));
        assert_eq!(p("::ffff:127.0.0.1"), TargetPattern::Net("127.0.0.1".parse().unwrap(), 32));
        assert_eq!(p("fd00::/8").to_string(), "fd00::/8");
        assert_eq!(p("SW1.Example.net"), TargetPattern::Name("sw1.example.net".into()));
        assert_eq!(p("*.example.net"), TargetPattern::Under("example.net".into()));
        for bad in ["", "10.0.0.1/8", "10.0.0.0/33", "::/129", "a b", "*.", "*", "1.2.3", "h;x", "10.0.0.0/x"] {
            assert!(TargetPattern::parse(bad).is_err(), "{bad}");
        }
        assert!(TargetPattern::parse("10.0.0.1/8").unwrap_err().contains("10.0.0.0/8"));
    }

    #[test]
    fn ranges_contain_and_nest() {
        assert!(p("10.0.0.0/8").contains("10.9.8.7".parse().unwrap()));
        assert!(!p("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(p("10.0.0.0/8").contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(p("0.0.0.0/0").contains("127.0.0.1".parse().unwrap()));
        assert!(!p("0.0.0.0/0").contains("::1".parse().unwrap()));
        assert!(p("::/0").contains("::1".parse().unwrap()));
        assert!(p("fe80::/10").contains("fe80::1".parse().unwrap()));
        assert!(p("127.0.0.1").within(&p("127.0.0.0/8")));
        assert!(!p("0.0.0.0/0").within(&p("127.0.0.0/8")));
        assert!(!p("sw1.example.net").contains("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn names_match_exactly_or_under_a_domain() {
        assert!(p("sw1.example.net").matches_name("SW1.example.net."));
        assert!(!p("sw1.example.net").matches_name("sw2.example.net"));
        assert!(p("*.example.net").matches_name("a.b.example.net"));
        assert!(!p("*.example.net").matches_name("example.net"));
        assert!(!p("*.example.net").matches_name("badexample.net"));
    }

    #[test]
    fn serde_round_trip() {
        let v: Vec<TargetPattern> = serde_json::from_str(r#"["10.0.0.0/8", "*.x.net"]"#).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"["10.0.0.0/8","*.x.net"]"#);
        assert!(serde_json::from_str::<Vec<TargetPattern>>(r#"["10.0.0.1/8"]"#).is_err());
    }
}
