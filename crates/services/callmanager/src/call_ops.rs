//! The operations on a connected call: hold and resume (a re-INVITE of B with
//! `sendonly` / `sendrecv`), DTMF (SIP INFO `application/dtmf-relay` to B) and transfer
//! (A connected with a new party, then B ended). Each changed dialog is written again,
//! so the next active instance goes on with the right CSeq.

use super::{ix, Command, Task};
use crate::decide::{CallState, Event, LegState, Side};
use crate::error::CallError;
use crate::ua::leg::{Dial, Leg, LegEvent};
use crate::ua::sdp;
use mware_coord::now_ms;
use std::time::Duration;
use tokio::time::Instant;

impl Task {
    pub(super) async fn command(&mut self, c: Command) -> Result<String, CallError> {
        let state = self.view.lock().unwrap_or_else(|e| e.into_inner()).state;
        if state != CallState::Connected {
            return Err(CallError::Conflict(format!("the call is {state:?}, not connected").to_lowercase()));
        }
        let out = match c {
            Command::HangUp(_) => unreachable!("handled by the state machine"),
            Command::Hold => self.direction("sendonly", true).await,
            Command::Resume => self.direction("sendrecv", false).await,
            Command::Dtmf(d) => self.dtmf(&d).await,
            Command::Transfer(to) => self.transfer(to).await,
        };
        if out.is_ok() {
            self.persist().await?;
            self.changed(None);
        }
        out
    }

    async fn direction(&mut self, dir: &str, held: bool) -> Result<String, CallError> {
        let offer = sdp::with_direction(&String::from_utf8_lossy(&self.sdp_to_b), dir, 1);
        let ua = self.eng.ua.clone();
        let rec = self.recs[1].as_mut().ok_or_else(|| CallError::Conflict("no dialog with to".into()))?;
        let extra = ["Content-Type: application/sdp".to_string()];
        let (code, reason, _) = ua.request(rec, "INVITE", &extra, offer.as_bytes()).await?;
        if !(200..300).contains(&code) {
            return Err(CallError::Sip(format!("re-INVITE ({dir}) answered {code} {reason}")));
        }
        // The next offer to B (a refresh, the other direction) starts from this one.
        self.sdp_to_b = offer.into_bytes();
        self.view.lock().unwrap_or_else(|e| e.into_inner()).held = held;
        Ok(format!("to is {} ({code})", if held { "on hold" } else { "resumed" }))
    }

    /// The session timer's period, if the calls have one.
    pub(super) fn period(&self) -> Option<Duration> {
        (self.eng.session_timer_s > 0).then(|| Duration::from_secs(self.eng.session_timer_s.into()))
    }

    /// Refreshes both legs (RFC 4028: a re-INVITE with the SDP each already has, so
    /// nothing changes for the media); a leg that answers 481 or nothing is lost.
    pub(super) async fn refresh(&mut self) -> Option<Event> {
        self.refresh_at = self.period().map(|p| Instant::now() + p / 2);
        let ua = self.eng.ua.clone();
        let extra = [
            "Content-Type: application/sdp".to_string(),
            "Supported: timer".to_string(),
            format!("Session-Expires: {};refresher=uac", self.eng.session_timer_s),
        ];
        for side in [Side::A, Side::B] {
            let sdp = match side {
                Side::A => self.sdp_to_a.clone(),
                Side::B => self.sdp_to_b.clone(),
            };
            let Some(rec) = self.recs[ix(side)].as_mut() else { continue };
            match ua.request(rec, "INVITE", &extra, &sdp).await {
                Ok((code, _, _)) if (200..300).contains(&code) => {}
                Ok((code @ (408 | 481), reason, _)) => return Some(Event::Lost(side, format!("{code} {reason} to a session refresh"))),
                Ok((code, reason, _)) => tracing::info!(call = %self.spec.id, code, reason, "session refresh refused; the call goes on"),
                Err(e) => return Some(Event::Lost(side, format!("session refresh not sent: {e}"))),
            }
        }
        if let Err(e) = self.persist().await {
            return Some(Event::PersistFailed(e.to_string()));
        }
        None
    }

    async fn dtmf(&mut self, digits: &str) -> Result<String, CallError> {
        let ua = self.eng.ua.clone();
        let rec = self.recs[1].as_mut().ok_or_else(|| CallError::Conflict("no dialog with to".into()))?;
        let extra = ["Content-Type: application/dtmf-relay".to_string()];
        for d in digits.chars() {
            let body = format!("Signal={d}\r\nDuration=160\r\n");
            let (code, reason, _) = ua.request(rec, "INFO", &extra, body.as_bytes()).await?;
            if !(200..300).contains(&code) {
                return Err(CallError::Sip(format!("INFO for digit {d} answered {code} {reason}")));
            }
        }
        Ok(format!("sent {} digit(s) to to", digits.len()))
    }

    /// Calls `to` without SDP; its offer goes to A in a re-INVITE, A's answer to the new
    /// party in the ACK; then B gets a BYE.
    async fn transfer(&mut self, to: String) -> Result<String, CallError> {
        let ua = self.eng.ua.clone();
        let dial = Dial {
            to: to.clone(),
            domain: self.spec.domain.clone(),
            display: self.spec.caller_id.clone(),
            sdp: None,
            session_s: self.eng.session_timer_s,
        };
        let mut leg = Leg::invite(&ua, dial)?;
        let limit = Duration::from_secs(self.spec.answer_timeout_s.into());
        let answered = tokio::time::timeout(limit, async {
            loop {
                match leg.next().await {
                    LegEvent::Ringing(_) => continue,
                    other => return other,
                }
            }
        })
        .await;
        let (mut rec_c, offer) = match answered {
            Ok(LegEvent::Answered { record, sdp }) => (record, sdp),
            Ok(LegEvent::Failed { code, reason }) => return Err(CallError::Sip(format!("transfer target answered {code} {reason}"))),
            Ok(LegEvent::Ringing(_)) => unreachable!("skipped above"),
            Err(_) => {
                leg.cancel().await;
                return Err(CallError::Sip(format!("transfer target did not answer within {} s", limit.as_secs())));
            }
        };
        let rec_a = self.recs[0].as_mut().ok_or_else(|| CallError::Conflict("no dialog with from".into()))?;
        let extra = ["Content-Type: application/sdp".to_string()];
        let (code, reason, answer) = ua.request(rec_a, "INVITE", &extra, &offer).await?;
        if !(200..300).contains(&code) || answer.is_empty() {
            let refuse = sdp::refuse(&String::from_utf8_lossy(&offer));
            let _ = ua.ack(&rec_c, rec_c.cseq, Some(refuse.as_bytes())).await;
            let _ = ua.bye(&mut rec_c, "transfer failed").await;
            return Err(CallError::Sip(format!("re-INVITE of from answered {code} {reason}")));
        }
        ua.ack(&rec_c, rec_c.cseq, Some(&answer)).await?;
        if let Some(mut old) = self.recs[1].take() {
            let _ = ua.bye(&mut old, "transferred").await;
        }
        self.sdp_to_a = offer;
        self.sdp_to_b = answer;
        self.recs[1] = Some(rec_c);
        self.legs[1] = None;
        self.watch(Side::A);
        self.watch(Side::B);
        let now = now_ms();
        self.leg_view(Side::B, |l| {
            l.party = to.clone();
            l.state = LegState::Connected;
            l.code = Some(200);
            l.reason = Some("OK".into());
            l.since_ms = now;
        });
        self.spec.to = to.clone();
        let _ = ix(Side::B);
        Ok(format!("from is now connected with {to}"))
    }
}
