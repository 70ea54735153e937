//! End-to-end with real softphones: two baresip phones (registered with a real Kamailio,
//! answering at once, each sending a tone of its own) are connected by a call placed
//! through the API of the active `mware run`. RTP flows between the phones and never
//! through mware: each phone's own summary counts packets both ways, from the other
//! phone's RTP port, and each heard the other's tone. A kill -9 of the active instance
//! while they talk does not interrupt the media, and the next instance's DELETE ends the
//! call at both phones.

mod common;

use common::calls::*;
use mware_testkit::baresip::Baresip;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn rtp_flows_between_baresip_phones_directly_and_survives_kill9_of_the_active_instance() {
    let mut s = site(json!({}));
    let alice = Baresip::start(s.dir.path(), "alice", DOMAIN, s.kam.sip_port, 440).unwrap();
    let bob = Baresip::start(s.dir.path(), "bob", DOMAIN, s.kam.sip_port, 880).unwrap();
    let body = json!({"domain": DOMAIN, "from": format!("sip:alice@{DOMAIN}"), "to": format!("sip:bob@{DOMAIN}")});
    let (code, v, _) = request(reqwest::Method::POST, &format!("{}/api/callmanager/v1/calls", s.ds[0].api), Some(TOKEN), Some(&body));
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    wait_call(&s.ds[0], &id, "connected", 15);
    let up = Instant::now();
    alice.wait_log("Call established", Duration::from_secs(5)).unwrap();
    bob.wait_log("Call established", Duration::from_secs(5)).unwrap();
    std::thread::sleep(Duration::from_secs(2));

    s.ds[0].child.kill9();
    s.ds[1].wait_status(Duration::from_secs(20), running);
    std::thread::sleep(Duration::from_secs(3)); // the phones talk on without the controller
    let (code, v, _) = request(reqwest::Method::DELETE, &format!("{}/api/callmanager/v1/calls/{id}", s.ds[1].api), Some(TOKEN), None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "ended", "{v}");
    let talked = up.elapsed().as_secs_f64();

    let a = alice.wait_summary(1, Duration::from_secs(10)).unwrap();
    let b = bob.wait_summary(1, Duration::from_secs(10)).unwrap();
    eprintln!("talked {talked:.1} s: alice {a:?}, bob {b:?}");
    // 20 ms packets: 50 a second each way, for the whole call, through the failover
    // (allowing the first second of set-up and 10% of scheduling on a loaded machine).
    let least = ((talked - 1.0) * 50.0 * 0.9) as u64;
    for (who, sum) in [("alice", &a), ("bob", &b)] {
        assert!(sum.received >= least && sum.sent >= least, "{who} sent and received at least {least} packets: {sum:?}");
    }
    // Each phone's packets came from the other phone's RTP port: mware carries no media.
    let port = |r: &str| r.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
    assert!((bob.rtp_ports.0..=bob.rtp_ports.1).contains(&port(&a.remote)), "alice heard bob's port: {a:?} {:?}", bob.rtp_ports);
    assert!((alice.rtp_ports.0..=alice.rtp_ports.1).contains(&port(&b.remote)), "bob heard alice's port: {b:?} {:?}", alice.rtp_ports);
    // And what they heard was the other's tone.
    let near = |hz: Option<f64>, want: f64| hz.is_some_and(|h| (h - want).abs() < 30.0);
    assert!(near(alice.heard_hz(), 880.0), "alice heard {:?} Hz", alice.heard_hz());
    assert!(near(bob.heard_hz(), 440.0), "bob heard {:?} Hz", bob.heard_hz());
}
