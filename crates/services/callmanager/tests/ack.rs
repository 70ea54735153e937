//! A 2xx retransmitted after mware's ACK (the ACK lost on UDP) is ACKed again. The
//! called phone here is a raw UDP socket, so the test decides exactly what it sends: it
//! registers with the real Kamailio, answers the INVITE with a 200, takes mware's ACK,
//! then sends the very same 200 again, as a phone whose ACK never arrived does
//! (RFC 3261 §13.3.1.4), and must get a second ACK. Without one the phone would end the
//! call after 64×T1.

mod common;

use common::*;
use mware_callmanager::call::Command;
use mware_callmanager::decide::CallState;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Waits for a SIP message whose first line starts with `start`; the text and its source.
fn recv_starting(sock: &UdpSocket, start: &str, within: Duration) -> Option<(String, SocketAddr)> {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(start) {
                return Some((text, from));
            }
        }
    }
    None
}

/// The header lines of `msg` named `name` (case as sent), in order.
fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    let head = msg.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .filter(|l| l.len() > name.len() && l[..name.len()].eq_ignore_ascii_case(name) && l[name.len()..].starts_with(':'))
        .collect()
}

/// A response to `req` with `code`, echoing its Via, From, Call-ID, CSeq and
/// Record-Route headers, To with `tag`, and a body.
fn answer(req: &str, code: &str, tag: &str, contact: &str, body: &str) -> String {
    let mut out = format!("SIP/2.0 {code}\r\n");
    for name in ["Via", "Record-Route", "From", "Call-ID", "CSeq"] {
        for h in headers(req, name) {
            out.push_str(h);
            out.push_str("\r\n");
        }
    }
    let to = headers(req, "To")[0];
    let to = if to.contains(";tag=") { to.to_string() } else { format!("{to};tag={tag}") };
    out.push_str(&format!("{to}\r\nContact: <{contact}>\r\n"));
    if body.is_empty() {
        out.push_str("Content-Length: 0\r\n\r\n");
    } else {
        out.push_str(&format!("Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_retransmitted_after_the_ack_is_acked_again() {
    let rig = Rig::new(&[]).await;
    let eng = rig.engine(None).await;
    let alice = rig.phone("uas_answer.xml", "alice", &["-m", "1"]);
    let bob = UdpSocket::bind("127.0.0.1:0").unwrap();
    bob.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let me = bob.local_addr().unwrap();
    let contact = format!("sip:bob@{me}");
    let kam: SocketAddr = format!("127.0.0.1:{}", rig.kam.sip_port).parse().unwrap();
    let register = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-reg-1;rport\r\nMax-Forwards: 70\r\n\
         From: <sip:bob@{DOMAIN}>;tag=reg1\r\nTo: <sip:bob@{DOMAIN}>\r\nCall-ID: reg-bob-1\r\nCSeq: 1 REGISTER\r\n\
         Contact: <{contact}>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
    );
    bob.send_to(register.as_bytes(), kam).unwrap();
    recv_starting(&bob, "SIP/2.0 200", Duration::from_secs(5)).expect("registered");

    let h = start(&eng, spec("ack-1", "alice", "bob", 10));
    let (invite, via) = tokio::task::block_in_place(|| recv_starting(&bob, "INVITE ", Duration::from_secs(10))).expect("bob's INVITE");
    let sdp =
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let ok = answer(&invite, "200 OK", "bob-1", &contact, sdp);
    bob.send_to(ok.as_bytes(), via).unwrap();
    let (ack1, _) = tokio::task::block_in_place(|| recv_starting(&bob, "ACK ", Duration::from_secs(5))).expect("the first ACK");
    // The phone did not see that ACK: it sends its 200 again, byte for byte.
    bob.send_to(ok.as_bytes(), via).unwrap();
    let (ack2, _) = tokio::task::block_in_place(|| recv_starting(&bob, "ACK ", Duration::from_secs(3)))
        .expect("a second ACK for the retransmitted 200");
    assert_eq!(headers(&ack1, "CSeq"), headers(&ack2, "CSeq"), "the same ACK:\n{ack1}\n{ack2}");
    assert_eq!(headers(&ack1, "Call-ID"), headers(&ack2, "Call-ID"));

    wait_state(&h, CallState::Connected, 10).await;
    let hang = tokio::spawn({
        let h = h.clone();
        async move { h.send(Command::HangUp("the test".into())).await }
    });
    let (bye, via) = tokio::task::block_in_place(|| recv_starting(&bob, "BYE ", Duration::from_secs(5))).expect("bob's BYE");
    bob.send_to(answer(&bye, "200 OK", "bob-1", &contact, "").as_bytes(), via).unwrap();
    hang.await.unwrap().unwrap();
    tokio::task::block_in_place(|| alice.wait_for("BYE", Duration::from_secs(5))).unwrap();
}
