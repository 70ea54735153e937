//! `megaco`: an H.248 (MEGACO) text-encoded AuditValue on ROOT, sent over UDP to a media
//! gateway; a Reply with the same transaction id must come back in time.
//!
//! What is sent (H.248.1 Annex B text encoding, version 1):
//!
//! ```text
//! MEGACO/1 [10.0.0.1]:40000
//! Transaction = 123456 {
//!   Context = - {
//!     AuditValue = ROOT {
//!       Audit { }
//!     }
//!   }
//! }
//! ```
//!
//! The mId is the probe's `mid`, else `[<local address>]:<local port>` of its socket;
//! the transaction id is random for each check.
//!
//! What is checked in each datagram that comes back (tokens are case-insensitive, long
//! and compact forms alike):
//! - it starts with `MEGACO/<version>` or `!/<version>`, then the MG's mId;
//! - an error descriptor at message level (`Error = <code>` / `ER = <code>` before any
//!   transaction) fails the check with its code and text;
//! - `TransactionPending` / `PN` with our id: the MG works on it; the wait goes on;
//! - `Reply` / `P` with our id: the check succeeds, unless the reply holds an error
//!   descriptor (`Error`/`ER = <code>`), which fails it with its code and text;
//! - replies to other transaction ids and anything else are ignored (the wait goes on);
//! - a reply asking for an immediate ack (`ImmAckRequired` / `IA`) is acked with a
//!   `TransactionResponseAck { <id> }`.

use std::time::Duration;
use tokio::net::UdpSocket;

/// A `megaco` probe.
pub struct Megaco {
    /// `host:port` of the MG.
    pub target: String,
    /// The mId to send as.
    pub mid: Option<String>,
}

/// What a datagram from the MG says about transaction `tid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A reply to it (with the MG's mId).
    Reply {
        /// The MG's mId.
        mid: String,
        /// Whether it asks for an immediate ack.
        ack: bool,
    },
    /// An error, for it or for the whole message: code and text.
    Error {
        /// The H.248 error code.
        code: u32,
        /// Its text, if given.
        text: String,
    },
    /// The MG is still working on it.
    Pending,
    /// Not about it, or not H.248 text.
    Other(String),
}

/// The request for transaction `tid` from `mid`.
pub fn request(mid: &str, tid: u32) -> String {
    format!("MEGACO/1 {mid}\r\nTransaction = {tid} {{\r\n  Context = - {{\r\n    AuditValue = ROOT {{\r\n      Audit {{ }}\r\n    }}\r\n  }}\r\n}}\r\n")
}

/// The ack of a reply to `tid`.
pub fn ack(mid: &str, tid: u32) -> String {
    format!("MEGACO/1 {mid}\r\nTransactionResponseAck {{ {tid} }}\r\n")
}

/// Splits H.248 text into tokens: words (letters, digits and `_ - . / ! [ ] : @ < >`)
/// and single symbols (`= { } ,`); quoted strings are one token with their quotes.
fn tokens(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            let mut q = String::from('"');
            for d in chars.by_ref() {
                q.push(d);
                if d == '"' {
                    break;
                }
            }
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(q);
        } else if c.is_ascii_alphanumeric() || "_-./![]:@<>".contains(c) {
            cur.push(c);
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if "={},".contains(c) {
                out.push(c.to_string());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn is(tok: &str, long: &str, short: &str) -> bool {
    tok.eq_ignore_ascii_case(long) || tok.eq_ignore_ascii_case(short)
}

/// The error descriptor starting at `toks[i]` (`Error = code { "text" }`), if any.
fn error_at(toks: &[String], i: usize) -> Option<(u32, String)> {
    if !is(&toks[i], "Error", "ER") || toks.get(i + 1).map(String::as_str) != Some("=") {
        return None;
    }
    let code = toks.get(i + 2)?.parse().ok()?;
    let text = match (toks.get(i + 3).map(String::as_str), toks.get(i + 4)) {
        (Some("{"), Some(t)) if t.starts_with('"') => t.trim_matches('"').to_string(),
        _ => String::new(),
    };
    Some((code, text))
}

/// Reads one datagram from the MG about transaction `tid`.
pub fn parse(text: &str, tid: u32) -> Answer {
    let toks = tokens(text);
    let Some(head) = toks.first() else {
        return Answer::Other("an empty datagram".into());
    };
    let version_ok = head
        .to_ascii_uppercase()
        .strip_prefix("MEGACO/")
        .or_else(|| head.strip_prefix("!/"))
        .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()));
    if !version_ok {
        return Answer::Other(format!("not H.248 text (it starts with {:?})", head.chars().take(20).collect::<String>()));
    }
    let mid = toks.get(1).cloned().unwrap_or_default();
    let tid_s = tid.to_string();
    let mut i = 2;
    let mut in_transactions = false;
    while i < toks.len() {
        let t = &toks[i];
        if !in_transactions {
            if let Some((code, text)) = error_at(&toks, i) {
                return Answer::Error { code, text }; // at message level
            }
        }
        let assigned = toks.get(i + 1).map(String::as_str) == Some("=");
        if assigned
            && ["Reply", "P", "TransactionPending", "PN", "Transaction", "T", "TransactionResponseAck", "K"]
                .iter()
                .any(|w| t.eq_ignore_ascii_case(w))
        {
            in_transactions = true;
        }
        let numbered = assigned && toks.get(i + 2) == Some(&tid_s);
        if numbered && is(t, "Reply", "P") {
            // Our reply: look for an error descriptor or an ack request in its body.
            let mut depth = 0i32;
            let mut ack = false;
            for j in i + 3..toks.len() {
                match toks[j].as_str() {
                    "{" => depth += 1,
                    "}" => {
                        depth -= 1;
                        if depth <= 0 {
                            break;
                        }
                    }
                    w if is(w, "ImmAckRequired", "IA") => ack = true,
                    _ => {
                        if let Some((code, text)) = error_at(&toks, j) {
                            return Answer::Error { code, text };
                        }
                    }
                }
            }
            return Answer::Reply { mid, ack };
        }
        if numbered && is(t, "TransactionPending", "PN") {
            return Answer::Pending;
        }
        i += 1;
    }
    Answer::Other(format!("no reply to transaction {tid}"))
}

