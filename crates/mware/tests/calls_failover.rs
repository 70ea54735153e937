//! End-to-end: the callmanager of two real `mware run` processes of one group on a real
//! etcd, a real Kamailio and SIPp phones. A call placed through the API on the active
//! instance connects both phones; after kill -9 of that instance the next one lists the
//! call (its dialogs were written, fenced, before it was reported connected) and its
//! `DELETE` ends both legs with a BYE each phone answers. The API refuses hostile input
//! with the field named and answers 429 with Retry-After past the limits.

mod common;

use common::calls::*;
use common::*;
use mware_testkit::sip::Phone;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[test]
fn a_connected_call_survives_kill9_of_the_active_instance_and_is_hung_up_by_the_next() {
    let mut s = site(json!({}));
    let mut alice = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "1001", DOMAIN, s.kam.sip_port, &["-m", "1"]).unwrap();
    let mut bob = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "bob", DOMAIN, s.kam.sip_port, &["-m", "1"]).unwrap();
    let body =
        json!({"domain": DOMAIN, "from": "1001", "to": format!("sip:bob@{DOMAIN}"), "caller_id": "Operator", "variables": {"ticket": 7}});
    let (code, v, _) = request(reqwest::Method::POST, &format!("{}/api/callmanager/v1/calls", s.ds[0].api), Some(TOKEN), Some(&body));
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let c = wait_call(&s.ds[0], &id, "connected", 15);
    assert_eq!(c["legs"][0]["party"], format!("sip:1001@{DOMAIN}"));
    assert_eq!(c["legs"][1]["code"], 200);
    assert_eq!(c["variables"]["ticket"], 7);
    let metrics = get_text(&format!("{}/metrics", s.ds[0].api)).unwrap();
    assert!(metrics.contains("mware_callmanager_calls{state=\"connected\"} 1"), "{metrics}");

    // Each state change of the call was an event on m10's channel.
    let events = sse_text(&format!("{}/api/v1/events?since=0", s.ds[0].api), Duration::from_secs(2));
    for state in ["dialing", "ringing", "answered", "connecting", "connected"] {
        assert!(
            events.contains(&format!("\"type\":\"call\",\"id\":\"{id}\",\"domain\":\"{DOMAIN}\",\"state\":\"{state}\"")),
            "{state}: {events}"
        );
    }

    let killed = Instant::now();
    s.ds[0].child.kill9();
    s.ds[1].wait_status(Duration::from_secs(20), running);
    eprintln!("m20 runs the callmanager {:?} after the kill", killed.elapsed());
    let (code, list, _) =
        request(reqwest::Method::GET, &format!("{}/api/callmanager/v1/calls?domain={DOMAIN}", s.ds[1].api), Some(TOKEN), None);
    assert_eq!(code, 200, "{list}");
    let calls = list["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{list}");
    assert_eq!(calls[0]["id"], id.as_str());
    assert_eq!(calls[0]["state"], "connected");
    assert_eq!(calls[0]["instance"], "m20");

    let cli = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .arg("calls")
            .args(args)
            .args(["--api", &s.ds[1].api])
            .env("MWARE_API_TOKEN", TOKEN)
            .output()
            .unwrap();
        assert!(out.status.success(), "mware calls {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = cli(&["show", &id]);
    assert!(shown.contains("connected (controlled by m20") && shown.contains("sip:bob@example.test"), "{shown}");

    let (code, v, _) = request(reqwest::Method::DELETE, &format!("{}/api/callmanager/v1/calls/{id}", s.ds[1].api), Some(TOKEN), None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "ended");
    assert_eq!(v["ended"], "hung up by the API");
    alice.wait_for("BYE", Duration::from_secs(5)).unwrap();
    bob.wait_for("BYE", Duration::from_secs(5)).unwrap();
    assert_eq!(alice.wait_exit(Duration::from_secs(10)), Some(0), "alice answered the BYE of the new instance: {:#?}", alice.messages());
    assert_eq!(bob.wait_exit(Duration::from_secs(10)), Some(0), "bob answered the BYE of the new instance: {:#?}", bob.messages());
    let (_, list, _) = request(reqwest::Method::GET, &format!("{}/api/callmanager/v1/calls", s.ds[1].api), Some(TOKEN), None);
    assert_eq!(list["calls"][0]["state"], "ended", "{list}");
    let listed = cli(&["list", "--domain", DOMAIN]);
    assert!(listed.contains(&id) && listed.contains("hung up by the API"), "{listed}");
}

