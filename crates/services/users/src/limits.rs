//! Abuse limits per client IP, per login and per e-mail address (GCRA through
//! `governor`, keyed): a refused request gets 429 with `Retry-After`, is counted in
//! `mware_users_refused_total{limit}`, and a key refused `alarm_after` times within a
//! minute raises an alarm event once for that minute. Keys are 64-bit hashes of what the
//! client sent (the first 8 bytes of its SHA-256, the same on every instance), so a long
//! field costs no memory; keys not seen within their window are swept when the table
//! passes `max_keys`. A refusal touches no database and hashes no password: it costs a
//! hash and a map lookup.
//!
//! A refused key is remembered with the time until which its bucket refuses (GCRA: a
//! refused request takes no cell, so every request before that time is refused too).
//! [`Limiter::refused_already`] answers from that alone, without the bucket: the route's
//! gate asks it with the client's address before the request's body is read, so a flood
//! from a client over its limit costs a hash and a lookup per request, nothing more.
//!
//! A failover must not reset a tripped limit: the first refusal of a key, and one every
//! [`TRIP_EVERY`] while it goes on being refused, gives a [`Trip`] (when its bucket will be full again), which the service writes to the
//! group's database off the request's path (`trips`); the next active instance
//! [`Limiter::restore`]s each trip not yet over, so the key has what it would have had.

use crate::section::Limits;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
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
    /// The trip to keep for the next active instance (the first refusal of this key, then
    /// one every [`TRIP_EVERY`]).
    pub trip: Option<Trip>,
}

/// A limit that tripped for one key: kept in the group's database so that a failover
/// does not reset it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    /// The limit.
    pub kind: Kind,
    /// The key's hash ([`key_hash`]).
    pub key: u64,
    /// How long from now until the key's bucket is full again (no trace of the flood).
    pub full_in: Duration,
}

/// The hash a limit keeps for `key` (the same on every instance of the group).
pub fn key_hash(key: &str) -> u64 {
    bytes_hash(key.as_bytes())
}

