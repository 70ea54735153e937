//! The operations on a connected call: hold and resume (a re-INVITE of B with
//! `sendonly` / `sendrecv`), DTMF (SIP INFO `application/dtmf-relay` to B) and transfer
//! (A connected with a new party, then B ended). Each changed dialog is written again,
//! so the next active instance goes on with the right CSeq.

use super::{ix, Command, Task};
use crate::decide::{CallState, LegState, Side};
use crate::error::CallError;
use crate::ua::leg::{Dial, Leg, LegEvent};
use crate::ua::sdp;
use mware_coord::now_ms;
use std::time::Duration;

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
        self.version += 1;
        let offer = sdp::with_direction(&String::from_utf8_lossy(&self.sdp_to_b), dir, self.version);
        let ua = self.eng.ua.clone();
        let rec = self.recs[1].as_mut().ok_or_else(|| CallError::Conflict("no dialog with to".into()))?;
        let extra = ["Content-Type: application/sdp".to_string()];
        let (code, reason, _) = ua.request(rec, "INVITE", &extra, offer.as_bytes()).await?;
        if !(200..300).contains(&code) {
            return Err(CallError::Sip(format!("re-INVITE ({dir}) answered {code} {reason}")));
        }
        self.view.lock().unwrap_or_else(|e| e.into_inner()).held = held;
        Ok(format!("to is {} ({code})", if held { "on hold" } else { "resumed" }))
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
        let dial = Dial { to: to.clone(), domain: self.spec.domain.clone(), display: self.spec.caller_id.clone(), sdp: None };
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
