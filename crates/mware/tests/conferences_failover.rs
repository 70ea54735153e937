//! End-to-end: conferences through the API of two real `mware run` on etcd, with a real
//! Janus AudioBridge as the mixer, Kamailio as the proxy and three baresip phones.
//! Participants are dialled in through the API and hear each other; after kill -9 of
//! the active instance the next one lists the conference, the phones still hear each
//! other (the audio never passed through mware, and the mixer session is kept alive by
//! the next instance), and it mutes, removes and ends through the same API; the
//! conference was recorded, and its WAV holds the tone. Who is talking is shown (alice
//! plays a tone, bob and carol are silent) before and after the kill, and a mute makes
//! alice silent; after the kill the mixer forwards to the next instance only (one
//! forwarder per AudioBridge group). Bad input
//! is refused with the field named; a full room answers 429.

mod common;

use common::calls::*;
use mware_testkit::baresip::Baresip;
use mware_testkit::janus::Janus;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn api(d: &common::Daemon, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let (code, v, _) = request(method, &format!("{}/api/callmanager/v1{path}", d.api), Some(TOKEN), body);
    (code, v)
}

fn wait_joined(d: &common::Daemon, id: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = api(d, reqwest::Method::GET, &format!("/conferences/{id}"), None);
        let joined = v["participants"].as_array().map(|p| p.iter().filter(|m| m["state"] == "joined").count()).unwrap_or(0);
        if joined == n {
            return v;
        }
        assert!(Instant::now() < deadline, "{n} participants not joined: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the participants' `talking` are `want` (alice, bob, carol).
fn wait_talking(d: &common::Daemon, id: &str, pids: &[String], want: [bool; 3]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = api(d, reqwest::Method::GET, &format!("/conferences/{id}"), None);
        let of = |pid: &str| v["participants"].as_array().and_then(|a| a.iter().find(|m| m["pid"] == pid)).map(|m| m["talking"].clone());
        if pids.iter().zip(want).all(|(p, w)| of(p) == Some(json!(w))) {
            return v;
        }
        assert!(Instant::now() < deadline, "talking is not {want:?}: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every RTP forwarder of the Janus at `url`, over all its rooms: (host, port).
fn janus_forwarders(url: &str) -> Vec<(String, u64)> {
    let post = |u: &str, body: Value| request(reqwest::Method::POST, u, None, Some(&body)).1;
    let session = post(url, json!({"janus": "create", "transaction": "s"}))["data"]["id"].as_u64().unwrap();
    let s_url = format!("{url}/{session}");
    let handle =
        post(&s_url, json!({"janus": "attach", "plugin": "janus.plugin.audiobridge", "transaction": "a"}))["data"]["id"].as_u64().unwrap();
    let h_url = format!("{s_url}/{handle}");
    let ask = |body: Value| post(&h_url, json!({"janus": "message", "transaction": "m", "body": body}))["plugindata"]["data"].clone();
    let rooms = ask(json!({"request": "list"}));
    let mut out = vec![];
    for r in rooms["list"].as_array().cloned().unwrap_or_default() {
        let f = ask(json!({"request": "listforwarders", "room": r["room"]}));
        for x in f["rtp_forwarders"].as_array().cloned().unwrap_or_default() {
            out.push((x["ip"].as_str().unwrap_or_default().to_string(), x["port"].as_u64().unwrap_or(0)));
        }
    }
    post(&s_url, json!({"janus": "destroy", "transaction": "d"}));
    out
}

fn near(hz: Option<f64>, want: f64) -> bool {
    hz.is_some_and(|h| (h - want).abs() < 30.0)
}

#[test]
fn a_conference_goes_on_through_kill9_of_the_active_instance() {
    let jdir = tempfile::tempdir().unwrap();
    let janus = Janus::start(jdir.path()).unwrap();
    let rec = jdir.path().join("recordings");
    let mut s = site_with(json!({}), Layout::OneHost, json!({"mixer": janus.url(), "recordings_dir": rec}));
    let phones: Vec<Baresip> = [("alice", 440), ("bob", 0), ("carol", 0)]
        .into_iter()
        .map(|(u, hz)| Baresip::start(s.dir.path(), u, DOMAIN, s.kam.sip_port, hz).unwrap())
        .collect();
    let (code, v) = api(
        &s.ds[1],
        reqwest::Method::POST,
        "/conferences",
        Some(&json!({"domain": DOMAIN, "name": "standup", "max_participants": 3, "record": true})),
    );
    assert_eq!(code, 201, "created through the passive instance, forwarded: {v}");
    let id = v["id"].as_str().unwrap().to_string();
    let file = rec.join(format!("{id}.wav"));
    assert_eq!(v["recording"]["file"], json!(file), "{v}");
    let mut pids = vec![];
    for p in &phones {
        let (code, v) = api(
            &s.ds[0],
            reqwest::Method::POST,
            &format!("/conferences/{id}/participants"),
            Some(&json!({"to": format!("sip:{}@{DOMAIN}", p.user)})),
        );
        assert_eq!(code, 202, "{v}");
        pids.push(v["pid"].as_str().unwrap().to_string());
    }
    wait_joined(&s.ds[0], &id, 3);
    let (code, v) = api(
        &s.ds[0],
        reqwest::Method::POST,
        &format!("/conferences/{id}/participants"),
        Some(&json!({"to": format!("sip:dave@{DOMAIN}")})),
    );
    assert_eq!(code, 429, "max_participants: {v}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(near(phones[1].heard_hz_last(), 440.0), "bob hears alice: {:?}", phones[1].heard_hz_last());
    let v = wait_talking(&s.ds[0], &id, &pids, [true, false, false]);
    assert!(v["participants"][0]["talking_since_ms"].as_u64().is_some(), "{v}");
    let before = janus_forwarders(&janus.url());
    assert_eq!(before.len(), 5, "one forwarder per AudioBridge group: {before:?}");

    s.ds[0].child.kill9();
    s.ds[1].wait_status(Duration::from_secs(20), running);
    let v = wait_joined(&s.ds[1], &id, 3);
    assert_eq!(v["instance"], "m20", "{v}");
    assert_eq!(v["name"], "standup");
    assert_eq!(v["recording"]["file"], json!(file), "the next instance shows the recording: {v}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(near(phones[2].heard_hz_last(), 440.0), "carol still hears alice after the kill: {:?}", phones[2].heard_hz_last());
    wait_talking(&s.ds[1], &id, &pids, [true, false, false]);
    let after = janus_forwarders(&janus.url());
    assert_eq!(after.len(), 5, "the dead instance's forwarders were stopped: {after:?}");
    assert!(after.iter().all(|f| !before.contains(f)), "every forwarder points at the next instance: {before:?} then {after:?}");

    let (code, v) = api(&s.ds[1], reqwest::Method::POST, &format!("/conferences/{id}/participants/{}/mute", pids[0]), None);
    assert_eq!((code, v["muted"].clone()), (200, json!(true)), "{v}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(phones[1].heard_hz_last(), None, "muted by the next instance, alice is heard by nobody");
    wait_talking(&s.ds[1], &id, &pids, [false, false, false]);
    let (code, v) = api(&s.ds[1], reqwest::Method::DELETE, &format!("/conferences/{id}/participants/{}", pids[2]), None);
    assert_eq!((code, v["state"].clone()), (200, json!("left")), "{v}");
    phones[2].wait_log(&format!("Call with sip:mware@{DOMAIN} terminated"), Duration::from_secs(5)).unwrap();
    let (code, _) = api(&s.ds[1], reqwest::Method::DELETE, &format!("/conferences/{id}"), None);
    assert_eq!(code, 204);
    for p in &phones[..2] {
        p.wait_log(&format!("Call with sip:mware@{DOMAIN} terminated"), Duration::from_secs(5)).unwrap();
    }
    let (code, _) = api(&s.ds[1], reqwest::Method::GET, &format!("/conferences/{id}"), None);
    assert_eq!(code, 404);
    // The mix went on through the kill: one WAV (8 kHz, soxi reads it) holding alice's tone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read(&file).ok().and_then(|b| b.get(4..8).map(|x| u32::from_le_bytes(x.try_into().unwrap()))).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "{} not closed by Janus", file.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    let soxi = std::process::Command::new("soxi").arg("-r").arg(&file).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&soxi.stdout).trim(), "8000", "{soxi:?}");
    let (rate, samples) = mware_testkit::baresip::read_wav(&file).unwrap();
    let mid = samples.len() / 2;
    let hz = mware_testkit::baresip::tone_hz(rate, &samples[mid - rate as usize / 2..mid + rate as usize / 2]);
    assert!(near(hz, 440.0), "the recording holds alice's tone: {hz:?}");
}

#[test]
fn bad_conference_input_is_refused_naming_the_field() {
    let jdir = tempfile::tempdir().unwrap();
    let janus = Janus::start(jdir.path()).unwrap();
    let s = site_with(json!({}), Layout::OneHost, json!({"mixer": janus.url()}));
    let cases = [
        (json!({"domain": DOMAIN, "max_participants": 1}), "max_participants"),
        (json!({"domain": DOMAIN, "name": "a\nb"}), "name"),
        (json!({"domain": DOMAIN, "bogus": true}), "bogus"),
        (json!({"name": "x"}), "domain"),
        (json!({"domain": DOMAIN, "record": "yes"}), "record"),
        (json!({"domain": DOMAIN, "record": true}), "record"), // the site has no sip.recordings_dir
    ];
    for (body, field) in cases {
        let (code, v) = api(&s.ds[0], reqwest::Method::POST, "/conferences", Some(&body));
        assert_eq!((code, v["field"].clone()), (400, json!(field)), "{body}: {v}");
    }
    let (code, v) = api(&s.ds[0], reqwest::Method::GET, "/conferences/1-c00", None);
    assert_eq!(code, 404, "{v}");
    let (code, v) = api(&s.ds[0], reqwest::Method::POST, "/conferences", Some(&json!({"domain": DOMAIN})));
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap();
    let (code, v) =
        api(&s.ds[0], reqwest::Method::POST, &format!("/conferences/{id}/participants"), Some(&json!({"to": "sip:x@y\r\nVia: evil"})));
    assert_eq!((code, v["field"].clone()), (400, json!("to")), "{v}");
}
