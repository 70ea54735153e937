//! Invitations and self-registration end to end against PostgreSQL and the SMTP sink:
//! invite, the link from the mail accepts once and creates the account with its role,
//! resend revokes the old link, revoke kills a pending one, list shows each state;
//! self-registration is refused where it is off and for other e-mail domains, and where
//! it is on the account exists only after confirmation and logs in only after approval.

mod common;

use common::{link_of, Env, D1, D2};
use serde_json::json;

const PW: &str = "a good long password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_accepted_once_resent_or_revoked_and_listed_with_its_state() {
    let env = Env::start("flow1", json!({})).await;
    let (s, v, _) = env.post("/api/users/v1/invitations", json!({"domain": D1, "email": "Ivan@Example.RU", "role": "admin"})).await;
    assert_eq!(s, 201, "{v}");
    let ivan = "Ivan@example.ru";
    assert_eq!(v["email"], ivan);
    let (s, v, _) = env.post("/api/users/v1/invitations", json!({"domain": D1, "email": "x@example.ru", "role": "root"})).await;
    assert_eq!((s, v["field"].as_str()), (400, Some("role")), "{v}");

    let old = link_of(&env.sink.wait(ivan, 1, 30).await[0]).0;
    let id = env.sql("SELECT id FROM tokens WHERE kind = 'invitation' AND email = 'Ivan@example.ru'");
    let (s, v, _) = env.post(&format!("/api/users/v1/invitations/{id}/resend"), json!({"domain": D1})).await;
    assert_eq!(s, 200, "{v}");
    let mails = env.sink.wait(ivan, 2, 30).await;
    let (new, link) = link_of(&mails[1]);
    assert!(link.contains("/users/tenant1.example.ru/invitation?token="), "{link}");
    let (s, v, _) = env.post("/api/users/v1/invitations/accept", json!({"token": old, "password": PW})).await;
    assert!(s == 400 && v["error"].as_str().unwrap().contains("revoked"), "{s} {v}");
    let (s, v, _) = env.post("/api/users/v1/invitations/accept", json!({"token": new, "password": PW, "domain": D2})).await;
    assert!(s == 400 && v["error"].as_str().unwrap().contains("another domain"), "{s} {v}");
    let (s, v, _) = env.post("/api/users/v1/invitations/accept", json!({"token": new, "password": PW})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!((v["login"].as_str(), v["role"].as_str()), (Some(ivan), Some("admin")));
    let (s, _, _) = env.post("/api/users/v1/invitations/accept", json!({"token": new, "password": PW})).await;
    assert_eq!(s, 400, "a second use is refused");
    let (s, v, _) = env.post("/api/users/v1/login", json!({"domain": D1, "login": ivan, "password": PW})).await;
    assert_eq!((s, v["role"].as_str()), (200, Some("admin")), "{v}");
    let (s, _, _) = env.post("/api/users/v1/invitations", json!({"domain": D1, "email": ivan})).await;
    assert_eq!(s, 409, "an address with an account is not invited again");

    let (_, v, _) = env.post("/api/users/v1/invitations", json!({"domain": D1, "email": "judy@example.ru"})).await;
    let judy = v["id"].as_i64().unwrap();
    let (s, _, _) = env.post(&format!("/api/users/v1/invitations/{judy}/revoke"), json!({"domain": D1})).await;
    assert_eq!(s, 200);
    let judy_token = link_of(&env.sink.wait("judy@example.ru", 1, 30).await[0]).0;
    let (s, _, _) = env.post("/api/users/v1/invitations/accept", json!({"token": judy_token, "password": PW})).await;
    assert_eq!(s, 400, "a revoked invitation is refused");
    let (s, v) = env.get(&format!("/api/users/v1/invitations?domain={D1}"), None).await;
    assert_eq!(s, 200);
    let states: Vec<(String, String)> = v["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["email"].as_str().unwrap().to_string(), i["state"].as_str().unwrap().to_string()))
        .collect();
    let want = [("judy@example.ru", "revoked"), (ivan, "used"), (ivan, "revoked")];
    assert_eq!(states.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>(), want);
    assert!(!v.to_string().contains(&new), "a list never shows a token");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_registration_is_off_by_default_and_on_needs_confirmation_then_approval() {
    let env = Env::start("flow2", json!({})).await;
    let (s, _, _) = env.post("/api/users/v1/registrations", json!({"domain": D1, "email": "kate@example.ru", "password": PW})).await;
    assert_eq!(s, 403, "off in tenant1 (the default)");
    let (s, v, _) = env.post("/api/users/v1/registrations", json!({"domain": D2, "email": "kate@gmail.com", "password": PW})).await;
    assert_eq!((s, v["field"].as_str()), (400, Some("email")), "{v}");
    let (s, v, _) = env.post("/api/users/v1/registrations", json!({"domain": D2, "email": "kate@example.ru", "password": "short"})).await;
    assert_eq!((s, v["field"].as_str()), (400, Some("password")), "{v}");

    let kate = "kate@example.ru";
    let (s, first, _) = env.post("/api/users/v1/registrations", json!({"domain": D2, "email": kate, "password": PW})).await;
    assert_eq!(s, 202, "{first}");
    let token = link_of(&env.sink.wait(kate, 1, 30).await[0]).0;
    assert_eq!(env.sql("SELECT count(*) FROM users"), "0", "no account before confirmation");
    let (s, _, _) = env.post("/api/users/v1/login", json!({"domain": D2, "login": kate, "password": PW})).await;
    assert_eq!(s, 401);
    let (s, v, _) = env.post("/api/users/v1/registrations/confirm", json!({"token": token})).await;
    assert_eq!((s, v["state"].as_str()), (201, Some("pending_approval")), "{v}");
    let (s, _, _) = env.post("/api/users/v1/registrations/confirm", json!({"token": token})).await;
    assert_eq!(s, 400, "a confirmation link works once");
    let (s, _, _) = env.post("/api/users/v1/login", json!({"domain": D2, "login": kate, "password": PW})).await;
    assert_eq!(s, 403, "waiting for approval");
    let (s, v) = env.get(&format!("/api/users/v1/registrations?domain={D2}"), None).await;
    assert_eq!(s, 200, "{v}");
    let waiting = v["awaiting_approval"].as_array().expect("the list");
    assert_eq!(waiting.len(), 1, "{v}");
    assert_eq!((waiting[0]["login"].as_str(), waiting[0]["email"].as_str()), (Some(kate), Some(kate)));
    assert!(waiting[0]["created_at"].as_str().is_some_and(|t| t.starts_with("20")), "{v}");
    assert_eq!(env.get("/api/users/v1/registrations?domain=unknown.example", None).await.0, 404);
    let (s, v, _) = env.post("/api/users/v1/registrations/approve", json!({"domain": D2, "login": kate})).await;
    assert_eq!(s, 200, "{v}");
    let (s, _, _) = env.post("/api/users/v1/login", json!({"domain": D2, "login": kate, "password": PW})).await;
    assert_eq!(s, 200);
    let (_, v) = env.get(&format!("/api/users/v1/registrations?domain={D2}"), None).await;
    assert_eq!(v["awaiting_approval"], serde_json::json!([]), "approved: no longer waiting");

    // Registering an address that has an account: the same answer, and no mail.
    let (s, v2, _) = env.post("/api/users/v1/registrations", json!({"domain": D2, "email": kate, "password": PW})).await;
    assert_eq!(s, 202);
    assert_eq!(v2, first, "the same answer as for a new address");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(env.sink.to(kate).len(), 1, "no second mail");
    env.stop().await;
}
