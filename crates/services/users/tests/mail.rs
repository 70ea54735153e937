//! The outbox against a real SMTP server: with the relay down, an invitation's mail waits
//! in PostgreSQL and goes out once after the relay returns; a recipient the relay refuses
//! for good is given up without blocking the others; a stopped and restarted service
//! (as on a failover) sends what was queued, each mail once.

mod common;

use common::{Env, D1};
use serde_json::json;
use std::time::{Duration, Instant};

async fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_back_each_mail_goes_out_once_and_a_bounce_blocks_no_one() {
    let mut env = Env::start("mail1", json!({})).await;
    env.sink.down();
    for (who, role) in [("bounce@example.ru", "user"), ("dave@example.ru", "admin"), ("erin@example.ru", "user")] {
        let (s, v, _) = env.post("/api/users/v1/invitations", json!({"domain": D1, "email": who, "role": role})).await;
        assert_eq!(s, 201, "{v}");
    }
    // The relay is down: each mail was tried, failed and waits for its retry.
    until("three failed attempts", 30, || env.sql("SELECT count(*) FROM outbox WHERE attempts >= 1 AND sent_at IS NULL") == "3").await;
    assert!(env.metrics().contains("mware_users_mails_total{outcome=\"retry\"}"), "{}", env.metrics());
    env.sink.up();
    env.sink.wait("dave@example.ru", 1, 90).await;
    env.sink.wait("erin@example.ru", 1, 90).await;
    until("the bounce given up", 60, || env.sql("SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL") == "1").await;
    let why = env.sql("SELECT last_error FROM outbox WHERE failed_at IS NOT NULL");
    assert!(why.contains("refused it for good") && why.contains("550"), "{why}");
    assert!(env.sink.to("bounce@example.ru").is_empty());

    // Stop the service with two mails queued while the relay is down; a new run sends them.
    env.sink.down();
    for who in ["frank@example.ru", "grace@example.ru"] {
        env.post("/api/users/v1/invitations", json!({"domain": D1, "email": who})).await;
    }
    let mut env = env.restart().await;
    env.sink.up();
    env.sink.wait("frank@example.ru", 1, 90).await;
    env.sink.wait("grace@example.ru", 1, 90).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for who in ["dave@example.ru", "erin@example.ru", "frank@example.ru", "grace@example.ru"] {
        assert_eq!(env.sink.to(who).len(), 1, "one mail to {who}");
    }
    let (s, v) = env.get(&format!("/api/users/v1/invitations?domain={D1}"), None).await;
    assert_eq!(s, 200);
    let states: Vec<&str> = v["invitations"].as_array().unwrap().iter().map(|i| i["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["pending"; 5], "{v}");
    env.sink.down();
    env.stop().await;
}
