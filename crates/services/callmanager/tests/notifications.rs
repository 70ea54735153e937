//! Voice notifications placed by the engine through a real Kamailio to SIPp phones: one
//! answers and confirms with DTMF 1 (RFC 4733 events from the pcap SIPp ships), one is
//! busy, one never answers. Outcomes and attempt counts are as configured, each attempt
//! is one INVITE at the phone (matched by Call-ID with the record), and the spoken
//! message reached the answering phone: its RTP, recorded at a UDP socket the test owns
//! (the phone's SDP answer points there), is as long as the message espeak-ng makes.

mod common;

use common::*;
use mware_callmanager::notify::runner::Notices;
use mware_callmanager::notify::{Message, Notice, Number, Outcome, Window};
use mware_callmanager::Metrics;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TEXT: &str = "This is a test notification from mware. Please press one to confirm.";

/// The Call-IDs of the INVITEs a SIPp phone received (retransmissions counted once).
pub fn invite_call_ids(trace: &str) -> Vec<String> {
    let mut out = vec![];
    for block in trace.split("----------") {
        let mut lines = block.lines().skip_while(|l| !l.contains("message received")).skip(1).filter(|l| !l.trim().is_empty());
        if lines.next().is_some_and(|l| l.trim().starts_with("INVITE ")) {
            if let Some(c) = block.lines().find_map(|l| l.trim().strip_prefix("Call-ID:").map(|c| c.trim().to_string())) {
                out.push(c);
            }
        }
    }
    out
}

fn notice(id: &str, to: &[&str], attempts: u32, confirm: Option<char>) -> Notice {
    Notice {
        id: id.into(),
        domain: DOMAIN.into(),
        message: Message::Text(TEXT.into()),
        message_ms: 0,
        caller_id: Some("Alerts".into()),
        attempts,
        retry_after_s: 1,
        answer_timeout_s: 3,
        window: Window::default(),
        confirm_digit: confirm,
        created_ms: mware_coord::now_ms(),
        state: "running".into(),
        instance: "mware1".into(),
        numbers: to
            .iter()
            .map(|u| Number { to: format!("sip:{u}@{DOMAIN}"), state: "pending".into(), next_ms: 0, attempts: vec![] })
            .collect(),
    }
}

