use super::*;
use crate::order::Attempt;
use serde_json::json;

const P: Policy = Policy { attempts: 2, retry_after_ms: 10_000, answer_timeout_s: 20, busy_retry_ms: 5000 };

fn order() -> Order {
    Order {
        id: "1-ab".into(),
        domain: "example.test".into(),
        number: "2001".into(),
        queue: Some("sales".into()),
        operator: None,
        not_before_ms: Some(1_000),
        not_after_ms: Some(100_000),
        note: None,
        created_ms: 500,
        state: OrderState::Waiting,
        next_at_ms: 0,
        reason: None,
        attempts: vec![],
        ended_ms: None,
    }
}

fn attempt(n: u32) -> Attempt {
    Attempt {
        n,
        operator: "1001".into(),
        section: "op-1001".into(),
        section_token: 7,
        skipped_busy: vec![],
        started_ms: 2_000,
        call_id: None,
        connected_ms: None,
        ended_ms: None,
        outcome: None,
        detail: None,
        instance: "m10".into(),
    }
}

#[test]
fn an_order_waits_for_its_window_then_dials_then_follows() {
    let mut o = order();
    assert_eq!(next(&o, &P, 999), Step::Wait(1_000));
    assert_eq!(next(&o, &P, 1_000), Step::Dial);
    o.attempts.push(attempt(1));
    assert_eq!(next(&o, &P, 1_000), Step::Follow, "an attempt under way is never dialled again");
    assert_eq!(next(&o, &P, 200_000), Step::Follow, "even past the window: it is followed to its end");
}

#[test]
fn no_answer_retries_after_the_interval_then_gives_up() {
    let mut o = order();
    o.attempts.push(attempt(1));
    settle(&mut o, Outcome::CustomerNoAnswer, "no answer from to within 20 s".into(), &P, 3_000);
    assert_eq!(o.state, OrderState::Waiting);
    assert_eq!(next(&o, &P, 12_999), Step::Wait(13_000));
    assert_eq!(next(&o, &P, 13_000), Step::Dial);
    o.attempts.push(attempt(2));
    settle(&mut o, Outcome::OperatorNoAnswer, "x".into(), &P, 14_000);
    assert_eq!(o.state, OrderState::Failed);
    assert!(o.reason.as_deref().unwrap().contains("after 2 attempts"), "{:?}", o.reason);
    assert_eq!(next(&o, &P, 20_000), Step::Nothing);
}

#[test]
fn a_connection_completes_and_a_closing_window_fails() {
    let mut o = order();
    o.attempts.push(attempt(1));
    settle(&mut o, Outcome::Connected, "hung up by to".into(), &P, 3_000);
    assert_eq!((o.state, o.ended_ms), (OrderState::Completed, Some(3_000)));
    let mut o = order();
    o.attempts.push(attempt(1));
    settle(&mut o, Outcome::CustomerBusy, "to failed: 486".into(), &P, 95_000);
    assert_eq!(o.state, OrderState::Failed, "the next attempt would start after not_after");
    let mut o = order();
    o.next_at_ms = 0;
    assert!(matches!(next(&o, &P, 100_001), Step::Fail(_)));
    o.state = OrderState::Cancelled;
    o.attempts.push(attempt(1));
    settle(&mut o, Outcome::Cancelled, "hung up by the API".into(), &P, 3_000);
    assert_eq!(o.state, OrderState::Cancelled, "a cancelled order stays cancelled");
    assert_eq!(o.attempts[0].outcome, Some(Outcome::Cancelled));
}

#[test]
fn calls_are_classified_from_the_callmanagers_view() {
    let call = |state: &str, a: Option<u16>, b: Option<u16>, ended: &str, connected: Option<u64>| json!({"state": state, "ended": ended, "connected_ms": connected, "legs": [{"code": a}, {"code": b}]});
    assert_eq!(classify(&call("ringing", Some(180), None, "", None)), None);
    let c = |v| classify(&v).unwrap().0;
    assert_eq!(c(call("ended", Some(200), Some(200), "hung up by to", Some(5))), Outcome::Connected);
    assert_eq!(c(call("ended", Some(487), None, "no answer from from within 20 s", None)), Outcome::OperatorNoAnswer);
    assert_eq!(c(call("ended", Some(486), None, "from failed: 486 Busy Here", None)), Outcome::OperatorRefused);
    assert_eq!(c(call("ended", Some(200), Some(487), "no answer from to within 20 s", None)), Outcome::CustomerNoAnswer);
    assert_eq!(c(call("ended", Some(200), Some(486), "to failed: 486 Busy Here", None)), Outcome::CustomerBusy);
    assert_eq!(c(call("ended", Some(200), Some(500), "to failed: 500", None)), Outcome::Failed);
    assert_eq!(c(call("ended", Some(180), None, "set-up interrupted: m10 stopped", None)), Outcome::Interrupted);
}

#[test]
fn each_attempt_starts_with_the_next_operator() {
    assert_eq!(rotation(3, 1), vec![0, 1, 2]);
    assert_eq!(rotation(3, 2), vec![1, 2, 0]);
    assert_eq!(rotation(3, 4), vec![0, 1, 2]);
    assert_eq!(rotation(1, 9), vec![0]);
}
