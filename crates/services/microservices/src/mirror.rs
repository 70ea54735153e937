//! The UDP mirror test service and its client.
//!
//! The server sends every datagram on its ports back to its source, the same size (never
//! larger: it is no amplifier), within a per-source and a global rate (token buckets of
//! one second; past them the datagram is dropped and counted) and only to the allowed
//! networks. A datagram in the test's format (`MWM1`, sequence, send time) gets the
//! source port the server saw written into it, so the client sees a NAT's rewrite.
//!
//! Format (big endian): `b"MWM1"`, `u32` sequence, `u64` client send time (ns, the
//! client's own clock), `u16` source port seen by the mirror, 2 bytes reserved: 20 bytes
//! at least; the client may pad.

use crate::metrics::Metrics;
use crate::section::{network, MirrorConfig};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The test format's marker.
pub const MAGIC: &[u8; 4] = b"MWM1";
/// Smallest datagram of the test format.
pub const HEADER: usize = 20;
/// Sources tracked at most (past it, the table is cleared: the global rate still holds).
const MAX_SOURCES: usize = 65_536;

/// A token bucket of `rate` per second, one second deep.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32, now: Instant) -> Self {
        Bucket { tokens: rate as f64, at: now }
    }
    fn take(&mut self, rate: u32, now: Instant) -> bool {
        let r = rate as f64;
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * r).min(r);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn contains((net, len): (IpAddr, u8), ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => len == 0 || (u32::from(n) ^ u32::from(i)) >> (32 - len as u32) == 0,
        (IpAddr::V6(n), IpAddr::V6(i)) => len == 0 || (u128::from(n) ^ u128::from(i)) >> (128 - len as u32) == 0,
        _ => false,
    }
}

/// The limits shared by every port of the mirror.
struct Limits {
    cfg: MirrorConfig,
    allowed: Vec<(IpAddr, u8)>,
    state: std::sync::Mutex<(Bucket, HashMap<IpAddr, Bucket>)>,
}

impl Limits {
    /// Whether a datagram from `ip` is answered now.
    fn allow(&self, ip: IpAddr) -> bool {
        if !self.allowed.is_empty() && !self.allowed.iter().any(|n| contains(*n, ip)) {
            return false;
        }
        let now = Instant::now();
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (global, sources) = &mut *g;
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
            sources.clear();
        }
        let per = self.cfg.per_source_pps;
        if !sources.entry(ip).or_insert_with(|| Bucket::new(per, now)).take(per, now) {
            return false;
        }
        global.take(self.cfg.global_pps, now)
    }
}

/// Serves the mirror on `socket` until `cancel`.
async fn serve(socket: UdpSocket, limits: Arc<Limits>, metrics: Metrics, cancel: CancellationToken) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, src) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r { Ok(x) => x, Err(_) => continue },
        };
        if !limits.allow(src.ip()) {
            metrics.mirror_dropped.inc();
            continue;
        }
        if n >= HEADER && &buf[..4] == MAGIC {
            buf[16..18].copy_from_slice(&src.port().to_be_bytes());
        }
        // The answer is the request itself: never larger.
        if socket.send_to(&buf[..n], src).await.is_ok() {
            metrics.mirror_answered.inc();
        }
    }
}

/// Binds `cfg`'s ports on `ip` and serves them until the guard is dropped.
pub async fn bind(ip: IpAddr, cfg: &MirrorConfig, metrics: Metrics) -> Result<(DropGuard, Vec<SocketAddr>), crate::MicroError> {
    let limits = Arc::new(Limits {
        cfg: cfg.clone(),
        allowed: cfg.allowed_networks.iter().filter_map(|n| network(n).ok()).collect(),
        state: std::sync::Mutex::new((Bucket::new(cfg.global_pps, Instant::now()), HashMap::new())),
    });
    let cancel = CancellationToken::new();
    let mut addrs = vec![];
    for port in &cfg.ports {
        let addr = SocketAddr::new(ip, *port);
        let s = UdpSocket::bind(addr).await.map_err(|source| crate::MicroError::Bind { addr: addr.to_string(), source })?;
        addrs.push(s.local_addr().unwrap_or(addr));
        tokio::spawn(serve(s, limits.clone(), metrics.clone(), cancel.clone()));
    }
    Ok((cancel.drop_guard(), addrs))
}

