//! End-to-end: callback orders on two real `mware run` processes (etcd), a real Kamailio
//! and SIPp phones. An order rings a free operator of its queue first (an operator whose
//! critical section a call script holds is skipped), then the customer, and connects
//! them; an unanswered customer is called again after the retry interval, once per
//! attempt, until the attempts are used; bad input is refused naming the field and
//! changing nothing; an order can be cancelled; the CLI, metrics and status show them.

mod common;

use common::callback::*;
use common::calls::*;
use common::*;
use mware_testkit::sip::Phone;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

fn section() -> Value {
    json!({"queues": [{"name": "sales", "attempts": 2, "retry_after_s": 1, "answer_timeout_s": 4,
        "operators": [{"uri": "1001", "section": "op-1001"}, {"uri": "1002", "section": "op-1002"}]}]})
}

#[test]
fn an_order_rings_a_free_operator_then_the_customer_retries_no_answer_and_refuses_bad_input() {
    let s = callback_site(section());
    let d = &s.ds[0];
    // 1001's critical section is held by a call script: 1001 is busy and never rung.
    hold_section(d, "op-1001", "script-call-77");
    let busy_op = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "1001", DOMAIN, s.kam.sip_port, &[]).unwrap();
    let op = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "1002", DOMAIN, s.kam.sip_port, &[]).unwrap();
    // The customer answers after 1 s of ringing and hangs up 1 s later.
    let customer =
        Phone::start(&scenario("uas_hangup.xml"), s.dir.path(), "2001", DOMAIN, s.kam.sip_port, &["-d", "1000", "-m", "1"]).unwrap();

    let (code, o) =
        cb(d, Method::POST, "/orders", Some(&json!({"domain": DOMAIN, "number": "2001", "queue": "sales", "note": "about the bill"})));
    assert_eq!(code, 201, "{o}");
    let id = o["id"].as_str().unwrap().to_string();
    let o = wait_order(d, &id, "completed", 60);
    let attempts = o["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{o:#}");
    let a = &attempts[0];
    assert_eq!(a["operator"], "1002", "{o:#}");
    assert_eq!(a["skipped_busy"], json!(["1001"]), "the busy operator was skipped: {o:#}");
    assert_eq!(a["outcome"], "connected", "{o:#}");
    assert!(a["connected_ms"].is_u64() && a["ended_ms"].is_u64(), "{o:#}");
    // The call: the operator rung first (leg a), then the customer (leg b), both answered.
    let call = a["call_id"].as_str().unwrap();
    let (code, c, _) = request(Method::GET, &format!("{}/api/callmanager/v1/calls/{call}", d.api), Some(TOKEN), None);
    assert_eq!(code, 200, "{c}");
    assert_eq!(c["legs"][0]["party"], format!("sip:1002@{DOMAIN}"), "{c:#}");
    assert_eq!(c["legs"][1]["party"], format!("sip:2001@{DOMAIN}"), "{c:#}");
    assert!(c["connected_ms"].is_u64(), "{c:#}");
    assert_eq!(c["variables"], json!({"callback_order": id, "attempt": 1}));
    // Both phones got the call (INVITE then ACK of their 200) and its end.
    for (p, what) in [(&op, "ACK"), (&customer, "ACK")] {
        p.wait_for(what, Duration::from_secs(5)).unwrap();
    }
    assert_eq!(invites(&customer.trace_text()).len(), 1, "{:#?}", customer.messages());
    assert!(busy_op.messages().iter().all(|m| !m.starts_with("< INVITE")), "the busy operator was rung: {:#?}", busy_op.messages());
    // The operator's section was released; the script's hold is untouched.
    assert!(section_owners(d, "op-1002").is_empty(), "{:?}", section_owners(d, "op-1002"));
    assert_eq!(section_owners(d, "op-1001"), vec!["script-call-77".to_string()]);

    // No answer: the customer is called once per attempt, the attempts a retry apart.
    let silent = Phone::start(&scenario("uas_noanswer.xml"), s.dir.path(), "2002", DOMAIN, s.kam.sip_port, &[]).unwrap();
    let (code, o) = cb(d, Method::POST, "/orders", Some(&json!({"domain": DOMAIN, "number": "sip:2002@example.test", "queue": "sales"})));
    assert_eq!(code, 201, "{o}");
    let id2 = o["id"].as_str().unwrap().to_string();
    let o = wait_order(d, &id2, "failed", 90);
    let at = o["attempts"].as_array().unwrap();
    assert_eq!(at.len(), 2, "{o:#}");
    for a in at {
        assert_eq!(a["outcome"], "customer_no_answer", "{o:#}");
        assert_eq!(a["operator"], "1002", "{o:#}");
    }
    let gap = at[1]["started_ms"].as_u64().unwrap() - at[0]["ended_ms"].as_u64().unwrap();
    assert!(gap >= 1000, "the retry interval was kept: {gap} ms");
    assert!(o["reason"].as_str().unwrap().contains("after 2 attempts"), "{o:#}");
    assert_eq!(invites(&silent.trace_text()).len(), 2, "one call per attempt: {:#?}", silent.messages());

    // Bad input: each refused with the field named, nothing stored.
    let (_, before) = cb(d, Method::GET, &format!("/orders?domain={DOMAIN}"), None);
    let cases = [
        (json!({"domain": DOMAIN, "number": "2003", "queue": "sales", "not_after": "2020-01-01T00:00:00Z"}), "not_after", "in the future"),
        (json!({"domain": DOMAIN, "number": "2003", "queue": "support"}), "queue", "unknown queue"),
        (json!({"domain": DOMAIN, "number": "2003", "queue": "sales", "callback_at": 1}), "callback_at", "unknown field"),
        (json!({"domain": DOMAIN, "number": "2003\r\nVia: SIP/2.0/UDP evil", "queue": "sales"}), "number", "U+000D"),
        (json!({"domain": "not a domain", "number": "2003", "queue": "sales"}), "domain", ""),
    ];
    for (body, field, words) in cases {
        let (code, v) = cb(d, Method::POST, "/orders", Some(&body));
        assert_eq!(code, 400, "{body}: {v}");
        assert_eq!(v["field"], field, "{v}");
        assert!(v["error"].as_str().unwrap().contains(words), "{v}");
    }
    let (code, _, _) = request(Method::POST, &format!("{}/api/callback/v1/orders", d.api), None, Some(&json!({"domain": DOMAIN})));
    assert_eq!(code, 401, "an order needs the token");
    let (_, after) = cb(d, Method::GET, &format!("/orders?domain={DOMAIN}"), None);
    assert_eq!(before["total"], after["total"], "nothing stored");
    assert_eq!(after["total"], 2);

    // Cancel: a waiting order (its window opens in an hour) is cancelled, durable, once.
    let later = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 + 3_600_000;
    let (code, o) =
        cb(d, Method::POST, "/orders", Some(&json!({"domain": DOMAIN, "number": "2004", "operator": "1002", "not_before": later})));
    assert_eq!(code, 201, "{o}");
    let id3 = o["id"].as_str().unwrap().to_string();
    let (code, o) = cb(d, Method::DELETE, &format!("/orders/{id3}"), None);
    assert_eq!((code, o["state"].as_str()), (200, Some("cancelled")), "{o}");
    let (code, o) = cb(d, Method::DELETE, &format!("/orders/{id3}"), None);
    assert_eq!(code, 409, "{o}");
    let (_, list) = cb(d, Method::GET, &format!("/orders?domain={DOMAIN}&state=cancelled"), None);
    assert_eq!(list["total"], 1, "{list}");
    let (code, v) = cb(d, Method::GET, "/orders?state=lost", None);
    assert_eq!((code, v["field"].as_str()), (400, Some("state")), "{v}");

    // The CLI, through the passive instance (forwarded); metrics; status.
    let out = std::process::Command::new(bin())
        .args(["callback", "list", "--domain", DOMAIN, "--api", &s.ds[1].api])
        .env("MWARE_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&id) && text.contains("completed") && text.contains(&id2) && text.contains("failed"), "{text}");
    let out = std::process::Command::new(bin())
        .args(["callback", "show", &id2, "--api", &s.ds[1].api])
        .env("MWARE_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("attempt 2") && text.contains("customer_no_answer"), "{text}");
    // The orders gauge is refreshed by the service's tick: wait for one.
    let want = [
        "mware_callback_completed_total 1",
        "mware_callback_attempts_total{outcome=\"customer_no_answer\"} 2",
        "mware_callback_orders{state=\"cancelled\"} 1",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = get_text(&format!("{}/metrics", d.api)).unwrap();
        let missing: Vec<&str> = want.iter().copied().filter(|m| !metrics.contains(m)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{missing:?} not in the metrics");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, st) = d.get("/api/v1/status").unwrap();
    let svc = st["services"].as_array().unwrap().iter().find(|x| x["name"] == "callback").cloned().unwrap();
    assert!(svc.to_string().contains("\"completed\":1"), "{svc}");
}
