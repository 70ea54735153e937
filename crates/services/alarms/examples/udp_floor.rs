//! What one loopback UDP datagram costs this machine's kernel, the floor under any
//! syslog → trap forwarder measured by `bench/alarms.sh`: every message is one datagram
//! sent by the load generator, received by the forwarder, one trap sent by the
//! forwarder and received by the counting manager. It sends `--n` datagrams of
//! `--bytes` at about `--rate` per second to a receiver that drains its socket every
//! millisecond (as the bench's manager does) and prints the CPU time per datagram of
//! the sending and of the receiving thread.
//!
//! `cargo run --release -p mware-alarms --example udp_floor -- --n 300000 --rate 100000`

use nix::time::{clock_gettime, ClockId};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

/// CPU time of the calling thread, seconds.
fn cpu() -> f64 {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9
}

fn main() {
    let n: u64 = arg("--n", "300000").parse().expect("--n");
    let rate: u64 = arg("--rate", "100000").parse().expect("--rate");
    let bytes: usize = arg("--bytes", "300").parse().expect("--bytes");
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    rx.set_nonblocking(true).expect("non-blocking");
    // As large as the bench's manager asks (the kernel caps it at net.core.rmem_max).
    let _ = socket2::SockRef::from(&rx).set_recv_buffer_size(64 << 20);
    let to = rx.local_addr().expect("address");
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        let (mut got, mut busy) = (0u64, 0.0);
        let start = Instant::now();
        while got < n && start.elapsed() < Duration::from_secs(60) {
            let c0 = cpu();
            let mut k = 0;
            while rx.recv(&mut buf).is_ok() {
                k += 1;
            }
            if k > 0 {
                busy += cpu() - c0;
                got += k;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        (got, busy)
    });
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let msg = vec![b'x'; bytes];
    let (start, c0) = (Instant::now(), cpu());
    let mut sent = 0u64;
    let mut slept = 0.0;
    while sent < n {
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(n);
        while sent < due {
            if tx.send_to(&msg, to).is_ok() {
                sent += 1;
            }
        }
        let s0 = cpu();
        std::thread::sleep(Duration::from_micros(500));
        slept += cpu() - s0;
    }
    let send_cpu = cpu() - c0 - slept;
    let (got, recv_cpu) = receiver.join().expect("receiver");
    println!("datagrams {sent} sent, {got} received, {bytes} bytes, {rate}/s");
    println!("send: {:.2} us CPU per datagram", send_cpu * 1e6 / sent as f64);
    println!("recv: {:.2} us CPU per datagram", recv_cpu * 1e6 / got.max(1) as f64);
}
