//! Static registrations against a real Kamailio 5.6 and SIPp: a phone that never
//! registers receives calls through the proxy, also after the registrar restarts (mware
//! binds its contact again); an OPTIONS timeout shows it unreachable; the API puts and
//! deletes accounts and refuses bad input naming the field.

mod common;
use common::*;
use mware_testkit::sip::Phone;
use serde_json::json;
use std::time::Duration;

fn phone_contact(p: &Phone) -> String {
    format!("sip:{}@127.0.0.1:{}", p.user, p.port)
}

fn invites(p: &Phone) -> usize {
    p.messages().iter().filter(|m| m.starts_with("< INVITE")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_never_registers_gets_calls_also_after_the_registrar_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = Registrar::start(dir.path());
    let phone = Phone::listen(&scenario("uas_static.xml"), dir.path(), "gw1", &[]).expect("phone");
    let (coord, _m, fence) = coordinator(dir.path()).await;
    let section = json!({
        "registrar_rpc": reg.rpc_url(), "resync_ms": 300,
        "static_registrations": [{"domain": DOMAIN, "user": "gw1", "contact": phone_contact(&phone)}],
        "options": {"interval_ms": 500, "timeout_ms": 400}
    });
    let run = start(coord, fence, site(section)).await;
    let aor = format!("gw1@{DOMAIN}");
    let want = phone_contact(&phone);
    reg.wait_contacts(&aor, Duration::from_secs(3), |c| c == [want.clone()]);

    assert_eq!(call(reg.sip_port, "gw1", dir.path()), 0, "the first call through the proxy");
    assert_eq!(invites(&phone), 1, "{:#?}", phone.messages());

    let t0 = std::time::Instant::now();
    reg.kill9();
    reg.restart();
    assert!(reg.contacts(&aor).len() <= 1);
    let up = t0.elapsed();
    let back = up + reg.wait_contacts(&aor, Duration::from_secs(3), |c| c == [want.clone()]);
    eprintln!("registrar restarted in {up:?}; the static contact was back {back:?} after the kill");
    assert_eq!(call(reg.sip_port, "gw1", dir.path()), 0, "the call after the restart");
    assert_eq!(invites(&phone), 2, "{:#?}", phone.messages());
    assert!(run.metrics().contains("mware_calltracking_static_rebound_total 1"), "{}", run.metrics());

    // OPTIONS: reachable, then a timeout once the phone stops answering.
    let key = format!("{DOMAIN}/gw1");
    wait(Duration::from_secs(3), || run.svc_status()["static"][&key]["reachable"] == json!(true)).await;
    let st = run.svc_status();
    assert!(st["static"][&key]["last_answer"].as_str().unwrap().starts_with("200 OK"), "{st}");
    phone.signal(libc::SIGSTOP);
    wait(Duration::from_secs(3), || run.svc_status()["static"][&key]["reachable"] == json!(false)).await;
    let st = run.svc_status();
    assert!(st["static"][&key]["last_answer"].as_str().unwrap().contains("no answer to OPTIONS within 400 ms"), "{st}");
    let items = run.items();
    assert!(items.iter().any(|(i, s, r)| i == "static gw1@example.test" && s == "warning" && r.contains("unreachable")), "{items:?}");
    phone.signal(libc::SIGCONT);
    wait(Duration::from_secs(3), || run.svc_status()["static"][&key]["reachable"] == json!(true)).await;
    run.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_puts_and_deletes_accounts_and_names_the_field_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registrar::start(dir.path());
    let (coord, _m, fence) = coordinator(dir.path()).await;
    let section = json!({
        "registrar_rpc": reg.rpc_url(), "resync_ms": 5000,
        "static_registrations": [{"domain": DOMAIN, "user": "site1", "contact": "sip:site1@127.0.0.1:5999"}]
    });
    let run = start(coord, fence, site(section)).await;
    let api = run.serve_api().await;
    let http = reqwest::Client::new();
    let url = |u: &str| format!("{api}/api/registrations/v1/static/{DOMAIN}/{u}");

    let r = http.put(url("gw2")).json(&json!({"contact": "sip:gw2@127.0.0.1:5998", "transport": "tcp"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["contact"], "sip:gw2@127.0.0.1:5998;transport=tcp");
    // Bound at once (the PUT wakes the cycle, which otherwise runs every 5 s).
    reg.wait_contacts("gw2@example.test", Duration::from_secs(2), |c| c == ["sip:gw2@127.0.0.1:5998;transport=tcp"]);

    let r = http.put(url("gw3")).json(&json!({"contact": "sip:gw3@gw.example\r\nVia: x", "transport": 5, "q": 1})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    let fields: Vec<&str> = v["problems"].as_array().unwrap().iter().map(|p| p["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["q", "transport", "contact"], "{v}");
    let r = http.put(url("bad user")).json(&json!({"contact": "sip:x@127.0.0.1"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http.put(url("site1")).json(&json!({"contact": "sip:x@127.0.0.1"})).send().await.unwrap();
    assert_eq!(r.status(), 409, "the site file's account is changed there");

    let list: serde_json::Value =
        http.get(format!("{api}/api/registrations/v1/static/{DOMAIN}")).send().await.unwrap().json().await.unwrap();
    let aors: Vec<&str> = list["registrations"].as_array().unwrap().iter().map(|r| r["aor"].as_str().unwrap()).collect();
    assert_eq!(aors, ["gw2@example.test", "site1@example.test"], "{list}");

    assert_eq!(http.delete(url("gw2")).send().await.unwrap().status(), 204);
    reg.wait_contacts("gw2@example.test", Duration::from_secs(2), |c| c.is_empty());
    let list: serde_json::Value =
        http.get(format!("{api}/api/registrations/v1/static/{DOMAIN}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["registrations"].as_array().unwrap().len(), 1, "gw2 forgotten once unbound: {list}");
    assert_eq!(http.delete(url("gw2")).send().await.unwrap().status(), 404);
    assert_eq!(http.delete(url("site1")).send().await.unwrap().status(), 409);

    // The site file drops site1: its contact leaves the registrar on the next cycle.
    reg.wait_contacts("site1@example.test", Duration::from_secs(6), |c| c.len() == 1);
    let mut s = (**run.ctx.site.borrow()).clone();
    let mut v =
        serde_json::to_value(s.instance("mware1").unwrap().role.section::<mware_calltracking::CallTrackingConfig>().unwrap()).unwrap();
    v["static_registrations"] = json!([]);
    v["resync_ms"] = json!(300);
    s = site(v);
    run.site_tx.send(std::sync::Arc::new(s)).unwrap();
    reg.wait_contacts("site1@example.test", Duration::from_secs(7), |c| c.is_empty());
    run.stop().await.unwrap();
}

async fn wait(timeout: Duration, pred: impl Fn() -> bool) {
    let t0 = std::time::Instant::now();
    while !pred() {
        assert!(t0.elapsed() < timeout, "condition not met within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
