//! The syslog receiver: UDP (one message per datagram) and TCP (octet-counted, RFC 6587
//! section 3.4.1, or newline-framed, told apart by the first byte of each frame), RFC
//! 3164 and RFC 5424 parsed by `syslog_loose`. A message longer than the limit, not
//! UTF-8 or without a `<PRI>` is counted and dropped; nothing a client sends ends the
//! receiver. Parsed messages go to the intake over a bounded channel: when the intake
//! falls behind, TCP readers wait (the sender is slowed) and the UDP socket's large
//! receive buffer absorbs bursts. TCP connections are capped in all and per peer
//! address and closed when idle ([`crate::tcpgate`]).

use crate::metrics::Metrics;
use crate::rules::Msg;
use crate::tcpgate::{Gate, Idle, RefusalLog, Refusals};
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Receive buffer asked for the UDP socket (the kernel caps it at `net.core.rmem_max`).
const UDP_RCVBUF: usize = 16 << 20;

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Longer than `max_message_bytes`.
    Oversize,
    /// Not UTF-8, empty, or no `<PRI>` header.
    Unparsable,
}

impl Malformed {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Malformed::Oversize => "oversize",
            Malformed::Unparsable => "unparsable",
        }
    }
}

/// Parses one message; `peer` names the host when the message names none.
pub fn parse(bytes: &[u8], peer: &SocketAddr) -> Result<Msg, Malformed> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| Malformed::Unparsable)?;
    let pri_end = text.find('>').filter(|&i| (2..=4).contains(&i) && text.starts_with('<')).ok_or(Malformed::Unparsable)?;
    let pri: u16 = text[1..pri_end].parse().map_err(|_| Malformed::Unparsable)?;
    if pri > 191 {
        return Err(Malformed::Unparsable);
    }
    let m = syslog_loose::parse_message(text, syslog_loose::Variant::Either);
    let host = m.hostname.filter(|h| !h.is_empty() && *h != "-").map(str::to_string).unwrap_or_else(|| peer.ip().to_string());
    Ok(Msg {
        facility: Some((pri / 8) as u8),
        severity: Some((pri % 8) as u8),
        host,
        app: m.appname.filter(|a| *a != "-").unwrap_or_default().to_string(),
        // A message syslog_loose cannot split comes back whole: drop its <PRI>.
        text: if m.msg == text { &text[pri_end + 1..] } else { m.msg }.trim().to_string(),
    })
}

/// Opens the UDP socket (non-blocking) with a large receive buffer.
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(UDP_RCVBUF);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// Most datagrams handed to the intake at once.
const BATCH: usize = 256;
/// A drain that found this many datagrams means a busy sender: the next read waits
/// [`COALESCE`] instead of a wake-up per datagram.
const BUSY: usize = 16;
/// How long a busy receiver lets datagrams gather in the socket's buffer.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(1);
/// How often an idle receiver looks at `cancel`.
const IDLE_POLL_MS: u16 = 200;

/// Receives datagrams on a thread of its own until `cancel` (run it on a blocking
/// thread). The socket is not registered with the runtime's reactor, so a datagram
/// wakes nobody while the receiver is busy: after a full batch it reads on at once;
/// after a drain that found a burst it lets a millisecond's datagrams gather in the
/// socket's buffer (which holds far more than that); otherwise it waits in `poll(2)`
/// for the next one. Each batch goes to the intake in one hand-over.
pub fn run_udp(sock: std::net::UdpSocket, max: usize, tx: mpsc::Sender<Vec<Msg>>, metrics: Metrics, cancel: CancellationToken) {
    use std::os::fd::AsFd;
    let mut buf = vec![0u8; max + 1];
    let mut full = false;
    let mut busy = false;
    while !cancel.is_cancelled() {
        if busy {
            std::thread::sleep(COALESCE);
        } else if !full {
            let mut fds = [nix::poll::PollFd::new(sock.as_fd(), nix::poll::PollFlags::POLLIN)];
            if !matches!(nix::poll::poll(&mut fds, IDLE_POLL_MS), Ok(n) if n > 0) {
                continue;
            }
        }
        let mut batch = Vec::new();
        let mut drained = false;
        let mut got = 0;
        while batch.len() < BATCH {
            match sock.recv_from(&mut buf) {
                Ok((n, peer)) => {
                    got += 1;
                    match if n > max { Err(Malformed::Oversize) } else { parse(&buf[..n], &peer) } {
                        Ok(m) => batch.push(m),
                        Err(e) => metrics.malformed(e.label()),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) => tracing::debug!(error = %e, "alarms: syslog udp receive error"),
            }
        }
        metrics.received("udp", got);
        full = !drained;
        busy = drained && got >= BUSY as u64;
        if !batch.is_empty() && tx.blocking_send(batch).is_err() {
            return;
        }
    }
}

/// The TCP listener's limits (see [`crate::tcpgate`]).
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Longest message in bytes.
    pub max_message: usize,
    /// Connections at once.
    pub max_conns: usize,
    /// Connections at once from one peer address.
    pub max_per_peer: usize,
    /// A connection silent this long is closed.
    pub idle: std::time::Duration,
}

