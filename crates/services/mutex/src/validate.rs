//! Request validation: domain and mutex names, and the JSON bodies, field by field.
//!
//! Bodies are parsed by hand from a JSON value so that every error names its field
//! (`{"error": "invalid ttl_ms: expected 1..=3600000 ms, found 0", "field": "ttl_ms"}`).

use crate::error::MutexError;
use crate::section::CriticalSections;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Longest owner string, bytes.
pub const MAX_OWNER_LEN: usize = 256;

/// A domain name in the site's one rule ([`mware_config::canonical`]): returns its canonical
/// form (lowercase ASCII, punycode for Unicode names, no trailing dot), or an error on the
/// `domain` field saying what was expected and found.
pub fn domain(raw: &str) -> Result<String, MutexError> {
    mware_config::canonical(raw).map_err(|e| MutexError::invalid("domain", e.to_string()))
}

/// A mutex name: 1..=`max_len` bytes of letters, digits and `. _ - : @ + = #`.
pub fn name(raw: &str, max_len: usize) -> Result<String, MutexError> {
    if raw.is_empty() || raw.len() > max_len {
        return Err(MutexError::invalid("name", format!("expected 1..={max_len} bytes (max_name_len), found {} bytes", raw.len())));
    }
    if let Some(c) = raw.chars().find(|c| !(c.is_ascii_alphanumeric() || ".-_:@+=#".contains(*c))) {
        return Err(MutexError::invalid("name", format!("expected letters, digits or . _ - : @ + = #, found {c:?}")));
    }
    // `.` and `..` are path segments to every URL library: a client (our CLI too) normalises
    // them away, so such a mutex could be taken but never addressed again.
    if raw == "." || raw == ".." {
        return Err(MutexError::invalid("name", format!("expected a name other than . or .. (URL path segments), found {raw:?}")));
    }
    Ok(raw.to_string())
}

/// Body of `acquire`.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
pub struct AcquireBody {
    /// Who acquires (e.g. a call id); shown to others; 1..=256 bytes.
    pub owner: String,
    /// Lifetime of the grant unless renewed, 1..=max_ttl_ms.
    pub ttl_ms: u64,
    /// How long to wait in the queue; 0 tries once.
    pub wait_ms: u64,
    /// Most holders at once (default 1, a mutex); > 1 makes a counting semaphore.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Body of `release`.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
pub struct ReleaseBody {
    /// The owner that was granted.
    pub owner: String,
    /// The token of the grant.
    pub token: u64,
}

/// Body of `evict` (an operator's call).
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
pub struct EvictBody {
    /// The token of the grant to remove (see `GET .../mutexes/{name}`).
    pub token: u64,
    /// Why, for the log: who asks and what for; 1..=256 bytes.
    pub reason: String,
}

/// Body of `renew`.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
pub struct RenewBody {
    /// The owner that was granted.
    pub owner: String,
    /// The token of the grant.
    pub token: u64,
    /// New lifetime from now, 1..=max_ttl_ms.
    pub ttl_ms: u64,
}

fn object(body: &[u8]) -> Result<Map<String, Value>, MutexError> {
    use mware_config::strict_json::{parse_slice, StrictError};
    match parse_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(MutexError::invalid("body", format!("expected a JSON object, found {}", mware_config::kind(&other)))),
        Err(StrictError::Malformed(e)) => Err(MutexError::invalid("body", format!("expected a JSON object, found malformed JSON ({e})"))),
        Err(StrictError::Duplicates(paths)) => {
            const FIELDS: &[&str] = &["owner", "ttl_ms", "wait_ms", "limit", "token", "reason"];
            let field = paths.first().and_then(|p| FIELDS.iter().find(|f| **f == p.as_str())).copied().unwrap_or("body");
            Err(MutexError::invalid(
                field,
                format!("expected each key once, found {} more than once (which value was meant?)", paths.join(", ")),
            ))
        }
    }
}

fn owner(m: &Map<String, Value>) -> Result<String, MutexError> {
    text(m, "owner")
}

