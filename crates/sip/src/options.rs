//! SIP OPTIONS over UDP (RFC 3261 §11): is a contact or a proxy alive, and what did it
//! answer. One request per call from an ephemeral socket connected to the target,
//! retransmitted on timer E (500 ms doubling, at most 4 s) until an answer or the
//! timeout; the answer is matched by Call-ID. Any final answer (even 404 or 405) means
//! the target is reachable; provisional answers are skipped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

static SEQ: AtomicU64 = AtomicU64::new(1);

/// A final answer to an OPTIONS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code (200, 404, ...).
    pub code: u16,
    /// The reason phrase (at most 64 characters).
    pub reason: String,
    /// Time from the first send to the answer, ms.
    pub rtt_ms: u64,
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PingError {
    /// Nothing answered within the timeout.
    #[error("no answer to OPTIONS within {0} ms")]
    Timeout(u64),
    /// The socket failed (e.g. ICMP port unreachable: nothing listens there).
    #[error("OPTIONS to {addr}: {msg}")]
    Io {
        /// The target.
        addr: SocketAddr,
        /// What failed.
        msg: String,
    },
}

/// Sends OPTIONS `uri` to `target` over UDP and waits up to `timeout` for a final answer.
/// `uri` must be a checked SIP URI without spaces or line breaks.
pub async fn ping(target: SocketAddr, uri: &str, timeout: Duration) -> Result<Answer, PingError> {
    let io = |e: std::io::Error| PingError::Io { addr: target, msg: e.to_string() };
    let bind: SocketAddr = if target.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    let sock = UdpSocket::bind(bind).await.map_err(io)?;
    sock.connect(target).await.map_err(io)?;
    let local = sock.local_addr().map_err(io)?;
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let tag = format!("{:x}{:x}", std::process::id(), n);
    let call_id = format!("mware-opt-{tag}-{}", nanos());
    let req = request(uri, local, &tag, &call_id);
    let start = Instant::now();
    let deadline = start + timeout;
    let mut t_e = Duration::from_millis(500);
    let mut buf = vec![0u8; 4096];
    loop {
        sock.send(req.as_bytes()).await.map_err(io)?;
        let until = (Instant::now() + t_e).min(deadline);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(io(e)),
                Ok(Ok(len)) => {
                    if let Some((code, reason)) = parse_answer(&buf[..len], &call_id) {
                        if code >= 200 {
                            return Ok(Answer { code, reason, rtt_ms: start.elapsed().as_millis() as u64 });
                        }
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(PingError::Timeout(timeout.as_millis() as u64));
        }
        t_e = (t_e * 2).min(Duration::from_secs(4));
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn request(uri: &str, local: SocketAddr, tag: &str, call_id: &str) -> String {
    format!(
        "OPTIONS {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{tag};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:mware@{local}>;tag={tag}\r\n\
         To: <{uri}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         User-Agent: mware\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The status of a response to the request with `call_id`, if `msg` is one.
fn parse_answer(msg: &[u8], call_id: &str) -> Option<(u16, String)> {
    let text = std::str::from_utf8(msg).ok()?;
    let head = text.split("\r\n\r\n").next()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("SIP/2.0 ")?;
    let (code, reason) = status.split_once(' ').unwrap_or((status, ""));
    let code: u16 = code.parse().ok().filter(|c| (100..700).contains(c))?;
    let same_call = lines.any(|l| {
        let (name, value) = l.split_once(':').unwrap_or((l, ""));
        let name = name.trim();
        (name.eq_ignore_ascii_case("call-id") || name == "i") && value.trim() == call_id
    });
    same_call.then(|| (code, reason.chars().filter(|c| !c.is_control()).take(64).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_matched_by_call_id() {
        let msg = b"SIP/2.0 200 Keepalive\r\nVia: x\r\nCall-ID: abc\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_answer(msg, "abc"), Some((200, "Keepalive".into())));
        assert_eq!(parse_answer(msg, "other"), None);
        assert_eq!(parse_answer(b"SIP/2.0 404 Not Here\r\ni: abc\r\n\r\n", "abc"), Some((404, "Not Here".into())));
        assert_eq!(parse_answer(b"INVITE sip:x SIP/2.0\r\nCall-ID: abc\r\n\r\n", "abc"), None);
    }

    #[tokio::test]
    async fn nothing_listening_is_an_error_and_silence_a_timeout() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let r = ping(addr, "sip:x@127.0.0.1", Duration::from_millis(300)).await;
        assert_eq!(r, Err(PingError::Timeout(300)));
        drop(silent);
        let r = ping(addr, "sip:x@127.0.0.1", Duration::from_millis(300)).await;
        assert!(matches!(r, Err(PingError::Io { .. }) | Err(PingError::Timeout(_))), "{r:?}");
    }
}
