//! End-to-end: voice notifications through the API of two real `mware run` of one group
//! on a real etcd, Kamailio as the proxy and SIPp phones. kill -9 of the active instance
//! while the answering phone hears the message: the next instance records that attempt
//! `interrupted` (and hangs its call up), calls again as the next attempt, and finishes
//! every number. At every phone each INVITE is one attempt of the record (by Call-ID),
//! so no number is called twice for one attempt. Bad input is refused naming the field.

mod common;

use common::calls::*;
use common::*;
use mware_testkit::sip::Phone;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn api(d: &Daemon, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let (code, v, _) = request(method, &format!("{}/api/callmanager/v1{path}", d.api), Some(TOKEN), body);
    (code, v)
}

/// The Call-IDs of the INVITEs a SIPp phone received, each once.
fn invite_call_ids(trace: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for block in trace.split("----------") {
        let mut lines = block.lines().skip_while(|l| !l.contains("message received")).skip(1).filter(|l| !l.trim().is_empty());
        if lines.next().is_some_and(|l| l.trim().starts_with("INVITE ")) {
            if let Some(c) = block.lines().find_map(|l| l.trim().strip_prefix("Call-ID:").map(|c| c.trim().to_string())) {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
    }
    out
}

fn wait(d: &Daemon, id: &str, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (code, v) = api(d, reqwest::Method::GET, &format!("/notifications/{id}"), None);
        if code == 200 && pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} not within {secs} s: {code} {v}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn number<'a>(n: &'a Value, user: &str) -> &'a Value {
    n["numbers"].as_array().unwrap().iter().find(|x| x["to"] == format!("sip:{user}@{DOMAIN}")).unwrap()
}

