//! The registrar adapter and the OPTIONS ping against a real Kamailio 5.6
//! (`examples/kamailio/kamailio.cfg`), started on loopback ports of its own.

use mware_sip::options::{ping, PingError};
use mware_sip::Registrar;
use mware_testkit::sip::Kamailio;
use std::path::PathBuf;
use std::time::Duration;

fn cfg() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/kamailio/kamailio.cfg")
}

#[tokio::test]
async fn permanent_contacts_are_added_listed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let kam = Kamailio::start(&cfg(), dir.path(), &[]).expect("kamailio");
    let reg = Registrar::new(&kam.rpc_url()).unwrap();
    assert!(reg.lookup("gw1@example.test").await.unwrap().is_empty());
    reg.add("gw1@example.test", "sip:gw1@127.0.0.1:5999", "").await.unwrap();
    reg.add("gw1@example.test", "sip:gw1@127.0.0.1:5998", "<sip:127.0.0.1:5070;lr>").await.unwrap();
    let b = reg.lookup("gw1@example.test").await.unwrap();
    assert_eq!(b.len(), 2, "{b:?}");
    let d = reg.dump().await.unwrap();
    let via_sg: Vec<_> = d.iter().filter(|b| b.path.as_deref().is_some_and(|p| p.contains("127.0.0.1:5070"))).collect();
    assert_eq!(via_sg.len(), 1, "{d:?}");
    assert_eq!(via_sg[0].contact, "sip:gw1@127.0.0.1:5998");
    assert!(d.iter().all(|b| b.expires_s.is_none()), "permanent: {d:?}");
    assert!(reg.rm_contact("gw1@example.test", "sip:gw1@127.0.0.1:5998").await.unwrap());
    assert!(!reg.rm_contact("gw1@example.test", "sip:gw1@127.0.0.1:5998").await.unwrap(), "gone already");
    assert_eq!(reg.lookup("gw1@example.test").await.unwrap().len(), 1);
    assert!(reg.rm("gw1@example.test").await.unwrap());
    // Kamailio 5.6 answers ul.rm of an AoR it does not have with success.
    reg.rm("gw1@example.test").await.unwrap();
    assert!(reg.dump().await.unwrap().is_empty());
}

#[tokio::test]
async fn options_to_kamailio_is_answered_and_a_stopped_one_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let kam = Kamailio::start(&cfg(), dir.path(), &[]).expect("kamailio");
    let addr = format!("127.0.0.1:{}", kam.sip_port).parse().unwrap();
    let a = ping(addr, &kam.uri(), Duration::from_secs(2)).await.expect("answer");
    assert_eq!(a.code, 200, "{a:?}");
    drop(kam);
    let r = ping(addr, "sip:127.0.0.1", Duration::from_millis(800)).await;
    assert!(matches!(r, Err(PingError::Io { .. }) | Err(PingError::Timeout(800))), "{r:?}");
}
