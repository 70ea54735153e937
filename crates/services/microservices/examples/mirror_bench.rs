//! Benchmark of the UDP mirror: `serve PORT` runs the mware mirror alone on
//! 127.0.0.1:PORT (rate limits at their maximum, one runtime thread) until killed;
//! `client PORT SECONDS SIZE WINDOW` is the one client used against every echo peer: it
//! keeps WINDOW datagrams of SIZE bytes in flight (one more sent for each one back,
//! the window sent again after 20 ms of silence), counts the bytes echoed, and prints
//! one JSON object: datagrams sent, datagrams echoed (bytes / SIZE, so a peer that
//! merges datagrams is counted fairly) and echoed per second.
//! `bench/microservices.sh` runs it against socat and reads each server's CPU from /proc.
//!
//! `cargo run --release -p mware-microservices --example mirror_bench -- serve 40000`

use mware_microservices::metrics::Metrics;
use mware_microservices::mirror::bind;
use mware_microservices::MirrorConfig;
use prometheus_client::registry::Registry;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn serve(port: u16) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let cfg = MirrorConfig { ports: vec![port], per_source_pps: 1_000_000, global_pps: 10_000_000, allowed_networks: vec![] };
        let (_guard, addrs) = bind([127, 0, 0, 1].into(), &cfg, Metrics::new(&mut Registry::default())).await.expect("bind");
        eprintln!("mirror on {addrs:?}");
        std::future::pending::<()>().await;
    });
}

fn client(port: u16, secs: u64, size: usize, window: usize) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let msg = vec![0x5au8; size];
    let mut buf = vec![0u8; 65_536];
    let (mut sent, mut bytes) = (0u64, 0u64);
    let end = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let burst = |sent: &mut u64| {
        for _ in 0..window {
            if s.send(&msg).is_ok() {
                *sent += 1;
            }
        }
    };
    burst(&mut sent);
    while Instant::now() < end {
        match s.recv(&mut buf) {
            Ok(n) => {
                bytes += n as u64;
                for _ in 0..(n / size).max(1) {
                    if s.send(&msg).is_ok() {
                        sent += 1;
                    }
                }
            }
            Err(_) => burst(&mut sent),
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let echoed = bytes / size as u64;
    println!("{}", serde_json::json!({"sent": sent, "echoed": echoed, "seconds": wall, "echoed_per_s": echoed as f64 / wall}));
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let num = |i: usize| a.get(i).and_then(|v| v.parse::<u64>().ok()).expect("usage: serve PORT | client PORT SECONDS SIZE WINDOW");
    match a.get(1).map(String::as_str) {
        Some("serve") => serve(num(2) as u16),
        Some("client") => client(num(2) as u16, num(3), num(4) as usize, num(5) as usize),
        _ => panic!("usage: serve PORT | client PORT SECONDS SIZE WINDOW"),
    }
}