/// The first 8 bytes of the SHA-256 of `b`, big-endian: [`key_hash`] of any text.
fn bytes_hash(b: &[u8]) -> u64 {
    let d = Sha256::digest(b);
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// [`key_hash`] of a client address as text (`ip.to_string()`), written on the stack.
pub fn ip_hash(ip: IpAddr) -> u64 {
    /// The longest address text is 45 bytes (`ffff:…:255.255.255.255`).
    struct Buf([u8; 48], usize);
    impl std::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.1 + s.len();
            self.0.get_mut(self.1..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
    let mut b = Buf([0; 48], 0);
    match std::fmt::Write::write_fmt(&mut b, format_args!("{ip}")) {
        Ok(()) => bytes_hash(&b.0[..b.1]),
        Err(_) => key_hash(&ip.to_string()),
    }
}

impl Kind {
    /// The kind of a stored label.
    pub fn from_label(s: &str) -> Option<Kind> {
        [Kind::Ip, Kind::Login, Kind::Address].into_iter().find(|k| k.label() == s)
    }
}

/// A key refused lately.
struct Strike {
    /// The start of its minute (for `alarm_after`).
    since: Instant,
    /// Refusals within that minute.
    count: u32,
    /// When its last trip was given.
    tripped: Instant,
    /// Until when its bucket refuses (as its last refusal by the bucket said).
    until: Instant,
}

/// The limiters of one running service.
pub struct Limiter {
    ip: DefaultKeyedRateLimiter<u64>,
    login: DefaultKeyedRateLimiter<u64>,
    address: DefaultKeyedRateLimiter<u64>,
    /// (burst, time per cell) of each kind, in `Kind` order.
    quotas: [(u32, Duration); 3],
    strikes: Mutex<HashMap<(Kind, u64), Strike>>,
    alarm_after: u32,
    max_keys: usize,
}

fn quota(n: u32, per: Duration) -> Quota {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(per / n.get()).unwrap_or_else(|| Quota::per_second(n)).allow_burst(n)
}

fn shape(n: u32, per: Duration) -> (u32, Duration) {
    let n = n.max(1);
    (n, per / n)
}

fn index(kind: Kind) -> usize {
    match kind {
        Kind::Ip => 0,
        Kind::Login => 1,
        Kind::Address => 2,
    }
}

impl Limiter {
    /// The limiters of `l`.
    pub fn new(l: &Limits) -> Limiter {
        Limiter {
            ip: RateLimiter::keyed(quota(l.per_ip_per_min, Duration::from_secs(60))),
            login: RateLimiter::keyed(quota(l.per_login_per_hour, Duration::from_secs(3600))),
            address: RateLimiter::keyed(quota(l.per_address_per_hour, Duration::from_secs(3600))),
            quotas: [
                shape(l.per_ip_per_min, Duration::from_secs(60)),
                shape(l.per_login_per_hour, Duration::from_secs(3600)),
                shape(l.per_address_per_hour, Duration::from_secs(3600)),
            ],
            strikes: Mutex::new(HashMap::new()),
            alarm_after: l.alarm_after,
            max_keys: l.max_keys,
        }
    }

    fn limiter(&self, kind: Kind) -> &DefaultKeyedRateLimiter<u64> {
        match kind {
            Kind::Ip => &self.ip,
            Kind::Login => &self.login,
            Kind::Address => &self.address,
        }
    }

    /// Counts one request of `key` against the `kind` limit.
    pub fn check(&self, kind: Kind, key: &str) -> Result<(), Refused> {
        let h = key_hash(key);
        let lim = self.limiter(kind);
        if lim.len() > self.max_keys {
            lim.retain_recent();
        }
        match lim.check_key(&h) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(self.strike(kind, h, wait))
            }
        }
    }

    /// A request of the key hashed `h` ([`key_hash`], [`ip_hash`]) refused without asking
    /// its bucket, because an earlier refusal said the bucket refuses until later than
    /// now; counted as a refusal (alarm, trips) like one of [`Limiter::check`]. `None`:
    /// nothing known, ask [`Limiter::check`] (which takes a cell when it lets it pass).
    pub fn refused_already(&self, kind: Kind, h: u64) -> Option<Refused> {
        let now = Instant::now();
        let mut s = self.strikes(now);
        let e = s.get_mut(&(kind, h)).filter(|e| e.until > now)?;
        let (due, alarm, wait) = self.count(e, now, false);
        drop(s);
        Some(self.refused(kind, h, wait, due, alarm))
    }

    fn refused(&self, kind: Kind, h: u64, wait: Duration, trip: bool, alarm: bool) -> Refused {
        let retry_after_s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let (burst, per) = self.quotas[index(kind)];
        let trip = trip.then(|| Trip { kind, key: h, full_in: wait + per * (burst - 1) });
        Refused { kind, retry_after_s: retry_after_s.max(1), alarm, trip }
    }

    /// Puts back a trip kept by the previous active instance: the key's bucket is emptied
    /// of the cells it would still miss `full_in` from now (at most its burst), so the key
    /// gets what it would have had if the instance had not changed.
    pub fn restore(&self, kind: Kind, key: u64, full_in: Duration) {
        let (burst, per) = self.quotas[index(kind)];
        let missing = decide_missing(full_in, burst, per);
        if let Some(n) = NonZeroU32::new(missing) {
            let _ = self.limiter(kind).check_key_n(&key, n);
        }
    }

    /// Records a refusal of `(kind, h)` by its bucket, which refuses for `wait` from now,
    /// and gives it. A trip is due at the first refusal of the key, and [`TRIP_EVERY`]
    /// since its last one, so a flood that goes on moves the kept time on; the alarm at
    /// the `alarm_after`-th refusal within the minute.
    fn strike(&self, kind: Kind, h: u64, wait: Duration) -> Refused {
        let now = Instant::now();
        let mut s = self.strikes(now);
        let mut first = false;
        let e = s.entry((kind, h)).or_insert_with(|| {
            first = true;
            Strike { since: now, count: 0, tripped: now, until: now }
        });
        e.until = now + wait;
        let (due, alarm, wait) = self.count(e, now, first);
        drop(s);
        self.refused(kind, h, wait, due, alarm)
    }

    /// The refused keys, the stale ones dropped once there are more than `max_keys`.
    fn strikes(&self, now: Instant) -> std::sync::MutexGuard<'_, HashMap<(Kind, u64), Strike>> {
        let mut s = self.strikes.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() > self.max_keys {
            s.retain(|_, k| now.duration_since(k.since.max(k.tripped)) < Duration::from_secs(60));
        }
        s
    }

    /// Counts one more refusal of a key: (a trip is due, the alarm is due, how long its
    /// bucket still refuses).
    fn count(&self, e: &mut Strike, now: Instant, mut due: bool) -> (bool, bool, Duration) {
        if now.duration_since(e.since) >= Duration::from_secs(60) {
            (e.since, e.count) = (now, 0);
        }
        if now.duration_since(e.tripped) >= TRIP_EVERY {
            e.tripped = now;
            due = true;
        }
        e.count += 1;
        (due, e.count == self.alarm_after, e.until.duration_since(now))
    }
}

/// How often a key refused again and again gives a new [`Trip`] (written to the
/// database): a flood that goes on keeps the next instance's limit up to date within this.
pub const TRIP_EVERY: Duration = Duration::from_secs(5);

