//! Calls placed by the engine through a real Kamailio to SIPp phones (RFC 3725 flow I):
//! connected and hung up, each failure of a leg with its reason, hold, resume and DTMF
//! seen at the phone, digest authentication towards the proxy, session refreshes and a
//! leg lost to one.

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
    alice.wait_for("ACK", Duration::from_secs(5)).unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_ends_the_call_with_486_and_b_is_never_called() {
    let rig = Rig::new(&[]).await;
    let mut alice = rig.phone("uas_busy.xml", "alice", &["-m", "1"]);
    let bob = rig.phone("uas_answer.xml", "bob", &["-m", "1"]);
    let eng = rig.engine(None).await;
    let h = start(&eng, spec("c2", "alice", "bob", 10));
    let v = wait_state(&h, CallState::Ended, 10).await;
    assert_eq!(v.ended.as_deref(), Some("from failed: 486 Busy Here"));
    assert_eq!(v.legs[0].code, Some(486));
    assert_eq!(v.legs[1].state, LegState::Idle);
    assert_eq!(alice.wait_exit(Duration::from_secs(5)), Some(0), "alice got the ACK of her 486");
    assert!(bob.messages().is_empty(), "bob was never called: {:?}", bob.messages());
    assert_eq!(rig.stored().await, 0);
    assert_eq!(eng.ua.watched(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_answering_is_cancelled_at_the_answer_timeout() {
    let rig = Rig::new(&[]).await;
    let mut alice = rig.phone("uas_noanswer.xml", "alice", &["-m", "1"]);
    let eng = rig.engine(None).await;
    let h = start(&eng, spec("c3", "alice", "bob", 2));
    wait_state(&h, CallState::Ringing, 5).await;
    let v = wait_state(&h, CallState::Ended, 10).await;
    assert_eq!(v.ended.as_deref(), Some("no answer from from within 2 s"));
    assert_eq!(v.legs[0].code, Some(487));
    let m = alice.messages();
    assert_eq!(count(&m, "< CANCEL"), 1, "{m:#?}");
    assert_eq!(alice.wait_exit(Duration::from_secs(5)), Some(0), "alice's scenario (CANCEL, 487, ACK) completed: {m:#?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rig.kam.transactions().unwrap() != 0 {
        assert!(std::time::Instant::now() < deadline, "transactions left in Kamailio");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_declining_ends_a_with_ack_and_bye() {
    let rig = Rig::new(&[]).await;
    let mut alice = rig.phone("uas_answer.xml", "alice", &["-m", "1"]);
    let mut bob = rig.phone("uas_decline.xml", "bob", &["-m", "1"]);
    let eng = rig.engine(None).await;
    let h = start(&eng, spec("c4", "alice", "bob", 10));
    let v = wait_state(&h, CallState::Ended, 10).await;
    assert_eq!(v.ended.as_deref(), Some("to failed: 603 Decline"));
    assert_eq!(v.legs[1].code, Some(603));
    alice.wait_for("BYE", Duration::from_secs(5)).unwrap();
    // mware sends the ACK before the BYE, but Kamailio's UDP workers may forward the BYE
    // first: the ACK is waited for too.
    alice.wait_for("ACK", Duration::from_secs(5)).unwrap();
    let a = alice.trace_text();
    let ack = a.split("ACK sip:").nth(1).expect("ACK to alice");
    assert!(ack.contains("m=audio 0 "), "alice's offer is refused in the ACK: {ack}");
    assert_eq!(alice.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(bob.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(rig.stored().await, 0);
    assert_eq!(eng.ua.watched(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_hanging_up_ends_the_other_leg() {
    let rig = Rig::new(&[]).await;
    let mut alice = rig.phone("uas_answer.xml", "alice", &["-m", "1"]);
    let mut bob = rig.phone("uas_hangup.xml", "bob", &["-d", "500", "-m", "1"]);
    let eng = rig.engine(None).await;
    let h = start(&eng, spec("c5", "alice", "bob", 10));
    let v = wait_state(&h, CallState::Ended, 15).await;
    assert_eq!(v.ended.as_deref(), Some("hung up by to"));
    alice.wait_for("BYE", Duration::from_secs(5)).unwrap();
    assert_eq!(bob.wait_exit(Duration::from_secs(10)), Some(0), "bob's BYE was answered 200: {:#?}", bob.messages());
    assert_eq!(alice.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(rig.stored().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_resume_and_dtmf_are_seen_at_the_phone() {
    let rig = Rig::new(&[]).await;
    let _alice = rig.phone("uas_answer.xml", "alice", &["-m", "1"]);
    let bob = rig.phone("uas_answer.xml", "bob", &["-m", "1"]);
    let eng = rig.engine(None).await;
    let h = start(&eng, spec("c6", "alice", "bob", 10));
    wait_state(&h, CallState::Connected, 15).await;
    h.send(Command::Hold).await.unwrap();
    assert!(h.get().held);
    h.send(Command::Dtmf("1#".into())).await.unwrap();
    h.send(Command::Resume).await.unwrap();
    assert!(!h.get().held);
    let b = bob.trace_text();
    let reinvites: Vec<&str> = b.split("INVITE sip:").skip(2).collect();
    assert_eq!(reinvites.len(), 2, "two re-INVITEs: {b}");
    assert!(reinvites[0].contains("a=sendonly"), "{}", reinvites[0]);
    assert!(reinvites[1].contains("a=sendrecv"), "{}", reinvites[1]);
    assert!(b.contains("Signal=1") && b.contains("Signal=#") && b.contains("application/dtmf-relay"), "{b}");
    // The last ACK leaves after the 200 that ended `Resume`: give it time to arrive.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut m = bob.messages();
    while count(&m, "< ACK") < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        m = bob.messages();
    }
    assert_eq!(count(&m, "< INFO"), 2, "{m:#?}");
    assert_eq!(count(&m, "< ACK"), 3, "ACK of the INVITE and of both re-INVITEs: {m:#?}");
    // The stored dialog follows the CSeq: the last re-INVITE's number is the stored one.
    let rows = rig.coord.kv_list(GROUP, mware_callmanager::store::PREFIX).await.unwrap();
    let stored: mware_callmanager::store::StoredCall = serde_json::from_slice(&rows[0].1.value).unwrap();
    let last = reinvites[1].split("CSeq: ").nth(1).and_then(|x| x.split(' ').next()).unwrap();
    assert_eq!(stored.b.cseq.to_string(), last);
    h.send(Command::HangUp("the test".into())).await.unwrap();
    wait_state(&h, CallState::Ended, 5).await;
    bob.wait_for("BYE", Duration::from_secs(5)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_auth_towards_the_proxy_right_and_wrong_password() {
    let rig = Rig::new(&["WITH_AUTH", "AUTH_PASSWORD=\"s3cret\""]).await;
    let _alice = rig.phone("uas_answer.xml", "alice", &["-m", "2"]);
    let _bob = rig.phone("uas_answer.xml", "bob", &["-m", "2"]);
    let good = rig.engine(Some(("mware", "s3cret"))).await;
    let h = start(&good, spec("c7", "alice", "bob", 10));
    wait_state(&h, CallState::Connected, 15).await;
    h.send(Command::HangUp("the test".into())).await.unwrap();
    wait_state(&h, CallState::Ended, 5).await;

    let bad = rig.engine(Some(("mware", "wrong"))).await;
    let h = start(&bad, spec("c8", "alice", "bob", 10));
    let v = wait_state(&h, CallState::Ended, 10).await;
    assert_eq!(v.legs[0].code, Some(407), "{v:#?}");
    assert!(v.ended.as_deref().unwrap().starts_with("from failed: 407"), "{v:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_refreshes_reach_both_phones_and_a_lost_leg_ends_the_call() {
    let rig = Rig::new(&[]).await;
    let alice = rig.phone("uas_answer.xml", "alice", &["-m", "1"]);
    let mut bob = rig.phone("uas_lost.xml", "bob", &["-m", "1"]);
    let eng = rig.engine_with(None, 2).await;
    let h = start(&eng, spec("c9", "alice", "bob", 10));
    wait_state(&h, CallState::Connected, 15).await;
    let first = alice.trace_text();
    assert!(first.contains("Session-Expires: 2;refresher=uac"), "the INVITE asks for the session timer: {first}");
    // The refresh after a second: alice answers it, bob has lost the call (481).
    let v = wait_state(&h, CallState::Ended, 10).await;
    assert_eq!(v.ended.as_deref(), Some("to lost: 481 Call/Transaction Does Not Exist to a session refresh"), "{v:#?}");
    alice.wait_for("BYE", Duration::from_secs(5)).unwrap();
    let m = alice.messages();
    assert_eq!(count(&m, "< INVITE"), 2, "alice got the INVITE and one refresh: {m:#?}");
    assert_eq!(bob.wait_exit(Duration::from_secs(10)), Some(0), "{:#?}", bob.messages());
    assert_eq!(rig.stored().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_connects_from_with_a_new_party_and_ends_the_old_one() {
    let rig = Rig::new(&[]).await;
    let mut alice = rig.phone("uas_answer.xml", "alice", &["-m", "1"]);
    let mut bob = rig.phone("uas_answer.xml", "bob", &["-m", "1"]);
    let mut carol = rig.phone("uas_answer.xml", "carol", &["-m", "1"]);
    let eng = rig.engine(None).await;
    let h = start(&eng, spec("c10", "alice", "bob", 10));
    wait_state(&h, CallState::Connected, 15).await;
    let done = h.send(Command::Transfer("sip:carol@example.test".into())).await.unwrap();
    assert_eq!(done, "from is now connected with sip:carol@example.test");
    assert_eq!(bob.wait_exit(Duration::from_secs(10)), Some(0), "bob got a BYE: {:#?}", bob.messages());
    let v = h.get();
    assert_eq!(v.legs[1].party, "sip:carol@example.test");
    assert_eq!(v.state, CallState::Connected);
    // Carol was invited without SDP; her offer reached alice in a re-INVITE, and alice's
    // answer reached carol in the ACK.
    carol.wait_for("ACK", Duration::from_secs(5)).unwrap();
    let c = carol.trace_text();
    let ack = c.split("ACK sip:").nth(1).expect("ACK to carol");
    assert!(ack.contains("m=audio"), "{ack}");
    let a = alice.messages();
    assert_eq!(count(&a, "< INVITE"), 2, "{a:#?}");
    h.send(Command::HangUp("the test".into())).await.unwrap();
    wait_state(&h, CallState::Ended, 5).await;
    assert_eq!(alice.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(carol.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(rig.stored().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_tcp_towards_the_proxy() {
    let rig = Rig::new(&[]).await;
    let mut alice = rig.phone("uas_answer.xml", "alice", &["-m", "1"]);
    let mut bob = rig.phone("uas_answer.xml", "bob", &["-m", "1"]);
    let eng = rig.engine_on(None, 0, mware_callmanager::section::SipTransport::Tcp).await;
    let h = start(&eng, spec("c11", "alice", "bob", 10));
    wait_state(&h, CallState::Connected, 15).await;
    h.send(Command::HangUp("the test".into())).await.unwrap();
    wait_state(&h, CallState::Ended, 5).await;
    assert_eq!(alice.wait_exit(Duration::from_secs(10)), Some(0), "{:#?}", alice.messages());
    assert_eq!(bob.wait_exit(Duration::from_secs(10)), Some(0), "{:#?}", bob.messages());
    let a = alice.trace_text();
    assert!(a.contains("Via: SIP/2.0/TCP 127.0.0.1:"), "mware's requests left on TCP: {a}");
}
