//! Forwarding of the site log's lines to a syslog receiver: RFC 5424 messages (HOSTNAME
//! the instance, APP-NAME the process, MSGID the stream, the severity from the line's
//! JSON `level`, else `info` for stdout and `warning` for stderr), one per UDP datagram or
//! octet-counted over TCP (RFC 6587).
//!
//! The store hands each batch (the raw lines of one read of a pipe) to a bounded queue
//! ([`QUEUE`] batches) without waiting: forwarding never slows a process, and the lines
//! of a batch that finds the queue full, or no receiver (TCP down: one connection attempt
//! a second at most), are counted as dropped (`mware_microservices_syslog_dropped_total`).
//! The forwarder builds the lines' records (the JSON level for the severity) on its own
//! task, only for the processes it forwards. The forwarder follows the running site
//! file: a changed `syslog` section applies at once, without a restart.

use crate::logstore::{Batch, LogLine};
use crate::section::{Microservices, SyslogConfig, Transport, FACILITIES};
use mware_config::Site;
use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

/// Batches waiting for the forwarder at most (each at most
/// [`crate::logstore::BATCH_BYTES`] of lines); past it, dropped and counted.
pub const QUEUE: usize = 32;
/// Longest message text sent (longer lines are cut on a character boundary).
pub const MAX_MSG: usize = 8000;
/// Longest wait for a TCP connection, and the pause after a failed one.
const RETRY: Duration = Duration::from_secs(1);

/// The forwarder's counters.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Messages sent.
    pub sent: Counter,
    /// Lines not forwarded: the queue full, no receiver, a send error.
    pub dropped: Counter,
}

/// The store's side of the forwarder: cheap to clone.
#[derive(Clone)]
pub struct Forward {
    tx: mpsc::Sender<Batch>,
    on: Arc<AtomicBool>,
    counters: Counters,
}

impl Forward {
    /// Offers a batch (a reference to its lines) to the forwarder when forwarding is on;
    /// never waits.
    pub fn offer(&self, batch: &Batch) {
        if self.on.load(Ordering::Relaxed) && self.tx.try_send(batch.clone()).is_err() {
            self.counters.dropped.inc_by(batch.count as u64);
        }
    }
}

/// Starts the forwarder of `instance`'s section (following `site`); call within a runtime.
pub fn start(instance: String, site: watch::Receiver<Arc<Site>>, counters: Counters) -> Forward {
    let (tx, rx) = mpsc::channel(QUEUE);
    let on = Arc::new(AtomicBool::new(false));
    tokio::spawn(run(rx, site, instance, on.clone(), counters.clone()));
    Forward { tx, on, counters }
}

fn current(site: &watch::Receiver<Arc<Site>>, instance: &str) -> Option<SyslogConfig> {
    site.borrow().instance(instance)?.role.section::<Microservices>()?.syslog
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

struct Sender {
    cfg: Option<SyslogConfig>,
    conn: Option<Conn>,
    retry_at: Instant,
    failing: bool,
    counters: Counters,
}

async fn run(
    mut rx: mpsc::Receiver<Batch>,
    mut site: watch::Receiver<Arc<Site>>,
    instance: String,
    on: Arc<AtomicBool>,
    counters: Counters,
) {
    let mut s = Sender { cfg: current(&site, &instance), conn: None, retry_at: Instant::now(), failing: false, counters };
    on.store(s.cfg.is_some(), Ordering::Relaxed);
    loop {
        tokio::select! {
            r = site.changed() => {
                if r.is_err() { return }
                let new = current(&site, &instance);
                if new != s.cfg {
                    tracing::info!(target_addr = ?new.as_ref().map(|c| &c.target), "site log: syslog forwarding changed; applied");
                    (s.cfg, s.conn, s.retry_at) = (new, None, Instant::now());
                    on.store(s.cfg.is_some(), Ordering::Relaxed);
                }
            }
            l = rx.recv() => {
                let Some(b) = l else { return };
                s.send(b).await;
            }
        }
    }
}

impl Sender {
    async fn send(&mut self, batch: Batch) {
        let Some(cfg) = self.cfg.clone() else { return };
        if !(cfg.processes.is_empty() || cfg.processes.iter().any(|p| **p == *batch.process)) {
            return;
        }
        let fac = FACILITIES.iter().position(|f| *f == cfg.facility).unwrap_or(16) as u32;
        let msgs: Vec<String> = batch.records().map(|l| format(&l, fac)).collect();
        if msgs.is_empty() {
            return;
        }
        let n = msgs.len() as u64;
        if self.conn.is_none() {
            if Instant::now() < self.retry_at {
                self.counters.dropped.inc_by(n);
                return;
            }
            match connect(&cfg).await {
                Ok(c) => self.conn = Some(c),
                Err(e) => return self.failed(&cfg, n, e),
            }
        }
        let result = match self.conn.as_mut() {
            Some(Conn::Udp(u)) => {
                let mut sent = 0;
                for m in &msgs {
                    if u.send(m.as_bytes()).await.is_ok() {
                        sent += 1;
                    }
                }
                self.counters.dropped.inc_by(n - sent);
                self.counters.sent.inc_by(sent);
                Ok(())
            }
            Some(Conn::Tcp(t)) => {
                let mut buf = Vec::with_capacity(msgs.iter().map(|m| m.len() + 8).sum());
                for m in &msgs {
                    buf.extend_from_slice(format!("{} ", m.len()).as_bytes());
                    buf.extend_from_slice(m.as_bytes());
                }
                let r = t.write_all(&buf).await.map_err(|e| format!("write: {e}"));
                if r.is_ok() {
                    self.counters.sent.inc_by(n);
                }
                r
            }
            None => Ok(()),
        };
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(target_addr = %cfg.target, "site log: the syslog receiver takes messages again");
            }
            Ok(()) => {}
            Err(e) => {
                self.conn = None;
                self.failed(&cfg, n, e);
            }
        }
    }

    fn failed(&mut self, cfg: &SyslogConfig, n: u64, e: String) {
        self.counters.dropped.inc_by(n);
        self.retry_at = Instant::now() + RETRY;
        if !self.failing {
            self.failing = true;
            tracing::warn!(target_addr = %cfg.target, error = %e, "site log: cannot forward to the syslog receiver; lines are dropped and counted until it answers");
        }
    }
}

