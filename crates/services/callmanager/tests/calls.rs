//! Calls placed by the engine through a real Kamailio to SIPp phones (RFC 3725 flow I):
//! connected and hung up, each failure of a leg with its reason, hold, resume and DTMF
//! seen at the phone, digest authentication towards the proxy.

mod common;

use common::*;
use mware_callmanager::call::Command;
use mware_callmanager::decide::{CallState, LegState};
use std::time::Duration;

fn count(msgs: &[String], prefix: &str) -> usize {
    msgs.iter().filter(|m| m.starts_with(prefix)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_connects_both_phones_and_delete_sends_a_bye_on_each_leg() {
    let rig = Rig::new(&[]).await;
    let mut alice = rig.phone("uas_answer.xml", "alice", &["-d", "300", "-m", "1"]);
    let mut bob = rig.phone("uas_answer.xml", "bob", &["-d", "200", "-m", "1"]);
    let eng = rig.engine(None).await;
    let h = start(&eng, spec("c1", "alice", "bob", 10));
    let v = wait_state(&h, CallState::Connected, 15).await;
    assert_eq!(v.legs[0].state, LegState::Connected);
    assert_eq!(v.legs[1].code, Some(200));
    assert_eq!(rig.stored().await, 1, "a connected call is in the coordinator");
    assert_eq!(eng.ua.watched(), 2);

    // Flow I at the phones: A's INVITE has no SDP and its ACK carries B's answer; B's
    // INVITE carries A's offer.
    let a = alice.trace_text();
    let invite_a = a.split("INVITE sip:alice").nth(1).expect("INVITE to alice");
    assert!(invite_a.split("\n\n").next().unwrap().contains("Content-Length: 0"), "{invite_a}");
    let ack_a = a.split("ACK sip:").nth(1).expect("ACK to alice");
    assert!(ack_a.contains("application/sdp") && ack_a.contains("m=audio"), "ACK to alice carries the answer: {ack_a}");
    let b = bob.trace_text();
    let invite_b = b.split("INVITE sip:bob").nth(1).expect("INVITE to bob");
    assert!(invite_b.contains("m=audio"), "{invite_b}");

    h.send(Command::HangUp("the test".into())).await.unwrap();
    let v = wait_state(&h, CallState::Ended, 5).await;
    assert_eq!(v.ended.as_deref(), Some("hung up by the test"));
    alice.wait_for("BYE", Duration::from_secs(5)).unwrap();
    bob.wait_for("BYE", Duration::from_secs(5)).unwrap();
    for (p, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let m = p.messages();
        assert_eq!(count(&m, "< INVITE"), 1, "{name}: {m:#?}");
        assert_eq!(count(&m, "> SIP/2.0 200"), 2, "{name}: 200 to INVITE and BYE: {m:#?}");
        assert_eq!(count(&m, "< ACK"), 1, "{name}: {m:#?}");
        assert_eq!(count(&m, "< BYE"), 1, "{name}: {m:#?}");
        assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0), "{name}'s SIPp ended its call successfully");
    }
    assert_eq!(rig.stored().await, 0, "nothing left in the coordinator");
    assert_eq!(eng.ua.watched(), 0, "nothing left in the user agent");
}
