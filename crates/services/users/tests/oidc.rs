//! Registration and login through a real OpenID provider (the npm `oidc-provider`,
//! started by the test) in a real headless Chromium: the first login creates the account
//! and takes the invitation of the same verified address (its role), the session works,
//! a login started before a failover (the service run again with nothing in memory)
//! finishes after it, a replayed callback is refused, logout ends the session, a second login finds the same
//! account; an ID token changed in flight, a state not started here and a state not bound
//! to the browser are refused.

#[path = "../../../mware/tests/common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::{Env, D1, D2};
use serde_json::json;
use std::time::{Duration, Instant};

struct Provider {
    child: mware_testkit::Child,
    issuer: String,
    flags: tempfile::TempDir,
}

fn provider(redirect: &str, secret: &str, log: &std::path::Path) -> Provider {
    let port = mware_testkit::free_port();
    let flags = tempfile::tempdir().unwrap();
    let mut c = std::process::Command::new("node");
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/oidc_provider.mjs"));
    c.args([&port.to_string(), "mware", secret, redirect]).arg(flags.path());
    let child = mware_testkit::Child::spawn("oidc-provider", c, log).unwrap();
    mware_testkit::wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(20)).expect("oidc-provider listens");
    Provider { child, issuer: format!("http://127.0.0.1:{port}"), flags }
}

/// Drives the provider's pages (its login form, its consent form) until the browser is
/// back on mware's callback page; returns that page's text and URL.
async fn login(b: &Browser, base: &str, email: &str) -> (String, String) {
    begin(b, base).await;
    drive(b, base, email).await
}

/// Opens the providers page and clicks the provider: the browser goes to the provider.
async fn begin(b: &Browser, base: &str) {
    b.client.goto(&format!("{base}/users/{D1}/login")).await.unwrap();
    b.wait_js("the providers page", "return !!document.querySelector('a[href$=\"/oidc/corp/start\"]')", Duration::from_secs(20)).await;
    b.js("document.querySelector('a[href$=\"/oidc/corp/start\"]').click(); return true").await;
}

/// Fills the provider's pages until the browser is back on the callback.
async fn drive(b: &Browser, base: &str, email: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "the login did not come back: {}",
            b.js("return document.body ? document.body.innerText : ''").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let url = b.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        if url.starts_with(base) && url.contains("/callback") {
            let ready = b.js("return document.readyState === 'complete' && !!document.querySelector('h1')").await;
            if ready == json!(true) {
                let text = b.js("return document.body.innerText").await.as_str().unwrap_or("").to_string();
                return (text, url);
            }
            continue;
        }
        let js = format!(
            "var l = document.querySelector('input[name=login]');
             if (l) {{ l.value = '{email}'; document.querySelector('input[name=password]').value = 'any'; l.form.submit(); return 'login'; }}
             var c = Array.from(document.querySelectorAll('button')).find(function (x) {{ return x.innerText.trim() === 'Continue'; }});
             if (c) {{ c.click(); return 'consent'; }}
             return 'waiting';"
        );
        let _ = b.client.execute(&js, vec![]).await;
    }
}

