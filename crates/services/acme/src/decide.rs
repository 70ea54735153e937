//! The pure decision of the acme service: what to do next for one certificate (finish
//! an order in flight, issue, renew, deploy, wait until a time, back off), with the reason
//! in words ([`Decision`]'s `Display`). Tested without touching the world.

use std::fmt;

/// What is known of one certificate at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Now, ms since the Unix epoch.
    pub now_ms: u64,
    /// The names the site file asks for (sorted, lowercase).
    pub names: Vec<String>,
    /// The key type the site file asks for (its name, `ecdsa-p256` …).
    pub key_type: String,
    /// Renew this long before expiry, ms.
    pub renew_before_ms: u64,
    /// The certificate held, if any.
    pub issued: Option<Held>,
    /// The order in flight, if any: (started at ms, by which instance).
    pub order: Option<(u64, String)>,
    /// No new attempt at issuing before this time (a failure's backoff, a CA's Retry-After).
    pub retry_at_ms: u64,
    /// The last failure of issuing, in words.
    pub last_error: Option<String>,
    /// An operator asked for a renewal.
    pub renew_requested: bool,
    /// The deploy targets.
    pub targets: Vec<TargetView>,
}

/// The certificate held.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Its names (sorted, lowercase).
    pub names: Vec<String>,
    /// Its key type.
    pub key_type: String,
    /// Its serial (hex).
    pub serial: String,
    /// Start of its validity, ms since the Unix epoch.
    pub not_before_ms: u64,
    /// Its expiry, ms since the Unix epoch.
    pub not_after_ms: u64,
}

impl Held {
    /// When it is renewed: `renew_before_ms` before expiry, or at two thirds of its
    /// lifetime when that comes later (a certificate shorter-lived than three times the
    /// renewal period is not renewed again at once, in a loop that would hit the CA's limits).
    pub fn renew_at(&self, renew_before_ms: u64) -> u64 {
        let life = self.not_after_ms.saturating_sub(self.not_before_ms);
        self.not_after_ms.saturating_sub(renew_before_ms.min(life / 3))
    }

    /// From when its expiry is alarming if it has not been renewed: `alarm_before_ms`
    /// before expiry, or with a sixth of its lifetime left when that comes later.
    pub fn alarm_at(&self, alarm_before_ms: u64) -> u64 {
        let life = self.not_after_ms.saturating_sub(self.not_before_ms);
        self.not_after_ms.saturating_sub(alarm_before_ms.min(life / 6))
    }
}

/// One deploy target as the decision sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetView {
    /// Its name.
    pub name: String,
    /// The serial deployed there, if any.
    pub deployed: Option<String>,
    /// No new attempt before this time (after a failure).
    pub retry_at_ms: u64,
}

/// Why a certificate is (re)issued.
#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    /// None held yet.
    First,
    /// The site file's names differ from the certificate's.
    NamesChanged,
    /// The site file's key type differs from the certificate's.
    KeyTypeChanged,
    /// Its renewal time has come: (expiry ms, renewal time ms).
    Expiring(u64, u64),
    /// An operator asked.
    Requested,
}

/// What to do next for one certificate.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// An order started earlier (perhaps by another instance) is finished, never duplicated.
    Resume {
        /// When it started.
        started_ms: u64,
        /// Who started it.
        by: String,
    },
    /// A new order.
    Issue(Why),
    /// Nothing before `until_ms`: the last attempt failed.
    BackOff {
        /// Next attempt.
        until_ms: u64,
        /// The failure.
        error: String,
    },
    /// Write the certificate to these targets.
    Deploy(Vec<String>),
    /// Nothing to do before `until_ms` (renewal time, or a target's retry).
    Wait {
        /// When to look again.
        until_ms: u64,
        /// Held serial and expiry, for the sentence.
        expires_ms: u64,
    },
}

