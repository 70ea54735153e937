//! The UDP mirror on loopback: the client sees no loss at 1,000 datagrams a second, the
//! source port kept; a flood from one source gets at most the per-source rate back and
//! no answer is larger than its request; a reloaded section moves the mirror to its new
//! port without a restart.

use mware_microservices::metrics::Metrics;
use mware_microservices::mirror::{bind, test, HEADER, MAGIC};
use mware_microservices::MirrorConfig;
use prometheus_client::registry::Registry;
use std::time::{Duration, Instant};

fn cfg(per_source: u32, allowed: &[&str]) -> MirrorConfig {
    MirrorConfig {
        ports: vec![0],
        per_source_pps: per_source,
        global_pps: 100_000,
        allowed_networks: allowed.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_loss_at_1000_pps_and_the_source_port_kept() {
    let m = Metrics::new(&mut Registry::default());
    let (_guard, addrs) = bind("127.0.0.1".parse().unwrap(), &cfg(2000, &["127.0.0.0/8"]), m.clone()).await.unwrap();
    let r = test(addrs[0], 1000, Duration::from_secs(3), 64).await.unwrap();
    println!("{r:?}");
    assert_eq!(r.sent, 3000);
    assert_eq!(r.received, 3000, "{r:?}");
    assert_eq!(r.loss_pct, 0.0);
    assert_eq!(r.larger, 0);
    assert_eq!(r.source_port_kept, Some(true));
    assert_eq!(r.duplicates, 0);
    assert!(r.rtt_p50_ms > 0.0 && r.rtt_p99_ms >= r.rtt_p50_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_source_gets_at_most_its_rate_back_never_larger() {
    let m = Metrics::new(&mut Registry::default());
    let per_source = 100;
    let (_guard, addrs) = bind("127.0.0.1".parse().unwrap(), &cfg(per_source, &[]), m.clone()).await.unwrap();
    let sock = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    sock.connect(addrs[0]).await.unwrap();
    let reader = {
        let sock = sock.clone();
        tokio::spawn(async move {
            let (mut n, mut larger, mut buf) = (0u64, 0u64, vec![0u8; 65_536]);
            while let Ok(Ok(len)) = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf)).await {
                n += 1;
                // Requests alternate 20 and 1,000 bytes: an answer is the size of one of them.
                if len > 1000 || (len != HEADER && len != 1000) {
                    larger += 1;
                }
            }
            (n, larger)
        })
    };
    let t0 = Instant::now();
    let mut small = vec![0u8; HEADER];
    small[..4].copy_from_slice(MAGIC);
    let big = vec![7u8; 1000];
    let mut sent = 0u64;
    // 200,000 datagrams in about 5 s from one source.
    while sent < 200_000 {
        let d: &[u8] = if sent.is_multiple_of(2) { &small } else { &big };
        if sock.send(d).await.is_ok() {
            sent += 1;
        }
        if sent.is_multiple_of(4000) {
            let due = Duration::from_millis(sent / 40);
            if let Some(w) = due.checked_sub(t0.elapsed()) {
                tokio::time::sleep(w).await;
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let (answers, odd) = reader.await.unwrap();
    let bound = ((secs + 2.0) * per_source as f64) as u64 + per_source as u64;
    println!(
        "sent {sent} in {secs:.1} s; {answers} answers (bound {bound}); answered {} dropped {}",
        m.mirror_answered.get(),
        m.mirror_dropped.get()
    );
    assert!(answers <= bound, "{answers} answers past the per-source rate (bound {bound})");
    assert!(answers >= per_source as u64, "the mirror answered almost nothing: {answers}");
    assert_eq!(odd, 0, "an answer larger than or different in size from its request");
    // What the mirror read (the kernel drops the rest when its socket buffer is full)
    // and did not answer is counted as dropped.
    assert_eq!(m.mirror_answered.get(), answers);
    assert!(m.mirror_dropped.get() > 10 * bound, "the drops are counted: {}", m.mirror_dropped.get());
}

#[tokio::test]
async fn a_source_outside_the_allowed_networks_gets_nothing() {
    let m = Metrics::new(&mut Registry::default());
    let (_guard, addrs) = bind("127.0.0.1".parse().unwrap(), &cfg(100, &["10.0.0.0/8"]), m.clone()).await.unwrap();
    let r = test(addrs[0], 50, Duration::from_millis(400), 64).await.unwrap();
    assert_eq!(r.received, 0);
    assert_eq!(m.mirror_dropped.get(), r.sent);
}

fn site_with(mirror: serde_json::Value) -> std::sync::Arc<mware_config::Site> {
    let v = serde_json::json!({"site": "t", "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
        {"name": "m1", "roletype": "mware", "iface": "eth0", "group": 1, "order": 10, "microservices": {"udp_mirror": mirror}}]}]});
    std::sync::Arc::new(mware_config::validate(&v.to_string(), &mware_microservices::plugin().sections).expect("test site").site)
}

fn free_udp() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_section_moves_the_mirror_without_a_restart() {
    let (p1, p2) = (free_udp(), free_udp());
    let (tx, rx) = tokio::sync::watch::channel(site_with(serde_json::json!({"ports": [p1], "per_source_pps": 1000})));
    let cancel = tokio_util::sync::CancellationToken::new();
    let m = Metrics::new(&mut Registry::default());
    let task = mware_microservices::reload::mirror(rx, "m1".into(), m, cancel.clone()).await.unwrap();
    let at = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
    let r = test(at(p1), 200, Duration::from_millis(500), 64).await.unwrap();
    assert_eq!(r.received, r.sent, "{r:?}");

    tx.send(site_with(serde_json::json!({"ports": [p2], "per_source_pps": 1000}))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let moved = loop {
        let r = test(at(p2), 200, Duration::from_millis(300), 64).await.unwrap();
        if r.received == r.sent || Instant::now() > deadline {
            break r;
        }
    };
    assert_eq!(moved.received, moved.sent, "the mirror answers on its new port: {moved:?}");
    let old = test(at(p1), 200, Duration::from_millis(300), 64).await.unwrap();
    assert_eq!(old.received, 0, "the old port no longer answers: {old:?}");

    cancel.cancel();
    task.await.unwrap();
}