/// One line at most per this interval about refused connections.
const REFUSAL_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts TCP connections until `cancel`, within `limits`: a connection past the cap
/// (in all, or of its peer address) is closed at once, counted, and logged at most once
/// per [`REFUSAL_LOG_EVERY`] with the count since the last line.
pub async fn run_tcp(l: TcpListener, limits: TcpLimits, tx: mpsc::Sender<Vec<Msg>>, metrics: Metrics, cancel: CancellationToken) {
    let gate = Gate::new(limits.max_conns, limits.max_per_peer);
    let mut refusals = RefusalLog::new(REFUSAL_LOG_EVERY);
    let mut flush = tokio::time::interval(REFUSAL_LOG_EVERY);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = flush.tick() => {
                log_refusals(refusals.due(Instant::now()), &limits);
                continue;
            }
            r = l.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match gate.admit(peer.ip()) {
            Ok(s) => s,
            Err(why) => {
                metrics.refused(why.label());
                log_refusals(refusals.refused(Instant::now(), peer.ip(), why), &limits);
                continue;
            }
        };
        let (tx, metrics, cancel) = (tx.clone(), metrics.clone(), cancel.clone());
        tokio::spawn(async move {
            let mut r = BufReader::with_capacity(64 * 1024, Idle::new(tcp, limits.idle));
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = read_stream(&mut r, peer, limits.max_message, &tx, &metrics) => {}
            }
            if r.get_ref().timed_out() {
                metrics.idle_closed();
            }
            drop(slot);
        });
    }
}

fn log_refusals(r: Option<Refusals>, limits: &TcpLimits) {
    if let Some(r) = r {
        tracing::warn!(
            per_peer = r.per_peer,
            total = r.total,
            last_peer = %r.last_peer,
            max_connections = limits.max_conns,
            max_connections_per_peer = limits.max_per_peer,
            "alarms: syslog tcp connections refused since the last such line (per_peer: the peer address held its share; total: every slot taken)"
        );
    }
}

/// One TCP connection, read through its idle timeout.
type Conn = BufReader<Idle<TcpStream>>;

/// Reads frames from one connection until it closes or sends what cannot be framed.
async fn read_stream(r: &mut Conn, peer: SocketAddr, max: usize, tx: &mpsc::Sender<Vec<Msg>>, metrics: &Metrics) {
    let mut frame = Vec::with_capacity(1024);
    loop {
        let first = match r.fill_buf().await {
            Ok([]) | Err(_) => return,
            Ok(b) => b[0],
        };
        frame.clear();
        let ok = if first.is_ascii_digit() {
            // Octet counting: "LEN SP MSG".
            let mut len_txt = Vec::with_capacity(8);
            // At most 8 digits and the space: a client sending digits forever is cut off.
            if (&mut *r).take(9).read_until(b' ', &mut len_txt).await.is_err() || len_txt.last() != Some(&b' ') {
                metrics.malformed(Malformed::Unparsable.label());
                return;
            }
            let Some(len) = std::str::from_utf8(&len_txt).ok().and_then(|s| s.trim_end().parse::<usize>().ok()) else {
                metrics.malformed(Malformed::Unparsable.label());
                return;
            };
            if len > max {
                // Skip it: the framing still says where the next one starts.
                if tokio::io::copy(&mut (&mut *r).take(len as u64), &mut tokio::io::sink()).await.is_err() {
                    return;
                }
                Err(Malformed::Oversize)
            } else {
                frame.resize(len, 0);
                if r.read_exact(&mut frame).await.is_err() {
                    return;
                }
                Ok(())
            }
        } else {
            // Newline framing; a line longer than the limit is skipped to its end.
            match read_line(r, &mut frame, max).await {
                Some(true) => Ok(()),
                Some(false) => Err(Malformed::Oversize),
                None => return,
            }
        };
        metrics.received("tcp", 1);
        match ok.and_then(|_| parse(&frame, &peer)) {
            Ok(m) => {
                if tx.send(vec![m]).await.is_err() {
                    return;
                }
            }
            Err(e) => metrics.malformed(e.label()),
        }
    }
}

/// Reads up to `\n` into `out`: `Some(true)` a line, `Some(false)` a line past `max`
/// (skipped), `None` the connection ended.
async fn read_line(r: &mut Conn, out: &mut Vec<u8>, max: usize) -> Option<bool> {
    let mut over = false;
    loop {
        let buf = r.fill_buf().await.ok()?;
        if buf.is_empty() {
            return if out.is_empty() || over { None } else { Some(true) };
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !over {
            out.extend_from_slice(&buf[..take]);
            if out.len() > max + 1 {
                over = true;
                out.clear();
            }
        }
        r.consume(take);
        if done {
            return Some(!over);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "192.0.2.7:514".parse().unwrap()
    }

    #[test]
    fn rfc3164_and_rfc5424() {
        let m = parse(b"<131>Dec  2 10:00:00 gw1 kamailio[42]: dialog timeout\n", &peer()).unwrap();
        assert_eq!((m.facility, m.severity), (Some(16), Some(3)));
        assert_eq!((m.host.as_str(), m.app.as_str(), m.text.as_str()), ("gw1", "kamailio", "dialog timeout"));
        let m = parse(b"<134>1 2026-12-02T10:00:00Z sbc2 asterisk 77 ID1 - trunk down", &peer()).unwrap();
        assert_eq!((m.facility, m.severity), (Some(16), Some(6)));
        assert_eq!((m.host.as_str(), m.app.as_str(), m.text.as_str()), ("sbc2", "asterisk", "trunk down"));
    }

    #[test]
    fn malformed_is_told_apart() {
        assert_eq!(parse(b"no pri here", &peer()), Err(Malformed::Unparsable));
        assert_eq!(parse(b"<999>x", &peer()), Err(Malformed::Unparsable));
        assert_eq!(parse(b"<13>\xff\xfe", &peer()), Err(Malformed::Unparsable));
        assert_eq!(parse(b"", &peer()), Err(Malformed::Unparsable));
        let m = parse(b"<13>just text", &peer()).unwrap();
        assert_eq!((m.severity, m.text.as_str(), m.host.as_str()), (Some(5), "just text", "192.0.2.7"));
    }
}