#[test]
fn hostile_input_is_refused_naming_the_field_and_limits_answer_429() {
    let s = site(json!({"calls_per_second": 2, "calls_per_domain": 100, "calls_per_site": 100}));
    let url = format!("{}/api/callmanager/v1/calls", s.ds[0].api);
    let post = |body: Value, token: Option<&str>| request(reqwest::Method::POST, &url, token, Some(&body));
    let (code, _, _) = post(json!({"domain": DOMAIN, "from": "1", "to": "2"}), None);
    assert_eq!(code, 401, "a mutating call needs the token");
    let cases = [
        (json!({"domain": DOMAIN, "from": "1001", "to": "9".repeat(100_000)}), "to", "at most 256 bytes"),
        (json!({"domain": DOMAIN, "from": "1001", "to": "sip:bob@example.test\r\nVia: SIP/2.0/UDP evil"}), "to", "U+000D"),
        (json!({"domain": DOMAIN, "from": "http://x/y", "to": "1002"}), "from", "scheme"),
        (json!({"domain": DOMAIN, "from": "1001", "to": "1002", "caller_id": "a\"b"}), "caller_id", "quotes"),
        (json!({"domain": DOMAIN, "from": "1001", "to": "1002", "answer_timeout_s": 31}), "answer_timeout_s", "1..=30"),
        (json!({"domain": DOMAIN, "to": "1002", "bogus": 1}), "bogus", "unknown field"),
        (json!({"domain": "not a domain", "from": "1001", "to": "1002"}), "domain", ""),
    ];
    for (body, field, words) in cases {
        let (code, v, _) = post(body.clone(), Some(TOKEN));
        assert_eq!(code, 400, "{v}");
        assert_eq!(v["field"], field, "{v}");
        assert!(v["error"].as_str().unwrap().contains(words), "{v}");
        assert!(v["error"].as_str().unwrap().len() < 2000, "the error does not echo 100 kB back");
    }
    // Every problem is reported, not only the first.
    let (_, v, _) = post(json!({"domain": DOMAIN, "from": "x y", "to": "\n"}), Some(TOKEN));
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("from:") && e.contains("to:"), "{v}");
    let (code, v, _) = request(reqwest::Method::GET, &format!("{url}/1-00"), Some(TOKEN), None);
    assert_eq!(code, 404, "{v}");
    let (code, _, _) = request(reqwest::Method::GET, &format!("{url}/nonsense"), Some(TOKEN), None);
    assert_eq!(code, 404);
    // A flood past calls_per_second: the third call in one second is refused (nobody is
    // registered, so the calls that pass fail at once with 404 from the proxy).
    let mut limited = None;
    for i in 0..6 {
        let (code, v, retry) = post(json!({"domain": DOMAIN, "from": format!("{}", 3000 + i), "to": "1002"}), Some(TOKEN));
        if code == 429 {
            limited = Some((v, retry));
            break;
        }
        assert_eq!(code, 201, "{v}");
    }
    let (v, retry) = limited.expect("a 429 past calls_per_second");
    assert_eq!(retry.as_deref(), Some("1"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("calls_per_second"), "{v}");
    assert_eq!(v["retryable"], true);
}

