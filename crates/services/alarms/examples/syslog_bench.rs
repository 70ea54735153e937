//! Benchmark driver for syslog in → SNMP traps out (`bench/alarms.sh` runs it against
//! mware and against rsyslog's omsnmp). For each rate it sends RFC 3164 messages over
//! UDP for `--secs` seconds, paced every millisecond, then waits for the traps to drain;
//! the manager is a plain UDP socket with a large receive buffer, drained every
//! millisecond, that counts datagrams (snmptrapd saturates first on this machine) and reads each trap's send time from the
//! message text it carries (`bench seq=N t=NANOS`), giving the receive-to-trap latency.
//!
//! `syslog_bench --target 127.0.0.1:5514 --manager 127.0.0.1:16299 --rates 5000,10000 --secs 5`
//! prints one line per rate: `rate sent received lost p50_ms p99_ms`.

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
    let lat = Arc::new(Mutex::new(Vec::<u64>::with_capacity(1 << 20)));
    let stop = Arc::new(AtomicBool::new(false));
    let (r2, l2, s2) = (received.clone(), lat.clone(), stop.clone());
    let counter = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while !s2.load(Ordering::Relaxed) {
            match rx.recv(&mut buf) {
                Ok(n) => {
                    r2.fetch_add(1, Ordering::Relaxed);
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
    println!("rate sent received lost p50_ms p99_ms");
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
        println!("{rate} {sent} {got} {} {:.2} {:.2}", sent.saturating_sub(got), pct(0.5), pct(0.99));
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = counter.join();
}