/// A string field of 1..=[`MAX_OWNER_LEN`] bytes without control characters.
fn text(m: &Map<String, Value>, field: &'static str) -> Result<String, MutexError> {
    match m.get(field) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_OWNER_LEN && !s.chars().any(char::is_control) => Ok(s.clone()),
        Some(Value::String(s)) => Err(MutexError::invalid(
            field,
            format!("expected 1..={MAX_OWNER_LEN} bytes without control characters, found {} bytes", s.len()),
        )),
        Some(v) => Err(MutexError::invalid(field, format!("expected a string, found {}", mware_config::kind(v)))),
        None => Err(MutexError::invalid(field, "expected a string, found nothing")),
    }
}

/// The required `token` of a grant.
fn token(m: &Map<String, Value>) -> Result<u64, MutexError> {
    required(uint(m, "token", "the token of the grant")?, "token", "the token of the grant")
}

fn uint(m: &Map<String, Value>, field: &'static str, what: &str) -> Result<Option<u64>, MutexError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Ok(Some(v)),
            None => Err(MutexError::invalid(field, format!("expected a non-negative integer ({what}), found {n}"))),
        },
        Some(v) => Err(MutexError::invalid(field, format!("expected a non-negative integer ({what}), found {}", mware_config::kind(v)))),
    }
}

fn required(v: Option<u64>, field: &'static str, what: &str) -> Result<u64, MutexError> {
    v.ok_or_else(|| MutexError::invalid(field, format!("expected a non-negative integer ({what}), found nothing")))
}

fn ttl(m: &Map<String, Value>, limits: &CriticalSections) -> Result<u64, MutexError> {
    let t = required(uint(m, "ttl_ms", "milliseconds")?, "ttl_ms", "milliseconds")?;
    if t == 0 || t > limits.max_ttl_ms {
        return Err(MutexError::invalid("ttl_ms", format!("expected 1..={} ms (max_ttl_ms), found {t}", limits.max_ttl_ms)));
    }
    Ok(t)
}

/// A key that the body does not know: refused, naming it (a misspelt `"limt": 5` would
/// otherwise silently grant a plain mutex).
fn unknown(m: &Map<String, Value>, known: &[&str]) -> Result<(), MutexError> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(MutexError::invalid("body", format!("expected only the keys {}, found unknown key {k:?}", known.join(", ")))),
    }
}

/// Parses and checks an acquire body.
pub fn acquire(body: &[u8], limits: &CriticalSections) -> Result<AcquireBody, MutexError> {
    let m = object(body)?;
    let extra = unknown(&m, &["owner", "ttl_ms", "wait_ms", "limit"]);
    let owner = owner(&m);
    let ttl_ms = ttl(&m, limits);
    let wait_ms = uint(&m, "wait_ms", "milliseconds, 0 to try once")
        .and_then(|w| required(w, "wait_ms", "milliseconds, 0 to try once"))
        .and_then(|w| {
            if w > limits.max_wait_ms {
                Err(MutexError::invalid("wait_ms", format!("expected 0..={} ms (max_wait_ms), found {w}", limits.max_wait_ms)))
            } else {
                Ok(w)
            }
        });
    let limit = uint(&m, "limit", "holders at once").and_then(|l| match l {
        None => Ok(None),
        Some(l) if (1..=limits.max_limit as u64).contains(&l) => Ok(Some(l as u32)),
        Some(l) => Err(MutexError::invalid("limit", format!("expected 1..={} holders (max_limit), found {l}", limits.max_limit))),
    });
    every([extra.as_ref().err(), owner.as_ref().err(), ttl_ms.as_ref().err(), wait_ms.as_ref().err(), limit.as_ref().err()])?;
    Ok(AcquireBody { owner: owner?, ttl_ms: ttl_ms?, wait_ms: wait_ms?, limit: limit? })
}

/// Parses and checks a release body.
pub fn release(body: &[u8]) -> Result<ReleaseBody, MutexError> {
    let m = object(body)?;
    let extra = unknown(&m, &["owner", "token"]);
    let owner = owner(&m);
    let token = token(&m);
    every([extra.as_ref().err(), owner.as_ref().err(), token.as_ref().err()])?;
    Ok(ReleaseBody { owner: owner?, token: token? })
}

