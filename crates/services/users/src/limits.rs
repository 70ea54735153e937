//! Abuse limits per client IP, per login and per e-mail address (GCRA through
//! `governor`, keyed): a refused request gets 429 with `Retry-After`, is counted in
//! `mware_users_refused_total{limit}`, and a key refused `alarm_after` times within a
//! minute raises an alarm event once for that minute. Keys are 64-bit hashes of what the
//! client sent (under a per-process random key), so a long field costs no memory; keys
//! not seen within their window are swept when the table passes `max_keys`. A refusal
//! touches no database and hashes no password: it costs a hash and a map lookup.

use crate::section::Limits;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Requests from one client IP.
    Ip,
    /// Attempts naming one login.
    Login,
    /// Mails to one address.
    Address,
}

impl Kind {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Ip => "ip",
            Kind::Login => "login",
            Kind::Address => "address",
        }
    }
}

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The limit that refused.
    pub kind: Kind,
    /// Seconds until a request would pass (at least 1).
    pub retry_after_s: u64,
    /// True the first time this key reaches `alarm_after` refusals within a minute.
    pub alarm: bool,
}

/// The limiters of one running service.
pub struct Limiter {
    ip: DefaultKeyedRateLimiter<u64>,
    login: DefaultKeyedRateLimiter<u64>,
    address: DefaultKeyedRateLimiter<u64>,
    hasher: RandomState,
    strikes: Mutex<HashMap<(Kind, u64), (Instant, u32)>>,
    alarm_after: u32,
    max_keys: usize,
}

fn quota(n: u32, per: Duration) -> Quota {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(per / n.get()).unwrap_or_else(|| Quota::per_second(n)).allow_burst(n)
}

impl Limiter {
    /// The limiters of `l`.
    pub fn new(l: &Limits) -> Limiter {
        Limiter {
            ip: RateLimiter::keyed(quota(l.per_ip_per_min, Duration::from_secs(60))),
            login: RateLimiter::keyed(quota(l.per_login_per_hour, Duration::from_secs(3600))),
            address: RateLimiter::keyed(quota(l.per_address_per_hour, Duration::from_secs(3600))),
            hasher: RandomState::new(),
            strikes: Mutex::new(HashMap::new()),
            alarm_after: l.alarm_after,
            max_keys: l.max_keys,
        }
    }

    /// Counts one request of `key` against the `kind` limit.
    pub fn check(&self, kind: Kind, key: &str) -> Result<(), Refused> {
        let h = self.hasher.hash_one(key);
        let lim = match kind {
            Kind::Ip => &self.ip,
            Kind::Login => &self.login,
            Kind::Address => &self.address,
        };
        if lim.len() > self.max_keys {
            lim.retain_recent();
        }
        match lim.check_key(&h) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let retry_after_s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(Refused { kind, retry_after_s: retry_after_s.max(1), alarm: self.strike(kind, h) })
            }
        }
    }

    /// Records a refusal of `(kind, h)`; true when it makes the `alarm_after`-th within a
    /// minute.
    fn strike(&self, kind: Kind, h: u64) -> bool {
        let now = Instant::now();
        let mut s = self.strikes.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() > self.max_keys {
            s.retain(|_, (since, _)| now.duration_since(*since) < Duration::from_secs(60));
        }
        let e = s.entry((kind, h)).or_insert((now, 0));
        if now.duration_since(e.0) >= Duration::from_secs(60) {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 == self.alarm_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { per_ip_per_min: 3, per_login_per_hour: 2, per_address_per_hour: 1, alarm_after: 2, max_keys: 100 }
    }

    #[test]
    fn a_key_passes_its_burst_then_is_refused_with_a_pause_and_one_alarm() {
        let l = Limiter::new(&limits());
        for _ in 0..3 {
            l.check(Kind::Ip, "10.0.0.1").unwrap();
        }
        let r = l.check(Kind::Ip, "10.0.0.1").unwrap_err();
        assert_eq!(r.kind, Kind::Ip);
        assert!((1..=20).contains(&r.retry_after_s), "{r:?}");
        assert!(!r.alarm);
        assert!(l.check(Kind::Ip, "10.0.0.1").unwrap_err().alarm, "the second refusal reaches alarm_after = 2");
        assert!(!l.check(Kind::Ip, "10.0.0.1").unwrap_err().alarm, "one alarm per minute");
        l.check(Kind::Ip, "10.0.0.2").expect("another key has its own budget");
        l.check(Kind::Address, "a@b.ru").unwrap();
        let r = l.check(Kind::Address, "a@b.ru").unwrap_err();
        assert!(r.retry_after_s > 3000, "one per hour: {r:?}");
    }
}