async fn connect(cfg: &SyslogConfig) -> Result<Conn, String> {
    let addr = tokio::net::lookup_host(&cfg.target)
        .await
        .map_err(|e| format!("resolve {}: {e}", cfg.target))?
        .next()
        .ok_or_else(|| format!("resolve {}: no address", cfg.target))?;
    match cfg.transport {
        Transport::Udp => {
            let local = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let s = UdpSocket::bind(local).await.map_err(|e| format!("bind: {e}"))?;
            s.connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
            Ok(Conn::Udp(s))
        }
        Transport::Tcp => match tokio::time::timeout(RETRY, TcpStream::connect(addr)).await {
            Ok(Ok(t)) => Ok(Conn::Tcp(t)),
            Ok(Err(e)) => Err(format!("connect {addr}: {e}")),
            Err(_) => Err(format!("connect {addr}: no answer within {} ms", RETRY.as_millis())),
        },
    }
}

/// The severity of a line: its JSON `level` when it names one, else `info` (6) for
/// stdout and `warning` (4) for stderr.
pub fn severity(l: &LogLine) -> u32 {
    let by_level = l.level.as_deref().and_then(|v| {
        Some(match v {
            "emerg" | "emergency" | "panic" => 0,
            "alert" => 1,
            "crit" | "critical" | "fatal" => 2,
            "err" | "error" => 3,
            "warn" | "warning" => 4,
            "notice" => 5,
            "info" | "information" => 6,
            "debug" | "trace" => 7,
            _ => return None,
        })
    });
    by_level.unwrap_or(if l.stream == "stderr" { 4 } else { 6 })
}

/// A header field of RFC 5424: printable US-ASCII only, at most `max` characters, `-`
/// when empty.
fn field(s: &str, max: usize) -> String {
    let f: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if f.is_empty() {
        "-".into()
    } else {
        f
    }
}

/// The RFC 5424 message of a line: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID - MSG`.
pub fn format(l: &LogLine, facility: u32) -> String {
    let ts = chrono::DateTime::from_timestamp_millis(l.ts_ms as i64).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let mut msg = l.line.as_str();
    if msg.len() > MAX_MSG {
        let mut cut = MAX_MSG;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg = &msg[..cut];
    }
    format!(
        "<{}>1 {ts} {} {} - {} - {msg}",
        facility * 8 + severity(l),
        field(&l.instance, 255),
        field(&l.process, 48),
        field(&l.stream, 32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_rfc5424_with_the_level_as_severity() {
        let mut l = LogLine::new("m10", "act", "stdout", r#"{"level":"error","msg":"boom"}"#.into());
        l.ts_ms = 1_765_000_000_123;
        assert_eq!(format(&l, 16), r#"<131>1 2025-12-06T05:46:40.123Z m10 act - stdout - {"level":"error","msg":"boom"}"#);
        let e = LogLine::new("m 1", "", "stderr", "plain".into());
        assert!(format(&e, 1).starts_with("<12>1 ") && format(&e, 1).contains(" m1 - - stderr - plain"), "{}", format(&e, 1));
        let long = LogLine::new("m", "p", "stdout", "é".repeat(MAX_MSG));
        assert!(format(&long, 16).len() < MAX_MSG + 100);
    }
}
