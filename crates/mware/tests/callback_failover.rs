//! End-to-end: a callback order survives kill -9 of the active `mware run` in the middle
//! of an attempt (while the customer's phone rings). The next active instance neither
//! loses the order nor rings the customer again for that attempt: it finds the attempt
//! open, ends it (interrupted), and makes the next attempt, which connects. The SIPp
//! customer's trace shows one call per attempt.

mod common;

use common::callback::*;
use common::calls::*;
use mware_testkit::sip::Phone;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn kill9_while_the_customer_rings_neither_loses_the_order_nor_rings_twice_for_one_attempt() {
    let mut s = callback_site(json!({"queues": [{"name": "sales", "attempts": 3, "retry_after_s": 1, "answer_timeout_s": 10,
        "operators": [{"uri": "1002", "section": "op-1002"}]}]}));
    let op = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "1002", DOMAIN, s.kam.sip_port, &[]).unwrap();
    // The customer rings 3 s before answering, talks 2 s, hangs up.
    let customer = Phone::start(&scenario("uas_hangup.xml"), s.dir.path(), "2001", DOMAIN, s.kam.sip_port, &["-d", "3000"]).unwrap();
    let (code, o) = cb(&s.ds[0], Method::POST, "/orders", Some(&json!({"domain": DOMAIN, "number": "2001", "queue": "sales"})));
    assert_eq!(code, 201, "{o}");
    let id = o["id"].as_str().unwrap().to_string();

    customer.wait_for("INVITE", Duration::from_secs(20)).unwrap();
    let killed = Instant::now();
    s.ds[0].child.kill9();
    s.ds[1].wait_status(Duration::from_secs(30), callback_running);
    eprintln!("m20 runs the callback service {:?} after the kill", killed.elapsed());

    let o = wait_order(&s.ds[1], &id, "completed", 90);
    eprintln!("{o:#}");
    let at = o["attempts"].as_array().unwrap();
    assert!(at.len() >= 2, "{o:#}");
    assert_eq!(at[0]["instance"], "m10", "{o:#}");
    assert_eq!(at[0]["outcome"], "interrupted", "the attempt cut by the kill ended as such: {o:#}");
    let last = at.last().unwrap();
    assert_eq!(last["outcome"], "connected", "{o:#}");
    assert_eq!(last["instance"], "m20", "{o:#}");
    // At most one call per attempt at the customer's phone (its SIPp trace).
    let calls = invites(&customer.trace_text());
    assert!(calls.len() <= at.len(), "{} calls for {} attempts: {:#?}", calls.len(), at.len(), customer.messages());
    assert_eq!(calls.len(), 2, "the interrupted attempt's call, then the connected one: {:#?}", customer.messages());
    assert_eq!(invites(&op.trace_text()).len(), at.len(), "one operator call per attempt: {:#?}", op.messages());
    // The operator's section is free again (released by m20, the kill's holder too).
    assert!(section_owners(&s.ds[1], "op-1002").is_empty(), "{:?}", section_owners(&s.ds[1], "op-1002"));
}
