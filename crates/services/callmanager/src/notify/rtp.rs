//! The media of a notification call: the message sent as PCMU RTP (RFC 3550/3551, 160
//! bytes every 20 ms, paced by a timer), from a UDP socket of mware to the address in
//! the phone's answer, while the same socket hears the phone's RFC 4733 telephone-events
//! (the confirmation digit). Packets are built and read by `rtp-rs`.

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Samples (and µ-law bytes) in one 20 ms packet.
pub const FRAME: usize = 160;

/// What the media of one call did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Milliseconds of the message sent.
    pub sent_ms: u64,
    /// When the first packet left.
    pub first_packet: Option<Instant>,
    /// The digit heard, if the one asked for came.
    pub digit: Option<char>,
    /// The message was sent to its end.
    pub complete: bool,
}

/// The digit of an RFC 4733 event code.
pub fn digit_of(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// One packet of the message: PCMU, `frame` padded with µ-law silence to 20 ms.
pub fn packet(ssrc: u32, seq: u16, ts: u32, first: bool, frame: &[u8]) -> Vec<u8> {
    let mut payload = [0xFFu8; FRAME];
    payload[..frame.len().min(FRAME)].copy_from_slice(&frame[..frame.len().min(FRAME)]);
    RtpPacketBuilder::new()
        .payload_type(0)
        .ssrc(ssrc)
        .sequence(Seq::from(seq))
        .timestamp(ts)
        .marked(first)
        .payload(&payload)
        .build()
        .unwrap_or_default()
}

/// Sends `ulaw` to `dest` from `sock`, hearing telephone-events of type `te` from the
/// phone's address; then, if `want` is asked for and not heard yet, listens `linger`
/// more. Ends early when `stop` fires (the phone hung up, a cancel).
pub async fn run(
    sock: &UdpSocket,
    dest: SocketAddr,
    ulaw: &[u8],
    te: Option<u8>,
    want: Option<char>,
    linger: Duration,
    stop: &CancellationToken,
) -> Report {
    let mut r = Report::default();
    let (ssrc, mut seq, mut ts) = (rand::random::<u32>(), rand::random::<u16>(), rand::random::<u32>());
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut frames = ulaw.chunks(FRAME);
    let mut buf = [0u8; 1500];
    let mut linger_until: Option<Instant> = None;
    loop {
        if r.digit.is_some() && r.complete {
            return r;
        }
        let wake = linger_until.map(tokio::time::sleep_until);
        tokio::select! {
            _ = stop.cancelled() => return r,
            _ = async { match wake { Some(w) => w.await, None => std::future::pending().await } } => return r,
            _ = tick.tick(), if !r.complete => {
                match frames.next() {
                    Some(f) => {
                        let p = packet(ssrc, seq, ts, r.first_packet.is_none(), f);
                        if let Err(e) = sock.send_to(&p, dest).await {
                            tracing::debug!(error = %e, %dest, "RTP packet not sent");
                        }
                        r.first_packet.get_or_insert_with(Instant::now);
                        r.sent_ms += 20;
                        seq = seq.wrapping_add(1);
                        ts = ts.wrapping_add(FRAME as u32);
                    }
                    None => {
                        r.complete = true;
                        if want.is_none() || r.digit.is_some() {
                            return r;
                        }
                        linger_until = Some(Instant::now() + linger);
                    }
                }
            }
            got = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                if from.ip() != dest.ip() {
                    continue; // only the phone's address counts
                }
                let Ok(p) = RtpReader::new(&buf[..n]) else { continue };
                if Some(p.payload_type()) != te || p.payload().len() < 4 {
                    continue;
                }
                let d = digit_of(p.payload()[0]);
                if d.is_some() && d == want {
                    r.digit = d;
                } else if let Some(d) = d {
                    tracing::debug!(digit = %d, "telephone-event heard, not the confirmation digit");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_pcmu_with_a_marker_on_the_first_and_padded_to_20_ms() {
        let p = packet(7, 65535, 160, true, &[1, 2, 3]);
        let r = RtpReader::new(&p).unwrap();
        assert_eq!((r.payload_type(), r.mark(), u16::from(r.sequence_number()), r.timestamp(), r.ssrc()), (0, true, 65535, 160, 7));
        assert_eq!(r.payload().len(), FRAME);
        assert_eq!(&r.payload()[..4], &[1, 2, 3, 0xFF]);
        assert_eq!(digit_of(1), Some('1'));
        assert_eq!(digit_of(11), Some('#'));
        assert_eq!(digit_of(16), None);
    }

    #[tokio::test]
    async fn the_message_is_paced_and_a_telephone_event_confirms() {
        let me = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let dest = phone.local_addr().unwrap();
        let mine = me.local_addr().unwrap();
        let msg = vec![0x55u8; 8000]; // 1 s
        let stop = CancellationToken::new();
        let listener = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            let mut got = 0usize;
            let t0 = Instant::now();
            while got < 50 {
                let (n, _) = phone.recv_from(&mut buf).await.unwrap();
                got += 1;
                if got == 10 {
                    // RFC 4733 event 1, end bit set, from the phone's address.
                    let ev = RtpPacketBuilder::new().payload_type(101).ssrc(9).sequence(Seq::from(1)).timestamp(0);
                    let ev = ev.payload(&[1, 0x80, 0, 160]).build().unwrap();
                    phone.send_to(&ev, mine).await.unwrap();
                }
                assert_eq!(n, 12 + FRAME);
            }
            t0.elapsed()
        });
        let r = run(&me, dest, &msg, Some(101), Some('1'), Duration::from_secs(2), &stop).await;
        assert!(r.complete && r.digit == Some('1'), "{r:?}");
        assert_eq!(r.sent_ms, 1000);
        let took = listener.await.unwrap();
        assert!(took >= Duration::from_millis(900), "50 packets paced over ~1 s, took {took:?}");
    }
}
