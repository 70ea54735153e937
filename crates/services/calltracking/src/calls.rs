//! Call events from the SIP core, and the pure step that keeps a live dialog from them.
//! The core (Kamailio's dialog module, `examples/kamailio/kamailio.cfg` with
//! `WITH_CALLEVENTS`) posts `ringing`, `answered`, `ended` and `failed`; [`step`] says
//! what each does to the dialog it names: a new state to keep and announce, an ended
//! call to journal, or nothing (a repeated or late event), with the reason in words.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What the core reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The called party rings (180/183).
    Ringing,
    /// It answered (the dialog is confirmed).
    Answered,
    /// The call ended after it was answered (BYE, timeout).
    Ended,
    /// The call ended unanswered (a final answer >= 300, CANCEL).
    Failed,
}

/// One event as posted (checked by [`crate::validate::event`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallEvent {
    /// What happened.
    pub event: Kind,
    /// The dialog's id (hex of the Call-ID's md5).
    pub id: String,
    /// The caller's user part.
    pub from: String,
    /// The called user part.
    pub to: String,
    /// The domain of the call (the To domain), canonical.
    pub domain: String,
    /// The SIP code with it (180, 200, 486 ...; 0 when none).
    #[serde(default)]
    pub code: u16,
    /// When the core saw it, ms since the Unix epoch.
    pub at_ms: u64,
    /// Which member rings or answered (a hunt number or queue forked to several phones):
    /// the Contact of its reply as posted, the member's user once the tracker resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// The personal queue the call went through (the core names it: the reference
    /// config's `QUEUE_RE` matched the called user), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// A call while it lasts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Dialog {
    /// The dialog's id.
    pub id: String,
    /// The domain.
    pub domain: String,
    /// The caller.
    pub from: String,
    /// The called party.
    pub to: String,
    /// `ringing` or `answered`.
    pub state: Kind,
    /// When it started ringing (or was first seen), ms since the Unix epoch.
    pub since_ms: u64,
    /// When it was answered.
    pub answered_ms: Option<u64>,
    /// The members that rang, in order (a hunt number or queue; empty when the core did
    /// not name them).
    #[serde(default)]
    pub rang: Vec<String>,
    /// The member that answered.
    #[serde(default)]
    pub answered_by: Option<String>,
    /// The personal queue it went through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// A call that ended, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EndedCall {
    /// The call while it lasted.
    #[serde(flatten)]
    pub dialog: Dialog,
    /// When it ended.
    pub ended_ms: u64,
    /// Whether it was answered.
    pub answered: bool,
    /// The final code (e.g. 486 busy) when it failed; 0 otherwise.
    pub code: u16,
    /// How long the caller waited: until the answer, or until the end when unanswered, ms.
    #[serde(default)]
    pub waited_ms: u64,
    /// The caller gave up (hung up while it rang: 487 after a CANCEL).
    #[serde(default)]
    pub gave_up: bool,
}

impl EndedCall {
    /// The record of `dialog` ending at `ended_ms` (answered or not, with `code`).
    pub fn new(dialog: Dialog, ended_ms: u64, answered: bool, code: u16) -> EndedCall {
        let until = if answered { dialog.answered_ms.unwrap_or(dialog.since_ms) } else { ended_ms };
        EndedCall { waited_ms: until.saturating_sub(dialog.since_ms), gave_up: !answered && code == 487, dialog, ended_ms, answered, code }
    }
}

/// What one event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Keep (or replace) the dialog and announce the event.
    Keep(Dialog),
    /// Keep the dialog without announcing (a member named after the fact).
    Quiet(Dialog),
    /// The call ended: forget the dialog, journal it, announce the event.
    End(EndedCall),
    /// Nothing: the reason in words.
    Ignore(&'static str),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Keep(d) | Step::Quiet(d) => write!(f, "call {} {}@{} -> {}: {:?}", d.id, d.from, d.domain, d.to, d.state),
            Step::End(e) if e.answered => write!(f, "call {} ended after it was answered", e.dialog.id),
            Step::End(e) => write!(f, "call {} ended unanswered ({})", e.dialog.id, e.code),
            Step::Ignore(why) => write!(f, "ignored: {why}"),
        }
    }
}