async fn session_cookie(b: &Browser) -> String {
    b.client.get_named_cookie("mw_session").await.expect("the session cookie").value().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_log_out_log_in_again_and_refuse_tampered_replayed_and_foreign_states() {
    let secret_env = format!("MWARE_TEST_OIDC_SECRET_{}", std::process::id());
    std::env::set_var(&secret_env, "client-secret-for-tests");
    let logs = tempfile::tempdir().unwrap();
    let mut issuer = String::new();
    let mut idp = None;
    let mut env = Env::start_at("oidc1", |base| {
        let p = provider(&format!("{base}/users/{D1}/oidc/corp/callback"), "client-secret-for-tests", &logs.path().join("idp.log"));
        issuer = p.issuer.clone();
        idp = Some(p);
        json!({
            "public_url": base,
            "domains": [
                {"name": D1, "oidc": [{"name": "corp", "issuer": issuer, "client_id": "mware", "client_secret_env": secret_env,
                                       "scopes": ["email"], "user_claim": "email", "allowed_values": ["@example.ru"]}]},
                {"name": D2}
            ]
        })
    })
    .await;
    let idp = idp.unwrap();
    let zoe = "zoe@example.ru";
    let (s, v, _) = env.post("/api/users/v1/invitations", json!({"domain": D1, "email": zoe, "role": "admin"})).await;
    assert_eq!(s, 201, "{v}");

    let b = Browser::start(1000, 800, &logs.path().join("chrome.log")).await;
    // The first login is started before a failover and finished after it: the browser is
    // on the provider's login page when the service is run again with nothing in memory;
    // the state, nonce and PKCE verifier come from the group's database.
    begin(&b, &env.base).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let has_form = b.js("return !!document.querySelector('input[name=login]')").await == json!(true);
        let url = b.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        if has_form && url.starts_with(&issuer) {
            break;
        }
        assert!(Instant::now() < deadline, "the browser did not reach the provider's login page: {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(env.sql("SELECT count(*) FROM oidc_flows"), "1", "the login in progress is kept in the database");
    env.rerun().await;
    let (text, callback) = drive(&b, &env.base, zoe).await;
    assert_eq!(env.sql("SELECT count(*) FROM oidc_flows"), "0", "the flow was taken once");
    assert!(text.contains(&format!("You are signed in as {zoe}")), "{text}");
    let session = session_cookie(&b).await;
    let (s, me) = env.get("/api/users/v1/session", Some(&session)).await;
    assert_eq!((s, me["login"].as_str(), me["role"].as_str()), (200, Some(zoe), Some("admin")), "the invitation's role: {me}");
    assert_eq!(env.sql("SELECT count(*) FROM users"), "1");
    assert_eq!(env.sql("SELECT count(*) FROM tokens WHERE kind = 'invitation' AND used_at IS NOT NULL"), "1", "the invitation was taken");

    // The same callback again (code and state replayed): refused.
    b.client.goto(&callback).await.unwrap();
    b.wait_js("the replay refused", "return document.body && document.body.innerText.includes('unknown or used')", Duration::from_secs(20))
        .await;

    // Log out, log in again: the same account.
    let (s, _, _) = env.post_with("/api/users/v1/logout", json!({}), Some(&session)).await;
    assert_eq!(s, 200);
    assert_eq!(env.get("/api/users/v1/session", Some(&session)).await.0, 401);
    let (text, _) = login(&b, &env.base, zoe).await;
    assert!(text.contains(zoe), "{text}");
    let again = session_cookie(&b).await;
    assert_ne!(again, session);
    assert_eq!(env.get("/api/users/v1/session", Some(&again)).await.0, 200);
    assert_eq!(env.sql("SELECT count(*) FROM users"), "1", "a later login finds the account");

    // An ID token changed in flight (its signature no longer matches): refused, no account.
    std::fs::write(idp.flags.path().join("tamper"), "").unwrap();
    let (text, _) = login(&b, &env.base, zoe).await;
    assert!(text.contains("The login was refused") && text.contains("ID token was refused"), "{text}");
    std::fs::remove_file(idp.flags.path().join("tamper")).unwrap();
    assert_eq!(env.sql("SELECT count(*) FROM users WHERE login = 'mallory@example.ru'"), "0");

    // A state this instance never started, and a real state without the browser's cookie.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http.get(format!("{}/users/{D1}/oidc/corp/callback?code=abc&state=forged", env.base)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("unknown or used"));
    let r = http.get(format!("{}/users/{D1}/oidc/corp/start", env.base)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with(&issuer) && to.contains("code_challenge_method=S256") && to.contains("nonce=") && to.contains("state="), "{to}");
    let state: String = to.split("state=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let r = http.get(format!("{}/users/{D1}/oidc/corp/callback?code=abc&state={state}", env.base)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("bound to this browser"));
    drop(b);
    drop(idp.child);
    env.stop().await;
}
