//! The pure decisions of the users services, each with its reason in words (`Display`),
//! tested without a database or a relay:
//! - [`token`]: whether a one-time token found by its hash may be used now;
//! - [`mail`]: what follows one attempt to send a mail of the outbox.

use std::fmt;
use std::time::Duration;

/// A stored one-time token as the decision sees it.
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// `recovery`, `invitation` or `registration`.
    pub kind: String,
    /// The domain it was issued for.
    pub domain: String,
    /// Seconds until it expires (negative: expired that long ago).
    pub expires_in_s: i64,
    /// It was used.
    pub used: bool,
    /// It was revoked (a newer request, an operator).
    pub revoked: bool,
}

/// Whether a token may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenVerdict {
    /// Use it.
    Use,
    /// No token with that hash (or of another kind).
    Unknown,
    /// Issued for another domain than the one asked.
    OtherDomain,
    /// Expired.
    Expired,
    /// Used already.
    Used,
    /// Revoked, by a newer request or an operator.
    Revoked,
}

impl fmt::Display for TokenVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenVerdict::Use => "the token is valid",
            TokenVerdict::Unknown => "no such token",
            TokenVerdict::OtherDomain => "the token was issued for another domain",
            TokenVerdict::Expired => "the token has expired",
            TokenVerdict::Used => "the token was used already",
            TokenVerdict::Revoked => "the token was revoked (a newer request replaced it, or an operator)",
        })
    }
}

/// Whether `row` (found by the token's hash, `None` when none) may be used as a token of
/// `kind` for `domain` (`None`: the caller did not name one).
pub fn token(row: Option<&TokenRow>, kind: &str, domain: Option<&str>) -> TokenVerdict {
    let Some(r) = row.filter(|r| r.kind == kind) else { return TokenVerdict::Unknown };
    if domain.is_some_and(|d| d != r.domain) {
        return TokenVerdict::OtherDomain;
    }
    if r.used {
        return TokenVerdict::Used;
    }
    if r.revoked {
        return TokenVerdict::Revoked;
    }
    if r.expires_in_s <= 0 {
        return TokenVerdict::Expired;
    }
    TokenVerdict::Use
}

/// How one attempt to hand a mail to the relay ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The relay accepted it.
    Accepted,
    /// A permanent refusal (SMTP 5xx: a bad recipient, a refused sender).
    Permanent(String),
    /// A transient failure (4xx, the relay unreachable, a timeout).
    Transient(String),
}

/// One attempt and what is known around it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// How it ended.
    pub outcome: Outcome,
    /// Attempts made so far, this one included.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The pause the retry policy gives after this many attempts.
    pub pause: Duration,
}

/// What to do with the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailDecision {
    /// Mark it sent.
    Sent,
    /// Try again after the pause.
    Retry {
        /// The pause.
        after: Duration,
        /// Why.
        reason: String,
    },
    /// Give it up and show it failed.
    GiveUp(String),
}

impl fmt::Display for MailDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailDecision::Sent => f.write_str("sent: the relay accepted the mail"),
            MailDecision::Retry { after, reason } => write!(f, "retry in {} s: {reason}", after.as_secs()),
            MailDecision::GiveUp(reason) => write!(f, "given up: {reason}"),
        }
    }
}

/// What follows `a`.
pub fn mail(a: &Attempt) -> MailDecision {
    match &a.outcome {
        Outcome::Accepted => MailDecision::Sent,
        Outcome::Permanent(e) => MailDecision::GiveUp(format!("the relay refused it for good ({e})")),
        Outcome::Transient(e) if a.attempts >= a.max_attempts => {
            MailDecision::GiveUp(format!("{} attempts failed, the last: {e}", a.attempts))
        }
        Outcome::Transient(e) => {
            MailDecision::Retry { after: a.pause, reason: format!("attempt {} of {} failed: {e}", a.attempts, a.max_attempts) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> TokenRow {
        TokenRow { kind: "recovery".into(), domain: "a.ru".into(), expires_in_s: 100, used: false, revoked: false }
    }

    #[test]
    fn a_token_is_used_once_in_its_domain_before_it_expires() {
        assert_eq!(token(Some(&row()), "recovery", Some("a.ru")), TokenVerdict::Use);
        assert_eq!(token(Some(&row()), "recovery", None), TokenVerdict::Use);
        assert_eq!(token(None, "recovery", None), TokenVerdict::Unknown);
        assert_eq!(token(Some(&row()), "invitation", None), TokenVerdict::Unknown, "another kind is unknown");
        assert_eq!(token(Some(&row()), "recovery", Some("b.ru")), TokenVerdict::OtherDomain);
        assert_eq!(token(Some(&TokenRow { used: true, ..row() }), "recovery", None), TokenVerdict::Used);
        assert_eq!(token(Some(&TokenRow { revoked: true, ..row() }), "recovery", None), TokenVerdict::Revoked);
        assert_eq!(token(Some(&TokenRow { expires_in_s: 0, ..row() }), "recovery", None), TokenVerdict::Expired);
        assert_eq!(TokenVerdict::Expired.to_string(), "the token has expired");
    }

    #[test]
    fn a_mail_is_retried_on_transient_failures_until_the_cap() {
        let a = |outcome, attempts| Attempt { outcome, attempts, max_attempts: 3, pause: Duration::from_secs(5) };
        assert_eq!(mail(&a(Outcome::Accepted, 1)), MailDecision::Sent);
        let d = mail(&a(Outcome::Transient("connection refused".into()), 1));
        assert_eq!(d.to_string(), "retry in 5 s: attempt 1 of 3 failed: connection refused");
        assert!(matches!(mail(&a(Outcome::Transient("x".into()), 3)), MailDecision::GiveUp(_)));
        let p = mail(&a(Outcome::Permanent("550 no such user".into()), 1));
        assert_eq!(p.to_string(), "given up: the relay refused it for good (550 no such user)");
    }
}