/// The decision for one certificate.
pub fn decide(s: &Snapshot) -> Decision {
    let why = issue_reason(s);
    if (why.is_some() || s.order.is_some()) && s.retry_at_ms > s.now_ms {
        return Decision::BackOff { until_ms: s.retry_at_ms, error: s.last_error.clone().unwrap_or_else(|| "a failure".into()) };
    }
    if let Some((started_ms, by)) = &s.order {
        return Decision::Resume { started_ms: *started_ms, by: by.clone() };
    }
    if let Some(why) = why {
        return Decision::Issue(why);
    }
    let Some(held) = &s.issued else { unreachable_first() };
    let due: Vec<String> = s
        .targets
        .iter()
        .filter(|t| t.deployed.as_deref() != Some(held.serial.as_str()) && t.retry_at_ms <= s.now_ms)
        .map(|t| t.name.clone())
        .collect();
    if !due.is_empty() {
        return Decision::Deploy(due);
    }
    let renew_at = held.renew_at(s.renew_before_ms);
    let retry = s.targets.iter().filter(|t| t.deployed.as_deref() != Some(held.serial.as_str())).map(|t| t.retry_at_ms).min();
    Decision::Wait { until_ms: retry.map_or(renew_at, |r| r.min(renew_at)), expires_ms: held.not_after_ms }
}

/// `issue_reason` returns `First` whenever nothing is held, so `decide` never gets here
/// without a certificate.
fn unreachable_first() -> ! {
    unreachable!("issue_reason returns First when no certificate is held")
}

fn issue_reason(s: &Snapshot) -> Option<Why> {
    let Some(h) = &s.issued else { return Some(Why::First) };
    if h.names != s.names {
        return Some(Why::NamesChanged);
    }
    if h.key_type != s.key_type {
        return Some(Why::KeyTypeChanged);
    }
    if s.renew_requested {
        return Some(Why::Requested);
    }
    let renew_at = h.renew_at(s.renew_before_ms);
    (s.now_ms >= renew_at).then_some(Why::Expiring(h.not_after_ms, renew_at))
}

