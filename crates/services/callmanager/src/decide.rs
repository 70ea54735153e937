//! The call state machine as a pure function: [`decide`] takes the call's state and one
//! event and gives the actions to take, the new states and the reason in words. It
//! touches nothing; `call` acts on its answer. The flow is RFC 3725 flow I (ADR 0019):
//! INVITE A without SDP; A's 2xx carries the offer; INVITE B with that offer; B's 2xx
//! carries the answer; ACK A with the answer, ACK B; then the dialogs are written to
//! the coordinator before the call is reported connected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A leg of the call: A is `from` (rung first), B is `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The first leg (`from`).
    A,
    /// The second leg (`to`).
    B,
}

impl Side {
    /// The other leg.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
    /// The API field that names this leg's party.
    pub fn field(self) -> &'static str {
        match self {
            Side::A => "from",
            Side::B => "to",
        }
    }
}

/// The state of a call as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    /// A's INVITE is out, no answer yet.
    Dialing,
    /// A rings.
    Ringing,
    /// A answered; B is being called.
    Answered,
    /// B answered; the ACKs are sent and the dialogs are being made durable.
    Connecting,
    /// Both legs are up and durable.
    Connected,
    /// Over; `ended` says why.
    Ended,
}

/// The state of one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LegState {
    /// Not called yet.
    Idle,
    /// INVITE sent.
    Dialing,
    /// A provisional response came.
    Ringing,
    /// 2xx received, ACK pending.
    Answered,
    /// In the call (ACKed).
    Connected,
    /// CANCEL sent, waiting for the INVITE's end.
    Cancelling,
    /// Over.
    Ended,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A provisional response on a leg.
    Ringing(Side, u16),
    /// A 2xx on a leg.
    Answered(Side),
    /// A final failure of a leg's INVITE (code and reason).
    Failed(Side, u16, String),
    /// The phone of a leg hung up (BYE).
    RemoteBye(Side),
    /// A leg can no longer be reached (a session refresh answered 481 or nothing): why.
    Lost(Side, String),
    /// A leg rang longer than its answer timeout (seconds).
    RingTimeout(Side, u32),
    /// Hang-up asked (through the API, by whom).
    HangUp(String),
    /// The call reached its `max_duration_s`.
    MaxDuration(u32),
    /// The dialogs are durable in the coordinator.
    Persisted,
    /// They could not be made durable (this instance lost its activity, or the
    /// coordinator failed): the reason.
    PersistFailed(String),
}

/// What to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the INVITE of B with A's offer.
    InviteB,
    /// ACK the leg's 2xx (A: with B's answer; B: empty).
    Ack(Side),
    /// ACK the leg's 2xx with an answer refusing every stream (its offer cannot be
    /// answered for real), then the leg is ended with [`Action::Bye`].
    AckRefusing(Side),
    /// CANCEL the leg's INVITE.
    Cancel(Side),
    /// BYE on the leg, with this reason.
    Bye(Side),
    /// Write the call's dialogs to the coordinator (fenced).
    Persist,
    /// Remove the call from the coordinator; it is over.
    Forget,
}

/// The state [`decide`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The call.
    pub state: CallState,
    /// Leg A.
    pub a: LegState,
    /// Leg B.
    pub b: LegState,
    /// Why the call ends, once a CANCEL is out and the INVITE's end is awaited.
    pub ending: Option<String>,
}

impl Snapshot {
    /// A new call: A is being dialled.
    pub fn new() -> Self {
        Snapshot { state: CallState::Dialing, a: LegState::Dialing, b: LegState::Idle, ending: None }
    }
    fn leg(&self, s: Side) -> LegState {
        match s {
            Side::A => self.a,
            Side::B => self.b,
        }
    }
    fn set(&mut self, s: Side, l: LegState) {
        match s {
            Side::A => self.a = l,
            Side::B => self.b = l,
        }
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Self::new()
    }
}

/// The answer of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The state after the event.
    pub next: Snapshot,
    /// What to do, in order.
    pub actions: Vec<Action>,
    /// Set when the call ends: why, in words.
    pub ended: Option<String>,
    /// Why these actions, in words.
    pub reason: String,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The actions `ev` calls for in state `s`.