/// What `ev` does to the live dialog `live` of its id (none yet: `None`).
pub fn step(live: Option<&Dialog>, ev: &CallEvent) -> Step {
    let member: Vec<String> = ev.member.iter().cloned().collect();
    let fresh = |state| Dialog {
        id: ev.id.clone(),
        domain: ev.domain.clone(),
        from: ev.from.clone(),
        to: ev.to.clone(),
        state,
        since_ms: ev.at_ms,
        answered_ms: (state == Kind::Answered).then_some(ev.at_ms),
        rang: member.clone(),
        answered_by: ev.member.clone().filter(|_| state == Kind::Answered),
        queue: ev.queue.clone(),
    };
    match (live, ev.event) {
        (None, Kind::Ringing) => Step::Keep(fresh(Kind::Ringing)),
        (Some(d), Kind::Ringing) => match &ev.member {
            Some(m) if !d.rang.contains(m) => Step::Keep(Dialog { rang: [d.rang.clone(), member].concat(), ..d.clone() }),
            _ => Step::Ignore("it rings already (a repeated 180/183)"),
        },
        (None, Kind::Answered) => Step::Keep(fresh(Kind::Answered)),
        (Some(d), Kind::Answered) if d.state == Kind::Ringing => {
            Step::Keep(Dialog { state: Kind::Answered, answered_ms: Some(ev.at_ms), answered_by: ev.member.clone(), ..d.clone() })
        }
        (Some(d), Kind::Answered) => match &ev.member {
            Some(m) if d.answered_by.is_none() => Step::Quiet(Dialog { answered_by: Some(m.clone()), ..d.clone() }),
            _ => Step::Ignore("it was answered already"),
        },
        (Some(d), Kind::Ended | Kind::Failed) => {
            let d = Dialog { queue: d.queue.clone().or_else(|| ev.queue.clone()), ..d.clone() };
            let answered = d.state == Kind::Answered;
            Step::End(EndedCall::new(d, ev.at_ms, answered, if ev.event == Kind::Failed { ev.code } else { 0 }))
        }
        (None, Kind::Failed) => Step::End(EndedCall::new(fresh(Kind::Ringing), ev.at_ms, false, ev.code)),
        (None, Kind::Ended) => Step::End(EndedCall::new(fresh(Kind::Answered), ev.at_ms, true, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Kind, at_ms: u64, code: u16) -> CallEvent {
        CallEvent {
            event,
            id: "c1".into(),
            from: "1001".into(),
            to: "1002".into(),
            domain: "d.test".into(),
            code,
            at_ms,
            member: None,
            queue: None,
        }
    }

    #[test]
    fn ringing_answered_ended_in_order_and_repeats_ignored() {
        let Step::Keep(d) = step(None, &ev(Kind::Ringing, 10, 180)) else { panic!() };
        assert_eq!((d.state, d.since_ms, d.answered_ms), (Kind::Ringing, 10, None));
        assert!(matches!(step(Some(&d), &ev(Kind::Ringing, 11, 183)), Step::Ignore(_)));
        let Step::Keep(d) = step(Some(&d), &ev(Kind::Answered, 20, 200)) else { panic!() };
        assert_eq!((d.state, d.since_ms, d.answered_ms), (Kind::Answered, 10, Some(20)));
        assert!(matches!(step(Some(&d), &ev(Kind::Answered, 21, 200)), Step::Ignore(_)));
        let s = step(Some(&d), &ev(Kind::Ended, 30, 0));
        assert!(s.to_string().contains("after it was answered"), "{s}");
        let Step::End(e) = s else { panic!() };
        assert_eq!((e.ended_ms, e.answered, e.code, e.dialog.since_ms), (30, true, 0, 10));
    }

    #[test]
    fn a_failed_call_ends_unanswered_with_its_code() {
        let Step::Keep(d) = step(None, &ev(Kind::Ringing, 10, 180)) else { panic!() };
        let Step::End(e) = step(Some(&d), &ev(Kind::Failed, 15, 486)) else { panic!() };
        assert_eq!((e.answered, e.code), (false, 486));
        let Step::End(e) = step(None, &ev(Kind::Failed, 15, 404)) else { panic!() };
        assert_eq!((e.answered, e.code, e.dialog.since_ms), (false, 404, 15));
    }

    #[test]
    fn a_queue_call_says_how_long_the_caller_waited_and_whether_it_gave_up() {
        let q = |event, at, code| CallEvent { queue: Some("queue-7".into()), ..ev(event, at, code) };
        let Step::Keep(d) = step(None, &q(Kind::Ringing, 100, 180)) else { panic!() };
        assert_eq!(d.queue.as_deref(), Some("queue-7"));
        let Step::End(e) = step(Some(&d), &ev(Kind::Failed, 2600, 487)) else { panic!() };
        assert_eq!((e.waited_ms, e.gave_up, e.dialog.queue.as_deref()), (2500, true, Some("queue-7")));
        let Step::End(e) = step(Some(&d), &ev(Kind::Failed, 900, 486)) else { panic!() };
        assert_eq!((e.waited_ms, e.gave_up), (800, false), "refused, not given up");
        let Step::Keep(a) = step(Some(&d), &q(Kind::Answered, 1100, 200)) else { panic!() };
        let Step::End(e) = step(Some(&a), &ev(Kind::Ended, 9000, 0)) else { panic!() };
        assert_eq!((e.waited_ms, e.gave_up, e.answered), (1000, false, true), "waited until the answer");
    }

    #[test]
    fn a_hunt_call_names_the_members_that_rang_and_the_one_that_answered() {
        let m = |event, at, who: &str| CallEvent { member: Some(who.into()), ..ev(event, at, 180) };
        let Step::Keep(d) = step(None, &m(Kind::Ringing, 10, "m1")) else { panic!() };
        let Step::Keep(d) = step(Some(&d), &m(Kind::Ringing, 11, "m2")) else { panic!() };
        assert!(matches!(step(Some(&d), &m(Kind::Ringing, 12, "m2")), Step::Ignore(_)));
        let Step::Keep(d) = step(Some(&d), &m(Kind::Answered, 20, "m2")) else { panic!() };
        assert_eq!((d.rang.clone(), d.answered_by.clone()), (vec!["m1".to_string(), "m2".to_string()], Some("m2".to_string())));
        // The dialog module's own "answered" (no member) changes nothing.
        assert!(matches!(step(Some(&d), &ev(Kind::Answered, 21, 200)), Step::Ignore(_)));
        // A member named after a bare answer is kept quietly.
        let bare = Dialog { answered_by: None, ..d.clone() };
        let Step::Quiet(q) = step(Some(&bare), &m(Kind::Answered, 22, "m2")) else { panic!() };
        assert_eq!(q.answered_by.as_deref(), Some("m2"));
    }
}