/// The cells a bucket of `burst` (one cell per `per`) misses when it is full again in
/// `full_in`: rounded up, at most `burst`.
pub fn decide_missing(full_in: Duration, burst: u32, per: Duration) -> u32 {
    if per.is_zero() {
        return 0;
    }
    let cells = full_in.as_nanos().div_ceil(per.as_nanos());
    cells.min(u128::from(burst)) as u32
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

    #[test]
    fn the_first_refusal_gives_a_trip_and_a_restored_trip_refuses_on_a_new_limiter() {
        let l = Limiter::new(&limits());
        l.check(Kind::Login, "ann").unwrap();
        l.check(Kind::Login, "ann").unwrap();
        let r = l.check(Kind::Login, "ann").unwrap_err();
        let t = r.trip.expect("the first refusal trips");
        assert_eq!((t.kind, t.key), (Kind::Login, key_hash("ann")));
        // Two per hour: empty now, one cell back in ~30 min, full in ~60 min.
        assert!(t.full_in > Duration::from_secs(3500) && t.full_in <= Duration::from_secs(3600), "{t:?}");
        assert_eq!(l.check(Kind::Login, "ann").unwrap_err().trip, None, "one trip every TRIP_EVERY");
        // The next active instance: a fresh limiter with the trip put back.
        let next = Limiter::new(&limits());
        next.restore(t.kind, t.key, t.full_in);
        let r = next.check(Kind::Login, "ann").unwrap_err();
        assert!(r.retry_after_s > 1700, "still refused for about half an hour: {r:?}");
        next.check(Kind::Login, "bob").expect("another login untouched");
        // A trip nearly over gives back what has refilled: half the window left, one cell.
        let later = Limiter::new(&limits());
        later.restore(Kind::Login, key_hash("ann"), Duration::from_secs(1700));
        later.check(Kind::Login, "ann").expect("one attempt has come back");
        assert!(later.check(Kind::Login, "ann").is_err());
    }

    #[test]
    fn a_refused_key_is_refused_already_until_its_bucket_would_pass_and_counts_as_refused() {
        let l = Limiter::new(&Limits { per_ip_per_min: 1, alarm_after: 3, ..limits() });
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(l.refused_already(Kind::Ip, ip_hash(ip)), None, "nothing known: ask the bucket");
        l.check(Kind::Ip, "10.0.0.7").unwrap();
        assert_eq!(l.refused_already(Kind::Ip, ip_hash(ip)), None, "a key that passed is not refused early");
        let first = l.check(Kind::Ip, "10.0.0.7").unwrap_err();
        assert!(first.trip.is_some() && !first.alarm);
        let r = l.refused_already(Kind::Ip, ip_hash(ip)).expect("refused until its bucket has a cell");
        assert_eq!((r.kind, r.trip, r.alarm), (Kind::Ip, None, false));
        assert!((50..=60).contains(&r.retry_after_s), "{r:?}");
        assert!(l.refused_already(Kind::Ip, ip_hash(ip)).unwrap().alarm, "the third refusal, early or not, reaches alarm_after");
        assert_eq!(l.refused_already(Kind::Login, ip_hash(ip)), None, "per kind");
        assert_eq!(l.refused_already(Kind::Ip, ip_hash("10.0.0.8".parse().unwrap())), None, "per key");
    }

    #[test]
    fn an_early_refusal_ends_when_the_bucket_would_pass() {
        let l = Limiter::new(&Limits { per_ip_per_min: 600, ..limits() }); // one cell per 100 ms
        for _ in 0..600 {
            l.check(Kind::Ip, "10.0.0.9").unwrap();
        }
        l.check(Kind::Ip, "10.0.0.9").unwrap_err();
        let h = ip_hash("10.0.0.9".parse().unwrap());
        assert!(l.refused_already(Kind::Ip, h).is_some());
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(l.refused_already(Kind::Ip, h), None, "past the time the bucket said");
        l.check(Kind::Ip, "10.0.0.9").expect("and the bucket lets one pass");
    }

    #[test]
    fn the_hash_of_an_address_is_the_hash_of_its_text() {
        for a in ["127.0.0.1", "::1", "::ffff:10.1.2.3", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "2001:db8::42"] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(ip_hash(ip), key_hash(&ip.to_string()), "{a}");
        }
    }

    #[test]
    fn missing_cells_round_up_and_stop_at_the_burst() {
        let m = Duration::from_secs(60);
        assert_eq!(decide_missing(Duration::ZERO, 5, m), 0);
        assert_eq!(decide_missing(Duration::from_secs(1), 5, m), 1);
        assert_eq!(decide_missing(Duration::from_secs(120), 5, m), 2);
        assert_eq!(decide_missing(Duration::from_secs(121), 5, m), 3);
        assert_eq!(decide_missing(Duration::from_secs(100_000), 5, m), 5);
    }
}