#[test]
fn kill9_mid_notification_no_attempt_is_called_twice_and_every_number_finishes() {
    let mut s = site(json!({}));
    let rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_port = rtp.local_addr().unwrap().port().to_string();
    let phone =
        |sc: &str, user: &str, args: &[&str]| Phone::start(&scenario(sc), s.dir.path(), user, DOMAIN, s.kam.sip_port, args).unwrap();
    let mut ann = phone("uas_notify.xml", "ann", &["-d", "200", "-m", "2", "-key", "rtp_port", &rtp_port]);
    let bob = phone("uas_busy.xml", "bob", &["-m", "3"]);
    let carl = phone("uas_noanswer.xml", "carl", &["-m", "3"]);

    // Bad input first: each refused naming the field, nothing created.
    let past = "2020-01-01T00:00:00Z";
    let ann_uri = format!("sip:ann@{DOMAIN}");
    let cases = [
        (json!({"domain": DOMAIN, "to": [ann_uri], "text": "hi", "window": {"not_after": past}}), "window.not_after", "in the future"),
        (json!({"domain": DOMAIN, "to": [ann_uri], "text": "x".repeat(1001)}), "text", "1 to 1000 characters"),
        (json!({"domain": DOMAIN, "to": [], "text": "hi"}), "to", "1 to 100"),
        (json!({"domain": DOMAIN, "to": [ann_uri], "text": "hi", "priority": 1}), "priority", "unknown field"),
        (json!({"domain": DOMAIN, "to": [ann_uri], "audio": "/etc/passwd"}), "audio", ".wav"),
        (json!({"domain": DOMAIN, "to": ["sip:ann@example.test\r\nVia: evil"], "text": "hi"}), "to[0]", "U+000D"),
    ];
    for (body, field, words) in cases {
        let (code, v) = api(&s.ds[0], reqwest::Method::POST, "/notifications", Some(&body));
        assert_eq!((code, v["field"].clone()), (400, json!(field)), "{v}");
        assert!(v["error"].as_str().unwrap().contains(words), "{words}: {v}");
    }
    let (code, v) = api(&s.ds[0], reqwest::Method::GET, "/notifications", None);
    assert_eq!((code, v["notifications"].as_array().map(Vec::len)), (200, Some(0)), "{v}");

    let body = json!({"domain": DOMAIN, "to": ["sip:ann@example.test", "sip:bob@example.test", "sip:carl@example.test"], "caller_id": "Alerts",
        "text": "This is a test notification from mware. The building will be closed tomorrow. Please press one to confirm.",
        "attempts": 3, "retry_after_s": 2, "answer_timeout_s": 3, "confirm_digit": "1"});
    let (code, v) = api(&s.ds[1], reqwest::Method::POST, "/notifications", Some(&body));
    assert_eq!(code, 201, "created through the passive instance, forwarded: {v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert!(v["message_ms"].as_u64().unwrap() > 3000, "{v}");

    // ann answered and hears the message: kill -9 the instance playing it.
    wait(&s.ds[0], &id, 30, "ann answered", |n| number(n, "ann")["attempts"][0]["answered_ms"].is_u64());
    std::thread::sleep(Duration::from_millis(500));
    s.ds[0].child.kill9();
    s.ds[1].wait_status(Duration::from_secs(20), running);
    let n = wait(&s.ds[1], &id, 90, "every number final", |n| n["state"] != "running");
    assert_eq!(n["state"], "done", "{n:#}");
    assert_eq!(n["instance"], "m20");

    let a = number(&n, "ann");
    assert_eq!(a["state"], "confirmed", "{n:#}");
    assert_eq!(a["attempts"][0]["outcome"], "interrupted", "{a:#}");
    assert_eq!(a["attempts"][0]["instance"], "m10");
    assert_eq!(a["attempts"][1]["outcome"], "confirmed", "the retry is the next attempt: {a:#}");
    assert_eq!(a["attempts"][1]["instance"], "m20");
    assert_eq!(number(&n, "bob")["state"], "busy", "{n:#}");
    assert_eq!(number(&n, "carl")["state"], "no_answer", "{n:#}");

    // At every phone: each INVITE is one attempt of the record, no attempt twice.
    std::thread::sleep(Duration::from_secs(1));
    for (p, user, max) in [(&ann, "ann", 3), (&bob, "bob", 3), (&carl, "carl", 3)] {
        let x = number(&n, user);
        let attempts = x["attempts"].as_array().unwrap();
        assert!(attempts.len() <= max, "{user}: {x:#}");
        let by_call: BTreeMap<String, u64> =
            attempts.iter().map(|a| (a["call_id"].as_str().unwrap().to_string(), a["index"].as_u64().unwrap())).collect();
        let idx: Vec<u64> = attempts.iter().map(|a| a["index"].as_u64().unwrap()).collect();
        assert_eq!(idx, (1..=attempts.len() as u64).collect::<Vec<_>>(), "{user}: indices 1, 2, ... once each");
        let seen = invite_call_ids(&p.trace_text());
        for c in &seen {
            assert!(by_call.contains_key(c), "{user}: an INVITE ({c}) that no attempt names: {x:#}");
        }
        let not_interrupted = attempts.iter().filter(|a| a["outcome"] != "interrupted").count();
        assert!(seen.len() >= not_interrupted && seen.len() <= attempts.len(), "{user}: {} INVITEs for {x:#}", seen.len());
    }
    // ann's interrupted call was hung up by the next instance; her SIPp ended both calls.
    assert_eq!(ann.wait_exit(Duration::from_secs(20)), Some(0), "{:#?}", ann.messages());

    let out = std::process::Command::new(bin())
        .args(["notifications", "show", &id, "--api", &s.ds[1].api])
        .env("MWARE_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && shown.contains("interrupted") && shown.contains("confirmed"), "{shown}");
    let metrics = get_text(&format!("{}/metrics", s.ds[1].api)).unwrap();
    assert!(metrics.contains("mware_callmanager_notification_attempts_total{outcome=\"interrupted\"}"), "{metrics}");
}