pub fn decide(s: &Snapshot, ev: &Event) -> Decision {
    use Action::*;
    let mut n = s.clone();
    let keep = |reason: String| Decision { next: s.clone(), actions: vec![], ended: None, reason };
    if s.state == CallState::Ended {
        return keep(format!("call already ended; {ev:?} ignored"));
    }
    let end = |mut n: Snapshot, actions: Vec<Action>, why: String| {
        n.state = CallState::Ended;
        for side in [Side::A, Side::B] {
            if n.leg(side) != LegState::Idle {
                n.set(side, LegState::Ended);
            }
        }
        n.ending = None;
        let mut actions = actions;
        actions.push(Forget);
        Decision { next: n, actions, ended: Some(why.clone()), reason: format!("call ends: {why}") }
    };
    match ev {
        Event::Ringing(side, code) => {
            if matches!(s.leg(*side), LegState::Dialing) {
                n.set(*side, LegState::Ringing);
                if *side == Side::A && s.state == CallState::Dialing {
                    n.state = CallState::Ringing;
                }
                return Decision { next: n, actions: vec![], ended: None, reason: format!("{} rings ({code})", side.field()) };
            }
            keep(format!("{} sent {code} while {:?}; nothing to do", side.field(), s.leg(*side)))
        }
        Event::Answered(Side::A) => {
            if s.a == LegState::Cancelling {
                let why = s.ending.clone().unwrap_or_else(|| "cancelled".into());
                return end(
                    n,
                    vec![AckRefusing(Side::A), Bye(Side::A)],
                    format!("{why} (from answered as the CANCEL crossed; ended with BYE)"),
                );
            }
            n.a = LegState::Answered;
            n.b = LegState::Dialing;
            n.state = CallState::Answered;
            Decision { next: n, actions: vec![InviteB], ended: None, reason: "from answered with an offer: calling to with it".into() }
        }
        Event::Answered(Side::B) => {
            if s.b == LegState::Cancelling {
                let why = s.ending.clone().unwrap_or_else(|| "cancelled".into());
                return end(n, vec![Ack(Side::B), Bye(Side::B), AckRefusing(Side::A), Bye(Side::A)], why);
            }
            n.a = LegState::Connected;
            n.b = LegState::Connected;
            n.state = CallState::Connecting;
            Decision {
                next: n,
                actions: vec![Ack(Side::A), Ack(Side::B), Persist],
                ended: None,
                reason: "to answered: ACK from with its answer, ACK to, make the dialogs durable".into(),
            }
        }
        Event::Failed(side, code, text) => {
            let why = match &s.ending {
                Some(w) => w.clone(),
                None => format!("{} failed: {code} {text}", side.field()),
            };
            match side {
                Side::A => end(n, vec![], why),
                Side::B => end(n, vec![AckRefusing(Side::A), Bye(Side::A)], why),
            }
        }
        Event::RemoteBye(side) => {
            let why = format!("hung up by {}", side.field());
            n.set(*side, LegState::Ended);
            let other = side.other();
            let mut actions = vec![];
            match s.leg(other) {
                LegState::Dialing | LegState::Ringing => actions.push(Cancel(other)),
                LegState::Answered | LegState::Connected => actions.push(Bye(other)),
                _ => {}
            }
            end(n, actions, why)
        }
        Event::Lost(side, why) => {
            n.set(*side, LegState::Ended);
            let other = side.other();
            let actions = if s.leg(other) == LegState::Connected { vec![Bye(other)] } else { vec![] };
            end(n, actions, format!("{} lost: {why}", side.field()))
        }
        Event::RingTimeout(side, secs) => {
            if !matches!(s.leg(*side), LegState::Dialing | LegState::Ringing) {
                return keep(format!("ring timer of {} fired while {:?}; nothing to do", side.field(), s.leg(*side)));
            }
            n.set(*side, LegState::Cancelling);
            n.ending = Some(format!("no answer from {} within {secs} s", side.field()));
            Decision {
                next: n,
                actions: vec![Cancel(*side)],
                ended: None,
                reason: format!("{} did not answer in {secs} s: CANCEL", side.field()),
            }
        }
        Event::HangUp(by) => stop(s, n, format!("hung up by {by}")),
        Event::MaxDuration(secs) => stop(s, n, format!("max_duration_s ({secs} s) reached")),
        Event::Persisted => {
            if s.state != CallState::Connecting {
                return keep("dialogs written".into());
            }
            n.state = CallState::Connected;
            Decision { next: n, actions: vec![], ended: None, reason: "dialogs are durable: connected".into() }
        }
        Event::PersistFailed(e) => {
            end(n, vec![Bye(Side::A), Bye(Side::B)], format!("the call could not be made durable ({e}); both legs ended"))
        }
    }
}

/// Ending on request (API, max duration): CANCEL what rings, BYE what is up.
fn stop(s: &Snapshot, mut n: Snapshot, why: String) -> Decision {
    let mut actions = vec![];
    let mut waiting = false;
    for side in [Side::B, Side::A] {
        match s.leg(side) {
            LegState::Dialing | LegState::Ringing => {
                actions.push(Action::Cancel(side));
                n.set(side, LegState::Cancelling);
                waiting = true;
            }
            LegState::Answered => {
                actions.push(Action::AckRefusing(side));
                actions.push(Action::Bye(side));
                n.set(side, LegState::Ended);
            }
            LegState::Connected => {
                actions.push(Action::Bye(side));
                n.set(side, LegState::Ended);
            }
            LegState::Cancelling => waiting = true,
            LegState::Idle | LegState::Ended => {}
        }
    }
    if waiting && s.leg(Side::A) != LegState::Answered {
        // A's INVITE (or B's, while A waits for its ACK) ends with 487: the call ends then.
        n.ending = Some(why.clone());
        return Decision { next: n, actions, ended: None, reason: format!("{why}: CANCEL sent, waiting for the INVITE to end") };
    }
    n.state = CallState::Ended;
    n.ending = None;
    actions.push(Action::Forget);
    Decision { next: n, actions, ended: Some(why.clone()), reason: format!("call ends: {why}") }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