#[test]
fn a_phone_hanging_up_after_the_failover_reaches_the_next_instance_on_another_address() {
    let mut s = site_on(json!({}), Layout::TwoHosts);
    let mut alice = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "alice", DOMAIN, s.kam.sip_port, &["-m", "1"]).unwrap();
    // Bob rings 2 s, talks 3 s, then hangs up: after the failover.
    let mut bob =
        Phone::start(&scenario("uas_hangup.xml"), s.dir.path(), "bob", DOMAIN, s.kam.sip_port, &["-d", "2000", "-m", "1"]).unwrap();
    let body = json!({"domain": DOMAIN, "from": format!("sip:alice@{DOMAIN}"), "to": format!("sip:bob@{DOMAIN}")});
    let (code, v, _) = request(reqwest::Method::POST, &format!("{}/api/callmanager/v1/calls", s.ds[0].api), Some(TOKEN), Some(&body));
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    wait_call(&s.ds[0], &id, "connected", 15);
    let invite = bob.trace_text();
    assert!(invite.contains("Contact: <sip:mware-g1@127.0.0.1:"), "the INVITE names the group contact: {invite}");
    s.ds[0].child.kill9();
    s.ds[1].wait_status(Duration::from_secs(20), running);
    let (_, list, _) = request(reqwest::Method::GET, &format!("{}/api/callmanager/v1/calls", s.ds[1].api), Some(TOKEN), None);
    assert_eq!(list["calls"][0]["state"], "connected", "{list}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let v = loop {
        let (_, v, _) = request(reqwest::Method::GET, &format!("{}/api/callmanager/v1/calls/{id}", s.ds[1].api), Some(TOKEN), None);
        if v["state"] == "ended" {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "not ended: {v}\nbob: {}\nkamailio: {}",
            bob.trace_text(),
            std::fs::read_to_string(s.dir.path().join("kamailio.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(v["ended"], "hung up by to", "{v}");
    assert_eq!(
        bob.wait_exit(Duration::from_secs(10)),
        Some(0),
        "bob's BYE reached m20 on 127.0.0.2 and was answered: {:#?}",
        bob.messages()
    );
    alice.wait_for("BYE", Duration::from_secs(5)).unwrap();
    assert_eq!(alice.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_call_for_another_groups_domain_is_forwarded_to_that_groups_active_instance() {
    let s = site_on(json!({}), Layout::TwoGroups);
    let alice = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "alice", OTHER, s.kam.sip_port, &["-m", "1"]).unwrap();
    let bob = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "bob", OTHER, s.kam.sip_port, &["-m", "1"]).unwrap();
    // Asked of m10 (group 1); the body's domain belongs to group 2, whose m20 places it.
    let body = json!({"domain": OTHER.to_uppercase(), "from": format!("sip:alice@{OTHER}"), "to": format!("sip:bob@{OTHER}")});
    let (code, v, _) = request(reqwest::Method::POST, &format!("{}/api/callmanager/v1/calls", s.ds[0].api), Some(TOKEN), Some(&body));
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("2-"), "placed by group 2: {id}");
    let c = wait_call(&s.ds[0], &id, "connected", 15);
    assert_eq!(c["instance"], "m20", "{c}");
    assert_eq!(c["domain"], OTHER, "{c}");
    // The list of a domain is forwarded the same way; group 1's own list does not hold it.
    let list = |q: &str| request(reqwest::Method::GET, &format!("{}/api/callmanager/v1/calls{q}", s.ds[0].api), Some(TOKEN), None);
    let (code, v, _) = list(&format!("?domain={OTHER}"));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["calls"][0]["id"], id.as_str(), "{v}");
    let (_, v, _) = list("");
    assert_eq!(v["calls"].as_array().map(Vec::len), Some(0), "group 1 has no call: {v}");
    // A domain nobody serves is answered by the group asked, naming the field with the rest.
    let (code, v, _) = request(
        reqwest::Method::POST,
        &format!("{}/api/callmanager/v1/calls", s.ds[1].api),
        Some(TOKEN),
        Some(&json!({"domain": "bad domain", "from": "x y", "to": "sip:bob@other.test"})),
    );
    assert_eq!(code, 400, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("domain:") && e.contains("from:"), "every problem: {v}");
    let (code, v, _) = request(reqwest::Method::DELETE, &format!("{}/api/callmanager/v1/calls/{id}", s.ds[0].api), Some(TOKEN), None);
    assert_eq!(code, 200, "{v}");
    alice.wait_for("BYE", Duration::from_secs(5)).unwrap();
    bob.wait_for("BYE", Duration::from_secs(5)).unwrap();
}

#[test]
fn a_call_in_set_up_at_kill9_is_listed_ended_by_the_next_instance_and_its_answered_leg_hung_up() {
    let mut s = site(json!({}));
    let mut alice = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "alice", DOMAIN, s.kam.sip_port, &["-m", "1"]).unwrap();
    // Bob rings 8 s: the call is `answered` (alice up, not yet ACKed) when m10 dies.
    let _bob = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "bob", DOMAIN, s.kam.sip_port, &["-d", "8000", "-m", "1"]).unwrap();
    let body = json!({"domain": DOMAIN, "from": format!("sip:alice@{DOMAIN}"), "to": format!("sip:bob@{DOMAIN}")});
    let (code, v, _) = request(reqwest::Method::POST, &format!("{}/api/callmanager/v1/calls", s.ds[0].api), Some(TOKEN), Some(&body));
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    wait_call(&s.ds[0], &id, "answered", 10);
    std::thread::sleep(Duration::from_millis(300)); // its set-up record is queued, not awaited
    s.ds[0].child.kill9();
    s.ds[1].wait_status(Duration::from_secs(20), running);
    let c = wait_call(&s.ds[1], &id, "ended", 10);
    let why = c["ended"].as_str().unwrap();
    assert!(why.contains("set-up interrupted: m10 stopped while the call was answered"), "{c}");
    assert_eq!(c["instance"], "m20", "{c}");
    // Alice got the ACK her 200 waited for, then a BYE, from m20: she is not left hanging.
    alice.wait_for("BYE", Duration::from_secs(5)).unwrap();
    assert_eq!(alice.wait_exit(Duration::from_secs(10)), Some(0), "alice was ACKed and hung up: {:#?}", alice.messages());
    let (_, list, _) = request(reqwest::Method::GET, &format!("{}/api/callmanager/v1/calls", s.ds[1].api), Some(TOKEN), None);
    assert_eq!(list["calls"].as_array().map(Vec::len), Some(1), "listed once, ended: {list}");
}
