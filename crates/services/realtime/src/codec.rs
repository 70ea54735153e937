//! The res_config_curl wire format: `ast_uri_encode`/`ast_uri_decode` with the
//! `ast_uri_http` flags, `k=v&k2=v2` bodies, and the URL path of a request.
//!
//! Asterisk leaves only ASCII alphanumerics and `-_.!~*'()` unencoded, writes
//! every other byte as `%XX` (space is `%20`, never `+`), and decodes `%XX`
//! only: a `+` stays a `+`. Decoding here is strict: a `%` not followed by two
//! hex digits, or bytes that are not UTF-8 once decoded, is an error.

use crate::error::RealtimeError;

/// The operations of the protocol (the last segment of the URL path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// One object: one `k=v&...` line, empty when not found.
    Single,
    /// Many objects: one line each.
    Multi,
    /// Insert; answers a count.
    Store,
    /// Update rows matched by `?key=val`; answers a count.
    Update,
    /// Delete rows; answers a count.
    Destroy,
    /// Check that columns exist; answers `0` or `-1`.
    Require,
    /// A static config file as `category`/`cat_metric`/`var_name`/`var_val` lines.
    Static,
}

impl Op {
    /// Parses the path segment.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "single" => Op::Single,
            "multi" => Op::Multi,
            "store" => Op::Store,
            "update" => Op::Update,
            "destroy" => Op::Destroy,
            "require" => Op::Require,
            "static" => Op::Static,
            _ => return None,
        })
    }
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Single => "single",
            Op::Multi => "multi",
            Op::Store => "store",
            Op::Update => "update",
            Op::Destroy => "destroy",
            Op::Require => "require",
            Op::Static => "static",
        }
    }
    /// True for store/update/destroy: never cached, answered with a count.
    pub fn is_write(self) -> bool {
        matches!(self, Op::Store | Op::Update | Op::Destroy)
    }
    /// The body that tells Asterisk the operation failed: `-1` for counts and
    /// `require`, empty for reads (sent with a 4xx/5xx status so a patched
    /// Asterisk tells it from "not found").
    pub fn failure_body(self) -> &'static str {
        match self {
            Op::Store | Op::Update | Op::Destroy | Op::Require => "-1",
            Op::Single | Op::Multi | Op::Static => "",
        }
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// Encodes like `ast_uri_encode(s, .., ast_uri_http)`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes like `ast_uri_decode(s, ast_uri_http)`, but refuses malformed `%`.
pub fn decode(s: &str) -> Result<String, RealtimeError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            match (bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b))) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    let end = (i + 3).min(bytes.len());
                    return Err(RealtimeError::BadEncoding { found: String::from_utf8_lossy(&bytes[i..end]).into_owned() });
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| RealtimeError::BadEncoding { found: "bytes that are not utf-8".into() })
}

/// Parses a `k=v&k2=v2` body or query string into decoded pairs, in order.
/// Empty pieces (`&&`, a leading `&` as `update2` sends) are skipped; a piece
/// without `=` has an empty value.
pub fn parse_pairs(s: &str) -> Result<Vec<(String, String)>, RealtimeError> {
    let s = s.trim_end_matches(['\r', '\n']);
    let mut out = Vec::new();
    for piece in s.split('&') {
        if piece.is_empty() {
            continue;
        }
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let k = decode(k)?;
        if k.is_empty() {
            continue;
        }
        out.push((k, decode(v)?));
    }
    Ok(out)
}

/// Formats pairs as one `k=v&k2=v2` line (no line end).
pub fn format_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// The parts of a provisioning URL path `.../{entity}/{family}/{op}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Entity id (the tenant domain), decoded.
    pub entity: String,
    /// Family (`endpoint`, `auth`, `aor`, ...).
    pub family: String,
    /// Operation.
    pub op: Op,
}

impl Target {
    /// Reads the last three segments of a path; `None` when the op is unknown
    /// or a segment is missing or malformed.
    pub fn from_path(path: &str) -> Option<Target> {
        let mut it = path.trim_end_matches('/').rsplit('/');
        let op = Op::parse(it.next()?)?;
        let family = decode(it.next()?).ok()?;
        let entity = decode(it.next()?).ok()?;
        if family.is_empty() || entity.is_empty() {
            return None;
        }
        Some(Target { entity, family, op })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_ast_uri_http() {
        assert_eq!(encode("id LIKE"), "id%20LIKE");
        assert_eq!(encode("a+b/c:d@e"), "a%2Bb%2Fc%3Ad%40e");
        assert_eq!(encode("ok-_.!~*'()"), "ok-_.!~*'()");
        assert_eq!(encode("%"), "%25");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn decodes_strictly_and_keeps_plus() {
        assert_eq!(decode("a%20b+c").unwrap(), "a b+c");
        assert!(decode("bad%2").is_err());
        assert!(decode("bad%zz").is_err());
        assert!(decode("%FF").is_err());
    }

    #[test]
    fn pairs_round_trip_and_tolerate_update2() {
        let p = parse_pairs("&id=1001&context=from%20internal\r\n").unwrap();
        assert_eq!(p, vec![("id".into(), "1001".into()), ("context".into(), "from internal".into())]);
        assert_eq!(format_pairs([("id LIKE", "%"), ("x", "a b")]), "id%20LIKE=%25&x=a%20b");
    }

    #[test]
    fn target_from_path() {
        let t = Target::from_path("/provision/asterisk/t1.example.ru/endpoint/single").unwrap();
        assert_eq!((t.entity.as_str(), t.family.as_str(), t.op), ("t1.example.ru", "endpoint", Op::Single));
        assert!(Target::from_path("/provision/asterisk/e/endpoint/drop").is_none());
        assert!(Target::from_path("/single").is_none());
    }
}
