//! The errors of the acme service, and how long a failure of issuing waits before the
//! next attempt (the CA's rate limits and `Retry-After` honoured).

use std::time::Duration;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA answered with a problem document, or could not be reached.
    #[error("acme: {0}")]
    Ca(String),
    /// The CA refused the order for a while (`rateLimited`), until the time it named.
    #[error("acme: rate limited by the CA: {detail}")]
    RateLimited {
        /// The CA's words.
        detail: String,
        /// How long to wait.
        wait: Duration,
    },
    /// The order turned invalid (a challenge failed); it is abandoned.
    #[error("acme: the order is invalid and was abandoned: {0}")]
    Invalid(String),
    /// A key, CSR or certificate could not be made or read.
    #[error("certificate: {0}")]
    Crypto(String),
    /// The coordinator refused or failed a read or a write (a stale fence: no longer active).
    #[error("coordinator: {0}")]
    Coord(#[from] mware_coord::CoordError),
    /// A stored record does not parse.
    #[error("stored state: {0}")]
    Store(String),
    /// A DNS-01 update failed.
    #[error("dns-01: {0}")]
    Dns(String),
    /// The HTTP-01 responder could not answer (its port could not be bound).
    #[error("http-01: {0}")]
    Http01(String),
    /// A deploy to a target failed.
    #[error("deploy to {target}: {reason}")]
    Deploy {
        /// The target's name.
        target: String,
        /// Why.
        reason: String,
    },
}

/// The ACME problem type of a CA's refusal that asks us to slow down.
const RATE_LIMITED: &str = "urn:ietf:params:acme:error:rateLimited";
/// The problem type of a refused nonce: retried at once.
pub const BAD_NONCE: &str = "urn:ietf:params:acme:error:badNonce";

/// Shortest wait after a rate limit whose end the CA did not name.
const RATE_LIMIT_FLOOR: Duration = Duration::from_secs(3600);

impl AcmeError {
    /// From instant-acme's error: a `rateLimited` problem becomes [`AcmeError::RateLimited`]
    /// with the wait the CA named in its detail (Let's Encrypt: "retry after
    /// 2026-01-02 03:04:05 UTC"), at least an hour when it named none.
    pub fn from_acme(e: instant_acme::Error, now_ms: u64) -> AcmeError {
        if let instant_acme::Error::Api(p) = &e {
            if p.r#type.as_deref() == Some(RATE_LIMITED) {
                let detail = p.detail.clone().unwrap_or_default();
                let wait = retry_after_in(&detail, now_ms).unwrap_or(RATE_LIMIT_FLOOR);
                return AcmeError::RateLimited { detail, wait };
            }
        }
        AcmeError::Ca(e.to_string())
    }

    /// Whether it is a refused nonce (worth an immediate new attempt).
    pub fn is_bad_nonce(&self) -> bool {
        matches!(self, AcmeError::Ca(m) if m.contains(BAD_NONCE))
    }
}

/// The wait until the time in "retry after YYYY-MM-DD HH:MM:SS UTC", if the text has one.
pub fn retry_after_in(detail: &str, now_ms: u64) -> Option<Duration> {
    let low = detail.to_ascii_lowercase();
    let at = low.find("retry after ")? + "retry after ".len();
    let text = detail.get(at..at + 19)?;
    let t = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()?.and_utc();
    let ms = (t.timestamp_millis().max(0) as u64).saturating_sub(now_ms);
    Some(Duration::from_millis(ms.max(1000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_retry_time_is_honoured() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:00:00Z").unwrap().timestamp_millis() as u64;
        let d = "too many certificates already issued for \"example.ru\". Retry after 2026-01-02 04:30:00 UTC: see https://letsencrypt.org/docs/rate-limits/";
        assert_eq!(retry_after_in(d, now), Some(Duration::from_secs(5400)));
        assert_eq!(retry_after_in("no time here", now), None);
    }
}