/// A time in words: RFC 3339, UTC, to the second.
pub fn when(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_else(|| ms.to_string())
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::First => write!(f, "no certificate is held yet"),
            Why::NamesChanged => write!(f, "the site file's names differ from the certificate's"),
            Why::KeyTypeChanged => write!(f, "the site file's key type differs from the certificate's"),
            Why::Expiring(exp, at) => write!(f, "it expires at {} and its renewal time {} has come", when(*exp), when(*at)),
            Why::Requested => write!(f, "an operator asked for a renewal"),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Resume { started_ms, by } => {
                write!(f, "finishing the order {by} started at {} (one order at a time, never a second one)", when(*started_ms))
            }
            Decision::Issue(why) => write!(f, "ordering a certificate: {why}"),
            Decision::BackOff { until_ms, error } => write!(f, "waiting until {} before trying again: {error}", when(*until_ms)),
            Decision::Deploy(t) => write!(f, "deploying to {} (the current certificate is not there yet)", t.join(", ")),
            Decision::Wait { until_ms, expires_ms } => {
                write!(f, "nothing to do until {} (the certificate expires at {})", when(*until_ms), when(*expires_ms))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    fn snap() -> Snapshot {
        Snapshot {
            now_ms: 100 * DAY,
            names: vec!["a.example.ru".into(), "b.example.ru".into()],
            key_type: "ecdsa-p256".into(),
            renew_before_ms: 30 * DAY,
            issued: Some(Held {
                names: vec!["a.example.ru".into(), "b.example.ru".into()],
                key_type: "ecdsa-p256".into(),
                serial: "01".into(),
                not_before_ms: 90 * DAY,
                not_after_ms: 180 * DAY,
            }),
            order: None,
            retry_at_ms: 0,
            last_error: None,
            renew_requested: false,
            targets: vec![TargetView { name: "web1".into(), deployed: Some("01".into()), retry_at_ms: 0 }],
        }
    }

    #[test]
    fn nothing_held_orders_one() {
        let s = Snapshot { issued: None, ..snap() };
        assert_eq!(decide(&s), Decision::Issue(Why::First));
        assert_eq!(decide(&s).to_string(), "ordering a certificate: no certificate is held yet");
    }

    #[test]
    fn a_valid_certificate_waits_for_its_renewal_time() {
        let d = decide(&snap());
        assert_eq!(d, Decision::Wait { until_ms: 150 * DAY, expires_ms: 180 * DAY });
        assert!(d.to_string().starts_with("nothing to do until 1970-05-31T00:00:00Z"), "{d}");
    }

    #[test]
    fn renewal_time_reached_renews() {
        let s = Snapshot { now_ms: 151 * DAY, ..snap() };
        assert_eq!(decide(&s), Decision::Issue(Why::Expiring(180 * DAY, 150 * DAY)));
    }

    #[test]
    fn a_short_lived_certificate_renews_at_two_thirds_of_its_life_not_at_once() {
        let mut s = snap();
        let h = s.issued.as_mut().unwrap();
        (h.not_before_ms, h.not_after_ms) = (100 * DAY, 100 * DAY + 60_000);
        assert_eq!(decide(&s), Decision::Wait { until_ms: 100 * DAY + 40_000, expires_ms: 100 * DAY + 60_000 });
        s.now_ms = 100 * DAY + 40_000;
        assert_eq!(decide(&s), Decision::Issue(Why::Expiring(100 * DAY + 60_000, 100 * DAY + 40_000)));
    }

    #[test]
    fn changed_names_or_key_type_reissue() {
        let s = Snapshot { names: vec!["a.example.ru".into()], ..snap() };
        assert_eq!(decide(&s), Decision::Issue(Why::NamesChanged));
        let s = Snapshot { key_type: "rsa-2048".into(), ..snap() };
        assert_eq!(decide(&s), Decision::Issue(Why::KeyTypeChanged));
        let s = Snapshot { renew_requested: true, ..snap() };
        assert_eq!(decide(&s), Decision::Issue(Why::Requested));
    }

    #[test]
    fn an_order_in_flight_is_finished_not_duplicated() {
        let s = Snapshot { issued: None, order: Some((99 * DAY, "mware1".into())), ..snap() };
        assert_eq!(decide(&s), Decision::Resume { started_ms: 99 * DAY, by: "mware1".into() });
    }

    #[test]
    fn a_failure_backs_off_even_with_an_order_in_flight() {
        let s = Snapshot {
            issued: None,
            order: Some((99 * DAY, "mware1".into())),
            retry_at_ms: 100 * DAY + 60_000,
            last_error: Some("rate limited".into()),
            ..snap()
        };
        assert_eq!(decide(&s), Decision::BackOff { until_ms: 100 * DAY + 60_000, error: "rate limited".into() });
    }

    #[test]
    fn a_backoff_does_not_stop_deploys_of_a_held_certificate() {
        let mut s = Snapshot { retry_at_ms: 101 * DAY, ..snap() };
        s.targets[0].deployed = None;
        assert_eq!(decide(&s), Decision::Deploy(vec!["web1".into()]));
    }

    #[test]
    fn a_target_without_the_current_serial_is_deployed_after_its_retry_time() {
        let mut s = snap();
        s.targets.push(TargetView { name: "web2".into(), deployed: Some("00".into()), retry_at_ms: 0 });
        s.targets.push(TargetView { name: "web3".into(), deployed: None, retry_at_ms: 100 * DAY + 5000 });
        assert_eq!(decide(&s), Decision::Deploy(vec!["web2".into()]));
        s.targets[1].deployed = Some("01".into());
        assert_eq!(decide(&s), Decision::Wait { until_ms: 100 * DAY + 5000, expires_ms: 180 * DAY });
    }
}
