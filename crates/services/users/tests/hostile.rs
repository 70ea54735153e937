//! Hostile input against the real service: long fields, SQL and HTML in every field,
//! header injection in e-mail addresses (CRLF), malformed bodies; each refused with the
//! field named, nothing stored, no mail; and a flood past the limits: 429 with
//! `Retry-After`, counted, one alarm event.

mod common;

use common::{Env, D1, PASSWORD};
use mware_host::EventKind;
use serde_json::{json, Value};

const SQL: &str = "'; DROP TABLE users; --";
const HTML: &str = "<script>alert(1)</script>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fields_are_refused_by_name_and_change_nothing() {
    let env = Env::start("hostile1", json!({})).await;
    env.user(D1, "mallory@example.ru", PASSWORD).await;
    let long = "x".repeat(10_000);
    let calls: Vec<(&str, Value, &str)> = vec![
        ("/api/users/v1/login", json!({"domain": D1, "login": long, "password": "p"}), "login"),
        ("/api/users/v1/login", json!({"domain": long, "login": "a", "password": "p"}), "domain"),
        ("/api/users/v1/recovery", json!({"domain": D1, "login": long}), "login"),
        ("/api/users/v1/recovery/confirm", json!({"token": long, "password": PASSWORD}), "token"),
        ("/api/users/v1/invitations", json!({"domain": D1, "email": "a@example.ru\r\nBcc: all@example.ru"}), "email"),
        ("/api/users/v1/invitations", json!({"domain": D1, "email": "a@example.ru\nBcc: all@example.ru"}), "email"),
        ("/api/users/v1/invitations", json!({"domain": D1, "email": format!("{HTML}@example.ru")}), "email"),
        ("/api/users/v1/invitations", json!({"domain": D1, "email": format!("{SQL}@example.ru")}), "email"),
        ("/api/users/v1/invitations", json!({"domain": D1, "email": "x@example.ru", "role": SQL}), "role"),
        ("/api/users/v1/registrations", json!({"domain": common::D2, "email": "Eve <eve@example.ru>", "password": PASSWORD}), "email"),
        ("/api/users/v1/registrations", json!({"domain": common::D2, "email": "eve@example.ru", "password": long}), "password"),
        ("/api/users/v1/login", json!({"domain": D1, "login": "a", "password": "p", "admin": true}), "admin"),
        ("/api/users/v1/login", json!({"domain": D1, "login": 1, "password": "p"}), "login"),
    ];
    for (path, body, field) in calls {
        let (s, v, _) = env.post(path, body.clone()).await;
        assert_eq!(s, 400, "{path} {body}: {v}");
        assert_eq!(v["field"].as_str(), Some(field), "{path}: {v}");
        let text = v.to_string();
        assert!(!text.contains(&long) && !text.contains('\r'), "the answer does not echo the input: {}", &text[..text.len().min(300)]);
    }
    for (path, body) in [
        ("/api/users/v1/login", json!({"domain": SQL, "login": "a", "password": "p"})),
        ("/api/users/v1/recovery", json!({"domain": HTML, "login": "a"})),
    ] {
        let (s, v, _) = env.post(path, body).await;
        assert_eq!((s, v["field"].as_str()), (404, Some("domain")), "{v}");
    }
    for login in [SQL, HTML, "' OR '1'='1", "mallory@example.ru' --"] {
        let (s, _, _) = env.post("/api/users/v1/login", json!({"domain": D1, "login": login, "password": "' OR '1'='1"})).await;
        assert_eq!(s, 401, "{login}");
        let (s, _, _) = env.post("/api/users/v1/recovery", json!({"domain": D1, "login": login})).await;
        assert_eq!(s, 202, "{login}");
    }
    let r = env.http.post(format!("{}/api/users/v1/login", env.base)).body("{\"domain\": 1, \"domain\": 2}").send().await.unwrap();
    assert_eq!(r.status(), 400, "repeated keys");
    let r = env.http.post(format!("{}/api/users/v1/login", env.base)).body("not json").send().await.unwrap();
    assert_eq!(r.status(), 400);

    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(env.sql("SELECT count(*) FROM users"), "1", "the table is there and unchanged");
    assert_eq!(env.sql("SELECT count(*) FROM outbox"), "0", "no mail was queued");
    assert_eq!(env.sql("SELECT count(*) FROM tokens"), "0");
    assert!(env.sink.mails().is_empty());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_limits_gets_429_with_retry_after_counted_and_one_alarm() {
    let limits = json!({"limits": {"per_ip_per_min": 40, "per_login_per_hour": 5, "per_address_per_hour": 2, "alarm_after": 10}});
    let mut env = Env::start("hostile2", limits).await;
    env.user(D1, "oscar@example.ru", PASSWORD).await;
    let mut codes = vec![];
    for _ in 0..6 {
        codes.push(env.post("/api/users/v1/login", json!({"domain": D1, "login": "oscar@example.ru", "password": "wrong one"})).await.0);
    }
    assert_eq!(codes, [401, 401, 401, 401, 401, 429], "five attempts per login and hour");
    let (s, _, ra) = env.post("/api/users/v1/login", json!({"domain": D1, "login": "oscar@example.ru", "password": PASSWORD})).await;
    assert_eq!(s, 429, "the right password does not pass the login's limit either");
    assert!(ra.unwrap().parse::<u64>().unwrap() > 60, "a pause of minutes for an hourly limit");

    for who in ["p1@example.ru", "p1@example.ru", "p1@example.ru"] {
        let _ = env.post("/api/users/v1/invitations", json!({"domain": D1, "email": who})).await;
    }
    let (s, _, _) = env.post("/api/users/v1/invitations", json!({"domain": D1, "email": "p1@example.ru"})).await;
    assert_eq!(s, 429, "two mails per address and hour");

    let (mut passed, mut refused) = (0, 0);
    for i in 0..200 {
        let (s, _, ra) = env.post("/api/users/v1/recovery", json!({"domain": D1, "login": format!("u{i}@example.ru")})).await;
        match s {
            202 => passed += 1,
            429 => {
                refused += 1;
                assert!(ra.unwrap().parse::<u64>().unwrap() >= 1);
            }
            other => panic!("unexpected {other}"),
        }
    }
    // 40 per minute from one address: the logins, the invitations and the first recoveries used them.
    assert!(refused >= 160 && passed <= 40, "passed {passed}, refused {refused}");
    let m = env.metrics();
    assert!(m.contains(&format!("mware_users_refused_total{{limit=\"ip\"}} {refused}\n")), "each refusal counted once: {refused}\n{m}");
    assert!(m.contains("mware_users_limit_alarms_total 2") || m.contains("mware_users_limit_alarms_total 1"), "{m}");
    let (events, _) = env.ctx.events.since(0);
    let alarms: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Item { source, item, state, reason } if source == "users" => Some((item.clone(), state.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert!(alarms.iter().any(|(item, state, _)| item == "limit-ip" && state == "warning"), "{alarms:?}");
    assert_eq!(alarms.iter().filter(|(item, _, _)| item == "limit-ip").count(), 1, "one alarm per key and minute: {alarms:?}");

    // The trips are kept in the group's database (hashes, not what the client sent), and
    // the next run, with nothing in memory, still refuses each key: a failover does not
    // reset a lockout.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while env.sql("SELECT string_agg(kind, ',' ORDER BY kind) FROM limit_trips") != "address,ip,login" {
        assert!(std::time::Instant::now() < deadline, "trips kept: {}", env.sql("SELECT string_agg(kind, ',') FROM limit_trips"));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let dump = env.sql("SELECT kind, key_hash, full_at FROM limit_trips");
    assert!(!dump.contains("oscar") && !dump.contains("p1@") && !dump.contains("127.0.0.1"), "{dump}");
    env.rerun().await;
    // From another client address (the IP limit lets it in): the login's lockout and the
    // address's limit hold.
    let other = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let post = |path: &str, body: serde_json::Value| other.post(format!("{}{path}", env.base)).json(&body).send();
    let r = post("/api/users/v1/login", json!({"domain": D1, "login": "oscar@example.ru", "password": PASSWORD})).await.unwrap();
    assert_eq!(r.status().as_u16(), 429, "the login's lockout holds on the next run");
    let ra: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(ra > 60, "still minutes away: {ra}");
    let r = post("/api/users/v1/invitations", json!({"domain": D1, "email": "p1@example.ru"})).await.unwrap();
    assert_eq!(r.status().as_u16(), 429, "the address's limit holds on the next run");
    let r = post("/api/users/v1/recovery", json!({"domain": D1, "login": "q@example.ru"})).await.unwrap();
    assert_eq!(r.status().as_u16(), 202, "another client is not refused");
    // The flooding client gets back only what refilled since (one every 1.5 s), not a
    // fresh allowance of 40.
    let mut refused = 0;
    for i in 0..10 {
        refused +=
            usize::from(env.post("/api/users/v1/recovery", json!({"domain": D1, "login": format!("after{i}@example.ru")})).await.0 == 429);
    }
    assert!(refused >= 5, "the flooding client is still refused on the next run: {refused} of 10");
    env.stop().await;
}