/// What the client measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Datagrams sent.
    pub sent: u64,
    /// Distinct datagrams answered.
    pub received: u64,
    /// Share lost, percent.
    pub loss_pct: f64,
    /// Round trip, median, ms.
    pub rtt_p50_ms: f64,
    /// Round trip, 99th percentile, ms.
    pub rtt_p99_ms: f64,
    /// Interarrival jitter in the manner of RFC 3550 (over round trips), ms.
    pub jitter_ms: f64,
    /// Answers that came after one with a higher sequence.
    pub reordered: u64,
    /// Answers that came twice or more.
    pub duplicates: u64,
    /// Answers larger than their request (an amplifier would show here).
    pub larger: u64,
    /// Whether the mirror saw the client's own source port (false: a NAT rewrote it).
    pub source_port_kept: Option<bool>,
    /// The source port the mirror saw (last answer).
    pub seen_port: Option<u16>,
}

/// Sends `rate` datagrams a second of `size` bytes to `target` for `duration`, waits a
/// second for late answers, and measures.
pub async fn test(target: SocketAddr, rate: u32, duration: Duration, size: usize) -> std::io::Result<Report> {
    let bind: SocketAddr = if target.is_ipv4() { "0.0.0.0:0".parse().expect("addr") } else { "[::]:0".parse().expect("addr") };
    let sock = Arc::new(UdpSocket::bind(bind).await?);
    sock.connect(target).await?;
    let local_port = sock.local_addr()?.port();
    let size = size.max(HEADER);
    let epoch = Instant::now();
    let total = (rate as f64 * duration.as_secs_f64()).round() as u64;
    let sender = {
        let sock = sock.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; size];
            buf[..4].copy_from_slice(MAGIC);
            let step = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
            for seq in 0..total {
                tokio::time::sleep_until(tokio::time::Instant::from_std(epoch + step * seq as u32)).await;
                buf[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
                buf[8..16].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
                let _ = sock.send(&buf).await;
            }
        })
    };
    let mut seen = vec![false; total as usize];
    let (mut rtts, mut received, mut reordered, mut duplicates, mut larger) = (vec![], 0u64, 0u64, 0u64, 0u64);
    let (mut max_seq, mut jitter, mut last_rtt): (Option<u32>, f64, Option<f64>) = (None, 0.0, None);
    let mut seen_port = None;
    let deadline = tokio::time::Instant::from_std(epoch + duration + Duration::from_secs(1));
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            r = sock.recv(&mut buf) => match r { Ok(n) => n, Err(_) => continue },
        };
        if n < HEADER || &buf[..4] != MAGIC {
            continue;
        }
        if n > size {
            larger += 1;
        }
        let seq = u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes"));
        let sent_ns = u64::from_be_bytes(buf[8..16].try_into().expect("8 bytes"));
        seen_port = Some(u16::from_be_bytes(buf[16..18].try_into().expect("2 bytes")));
        let Some(slot) = seen.get_mut(seq as usize) else { continue };
        if *slot {
            duplicates += 1;
            continue;
        }
        *slot = true;
        received += 1;
        let rtt = (epoch.elapsed().as_nanos() as u64).saturating_sub(sent_ns) as f64 / 1e6;
        rtts.push(rtt);
        if let Some(prev) = last_rtt {
            jitter += ((rtt - prev).abs() - jitter) / 16.0;
        }
        last_rtt = Some(rtt);
        match max_seq {
            Some(m) if seq < m => reordered += 1,
            _ => max_seq = Some(seq),
        }
    }
    let _ = sender.await;
    rtts.sort_by(f64::total_cmp);
    let pct = |q: f64| if rtts.is_empty() { 0.0 } else { rtts[((rtts.len() - 1) as f64 * q).round() as usize] };
    Ok(Report {
        sent: total,
        received,
        loss_pct: if total == 0 { 0.0 } else { 100.0 * (total - received) as f64 / total as f64 },
        rtt_p50_ms: pct(0.5),
        rtt_p99_ms: pct(0.99),
        jitter_ms: jitter,
        reordered,
        duplicates,
        larger,
        source_port_kept: seen_port.map(|p| p == local_port),
        seen_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_buckets() {
        let n = network("10.1.0.0/16").unwrap();
        assert!(contains(n, "10.1.200.3".parse().unwrap()));
        assert!(!contains(n, "10.2.0.1".parse().unwrap()));
        assert!(!contains(n, "::1".parse().unwrap()));
        assert!(contains(network("::1").unwrap(), "::1".parse().unwrap()));
        let now = Instant::now();
        let mut b = Bucket::new(3, now);
        assert_eq!((0..10).filter(|_| b.take(3, now)).count(), 3);
        assert!(b.take(3, now + Duration::from_millis(400)));
    }
}