impl Megaco {
    /// Sends the AuditValue and waits for its reply until shortly before `timeout`.
    pub async fn check(&self, timeout: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + timeout.saturating_sub(Duration::from_millis(20));
        let peer = tokio::net::lookup_host(&self.target)
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", self.target))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.target))?;
        let bind = if peer.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let sock = UdpSocket::bind(bind).await.map_err(|e| format!("cannot open a UDP socket: {e}"))?;
        sock.connect(peer).await.map_err(|e| format!("cannot reach {peer}: {e}"))?;
        let local = sock.local_addr().map_err(|e| e.to_string())?;
        let mid = self.mid.clone().unwrap_or_else(|| match local.ip() {
            std::net::IpAddr::V4(ip) => format!("[{ip}]:{}", local.port()),
            std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", local.port()),
        });
        let tid = rand::random::<u32>().max(1);
        sock.send(request(&mid, tid).as_bytes()).await.map_err(|e| format!("cannot send to {peer}: {e}"))?;
        let mut buf = vec![0u8; 65_536];
        let mut last_other = None;
        let mut pending = false;
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(format!("{peer}: {e}")),
                Err(_) => {
                    let state = if pending {
                        "it answered TransactionPending, then nothing".to_string()
                    } else {
                        last_other.map(|o| format!("it sent only {o}")).unwrap_or_else(|| "no datagram came back".into())
                    };
                    return Err(format!("no reply to AuditValue transaction {tid} from {peer} within {} ms: {state}", timeout.as_millis()));
                }
            };
            match parse(&String::from_utf8_lossy(&buf[..n]), tid) {
                Answer::Reply { mid: their, ack: want_ack } => {
                    if want_ack {
                        let _ = sock.send(ack(&mid, tid).as_bytes()).await;
                    }
                    return Ok(format!("{peer} ({their}) replied to AuditValue transaction {tid}"));
                }
                Answer::Error { code, text } => {
                    return Err(format!(
                        "{peer} answered AuditValue transaction {tid} with error {code}{}",
                        if text.is_empty() { String::new() } else { format!(" ({text})") }
                    ))
                }
                Answer::Pending => pending = true,
                Answer::Other(o) => last_other = Some(o),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_errors_pending_and_noise() {
        let reply = "MEGACO/1 [10.0.0.9]:2944\r\nReply = 77 {\r\n Context = - { AuditValue = ROOT { Packages { g/1, root/2 } } } }";
        assert_eq!(parse(reply, 77), Answer::Reply { mid: "[10.0.0.9]:2944".into(), ack: false });
        assert_eq!(parse(reply, 78), Answer::Other("no reply to transaction 78".into()));
        let compact = "!/1 <mg1>\nP=77{IA,C=-{AV=ROOT}}";
        assert_eq!(parse(compact, 77), Answer::Reply { mid: "<mg1>".into(), ack: true });
        let err = "MEGACO/1 [10.0.0.9]:2944 Reply = 77 { Context = - { AuditValue = ROOT { Error = 431 { \"No such termination\" } } } }";
        assert_eq!(parse(err, 77), Answer::Error { code: 431, text: "No such termination".into() });
        let msg_err = "MEGACO/1 [10.0.0.9]:2944 ER=400{\"Syntax error in message\"}";
        assert_eq!(parse(msg_err, 77), Answer::Error { code: 400, text: "Syntax error in message".into() });
        assert_eq!(parse("MEGACO/1 [h]:1 TransactionPending = 77 { }", 77), Answer::Pending);
        assert_eq!(parse("megaco/1 [h]:1 pn=77{}", 77), Answer::Pending);
        assert!(matches!(parse("HTTP/1.1 200 OK", 77), Answer::Other(o) if o.starts_with("not H.248 text")));
        assert!(matches!(parse("", 77), Answer::Other(_)));
    }

    #[test]
    fn the_request_is_an_auditvalue_on_root() {
        let r = request("[127.0.0.1]:5000", 42);
        assert!(r.starts_with("MEGACO/1 [127.0.0.1]:5000\r\nTransaction = 42 {"));
        assert!(r.contains("AuditValue = ROOT {"));
        let t = tokens(&r);
        assert_eq!(t.iter().filter(|x| *x == "{").count(), t.iter().filter(|x| *x == "}").count());
    }
}
