//! The server-rendered pages against the real service: strict headers (CSP without
//! script or style, no-referrer, no-store, no framing), no inline script or style, Russian
//! or English by Accept-Language, CSRF (a POST without the cookie's value is refused),
//! hostile values escaped; and the recovery flow through the pages with the link from the
//! real mail.

mod common;

use common::{link_of, Env, D1, PASSWORD};
use serde_json::json;

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(env: &Env, path: &str, lang: &str) -> Page {
    let r = env.http.get(format!("{}{path}", env.base)).header("accept-language", lang).send().await.unwrap();
    Page { status: r.status().as_u16(), headers: r.headers().clone(), body: r.text().await.unwrap() }
}

async fn post(env: &Env, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Page {
    let mut req = env.http.post(format!("{}{path}", env.base)).header("accept-language", "en").form(form);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    Page { status: r.status().as_u16(), headers: r.headers().clone(), body: r.text().await.unwrap() }
}

/// The cookie to send back and the form's CSRF value.
fn csrf(p: &Page) -> (String, String) {
    let set = p.headers.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let at = p.body.find("name=\"csrf\" value=\"").unwrap() + 19;
    let value: String = p.body[at..].chars().take_while(|c| *c != '"').collect();
    (cookie, value)
}

fn strict(p: &Page) {
    let h = |k: &str| p.headers.get(k).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert_eq!(h("content-security-policy"), "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    assert_eq!(h("referrer-policy"), "no-referrer");
    assert_eq!(h("cache-control"), "no-store");
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert!(!p.body.contains("<script") && !p.body.contains("style"), "{}", p.body);
    let handlers = p.body.split_whitespace().any(|w| w.starts_with("on") && w.contains('='));
    assert!(!handlers, "no inline event handler: {}", p.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_strict_bilingual_csrf_protected_and_recovery_works_through_them() {
    let env = Env::start("pages1", json!({})).await;
    let rita = "rita@example.ru";
    env.user(D1, rita, PASSWORD).await;

    let ru = get(&env, &format!("/users/{D1}/recover"), "ru-RU,ru;q=0.9").await;
    assert_eq!(ru.status, 200);
    strict(&ru);
    assert!(ru.body.contains("<html lang=\"ru\">") && ru.body.contains("Восстановление пароля"), "{}", ru.body);
    let en = get(&env, &format!("/users/{D1}/recover"), "en").await;
    assert!(en.body.contains("<html lang=\"en\">") && en.body.contains("Password recovery"));

    // Without the cookie, or with another value: refused, nothing sent.
    let (cookie, value) = csrf(&en);
    let p = post(&env, &format!("/users/{D1}/recover"), None, &[("csrf", &value), ("login", rita)]).await;
    assert_eq!(p.status, 403);
    strict(&p);
    let p = post(&env, &format!("/users/{D1}/recover"), Some(&cookie), &[("csrf", "forged"), ("login", rita)]).await;
    assert_eq!(p.status, 403);
    let p = post(&env, &format!("/users/{D1}/recover"), Some(&cookie), &[("csrf", &value), ("login", rita)]).await;
    assert_eq!(p.status, 202, "{}", p.body);
    assert!(p.body.contains("If the account exists"));

    // The link of the mail opens the set-password page; the password is set through it.
    let (token, link) = link_of(&env.sink.wait(rita, 1, 30).await[0]);
    let path = link.trim_start_matches("https://id.test");
    let set = get(&env, path, "en").await;
    assert_eq!(set.status, 200);
    strict(&set);
    assert!(set.body.contains(&format!("name=\"token\" value=\"{token}\"")));
    let (cookie, value) = csrf(&set);
    let p =
        post(&env, &format!("/users/{D1}/recovery"), Some(&cookie), &[("csrf", &value), ("token", &token), ("password", "short")]).await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("at least 12 characters"), "{}", p.body);
    let new = "a new password from the page";
    let p = post(&env, &format!("/users/{D1}/recovery"), Some(&cookie), &[("csrf", &value), ("token", &token), ("password", new)]).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let (s, _, _) = env.post("/api/users/v1/login", json!({"domain": D1, "login": rita, "password": new})).await;
    assert_eq!(s, 200);
    let p = post(&env, &format!("/users/{D1}/recovery"), Some(&cookie), &[("csrf", &value), ("token", &token), ("password", new)]).await;
    assert_eq!(p.status, 400, "the link works once");

    // Hostile values: a token that is not one, HTML in the path; an unknown domain.
    let bad = get(&env, &format!("/users/{D1}/recovery?token=%3Cscript%3Ealert(1)%3C/script%3E"), "en").await;
    assert_eq!(bad.status, 400);
    strict(&bad);
    assert!(!bad.body.contains("alert"), "{}", bad.body);
    let bad = get(&env, "/users/%3Cscript%3E.ru/recover", "en").await;
    assert_eq!(bad.status, 404);
    assert!(!bad.body.contains("<script"));
    env.stop().await;
}
