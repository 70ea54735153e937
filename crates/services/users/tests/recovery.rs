//! Password recovery against a real PostgreSQL and a real SMTP server (aiosmtpd): the
//! link from the mail works once and ends the sessions; a second use, an older link after
//! a newer request, an expired link and a link of another domain are refused; the answer
//! is the same, and takes a similar time, for an existing and a missing login.

mod common;

use common::{link_of, Env, D1, D2, PASSWORD};
use serde_json::json;
use std::time::{Duration, Instant};

const NEW: &str = "a brand new password 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_from_the_mail_works_once_and_ends_the_sessions() {
    let env = Env::start("rec1", json!({})).await;
    let alice = "alice@example.ru";
    env.user(D1, alice, PASSWORD).await;
    let (s, login, _) = env.post("/api/users/v1/login", json!({"domain": D1, "login": alice, "password": PASSWORD})).await;
    assert_eq!(s, 200, "{login}");
    let session = login["session"].as_str().unwrap().to_string();
    assert_eq!(env.get("/api/users/v1/session", Some(&session)).await.0, 200);

    let (s, v, _) = env.post("/api/users/v1/recovery", json!({"domain": D1, "login": alice})).await;
    assert_eq!((s, v["status"].as_str()), (202, Some("accepted")));
    let mail = env.sink.wait(alice, 1, 30).await.remove(0);
    assert!(mail.contains("Subject: Password recovery for tenant1.example.ru"), "{mail}");
    assert!(mail.contains("Message-ID: <mware-users-"), "{mail}");
    let (token, link) = link_of(&mail);
    assert!(link.starts_with("https://id.test/users/tenant1.example.ru/recovery?token="), "{link}");
    assert_eq!(env.sql("SELECT count(*) FROM tokens WHERE token_hash = sha256(convert_to('x','UTF8'))"), "0");
    let stored = env.sql("SELECT encode(token_hash, 'hex') FROM tokens WHERE kind = 'recovery'");
    assert!(!stored.contains(&token) && stored.len() == 64, "only the hash is stored: {stored}");

    // Another domain's confirmation, then a weak and a breached-length password: refused, token kept.
    let (s, v, _) = env.post("/api/users/v1/recovery/confirm", json!({"token": token, "password": NEW, "domain": D2})).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("another domain"), "{v}");
    let (s, v, _) = env.post("/api/users/v1/recovery/confirm", json!({"token": token, "password": "short"})).await;
    assert_eq!((s, v["field"].as_str()), (400, Some("password")), "{v}");

    let (s, v, _) = env.post("/api/users/v1/recovery/confirm", json!({"token": token, "password": NEW, "domain": D1})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(env.get("/api/users/v1/session", Some(&session)).await.0, 401, "the old session ended");
    let (s, _, _) = env.post("/api/users/v1/login", json!({"domain": D1, "login": alice, "password": PASSWORD})).await;
    assert_eq!(s, 401, "the old password no longer works");
    let (s, _, _) = env.post("/api/users/v1/login", json!({"domain": D1, "login": alice, "password": NEW})).await;
    assert_eq!(s, 200, "the new one does");

    let (s, v, _) = env.post("/api/users/v1/recovery/confirm", json!({"token": token, "password": "yet another password"})).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("used already"), "{v}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_request_kills_the_older_link_and_an_expired_link_is_refused() {
    let env = Env::start("rec2", json!({})).await;
    let bob = "bob@example.ru";
    env.user(D1, bob, PASSWORD).await;
    env.post("/api/users/v1/recovery", json!({"domain": D1, "login": bob})).await;
    let first = link_of(&env.sink.wait(bob, 1, 30).await[0]).0;
    env.post("/api/users/v1/recovery", json!({"domain": D1, "login": bob})).await;
    let second = link_of(&env.sink.wait(bob, 2, 30).await[1]).0;
    assert_ne!(first, second);
    let (s, v, _) = env.post("/api/users/v1/recovery/confirm", json!({"token": first, "password": NEW})).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");

    env.sql("UPDATE tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL AND revoked_at IS NULL");
    let (s, v, _) = env.post("/api/users/v1/recovery/confirm", json!({"token": second, "password": NEW})).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
    let (s, v, _) = env.post("/api/users/v1/recovery/confirm", json!({"token": "A".repeat(43), "password": NEW})).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("no such token"), "{v}");
    env.stop().await;
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_answer_and_a_similar_time_for_an_existing_and_a_missing_login() {
    let env = Env::start("rec3", json!({"argon2": {}})).await;
    let carol = "carol@example.ru";
    env.user(D1, carol, PASSWORD).await;
    let (mut known, mut unknown) = (vec![], vec![]);
    let (mut body_known, mut body_unknown) = (None, None);
    for i in 0..200 {
        for (login, times, body) in [(carol, &mut known, &mut body_known), ("nobody@example.ru", &mut unknown, &mut body_unknown)] {
            let t = Instant::now();
            let (s, v, _) = env.post("/api/users/v1/recovery", json!({"domain": D1, "login": login})).await;
            times.push(t.elapsed());
            assert_eq!(s, 202, "request {i} for {login}: {v}");
            assert!(body.as_ref().is_none_or(|b| *b == v));
            *body = Some(v);
        }
    }
    assert_eq!(body_known, body_unknown, "the same answer");
    let (a, b) = (median(known), median(unknown));
    let gap = a.abs_diff(b);
    eprintln!("recovery answer median: existing {a:?}, missing {b:?}");
    assert!(gap < Duration::from_millis(2) + a.min(b) / 2, "medians {a:?} vs {b:?} differ by {gap:?}");

    // Login: an unknown login costs one verification against the dummy hash too.
    let (mut known, mut unknown) = (vec![], vec![]);
    for _ in 0..20 {
        for (login, times) in [(carol, &mut known), ("nobody@example.ru", &mut unknown)] {
            let t = Instant::now();
            let (s, _, _) = env.post("/api/users/v1/login", json!({"domain": D1, "login": login, "password": "wrong password!"})).await;
            times.push(t.elapsed());
            assert_eq!(s, 401);
        }
    }
    let (a, b) = (median(known), median(unknown));
    eprintln!("failed login median: existing {a:?}, missing {b:?}");
    assert!(b > a / 2 && a > b / 2, "an unknown login is verified against the dummy hash: {a:?} vs {b:?}");
    env.stop().await;
}
