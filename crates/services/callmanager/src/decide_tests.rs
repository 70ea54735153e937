//! Unit tests of the call state machine: every path of RFC 3725 flow I and its failures.

use super::*;
use Action::*;

fn run(events: &[Event]) -> (Snapshot, Vec<Vec<Action>>, Option<String>) {
    let mut s = Snapshot::new();
    let mut all = vec![];
    let mut ended = None;
    for e in events {
        let d = decide(&s, e);
        assert!(!d.reason.is_empty());
        all.push(d.actions.clone());
        if d.ended.is_some() {
            ended = d.ended.clone();
        }
        s = d.next;
    }
    (s, all, ended)
}

#[test]
fn flow_one_connects_after_the_dialogs_are_durable() {
    let (s, acts, ended) =
        run(&[Event::Ringing(Side::A, 180), Event::Answered(Side::A), Event::Ringing(Side::B, 180), Event::Answered(Side::B)]);
    assert_eq!(acts[1], vec![InviteB]);
    assert_eq!(acts[3], vec![Ack(Side::A), Ack(Side::B), Persist]);
    assert_eq!(s.state, CallState::Connecting, "not connected before the write");
    assert!(ended.is_none());
    let d = decide(&s, &Event::Persisted);
    assert_eq!(d.next.state, CallState::Connected);
    assert_eq!(d.to_string(), "dialogs are durable: connected");
    let d = decide(&d.next, &Event::HangUp("the API".into()));
    assert_eq!(d.actions, vec![Bye(Side::B), Bye(Side::A), Forget]);
    assert_eq!(d.ended.as_deref(), Some("hung up by the API"));
    assert_eq!((d.next.a, d.next.b), (LegState::Ended, LegState::Ended));
}

#[test]
fn a_busy_ends_the_call_with_its_code_and_never_calls_b() {
    let (s, acts, ended) = run(&[Event::Ringing(Side::A, 180), Event::Failed(Side::A, 486, "Busy Here".into())]);
    assert_eq!(s.state, CallState::Ended);
    assert_eq!(acts[1], vec![Forget]);
    assert_eq!(ended.as_deref(), Some("from failed: 486 Busy Here"));
    assert_eq!(s.b, LegState::Idle);
}

#[test]
fn a_not_answering_is_cancelled_and_ends_as_a_timeout() {
    let (s, acts, ended) =
        run(&[Event::Ringing(Side::A, 180), Event::RingTimeout(Side::A, 5), Event::Failed(Side::A, 487, "Request Terminated".into())]);
    assert_eq!(acts[1], vec![Cancel(Side::A)]);
    assert_eq!(ended.as_deref(), Some("no answer from from within 5 s"));
    assert_eq!(s.state, CallState::Ended);
}

#[test]
fn b_declining_ends_a_with_an_ack_then_a_bye() {
    let (s, acts, ended) = run(&[Event::Answered(Side::A), Event::Failed(Side::B, 603, "Decline".into())]);
    assert_eq!(acts[1], vec![AckRefusing(Side::A), Bye(Side::A), Forget]);
    assert_eq!(ended.as_deref(), Some("to failed: 603 Decline"));
    assert_eq!(s.state, CallState::Ended);
}

#[test]
fn b_not_answering_is_cancelled_then_a_is_ended() {
    let (_, acts, ended) =
        run(&[Event::Answered(Side::A), Event::RingTimeout(Side::B, 20), Event::Failed(Side::B, 487, "Request Terminated".into())]);
    assert_eq!(acts[1], vec![Cancel(Side::B)]);
    assert_eq!(acts[2], vec![AckRefusing(Side::A), Bye(Side::A), Forget]);
    assert_eq!(ended.as_deref(), Some("no answer from to within 20 s"));
}

#[test]
fn hang_up_while_a_rings_waits_for_the_cancelled_invite() {
    let (s, acts, ended) = run(&[Event::Ringing(Side::A, 180), Event::HangUp("the API".into())]);
    assert_eq!(acts[1], vec![Cancel(Side::A)]);
    assert!(ended.is_none());
    assert_eq!(s.a, LegState::Cancelling);
    let d = decide(&s, &Event::Failed(Side::A, 487, "Request Terminated".into()));
    assert_eq!(d.ended.as_deref(), Some("hung up by the API"));
    // A 2xx that crossed the CANCEL is ended at once.
    let d = decide(&s, &Event::Answered(Side::A));
    assert_eq!(d.actions, vec![AckRefusing(Side::A), Bye(Side::A), Forget]);
}

#[test]
fn hang_up_while_b_rings_cancels_b_and_ends_a_at_once() {
    let (s, acts, ended) = run(&[Event::Answered(Side::A), Event::Ringing(Side::B, 180), Event::HangUp("the API".into())]);
    assert_eq!(acts[2], vec![Cancel(Side::B), AckRefusing(Side::A), Bye(Side::A), Forget]);
    assert_eq!(ended.as_deref(), Some("hung up by the API"));
    assert_eq!(s.state, CallState::Ended);
}

#[test]
fn a_phone_hanging_up_ends_the_other_leg() {
    let (_, acts, ended) = run(&[Event::Answered(Side::A), Event::Answered(Side::B), Event::Persisted, Event::RemoteBye(Side::B)]);
    assert_eq!(acts[3], vec![Bye(Side::A), Forget]);
    assert_eq!(ended.as_deref(), Some("hung up by to"));
    let (_, acts, _) = run(&[Event::Answered(Side::A), Event::RemoteBye(Side::A)]);
    assert_eq!(acts[1], vec![Cancel(Side::B), Forget]);
}

#[test]
fn a_call_that_cannot_be_made_durable_is_ended() {
    let (s, acts, ended) = run(&[Event::Answered(Side::A), Event::Answered(Side::B), Event::PersistFailed("fenced".into())]);
    assert_eq!(acts[2], vec![Bye(Side::A), Bye(Side::B), Forget]);
    assert!(ended.unwrap().contains("could not be made durable (fenced)"));
    assert_eq!(s.state, CallState::Ended);
}

#[test]
fn max_duration_and_late_events_after_the_end() {
    let (s, _, ended) = run(&[Event::Answered(Side::A), Event::Answered(Side::B), Event::Persisted, Event::MaxDuration(60)]);
    assert_eq!(ended.as_deref(), Some("max_duration_s (60 s) reached"));
    let d = decide(&s, &Event::RemoteBye(Side::A));
    assert!(d.actions.is_empty() && d.ended.is_none());
    assert!(d.reason.contains("already ended"));
}

#[test]
fn a_lost_leg_ends_the_call_with_a_bye_to_the_other() {
    let (_, acts, ended) = run(&[
        Event::Answered(Side::A),
        Event::Answered(Side::B),
        Event::Persisted,
        Event::Lost(Side::A, "481 Call/Transaction Does Not Exist to a session refresh".into()),
    ]);
    assert_eq!(acts[3], vec![Bye(Side::B), Forget]);
    assert_eq!(ended.as_deref(), Some("from lost: 481 Call/Transaction Does Not Exist to a session refresh"));
}
