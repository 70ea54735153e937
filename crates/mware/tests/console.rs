//! End-to-end: the operator console in a real headless Chromium, on a three-instance
//! group on a real etcd. The page follows a kill -9 of the instance it was loaded from
//! (which was the active one) without a reload; the domain box routes; a switchover from
//! the page works with the operator token and is refused without it; a hostile string
//! in a mutex holder's name is shown as text; no request leaves loopback; screenshots at
//! 1280 and 390 px wide are written as artifacts.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::*;
use mware_testkit::etcd::Etcd;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const TOKEN: &str = "console-api-token";
const OPERATOR: &str = "console-operator-token";
const XSS: &str = "<img src=x onerror=alert(1)>";

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn trio(dir: &std::path::Path, etcd: &Etcd) -> Trio {
    let site = json!({
        "site": "console",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "prefix": "/t/console", "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "C_TOKEN", "operator_token_env": "C_OPERATOR"},
    });
    Trio::new(dir, ["c10", "c20", "c30"], 1, site, &[("C_TOKEN", TOKEN), ("C_OPERATOR", OPERATOR)])
}

/// A script: whether the page shows `name` as group 1's active instance.
fn shown_is(name: &str) -> String {
    format!("var b = document.querySelector('[data-group=\"1\"] [data-active]'); return !!b && b.getAttribute('data-active') === '{name}';")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_a_kill9_of_its_own_instance_without_a_reload() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = trio(dir.path(), &etcd);
    let mut d10 = t.start(0);
    sync(|| d10.wait_status(Duration::from_secs(30), |v| v["state"] == "active"));
    let d20 = t.start(1);
    let d30 = t.start(2);
    for d in [&d20, &d30] {
        sync(|| d.wait_status(Duration::from_secs(10), |v| v["state"] == "passive"));
    }
    let b = Browser::start(1280, 900, &dir.path().join("chrome.log")).await;
    b.client.goto(&format!("{}/", d10.api)).await.unwrap();
    b.wait_js("the page shows c10 active", &shown_is("c10"), Duration::from_secs(10)).await;
    b.wait_js("the page is live", "return document.getElementById('conn').textContent.startsWith('live from');", Duration::from_secs(10))
        .await;
    b.screenshot(&artifacts().join("console-1280.png")).await;

    d10.child.kill9();
    let killed = Instant::now();
    // When the API says c20 is active, and when the page shows it.
    let api_active = loop {
        if sync(|| d20.get("/api/v1/status")).is_some_and(|(_, v)| v["state"] == "active") {
            break killed.elapsed();
        }
        assert!(killed.elapsed() < Duration::from_secs(20), "c20 never became active");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    b.wait_js("the page shows c20 active", &shown_is("c20"), Duration::from_secs(10)).await;
    let page_active = killed.elapsed();
    eprintln!("kill -9 of c10: API active after {api_active:?}, page shows it after {page_active:?}");
    assert!(page_active < api_active + Duration::from_secs(2), "the page showed the failover {:?} after the API", page_active - api_active);
    assert_eq!(b.js("return performance.getEntriesByType('navigation').length").await, json!(1), "no reload");
    // The page now talks to another member than the one it came from.
    let conn = b.js("return document.getElementById('conn').textContent").await;
    assert!(conn.as_str().unwrap().contains("live from 127.0.0.1:"), "{conn}");
    // Nothing the page loaded came from outside loopback.
    let urls = b.js("return performance.getEntriesByType('resource').map(function(e){return e.name})").await;
    for u in urls.as_array().unwrap() {
        assert!(u.as_str().unwrap().starts_with("http://127.0.0.1:"), "a request left loopback: {u}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_switchover_and_text_only_rendering() {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = trio(dir.path(), &etcd);
    let d10 = t.start(0);
    // Active, and its mutex service done restoring (until then an acquire is a retryable 503).
    let mutex_running =
        |v: &Value| v["services"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == "mutex" && s["state"] == "running"));
    sync(|| d10.wait_status(Duration::from_secs(30), |v| v["state"] == "active" && mutex_running(v)));
    let d20 = t.start(1);
    sync(|| d20.wait_status(Duration::from_secs(10), |v| v["state"] == "passive"));
    // A holder whose name is markup.
    let url = format!("{}/api/v1/domains/tenant1.example.ru/mutexes/trunk-1/acquire", d10.api);
    let (code, v) = sync(|| post_json(&url, Some(TOKEN), &json!({"owner": XSS, "ttl_ms": 600000, "wait_ms": 0}))).unwrap();
    assert_eq!(code, 200, "{v}");

    let b = Browser::start(390, 844, &dir.path().join("chrome.log")).await;
    b.client.goto(&format!("{}/", d20.api)).await.unwrap();
    b.wait_js("the mutex panel lists the holder", "return document.body.innerText.indexOf('trunk-1') >= 0;", Duration::from_secs(10)).await;
    let cell = b
        .js(&format!(
            "return Array.from(document.querySelectorAll('td')).some(function(td){{return td.textContent === {}}});",
            serde_json::to_string(XSS).unwrap()
        ))
        .await;
    assert_eq!(cell, json!(true), "the holder's name is shown as text");
    assert_eq!(b.js("return document.querySelectorAll('img').length").await, json!(0), "no element was made from it");
    assert!(b.client.get_alert_text().await.is_err(), "no script ran from it");
    b.screenshot(&artifacts().join("console-390.png")).await;

    // The domain box.
    let input = b.client.find(fantoccini::Locator::Id("domain")).await.unwrap();
    input.send_keys("a.Tenant1.example.RU").await.unwrap();
    b.client.find(fantoccini::Locator::Css("#routeform button")).await.unwrap().click().await.unwrap();
    b.wait_js(
        "the domain is routed",
        "return document.getElementById('route').textContent.indexOf('a.tenant1.example.ru → group 1') === 0;",
        Duration::from_secs(5),
    )
    .await;

    // Without a token the page is read-only.
    let disabled =
        b.js("return Array.from(document.querySelectorAll('[data-group=\"1\"] h3 button')).every(function(x){return x.disabled})").await;
    assert_eq!(disabled, json!(true));
    // With the call scripts' token the API refuses (the operator's is needed) and says so.
    set_token(&b, TOKEN).await;
    click_switchover(&b).await;
    b.wait_js(
        "the refusal is shown",
        "return document.getElementById('answer').textContent.indexOf('refused (403)') >= 0;",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(sync(|| d10.get("/api/v1/status")).unwrap().1["state"], "active", "nothing moved");
    // With the operator's token it hands over.
    set_token(&b, OPERATOR).await;
    click_switchover(&b).await;
    b.wait_js(
        "the switchover is requested",
        "return document.getElementById('answer').textContent.indexOf('requested') >= 0;",
        Duration::from_secs(5),
    )
    .await;
    sync(|| d20.wait_status(Duration::from_secs(20), |v| v["state"] == "active"));
    b.wait_js("the page shows c20 active", &shown_is("c20"), Duration::from_secs(5)).await;
    // The token was kept in this tab's sessionStorage, not in a cookie or the URL.
    assert_eq!(b.js("return document.cookie").await, json!(""));
    assert!(!b.client.current_url().await.unwrap().as_str().contains(OPERATOR));
}

/// Runs a blocking helper of `common` (they drive their own runtime) off the async workers.
fn sync<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn set_token(b: &Browser, token: &str) {
    let input = b.client.find(fantoccini::Locator::Id("token")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(token).await.unwrap();
    b.client.find(fantoccini::Locator::Id("tokensave")).await.unwrap().click().await.unwrap();
    b.wait_js("actions enabled", "return !document.querySelector('[data-group=\"1\"] h3 button').disabled;", Duration::from_secs(5)).await;
}

async fn click_switchover(b: &Browser) {
    b.client.find(fantoccini::Locator::Css("[data-group=\"1\"] h3 button")).await.unwrap().click().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.client.accept_alert().await.expect("a confirmation was asked");
}
