//! Hunt tracking against a real Kamailio 5.6: three phones registered as themselves and
//! under the hunt number `hunt1`, so the registrar forks a call to hunt1 to all three;
//! its reply routes name each member that rings and the one that answers (the Contact of
//! the reply), and mware names them by the registrar's bindings. The journal's record
//! of the call names the members that rang and the one that answered. A personal queue
//! (`queue-7`, a user the reference config's `QUEUE_RE` matches): a caller who gives up
//! while it rings is recorded as such with how long it waited and is a missed caller;
//! the next caller is answered by a member, with its wait.

mod common;
use common::*;
use mware_testkit::sip::{free_sip_port, Phone};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Binds `user@example.test` to the phone's contact too.
fn register_as(phone: &Phone, user: &str, proxy_port: u16, dir: &std::path::Path) {
    let st = std::process::Command::new("/usr/bin/sipp")
        .arg(format!("127.0.0.1:{proxy_port}"))
        .arg("-sf")
        .arg(mware_testkit::sip::scenario("register.xml"))
        .args(["-i", "127.0.0.1", "-p"])
        .arg(free_sip_port().to_string())
        .args(["-s", user, "-key", "domain", DOMAIN, "-key", "contact_port"])
        .arg(phone.port.to_string())
        .args(["-key", "expires", "600", "-m", "1", "-timeout", "5", "-timeout_error", "-nostdin"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "REGISTER {user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hunt_call_names_the_members_that_rang_and_the_one_that_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, _m, fence) = coordinator(dir.path()).await;
    let mut reg = Registrar::new(dir.path(), vec![]);
    let run = start(coord, fence, site(json!({"registrar_rpc": reg.rpc_url()}))).await;
    let api = run.serve_api().await;
    reg.defines = vec!["WITH_CALLEVENTS".into(), format!("MWARE_EVENTS_URL=\"{api}/api/calltracking/v1/events\"")];
    reg.restart();
    let m1 = Phone::start(&scenario("uas_static.xml"), dir.path(), "m1", DOMAIN, reg.sip_port, &["-d", "400"]).expect("m1");
    let m2 = Phone::start(&scenario("uas_ring.xml"), dir.path(), "m2", DOMAIN, reg.sip_port, &[]).expect("m2");
    let m3 = Phone::start(&scenario("uas_ring.xml"), dir.path(), "m3", DOMAIN, reg.sip_port, &[]).expect("m3");
    for p in [&m1, &m2, &m3] {
        register_as(p, "hunt1", reg.sip_port, dir.path());
    }
    assert_eq!(reg.contacts("hunt1@example.test").len(), 3);

    assert_eq!(call(reg.sip_port, "hunt1", dir.path()), 0, "m1 answers the hunt number");
    let url = format!("{api}/api/calltracking/v1/{DOMAIN}/calls?hunt=hunt1");
    let t0 = Instant::now();
    let v: Value = loop {
        let v: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if v["ended"].as_array().is_some_and(|e| !e.is_empty()) {
            break v;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "no ended call: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let e = &v["ended"][0];
    let mut rang: Vec<&str> = e["rang"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    rang.sort_unstable();
    assert_eq!(rang, ["m1", "m2", "m3"], "{v:#}");
    assert_eq!((e["answered_by"].as_str(), e["answered"].as_bool(), e["to"].as_str()), (Some("m1"), Some(true), Some("hunt1")), "{v:#}");
    assert_eq!(v["missed"], json!([]), "the caller was answered: {v:#}");
    run.stop().await.unwrap();
}

/// A caller `caller` who calls `user` and gives up after ringing `ring_ms`.
fn call_and_give_up(proxy_port: u16, user: &str, caller: &str, ring_ms: u64, dir: &std::path::Path) -> i32 {
    std::process::Command::new("/usr/bin/sipp")
        .arg(format!("127.0.0.1:{proxy_port}"))
        .arg("-sf")
        .arg(scenario("uac_cancel.xml"))
        .args(["-s", user, "-key", "domain", DOMAIN, "-key", "caller", caller, "-d", &ring_ms.to_string(), "-i", "127.0.0.1", "-p"])
        .arg(free_sip_port().to_string())
        .args(["-m", "1", "-timeout", "10", "-timeout_error", "-nostdin", "-trace_err", "-error_file"])
        .arg(dir.join(format!("{caller}-cancel.err")))
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("sipp")
        .code()
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_call_says_who_gave_up_how_long_callers_waited_and_who_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, _m, fence) = coordinator(dir.path()).await;
    let mut reg = Registrar::new(dir.path(), vec![]);
    let run = start(coord, fence, site(json!({"registrar_rpc": reg.rpc_url()}))).await;
    let api = run.serve_api().await;
    reg.defines = vec!["WITH_CALLEVENTS".into(), format!("MWARE_EVENTS_URL=\"{api}/api/calltracking/v1/events\"")];
    reg.restart();
    let q1 = Phone::start(&scenario("uas_ring.xml"), dir.path(), "q1", DOMAIN, reg.sip_port, &[]).expect("q1");
    let q2 = Phone::start(&scenario("uas_ring.xml"), dir.path(), "q2", DOMAIN, reg.sip_port, &[]).expect("q2");
    for p in [&q1, &q2] {
        register_as(p, "queue-7", reg.sip_port, dir.path());
    }
    let url = format!("{api}/api/calltracking/v1/{DOMAIN}/calls?queue=queue-7");
    let ended = |n: usize| {
        let url = url.clone();
        async move {
            let t0 = Instant::now();
            loop {
                let v: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
                if v["ended"].as_array().is_some_and(|e| e.len() >= n) {
                    return v;
                }
                assert!(t0.elapsed() < Duration::from_secs(5), "fewer than {n} ended calls: {v:#}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    // alice waits 1500 ms while q1 and q2 ring, then hangs up.
    let rc = call_and_give_up(reg.sip_port, "queue-7", "alice", 1500, dir.path());
    let err = std::fs::read_to_string(dir.path().join("alice-cancel.err")).unwrap_or_default();
    assert_eq!(rc, 0, "alice's CANCEL: {err}");
    let v = ended(1).await;
    let e = &v["ended"][0];
    assert_eq!((e["from"].as_str(), e["queue"].as_str(), e["answered"].as_bool()), (Some("alice"), Some("queue-7"), Some(false)), "{v:#}");
    assert_eq!((e["gave_up"].as_bool(), e["code"].as_u64()), (Some(true), Some(487)), "{v:#}");
    let waited = e["waited_ms"].as_u64().unwrap();
    assert!((1300..5000).contains(&waited), "alice waited about 1.5 s: {v:#}");
    let mut rang: Vec<&str> = e["rang"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    rang.sort_unstable();
    assert_eq!(rang, ["q1", "q2"], "{v:#}");
    assert_eq!(v["missed"], json!(["alice"]), "{v:#}");

    // q3 joins the queue and answers after 700 ms of ringing.
    let q3 = Phone::start(&scenario("uas_static.xml"), dir.path(), "q3", DOMAIN, reg.sip_port, &["-d", "700"]).expect("q3");
    register_as(&q3, "queue-7", reg.sip_port, dir.path());
    assert_eq!(call(reg.sip_port, "queue-7", dir.path()), 0, "q3 answers");
    let v = ended(2).await;
    let e = &v["ended"][0];
    assert_eq!((e["from"].as_str(), e["answered_by"].as_str(), e["gave_up"].as_bool()), (Some("caller"), Some("q3"), Some(false)), "{v:#}");
    let waited = e["waited_ms"].as_u64().unwrap();
    assert!((600..5000).contains(&waited), "the caller waited about 0.7 s for q3: {v:#}");
    assert_eq!(v["missed"], json!(["alice"]), "alice still waits for a call back: {v:#}");
    run.stop().await.unwrap();
}
