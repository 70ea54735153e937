//! What keeps the TCP syslog listener open for everyone: a cap on connections at once
//! and a smaller one per peer address, an IPv6 peer counted by its /64 ([`Gate`], so one
//! sender cannot take every slot), an idle timeout on each connection ([`Idle`]), and
//! refusals logged at most once per interval with their count ([`RefusalLog`]) instead
//! of a line each.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, ReadBuf};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is taken.
    Total,
    /// The peer address holds its share already.
    PerPeer,
}

impl Refusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Total => "total",
            Refusal::PerPeer => "per_peer",
        }
    }
}

/// The pure decision: may one more connection from a peer that holds `peer_open` of the
/// `open` ones come in?
pub fn decide(open: usize, peer_open: usize, max_total: usize, max_per_peer: usize) -> Result<(), Refusal> {
    if peer_open >= max_per_peer.max(1) {
        Err(Refusal::PerPeer)
    } else if open >= max_total.max(1) {
        Err(Refusal::Total)
    } else {
        Ok(())
    }
}

/// The address a peer's share is counted under: an IPv4 address (also when mapped into
/// IPv6), or the /64 of an IPv6 one (one host commonly holds a whole /64).
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

#[derive(Default)]
struct Open {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// The connections open now, by peer address. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    max_total: usize,
    max_per_peer: usize,
    open: Arc<Mutex<Open>>,
}

/// A connection's place; dropping it frees the place.
pub struct Slot {
    peer: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl Gate {
    /// A gate of `max_total` places, at most `max_per_peer` for one address.
    pub fn new(max_total: usize, max_per_peer: usize) -> Gate {
        Gate { max_total, max_per_peer, open: Arc::default() }
    }

    /// A place for a connection from `peer`, or why not.
    pub fn admit(&self, peer: IpAddr) -> Result<Slot, Refusal> {
        let peer = peer_key(peer);
        let mut o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = o.by_peer.get(&peer).copied().unwrap_or(0);
        decide(o.total, mine, self.max_total, self.max_per_peer)?;
        o.total += 1;
        *o.by_peer.entry(peer).or_default() += 1;
        Ok(Slot { peer, open: self.open.clone() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        o.total = o.total.saturating_sub(1);
        if let Some(n) = o.by_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                o.by_peer.remove(&self.peer);
            }
        }
    }
}

/// Refusals since the last line logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusals {
    /// Refused because every slot was taken.
    pub total: u64,
    /// Refused because the peer held its share.
    pub per_peer: u64,
    /// The last peer refused.
    pub last_peer: IpAddr,
}

/// Counts refusals and says when a line is due: the first refusal at once, then at most
/// one line per `interval` with the count since the last one.
pub struct RefusalLog {
    interval: Duration,
    last_line: Option<Instant>,
    pending: Option<Refusals>,
}

impl RefusalLog {
    /// A log of at most one line per `interval`.
    pub fn new(interval: Duration) -> RefusalLog {
        RefusalLog { interval, last_line: None, pending: None }
    }

    /// Notes a refusal; returns the line's counts when one is due.
    pub fn refused(&mut self, now: Instant, peer: IpAddr, why: Refusal) -> Option<Refusals> {
        let p = self.pending.get_or_insert(Refusals { total: 0, per_peer: 0, last_peer: peer });
        p.last_peer = peer;
        match why {
            Refusal::Total => p.total += 1,
            Refusal::PerPeer => p.per_peer += 1,
        }
        self.due(now)
    }

    /// The counts not logged yet, when their line is due (call it now and then).
    pub fn due(&mut self, now: Instant) -> Option<Refusals> {
        if self.pending.is_none() || self.last_line.is_some_and(|t| now.duration_since(t) < self.interval) {
            return None;
        }
        self.last_line = Some(now);
        self.pending.take()
    }
}

/// A reader that fails with `TimedOut` when nothing arrived for `limit`.
pub struct Idle<R> {
    inner: R,
    limit: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    timed_out: bool,
}

impl<R> Idle<R> {
    /// Wraps `inner`; the clock starts now.
    pub fn new(inner: R, limit: Duration) -> Idle<R> {
        Idle { inner, limit, timer: Box::pin(tokio::time::sleep(limit)), timed_out: false }
    }
    /// Whether it gave up for idleness.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Idle<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let next = tokio::time::Instant::now() + this.limit;
                    this.timer.as_mut().reset(next);
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.timed_out = true;
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "idle")))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn one_peer_cannot_take_every_slot() {
        let g = Gate::new(4, 2);
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let s1 = g.admit(a).unwrap();
        let _s2 = g.admit(a).unwrap();
        assert_eq!(g.admit(a).err(), Some(Refusal::PerPeer));
        let _s3 = g.admit(b).unwrap();
        let _s4 = g.admit(b).unwrap();
        let c: IpAddr = "::1".parse().unwrap();
        assert_eq!(g.admit(c).err(), Some(Refusal::Total));
        drop(s1);
        assert!(g.admit(c).is_ok(), "a freed place is given again");
        assert_eq!(decide(0, 0, 0, 0), Ok(()), "zero limits mean one");
    }

    #[test]
    fn an_ipv6_peer_is_counted_by_its_64() {
        let g = Gate::new(10, 1);
        let _a = g.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert_eq!(g.admit("2001:db8:1:2:ffff::9".parse().unwrap()).err(), Some(Refusal::PerPeer), "same /64");
        assert!(g.admit("2001:db8:1:3::1".parse().unwrap()).is_ok(), "another /64");
        let _v4 = g.admit("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(g.admit("::ffff:192.0.2.1".parse().unwrap()).err(), Some(Refusal::PerPeer), "v4-mapped is the v4 address");
    }

    #[test]
    fn refusals_are_logged_once_per_interval_with_their_count() {
        let mut log = RefusalLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let p: IpAddr = "127.0.0.2".parse().unwrap();
        let first = log.refused(t0, p, Refusal::PerPeer).expect("the first refusal is logged at once");
        assert_eq!((first.per_peer, first.total), (1, 0));
        for i in 0..1000 {
            assert_eq!(log.refused(t0 + Duration::from_millis(i), p, Refusal::PerPeer), None);
        }
        assert_eq!(log.refused(t0 + Duration::from_secs(2), p, Refusal::Total), None);
        assert_eq!(log.due(t0 + Duration::from_secs(9)), None);
        let next = log.due(t0 + Duration::from_secs(10)).expect("one line after the interval");
        assert_eq!((next.per_peer, next.total, next.last_peer), (1000, 1, p));
        assert_eq!(log.due(t0 + Duration::from_secs(30)), None, "nothing pending, nothing logged");
    }

    #[tokio::test]
    async fn idle_reader_times_out_and_activity_resets_it() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut r = Idle::new(r, Duration::from_millis(200));
        let mut buf = [0u8; 8];
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(120)).await;
            w.write_all(b"x").await.unwrap();
            assert_eq!(r.read(&mut buf).await.unwrap(), 1, "data within the limit keeps it open");
        }
        let e = r.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(r.timed_out());
    }
}
