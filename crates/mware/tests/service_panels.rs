//! End-to-end: the console's panels of the callback service and the callmanager's
//! conferences and voice notifications, in a real headless Chromium, on two real `mware
//! run` on etcd with a real Kamailio (and, for conferences, a real Janus AudioBridge and a
//! baresip phone).
//!
//! Each panel's column pointers are first checked against the real list document they
//! name (a wrong pointer would show an empty cell). A callback order waiting for its
//! `not_before` shows in the Callback orders panel with its number, queue, state and when
//! its next attempt is; a voice notification waiting for its window shows in its panel;
//! each panel's Cancel button, confirmed, cancels it (the API then says `cancelled`). A
//! conference shows with its participant as a nested row; the participant's Mute button
//! mutes it in Janus's room through the API; after a switchover the panel reads the
//! conference from the next instance, and End conference there hangs the phone up.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::callback::*;
use common::calls::*;
use fantoccini::Locator;
use mware_testkit::baresip::Baresip;
use mware_testkit::janus::Janus;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One site at a time: two sites starting at once (Kamailio, SIPp, Janus, baresip, each
/// on ports picked free) can race for a port, and two browsers on two busy cores are slow.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where the screenshots go (beside console.rs's).
fn artifact(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// `ms` since the Unix epoch as RFC 3339 UTC (seconds).
fn rfc3339(ms: u64) -> String {
    let s = ms / 1000;
    let (days, rem) = ((s / 86_400) as i64, s % 86_400);
    // Days to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The service's panel titled `title` in `GET /api/v1/console`.
fn panel(d: &common::Daemon, service: &str, title: &str) -> Value {
    let (code, console, _) = request(Method::GET, &format!("{}/api/v1/console", d.api), None, None);
    assert_eq!(code, 200, "{console}");
    let p = console["service_panels"][service].as_array().and_then(|ps| ps.iter().find(|p| p["title"] == title)).cloned();
    p.unwrap_or_else(|| panic!("no panel {title:?} of {service}: {console:#}"))
}

/// The row `id` of the panel's document, read as the page reads it (its source, with the
/// token), and the pointers of its columns that find nothing in it.
fn unresolved(d: &common::Daemon, panel: &Value, id: &str) -> (Value, BTreeSet<String>) {
    let (code, doc, _) = request(Method::GET, &format!("{}{}", d.api, panel["source"].as_str().unwrap()), Some(TOKEN), None);
    assert_eq!(code, 200, "{doc}");
    let rows = doc.pointer(panel["rows"].as_str().unwrap()).and_then(Value::as_array).expect("the panel's rows");
    let row = rows.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("{id} not in {doc:#}")).clone();
    let missing = |columns: &Value, row: &Value| -> Vec<String> {
        let cols = columns.as_array().unwrap().iter();
        cols.map(|c| c["value"].as_str().unwrap().to_string()).filter(|p| row.pointer(p).is_none_or(Value::is_null)).collect()
    };
    let mut out: BTreeSet<String> = missing(&panel["columns"], &row).into_iter().collect();
    if let Some(n) = panel.get("nested").filter(|n| !n.is_null()) {
        for kid in row.pointer(n["rows"].as_str().unwrap()).and_then(Value::as_array).expect("the nested rows") {
            out.extend(missing(&n["columns"], kid).into_iter().map(|p| format!("nested {p}")));
        }
    }
    (row, out)
}

/// Waits until `script` is true in the page, up to `limit`; otherwise panics with what
/// the page says and the daemons' logs.
async fn wait_page(b: &Browser, s: &Site, what: &str, script: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while b.js(script).await != Value::Bool(true) {
        if Instant::now() > deadline {
            let page = b.js("return document.body.innerText").await;
            let logs: Vec<String> = s.ds.iter().map(|d| d.log_text()).collect();
            panic!(
                "{what}: not within {limit:?}; the page says:\n{}\n\nthe daemons' logs:\n{}",
                page.as_str().unwrap_or(""),
                logs.join("\n----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Types the operator token into the page (once the page has drawn itself: its start
/// empties the box).
async fn use_token(b: &Browser) {
    b.client.find(Locator::Id("token")).await.unwrap().send_keys(TOKEN).await.unwrap();
    b.client.find(Locator::Id("tokensave")).await.unwrap().click().await.unwrap();
}

/// A script: whether the panel titled `title` shows every one of `words`.
fn shows(title: &str, words: &[&str]) -> String {
    let checks: Vec<String> = words.iter().map(|w| format!("t.indexOf({}) >= 0", json!(w))).collect();
    format!(
        "var c = document.querySelector('[data-panel=\"{title}\"]'); if (!c) return false; var t = c.innerText; return {};",
        checks.join(" && ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_callback_order_and_notification_show_in_their_panels_and_are_cancelled_from_the_console() {
    let _one = ONE_AT_A_TIME.lock().await;
    let section = json!({"queues": [{"name": "sales", "attempts": 2, "retry_after_s": 60, "answer_timeout_s": 10,
        "operators": [{"uri": "1001", "section": "op-1001"}]}]});
    let s = tokio::task::block_in_place(|| callback_site(section));
    let d = &s.ds[0];
    let later = now_ms() + 3_600_000;
    let body = json!({"domain": DOMAIN, "number": "2001", "queue": "sales", "not_before": later, "note": "about the bill"});
    let (code, o) = tokio::task::block_in_place(|| cb(d, Method::POST, "/orders", Some(&body)));
    assert_eq!(code, 201, "{o}");
    let order = o["id"].as_str().unwrap().to_string();
    let body = json!({"domain": DOMAIN, "to": [format!("sip:ann@{DOMAIN}"), format!("sip:bob@{DOMAIN}")], "text": "the line is down",
        "window": {"not_before": rfc3339(later)}});
    let url = format!("{}/api/callmanager/v1/notifications", d.api);
    let (code, n, _) = tokio::task::block_in_place(|| request(Method::POST, &url, Some(TOKEN), Some(&body)));
    assert_eq!(code, 201, "{n}");
    let notice = n["id"].as_str().unwrap().to_string();

    // The pointers find the values in the real documents: only what this order and this
    // notification do not have (no named operator, none rung yet, no reason given, no
    // end of window) is empty.
    let orders = tokio::task::block_in_place(|| panel(d, "callback", "Callback orders"));
    let (row, empty) = tokio::task::block_in_place(|| unresolved(d, &orders, &order));
    assert_eq!(empty, ["/last_operator", "/operator", "/reason"].map(String::from).into(), "{row:#}");
    assert_eq!((row["state"].as_str(), row["next_attempt_ms"].as_u64()), (Some("waiting"), Some(later)), "{row:#}");
    let notices = tokio::task::block_in_place(|| panel(d, "callmanager", "Voice notifications"));
    let (row, empty) = tokio::task::block_in_place(|| unresolved(d, &notices, &notice));
    assert_eq!(empty, ["/window/not_after_ms"].map(String::from).into(), "{row:#}");
    assert_eq!((row["numbers_done"].as_u64(), row["numbers_total"].as_u64()), (Some(0), Some(2)), "{row:#}");

    // The page loaded from the passive member reads each panel from the active one.
    let b = Browser::start(1280, 900, &s.dir.path().join("chrome.log")).await;
    b.client.goto(&format!("{}/", s.ds[1].api)).await.unwrap();
    wait_page(&b, &s, "the callback panel asks for a token", &shows("Callback orders", &["needs a token"]), Duration::from_secs(20)).await;
    use_token(&b).await;
    // 3600 s from now is shown as "in 60 min" (59.5 min and more round to 60).
    let wanted = ["2001", "sales", "waiting", "in 60 min", "about the bill"];
    wait_page(&b, &s, "the order is listed", &shows("Callback orders", &wanted), Duration::from_secs(20)).await;
    wait_page(
        &b,
        &s,
        "the notification is listed",
        &shows("Voice notifications", &[DOMAIN, "running", "in 60 min"]),
        Duration::from_secs(20),
    )
    .await;
    wait_page(&b, &s, "the calls panel is there too", &shows("Calls", &["no call"]), Duration::from_secs(10)).await;
    b.js("document.querySelector('[data-panel=\"Callback orders\"]').scrollIntoView(); return true;").await;
    b.screenshot(&artifact("callback-orders-1280.png")).await;

    let said = b.click_confirmed("Callback orders", "Cancel", &[&order, "2001"]).await;
    assert!(said.starts_with("Cancel: done"), "the page says: {said}");
    let (code, o) = tokio::task::block_in_place(|| cb(d, Method::GET, &format!("/orders/{order}"), None));
    assert_eq!((code, o["state"].as_str()), (200, Some("cancelled")), "{o:#}");
    wait_page(&b, &s, "the panel shows it cancelled", &shows("Callback orders", &["cancelled"]), Duration::from_secs(10)).await;

    let said = b.click_confirmed("Voice notifications", "Cancel", &[&notice, "0 of 2"]).await;
    assert!(said.starts_with("Cancel: done"), "the page says: {said}");
    let url = format!("{}/api/callmanager/v1/notifications/{notice}", d.api);
    let (code, n, _) = tokio::task::block_in_place(|| request(Method::GET, &url, Some(TOKEN), None));
    assert_eq!((code, n["state"].as_str()), (200, Some("cancelled")), "{n:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conference_shows_its_participants_and_is_muted_and_ended_from_the_console() {
    let _one = ONE_AT_A_TIME.lock().await;
    let jdir = tempfile::tempdir().unwrap();
    let janus = Janus::start(jdir.path()).unwrap();
    let s = tokio::task::block_in_place(|| site_with(json!({}), Layout::OneHost, json!({"mixer": janus.url()})));
    let d = &s.ds[0];
    let alice = Baresip::start(s.dir.path(), "alice", DOMAIN, s.kam.sip_port, 0).unwrap();
    let api = |method: Method, path: &str, body: Option<&Value>| {
        let url = format!("{}/api/callmanager/v1{path}", d.api);
        let (code, v, _) = tokio::task::block_in_place(|| request(method, &url, Some(TOKEN), body));
        (code, v)
    };
    let (code, v) = api(Method::POST, "/conferences", Some(&json!({"domain": DOMAIN, "name": "standup", "max_participants": 4})));
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (code, v) = api(Method::POST, &format!("/conferences/{id}/participants"), Some(&json!({"to": format!("sip:alice@{DOMAIN}")})));
    assert_eq!(code, 202, "{v}");
    let pid = v["pid"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Joined, and her voice measured (silent: her phone plays no tone).
    while api(Method::GET, &format!("/conferences/{id}"), None).1["participants"][0]["talking"] != false {
        assert!(Instant::now() < deadline, "alice did not join: {}", api(Method::GET, &format!("/conferences/{id}"), None).1);
        std::thread::sleep(Duration::from_millis(200));
    }
    let confs = tokio::task::block_in_place(|| panel(d, "callmanager", "Conferences"));
    let (row, empty) = tokio::task::block_in_place(|| unresolved(d, &confs, &id));
    assert_eq!(empty, ["nested /reason"].map(String::from).into(), "only a participant's reason (none while joined): {row:#}");

    let b = Browser::start(1280, 900, &s.dir.path().join("chrome.log")).await;
    b.client.goto(&format!("{}/", d.api)).await.unwrap();
    let locked = shows("Conferences", &["needs a token"]);
    wait_page(&b, &s, "the conferences panel asks for a token", &locked, Duration::from_secs(20)).await;
    use_token(&b).await;
    let party = format!("sip:alice@{DOMAIN}");
    wait_page(
        &b,
        &s,
        "the conference is listed with alice",
        &shows("Conferences", &["standup", &party, "joined"]),
        Duration::from_secs(20),
    )
    .await;
    wait_page(
        &b,
        &s,
        "one is in the room",
        "var c = document.querySelector('[data-panel=\"Conferences\"] tbody td:nth-child(3)'); return !!c && c.textContent === '1';",
        Duration::from_secs(5),
    )
    .await;

    let said = b.click_confirmed("Conferences", "Mute", &[&party, "standup"]).await;
    assert!(said.starts_with("Mute: done"), "the page says: {said}");
    let (_, v) = api(Method::GET, &format!("/conferences/{id}"), None);
    let member = v["participants"].as_array().unwrap().iter().find(|m| m["pid"] == pid).cloned().unwrap();
    assert_eq!(member["muted"], true, "{v:#}");
    wait_page(&b, &s, "the panel shows alice muted", &shows("Conferences", &[&party, "true"]), Duration::from_secs(10)).await;
    b.js("document.querySelector('[data-panel=\"Conferences\"]').scrollIntoView(); return true;").await;
    b.screenshot(&artifact("conferences-1280.png")).await;

    // A switchover hands the group to m20, on the same SIP address: it binds it only once
    // m10's user agent let it go. The page then reads the panel from m20, and ends the
    // conference there.
    let url = format!("{}/api/v1/groups/1/switchover", d.api);
    let (code, v, _) = tokio::task::block_in_place(|| request(Method::POST, &url, Some(TOKEN), Some(&json!({}))));
    assert!((200..300).contains(&code), "switchover: {code} {v}");
    tokio::task::block_in_place(|| s.ds[1].wait_status(Duration::from_secs(20), running));
    let on_m20 = shows("Conferences", &["standup", &party, "m20"]);
    wait_page(&b, &s, "the panel reads the conference from m20", &on_m20, Duration::from_secs(20)).await;

    let said = b.click_confirmed("Conferences", "End conference", &["standup", &id]).await;
    assert!(said.starts_with("End conference: done"), "the page says: {said}");
    let (code, v) = api(Method::GET, &format!("/conferences/{id}"), None);
    assert_eq!(code, 404, "{v}");
    tokio::task::block_in_place(|| alice.wait_log(&format!("Call with sip:mware@{DOMAIN} terminated"), Duration::from_secs(10))).unwrap();
    wait_page(&b, &s, "the panel is empty", &shows("Conferences", &["no conference"]), Duration::from_secs(10)).await;
}
