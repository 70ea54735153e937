//! Benchmark driver for syslog in → SNMP traps out (`bench/alarms.sh` runs it against
//! mware and against rsyslog's omsnmp). For each rate it sends RFC 3164 messages over
//! UDP for `--secs` seconds, paced every millisecond, then waits for the traps to drain;
//! the manager is a plain UDP socket with a large receive buffer, drained every
//! millisecond, that counts datagrams (snmptrapd saturates first on this machine) and reads each trap's send time from the
//! message text it carries (`bench seq=N t=NANOS`), giving the receive-to-trap latency.
//!
//! `syslog_bench --target 127.0.0.1:5514 --manager 127.0.0.1:16299 --rates 5000,10000 --secs 5`
//! prints one line per rate: `rate sent received lost p50_ms p99_ms sampled bad`: one
//! trap in 1000 is decoded with async-snmp and checked (a v2c trap of `mwareAlarm` whose
//! message varbind is the bench message); `bad` counts those that were not.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Every this many traps one is decoded (async-snmp) and checked.
const SAMPLE: u64 = 1000;

/// Whether a trap is a v2c trap of `mwareAlarm` whose message varbind carries a bench
/// message.
fn trap_ok(d: &[u8]) -> bool {
    use async_snmp::message::CommunityMessage;
    let Ok(m) = CommunityMessage::decode(bytes::Bytes::copy_from_slice(d)) else { return false };
    let Some(pdu) = m.into_pdu() else { return false };
    let alarm = async_snmp::Oid::new(mware_alarms::MIB_BASE.iter().copied().chain([0, 1]));
    pdu.pdu_type == async_snmp::PduType::TrapV2
        && pdu.varbinds.get(1).is_some_and(|v| v.value == async_snmp::Value::ObjectIdentifier(alarm))
        && pdu.varbinds.iter().any(|v| v.value.as_bytes().is_some_and(|b| b.windows(10).any(|w| w == b"bench seq=")))
}

/// The send time carried in a trap: the digits after `t=`.
fn sent_at(d: &[u8]) -> Option<u64> {
    let i = d.windows(2).position(|w| w == b"t=")? + 2;
    // 19 digits: nanoseconds since 1970 (a BER tag after the text may be a digit too).
    let digits: Vec<u8> = d[i..].iter().take(19).take_while(|b| b.is_ascii_digit()).copied().collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn main() {
    let target = arg("--target", "127.0.0.1:5514");
    let manager = arg("--manager", "127.0.0.1:16299");
    let secs: u64 = arg("--secs", "5").parse().unwrap();
    let rates: Vec<u64> = arg("--rates", "5000,10000,20000").split(',').map(|r| r.parse().unwrap()).collect();
    let drain = Duration::from_millis(arg("--drain-ms", "3000").parse().unwrap());

    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    sock.set_recv_buffer_size(64 << 20).unwrap();
    sock.bind(&manager.parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    let rx: UdpSocket = sock.into();
    // The counter drains the socket, then sleeps a millisecond: no thread waits on the
    // socket, so a trap's sender pays no wake-up per datagram (the buffer holds far more
    // than a millisecond of traps). Both sides are counted the same way.
    rx.set_nonblocking(true).unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let (checked, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (c2, b2) = (checked.clone(), bad.clone());
    let lat = Arc::new(Mutex::new(Vec::<u64>::with_capacity(1 << 20)));
    let stop = Arc::new(AtomicBool::new(false));
    let (r2, l2, s2) = (received.clone(), lat.clone(), stop.clone());
    let counter = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while !s2.load(Ordering::Relaxed) {
            match rx.recv(&mut buf) {
                Ok(n) => {
                    if r2.fetch_add(1, Ordering::Relaxed) % SAMPLE == 0 {
                        c2.fetch_add(1, Ordering::Relaxed);
                        if !trap_ok(&buf[..n]) {
                            b2.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if let Some(t) = sent_at(&buf[..n]) {
                        l2.lock().unwrap().push(now_ns().saturating_sub(t));
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    });

    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sbuf = socket2::SockRef::from(&tx);
    let _ = sbuf.set_send_buffer_size(16 << 20);
    let mut seq = 0u64;
    println!("rate sent received lost p50_ms p99_ms sampled bad");
    for rate in rates {
        received.store(0, Ordering::Relaxed);
        lat.lock().unwrap().clear();
        let start = Instant::now();
        let total = rate * secs;
        let mut sent = 0u64;
        while sent < total {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            while sent < due.min(total) {
                let msg = format!("<131>Dec  2 10:00:00 dev1 bench: bench seq={seq} t={}", now_ns());
                if tx.send_to(msg.as_bytes(), &target).is_ok() {
                    sent += 1;
                }
                seq += 1;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        // Drain: until nothing more arrives for a while, at most `drain`.
        let deadline = Instant::now() + drain;
        let mut last = received.load(Ordering::Relaxed);
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = received.load(Ordering::Relaxed);
            if (now == last && now >= sent) || Instant::now() > deadline {
                break;
            }
            last = now;
        }
        let got = received.load(Ordering::Relaxed);
        let mut l = lat.lock().unwrap().clone();
        l.sort_unstable();
        let pct = |p: f64| if l.is_empty() { f64::NAN } else { l[((l.len() - 1) as f64 * p) as usize] as f64 / 1e6 };
        let (c, b) = (checked.swap(0, Ordering::Relaxed), bad.swap(0, Ordering::Relaxed));
        println!("{rate} {sent} {got} {} {:.2} {:.2} {c} {b}", sent.saturating_sub(got), pct(0.5), pct(0.99));
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = counter.join();
}
