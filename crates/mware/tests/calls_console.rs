//! End-to-end: the console's Calls panel in a real headless Chromium, on the calls site
//! (two `mware run` on etcd, Kamailio, two SIPp phones). Without a token the panel says
//! it needs one (a call shows phone numbers); with the token it lists the live call, read
//! from the passive instance the page was loaded from; its "Hang up" button, confirmed,
//! ends the call, and each phone gets its BYE.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::calls::*;
use mware_testkit::sip::Phone;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calls_panel_lists_a_live_call_with_the_token_and_hangs_it_up() {
    let s = tokio::task::block_in_place(|| site(json!({})));
    let alice = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "alice", DOMAIN, s.kam.sip_port, &["-m", "1"]).unwrap();
    let bob = Phone::start(&scenario("uas_answer.xml"), s.dir.path(), "bob", DOMAIN, s.kam.sip_port, &["-m", "1"]).unwrap();
    let body = json!({"domain": DOMAIN, "from": format!("sip:alice@{DOMAIN}"), "to": format!("sip:bob@{DOMAIN}")});
    let url = format!("{}/api/callmanager/v1/calls", s.ds[0].api);
    let (code, v, _) = tokio::task::block_in_place(|| request(reqwest::Method::POST, &url, Some(TOKEN), Some(&body)));
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    tokio::task::block_in_place(|| wait_call(&s.ds[0], &id, "connected", 15));

    let b = Browser::start(1280, 900, &s.dir.path().join("chrome.log")).await;
    b.client.goto(&format!("{}/", s.ds[1].api)).await.unwrap();
    let calls = "[data-service=\"callmanager\"]";
    b.wait_js(
        "the panel asks for a token",
        &format!("var c = document.querySelector('{calls}'); return !!c && !!c.querySelector('[data-locked]');"),
        Duration::from_secs(15),
    )
    .await;
    let input = b.client.find(fantoccini::Locator::Id("token")).await.unwrap();
    input.send_keys(TOKEN).await.unwrap();
    b.client.find(fantoccini::Locator::Id("tokensave")).await.unwrap().click().await.unwrap();
    b.wait_js(
        "the panel lists the call",
        &format!(
            "var c = document.querySelector('{calls}'); return !!c && c.innerText.indexOf('sip:bob@{DOMAIN}') >= 0 && c.innerText.indexOf('connected') >= 0;"
        ),
        Duration::from_secs(15),
    )
    .await;
    // As an operator would: the row's button (scrolled into view, found again if the
    // page redrew it), confirmed.
    let answer = b.click_confirmed("Calls", "Hang up", &[&id, "sip:alice@example.test"]).await;
    assert!(answer.starts_with("Hang up: done"), "the page says: {answer}");
    let ended = tokio::task::block_in_place(|| wait_call(&s.ds[0], &id, "ended", 10));
    assert_eq!(ended["ended"], "hung up by the API", "{ended}");
    tokio::task::block_in_place(|| {
        alice.wait_for("BYE", Duration::from_secs(5)).unwrap();
        bob.wait_for("BYE", Duration::from_secs(5)).unwrap();
    });
}