/// Parses and checks an evict body.
pub fn evict(body: &[u8]) -> Result<EvictBody, MutexError> {
    let m = object(body)?;
    let extra = unknown(&m, &["token", "reason"]);
    let token = token(&m);
    let reason = text(&m, "reason").and_then(|r| {
        if r.trim().is_empty() {
            return Err(MutexError::invalid("reason", "expected text saying why, found only blanks"));
        }
        Ok(r)
    });
    every([extra.as_ref().err(), token.as_ref().err(), reason.as_ref().err()])?;
    Ok(EvictBody { token: token?, reason: reason? })
}

/// Parses and checks a renew body.
pub fn renew(body: &[u8], limits: &CriticalSections) -> Result<RenewBody, MutexError> {
    let m = object(body)?;
    let extra = unknown(&m, &["owner", "token", "ttl_ms"]);
    let owner = owner(&m);
    let token = token(&m);
    let ttl_ms = ttl(&m, limits);
    every([extra.as_ref().err(), owner.as_ref().err(), token.as_ref().err(), ttl_ms.as_ref().err()])?;
    Ok(RenewBody { owner: owner?, token: token?, ttl_ms: ttl_ms? })
}

/// Every field problem at once: `Ok` when there is none; otherwise one error naming the first
/// field, whose message goes on with each further problem (`...; also invalid wait_ms: ...`).
fn every<const N: usize>(errs: [Option<&MutexError>; N]) -> Result<(), MutexError> {
    let mut found = errs.into_iter().flatten();
    let Some(first) = found.next() else { return Ok(()) };
    let field = first.field().unwrap_or("body");
    let mut message = match first {
        MutexError::Invalid { message, .. } => message.clone(),
        other => other.to_string(),
    };
    for e in found {
        message.push_str(&format!("; also {e}"));
    }
    Err(MutexError::invalid(field, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<impl std::fmt::Debug, MutexError>) -> &'static str {
        r.unwrap_err().field().unwrap()
    }

    #[test]
    fn every_bad_field_is_reported() {
        let limits = CriticalSections::default();
        let e = acquire(br#"{"owner": "", "ttl_ms": 0, "wait_ms": -1}"#, &limits).unwrap_err();
        let text = e.to_string();
        for f in ["owner", "ttl_ms", "wait_ms"] {
            assert!(text.contains(&format!("invalid {f}")), "{text}");
        }
        assert_eq!(e.field(), Some("owner"));
        let e = renew(br#"{"owner": "a", "token": "x", "ttl_ms": 0}"#, &limits).unwrap_err().to_string();
        assert!(e.contains("invalid token") && e.contains("invalid ttl_ms"), "{e}");
    }

    #[test]
    fn domains() {
        assert_eq!(domain("Tenant1.Example.RU.").unwrap(), "tenant1.example.ru");
        assert_eq!(domain("_sip._udp.a.ru").unwrap(), "_sip._udp.a.ru");
        assert_eq!(domain("тест.рф").unwrap(), "xn--e1aybc.xn--p1ai");
        for bad in ["", ".", "a..b", "-a.ru", "a-.ru", "a b.ru", "a/b", "a\0b", &"x".repeat(64), &"x.".repeat(150)] {
            assert_eq!(field(domain(bad)), "domain", "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert!(name("call:123@queue-1", 200).is_ok());
        assert_eq!(field(name("", 10)), "name");
        assert_eq!(field(name("abcdefghijk", 10)), "name");
        assert_eq!(field(name("a b", 10)), "name");
        assert_eq!(field(name("a/b", 10)), "name");
        assert_eq!(field(name(".", 10)), "name");
        assert_eq!(field(name("..", 10)), "name");
        assert!(name("...", 10).is_ok() && name(".a", 10).is_ok());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let l = CriticalSections::default();
        let e = acquire(br#"{"owner":"c","ttl_ms":1000,"wait_ms":0,"limt":5}"#, &l).unwrap_err();
        assert!(e.to_string().contains(r#"unknown key "limt""#), "{e}");
        assert_eq!(e.field(), Some("body"));
        assert!(release(br#"{"owner":"c","token":1,"x":1}"#).is_err());
        assert!(renew(br#"{"owner":"c","token":1,"ttl_ms":5,"ttl":5}"#, &l).is_err());
        assert!(evict(br#"{"token":1,"reason":"r","why":"w"}"#).is_err());
    }

    #[test]
    fn bodies_name_the_bad_field() {
        let l = CriticalSections::default();
        let ok = acquire(br#"{"owner":"c1","ttl_ms":1000,"wait_ms":0}"#, &l).unwrap();
        assert_eq!(ok.limit, None);
        assert_eq!(field(acquire(b"{not json", &l)), "body");
        assert_eq!(field(acquire(b"[1]", &l)), "body");
        assert_eq!(field(acquire(br#"{"ttl_ms":1000,"wait_ms":0}"#, &l)), "owner");
        assert_eq!(field(acquire(br#"{"owner":"","ttl_ms":1000,"wait_ms":0}"#, &l)), "owner");
        assert_eq!(field(acquire(br#"{"owner":"a","ttl_ms":0,"wait_ms":0}"#, &l)), "ttl_ms");
        assert_eq!(field(acquire(br#"{"owner":"a","ttl_ms":999999999,"wait_ms":0}"#, &l)), "ttl_ms");
        assert_eq!(field(acquire(br#"{"owner":"a","ttl_ms":"5","wait_ms":0}"#, &l)), "ttl_ms");
        assert_eq!(field(acquire(br#"{"owner":"a","ttl_ms":5,"wait_ms":-1}"#, &l)), "wait_ms");
        assert_eq!(field(acquire(br#"{"owner":"a","ttl_ms":5,"wait_ms":1.5}"#, &l)), "wait_ms");
        assert_eq!(field(acquire(br#"{"owner":"a","ttl_ms":5,"wait_ms":0,"limit":0}"#, &l)), "limit");
        assert_eq!(field(release(br#"{"owner":"a"}"#)), "token");
        assert_eq!(field(release(br#"{"owner":"a","token":-3}"#)), "token");
        assert_eq!(field(renew(br#"{"owner":"a","token":3}"#, &l)), "ttl_ms");
        assert_eq!(evict(br#"{"token":3,"reason":"script died"}"#).unwrap().token, 3);
        assert_eq!(field(evict(br#"{"token":3}"#)), "reason");
        assert_eq!(field(evict(br#"{"token":3,"reason":" "}"#)), "reason");
        let e = evict(br#"{"token":"x","reason":7}"#).unwrap_err().to_string();
        assert!(e.contains("invalid token") && e.contains("invalid reason"), "{e}");
    }

    #[test]
    fn waits_limits_and_repeated_keys_are_bounded() {
        let l = CriticalSections::default();
        let e = acquire(br#"{"owner":"c","ttl_ms":1000,"wait_ms":60001}"#, &l).unwrap_err();
        assert_eq!(field(Err::<(), _>(e)), "wait_ms");
        let e = acquire(br#"{"owner":"c","ttl_ms":1000,"wait_ms":0,"limit":4294967295}"#, &l).unwrap_err();
        assert!(e.to_string().contains("expected 1..=1000 holders (max_limit)"), "{e}");
        assert!(acquire(br#"{"owner":"c","ttl_ms":1000,"wait_ms":0,"limit":1000}"#, &l).is_ok());
        // {"ttl_ms": 10, "ttl_ms": 99999}: which one was meant? Refused, naming the key.
        let e = acquire(br#"{"owner":"c","ttl_ms":10,"ttl_ms":99999,"wait_ms":0}"#, &l).unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
        assert_eq!(field(Err::<(), _>(e)), "ttl_ms");
    }

    proptest::proptest! {
        /// The name segment's decoder: any text is either taken as it is (only the allowed
        /// characters, within the length limit) or refused naming the field; never a panic,
        /// never a changed name.
        #[test]
        fn any_name_is_taken_unchanged_or_refused(raw in "\\PC{0,80}", max in 1usize..64) {
            match name(&raw, max) {
                Ok(n) => {
                    proptest::prop_assert_eq!(&n, &raw);
                    proptest::prop_assert!(n.len() <= max && n.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:@+=#".contains(c)));
                }
                Err(e) => proptest::prop_assert_eq!(e.field(), Some("name")),
            }
        }
    }
}