async fn wait_done(ns: &Notices, id: &str, secs: u64) -> Notice {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let n = ns.get(id).unwrap();
        if n.state != "running" {
            return n;
        }
        assert!(Instant::now() < deadline, "not done within {secs} s: {n:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The length of the message as espeak-ng speaks it, measured by soxi (not by mware).
fn spoken_seconds(dir: &std::path::Path) -> f64 {
    let wav = dir.join("expected.wav");
    let st = std::process::Command::new("espeak-ng").args(["-v", "en", "-w"]).arg(&wav).arg(TEXT).status().unwrap();
    assert!(st.success());
    let out = std::process::Command::new("soxi").arg("-D").arg(&wav).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Records every RTP packet arriving at a socket of the test: (arrival, payload type, payload).
type Recorded = Arc<Mutex<Vec<(Instant, u8, Vec<u8>)>>>;

async fn recorder() -> (u16, Recorded) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let got: Recorded = Default::default();
    let g = got.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = sock.recv_from(&mut buf).await {
            if n >= 12 {
                g.lock().unwrap().push((Instant::now(), buf[1] & 0x7f, buf[12..n].to_vec()));
            }
        }
    });
    (port, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_busy_and_unanswered_numbers_end_as_configured_and_the_message_reaches_the_phone() {
    let rig = Rig::new(&[]).await;
    let (rtp_port, recorded) = recorder().await;
    let rtp = rtp_port.to_string();
    let mut ann = rig.phone("uas_notify.xml", "ann", &["-d", "300", "-m", "1", "-key", "rtp_port", &rtp]);
    let mut bob = rig.phone("uas_busy.xml", "bob", &["-m", "2"]);
    let mut carl = rig.phone("uas_noanswer.xml", "carl", &["-m", "2"]);
    let eng = rig.engine(None).await;
    let metrics = Metrics::new(&mut prometheus_client::registry::Registry::default());
    let ns = Notices::start(eng.clone(), metrics.clone()).await.unwrap();
    let mut n = notice("1-n1", &["ann", "bob", "carl"], 2, Some('1'));
    let ulaw = mware_callmanager::notify::runner::render(&n.message).await.expect("espeak-ng and sox");
    n.message_ms = ulaw.len() as u64 * 1000 / 8000;
    ns.create(n, ulaw).await.unwrap();
    let n = wait_done(&ns, "1-n1", 60).await;
    assert_eq!(n.state, "done");
    let by = |u: &str| n.numbers.iter().find(|x| x.to == format!("sip:{u}@{DOMAIN}")).unwrap().clone();

    let a = by("ann");
    assert_eq!(a.state, "confirmed", "{a:#?}");
    assert_eq!(a.attempts.len(), 1, "confirmed at the first attempt: {a:#?}");
    assert_eq!((a.attempts[0].outcome, a.attempts[0].code), (Some(Outcome::Confirmed), Some(200)));
    assert!(a.attempts[0].answered_ms.is_some() && a.attempts[0].end_ms.is_some());
    let b = by("bob");
    assert_eq!(b.state, "busy", "{b:#?}");
    assert_eq!(
        b.attempts.iter().map(|x| (x.index, x.outcome, x.code)).collect::<Vec<_>>(),
        vec![(1, Some(Outcome::Busy), Some(486)), (2, Some(Outcome::Busy), Some(486))]
    );
    assert!(b.attempts[1].start_ms >= b.attempts[0].end_ms.unwrap() + 1000, "retried after retry_after_s: {b:#?}");
    let c = by("carl");
    assert_eq!(c.state, "no_answer", "{c:#?}");
    assert_eq!(
        c.attempts.iter().map(|x| (x.index, x.outcome, x.code)).collect::<Vec<_>>(),
        vec![(1, Some(Outcome::NoAnswer), Some(487)), (2, Some(Outcome::NoAnswer), Some(487))]
    );
    for x in &c.attempts {
        let rang = x.end_ms.unwrap() - x.start_ms;
        assert!((2900..8000).contains(&rang), "cancelled at answer_timeout_s (3 s), rang {rang} ms");
    }

    // One INVITE per attempt at each phone, with the Call-ID the record names.
    for (p, num) in [(&ann, &a), (&bob, &b), (&carl, &c)] {
        let seen: BTreeSet<String> = invite_call_ids(&p.trace_text()).into_iter().collect();
        let written: BTreeSet<String> = num.attempts.iter().map(|x| x.call_id.clone()).collect();
        assert_eq!(seen, written, "{}: {:#?}", p.user, p.messages());
    }
    for (p, name) in [(&mut ann, "ann"), (&mut bob, "bob"), (&mut carl, "carl")] {
        assert_eq!(p.wait_exit(Duration::from_secs(15)), Some(0), "{name}'s SIPp ended its calls successfully: {:#?}", p.messages());
    }
    assert!(ann.messages().iter().any(|m| m.starts_with("< BYE")), "mware hung up after the message");

    // The audio that reached ann: PCMU, 20 ms packets, as long as the spoken text.
    let pkts = recorded.lock().unwrap().clone();
    let pcmu: Vec<_> = pkts.iter().filter(|(_, pt, _)| *pt == 0).collect();
    assert!(pcmu.iter().all(|(_, _, p)| p.len() == 160), "20 ms packets");
    let got_s = pcmu.len() as f64 * 0.020;
    let want_s = spoken_seconds(rig.dir.path());
    assert!((got_s - want_s).abs() <= 0.1 + want_s * 0.05, "received {got_s:.2} s of audio, the message is {want_s:.2} s");
    let span = pcmu.last().unwrap().0 - pcmu.first().unwrap().0;
    assert!(span.as_secs_f64() >= want_s * 0.8, "paced in real time, not burst: {span:?} for {want_s:.2} s");
    let bytes: Vec<u8> = pcmu.iter().flat_map(|(_, _, p)| p.iter().copied()).collect();
    let silent = bytes.iter().filter(|b| matches!(**b, 0xFF | 0x7F | 0xFE | 0x7E)).count();
    assert!(silent < bytes.len() * 8 / 10, "speech, not silence ({silent} of {} bytes silent)", bytes.len());

    // Written, fenced, to the coordinator; the metrics count every attempt.
    let stored = rig.coord.kv_list(GROUP, mware_callmanager::store::NOTICE_PREFIX).await.unwrap();
    let saved: Notice = serde_json::from_slice(&stored[0].1.value).unwrap();
    assert_eq!(saved, n, "what the API shows is what is stored");
    assert_eq!(metrics.notice_attempts.get_or_create(&mware_callmanager::OutcomeLabel { outcome: "busy".into() }).get(), 2);
    assert_eq!(metrics.notice_attempts.get_or_create(&mware_callmanager::OutcomeLabel { outcome: "no_answer".into() }).get(), 2);
    assert!(a.attempts[0].answer_to_audio_ms.is_some(), "the time from the 2xx to the first RTP packet is recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_stops_the_ringing_attempt_and_no_number_is_called_again() {
    let rig = Rig::new(&[]).await;
    let mut carl = rig.phone("uas_noanswer.xml", "carl", &["-m", "1"]);
    let eng = rig.engine(None).await;
    let ns = Notices::start(eng.clone(), Metrics::new(&mut prometheus_client::registry::Registry::default())).await.unwrap();
    let mut n = notice("1-n2", &["carl"], 3, None);
    n.answer_timeout_s = 30;
    let ulaw = mware_callmanager::notify::runner::render(&n.message).await.unwrap();
    ns.create(n, ulaw).await.unwrap();
    carl.wait_for("INVITE", Duration::from_secs(10)).unwrap();
    let v = ns.cancel("1-n2").await.unwrap();
    assert_eq!(v.state, "cancelled");
    carl.wait_for("CANCEL", Duration::from_secs(5)).unwrap();
    let n = wait_number_final(&ns, "1-n2", 10).await;
    assert_eq!(n.numbers[0].state, "cancelled", "{n:#?}");
    assert_eq!(n.numbers[0].attempts.len(), 1);
    assert_eq!(n.numbers[0].attempts[0].outcome, Some(Outcome::Cancelled));
    assert_eq!(carl.wait_exit(Duration::from_secs(10)), Some(0), "{:#?}", carl.messages());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(invite_call_ids(&carl.trace_text()).len(), 1, "not called again after the cancel");
}

async fn wait_number_final(ns: &Notices, id: &str, secs: u64) -> Notice {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let n = ns.get(id).unwrap();
        if n.numbers.iter().all(|x| x.is_final()) {
            return n;
        }
        assert!(Instant::now() < deadline, "numbers not final within {secs} s: {n:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
