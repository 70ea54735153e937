//! One attempt: an INVITE with our offer (PCMU and telephone-event from a UDP socket of
//! this instance) to one number; cancelled at `answer_timeout_s`; on the answer, the
//! ACK, the message as RTP to the answer's address, the confirmation digit heard on the
//! same socket, then our BYE (or the phone's). What came of it is an [`Ended`].

use super::decide::outcome_of;
use super::{media, rtp, Outcome};
use crate::ua::leg::{Dial, Leg, LegEvent};
use crate::ua::record::DialogRecord;
use crate::ua::{InDialog, Ua};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long the confirmation digit is waited for after the message ended.
pub const CONFIRM_WAIT: Duration = Duration::from_secs(8);

/// What one attempt calls and plays.
pub struct Plan<'a> {
    /// The SIP URI.
    pub to: &'a str,
    /// The domain of our From.
    pub domain: &'a str,
    /// Display name of our From.
    pub caller_id: Option<&'a str>,
    /// Longest ringing.
    pub answer_timeout: Duration,
    /// The message, µ-law 8 kHz.
    pub ulaw: &'a [u8],
    /// The confirmation digit asked for.
    pub confirm: Option<char>,
    /// The Call-ID of the INVITE (already written in the attempt's record).
    pub call_id: String,
}

/// What came of an attempt.
#[derive(Debug, Clone)]
pub struct Ended {
    /// The outcome.
    pub outcome: Outcome,
    /// The INVITE's final code.
    pub code: Option<u16>,
    /// Why, in words.
    pub reason: String,
    /// Milliseconds of the message sent.
    pub played_ms: u64,
    /// From the 2xx to the first RTP packet.
    pub answer_to_audio: Option<Duration>,
}

fn ended(outcome: Outcome, code: Option<u16>, reason: impl Into<String>) -> Ended {
    Ended { outcome, code, reason: reason.into(), played_ms: 0, answer_to_audio: None }
}

/// Places the attempt. `answered` is told the dialog once the phone answered (and
/// ACKed); `cancel` ends it (outcome `cancelled`).
pub async fn place(ua: &Ua, p: Plan<'_>, answered: impl FnOnce(DialogRecord), cancel: &CancellationToken) -> Ended {
    let ip = ua.options().ip;
    let sock = match UdpSocket::bind((ip, 0)).await {
        Ok(s) => s,
        Err(e) => return ended(Outcome::Failed, None, format!("no RTP socket on {ip}: {e}")),
    };
    let port = sock.local_addr().map(|a| a.port()).unwrap_or(0);
    let offer = media::offer(&ip.to_string(), port);
    let dial = Dial {
        to: p.to.to_string(),
        domain: p.domain.to_string(),
        display: p.caller_id.map(str::to_string),
        sdp: Some(offer.clone().into_bytes()),
        session_s: 0,
    };
    let mut leg = match Leg::invite_as(ua, dial, Some(p.call_id.clone())) {
        Ok(l) => l,
        Err(e) => return ended(Outcome::Failed, None, format!("INVITE not sent: {e}")),
    };
    let deadline = Instant::now() + p.answer_timeout;
    let mut why_cancel = None;
    let (mut record, sdp) = loop {
        let ev = tokio::select! {
            ev = leg.next() => ev,
            _ = tokio::time::sleep_until(deadline), if why_cancel.is_none() => {
                why_cancel = Some(Outcome::NoAnswer);
                leg.cancel().await;
                continue;
            }
            _ = cancel.cancelled(), if why_cancel.is_none() => {
                why_cancel = Some(Outcome::Cancelled);
                leg.cancel().await;
                continue;
            }
        };
        match ev {
            LegEvent::Ringing(_) => continue,
            LegEvent::Failed { code, reason } => {
                return match why_cancel {
                    Some(Outcome::NoAnswer) => {
                        ended(Outcome::NoAnswer, Some(code), format!("no answer within {} s", p.answer_timeout.as_secs()))
                    }
                    Some(o) => ended(o, Some(code), "cancelled while ringing"),
                    None => ended(outcome_of(code), Some(code), format!("{code} {reason}")),
                };
            }
            LegEvent::Answered { record, sdp } => break (record, sdp),
        }
    };
    let answered_at = Instant::now();
    if let Err(e) = ua.ack(&record, record.cseq, None).await {
        tracing::warn!(error = %e, to = p.to, "ACK not sent");
    }
    if let Some(o) = why_cancel {
        // The 2xx crossed our CANCEL: the call is up, end it at once.
        let _ = ua.bye(&mut record, "the notification attempt ended").await;
        return ended(o, Some(200), "answered as it was cancelled; hung up");
    }
    let answer = match media::answer(&String::from_utf8_lossy(&sdp)) {
        Ok(a) => a,
        Err(e) => {
            let _ = ua.bye(&mut record, "unusable answer").await;
            return ended(Outcome::Failed, Some(200), format!("unusable answer: {e}"));
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    ua.watch(&record.call_id, offer.into_bytes(), tx);
    answered(record.clone());
    let stop = cancel.child_token();
    let hung_up = CancellationToken::new();
    let (s2, h2) = (stop.clone(), hung_up.clone());
    let watcher = tokio::spawn(async move {
        if let Some(InDialog::Bye) = rx.recv().await {
            h2.cancel();
            s2.cancel();
        }
    });
    let want = p.confirm.filter(|_| answer.telephone_event.is_some());
    let r = rtp::run(&sock, answer.addr, p.ulaw, answer.telephone_event, want, CONFIRM_WAIT, &stop).await;
    watcher.abort();
    if hung_up.is_cancelled() {
        ua.forget(&record.call_id);
    } else {
        let why = if cancel.is_cancelled() { "the notification was cancelled" } else { "the message was played" };
        if let Err(e) = ua.bye(&mut record, why).await {
            tracing::debug!(error = %e, to = p.to, "BYE failed");
        }
    }
    let total = p.ulaw.len() as u64 * 1000 / media::RATE;
    let (outcome, reason) = if r.digit.is_some() {
        (Outcome::Confirmed, format!("digit {} heard", p.confirm.unwrap_or('?')))
    } else if cancel.is_cancelled() {
        (Outcome::Cancelled, format!("cancelled after {} of {total} ms", r.sent_ms))
    } else if r.complete {
        let no_te = p.confirm.is_some() && answer.telephone_event.is_none();
        let why = match (p.confirm, no_te) {
            (Some(_), true) => "played; the phone accepted no telephone-event, so no confirmation could come".to_string(),
            (Some(d), false) => format!("played; digit {d} not heard"),
            (None, _) => "played to the end".to_string(),
        };
        (Outcome::Played, why)
    } else {
        (Outcome::Failed, format!("the phone hung up after {} of {total} ms", r.sent_ms))
    };
    Ended {
        outcome,
        code: Some(200),
        reason,
        played_ms: r.sent_ms,
        answer_to_audio: r.first_packet.map(|t| t.saturating_duration_since(answered_at)),
    }
}
