//! Issuing against a real pebble (`PEBBLE_VA_ALWAYS_VALID=0`: every challenge is really
//! checked) by HTTP-01 answered by the service, and deploying over SSH to a real sshd.

mod common;

use common::*;
use mware_testkit::pebble::{Pebble, PebbleOpts};
use mware_testkit::sshd::{throwaway_host_key, Sshd, SSH_PASSWORD, SSH_USER};
use serde_json::json;

fn target(name: &str, sshd: &Sshd, dir: &std::path::Path, reload: Vec<String>) -> serde_json::Value {
    json!({"name": name, "host": "127.0.0.1", "port": sshd.port, "user": SSH_USER, "password": SSH_PASSWORD,
           "dir": dir, "cert_file": "web.crt", "key_file_name": "web.key", "cert_mode": "0640", "key_mode": "0600",
           "owner": format!("{SSH_USER}:{SSH_USER}"), "reload": reload})
}

/// Two names by HTTP-01; the chain verifies against pebble's root; deployed to one
/// target with owner, modes and the reload command; a second target whose pinned host
/// key differs is refused, shown failing, and nothing is written there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_names_by_http01_deployed_over_ssh_and_a_changed_host_key_refused() {
    let dir = tempfile::tempdir().unwrap();
    let http_port = mware_testkit::free_port();
    let pebble = Pebble::start(&PebbleOpts::new(http_port)).unwrap();
    let sshd = Sshd::start().unwrap();
    let known = dir.path().join("known_hosts");
    sshd.pin_in(&known).unwrap();
    // The second target: the same server under another name, pinned with another key.
    let (other_key, _) = throwaway_host_key().unwrap();
    mware_testkit::sshd::append_line(&known, &format!("[localhost]:{} {other_key}", sshd.port)).unwrap();
    let good = target_dir(dir.path(), "good");
    let bad = target_dir(dir.path(), "bad");
    let reloaded = good.join("reloaded");
    let mut t2 = target("changed-key", &sshd, &bad, vec![]);
    t2["host"] = "localhost".into();
    let acme = json!({"directory_url": pebble.directory, "ca_file": pebble.ca_file, "contact": ["mailto:noc@example.com"],
        "http01": {"port": http_port},
        "certificates": [{"name": "web", "names": ["www.example.com", "api.example.com"],
            "targets": [target("good", &sshd, &good, vec!["touch".into(), reloaded.display().to_string()]), t2]}]});
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord, "mware1").await;
    let run = start(coord.clone(), fence, site(acme, &known)).await;

    let rec = wait_rec(&coord, "web", 120, |r| {
        r.deploys.get("good").is_some_and(|d| d.serial.is_some()) && r.deploys.get("changed-key").is_some_and(|d| d.error.is_some())
    })
    .await;
    let issued = rec.issued.clone().expect("issued");
    assert_eq!(issued.names, vec!["api.example.com", "www.example.com"]);
    assert!(rec.order.is_none(), "the order is cleared once the certificate is held");
    let out = verify_chain(&issued.chain_pem, &pebble.root_pem().unwrap(), dir.path());
    println!("openssl verify: {}", out.trim());

    // The files on the target: content, modes, owner; the reload ran; no temp file left.
    let (uid, gid) = ids(SSH_USER);
    assert_eq!(std::fs::read_to_string(good.join("web.crt")).unwrap(), issued.chain_pem);
    assert_eq!(std::fs::read_to_string(good.join("web.key")).unwrap(), issued.key_pem);
    assert_eq!(stat(&good.join("web.crt")), (0o640, uid, gid));
    assert_eq!(stat(&good.join("web.key")), (0o600, uid, gid));
    assert!(reloaded.exists(), "the reload command ran");
    let left: Vec<_> = std::fs::read_dir(&good).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(left.iter().all(|f| !f.starts_with(".mware-")), "temp files left: {left:?}");
    let d = &rec.deploys["good"];
    assert_eq!((d.serial.as_deref(), d.not_after_ms), (Some(issued.serial.as_str()), Some(issued.not_after_ms)));

    // The changed host key: refused, shown, nothing written.
    let err = rec.deploys["changed-key"].error.clone().unwrap();
    assert!(err.contains("does not match the pinned key") && err.contains("nothing was sent"), "{err}");
    assert_eq!(std::fs::read_dir(&bad).unwrap().count(), 0, "nothing written to the refused target");
    assert!(rec.deploys["changed-key"].retry_at_ms > mware_config::now_ms(), "retried later");
    let view = run.svc.certificates().await.unwrap();
    let t = &view["certificates"][0]["targets"];
    assert_eq!((t[0]["state"].as_str(), t[1]["state"].as_str()), (Some("ok"), Some("failing")), "{view:#}");
    assert_eq!(view["certificates"][0]["state"], "warning", "{view:#}");
    assert!(!view.to_string().contains("PRIVATE KEY"), "no key in the view");

    // One order, one finalization at pebble.
    assert_eq!(pebble.count("Added order"), 1, "{}", pebble.log_text());
    run.stop().await;
}

/// pebble refusing 30% of nonces: issuing still succeeds (instant-acme's own retries,
/// then ours), with one order per certificate; one of them RSA 2048.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuing_succeeds_with_30_percent_of_nonces_refused() {
    let dir = tempfile::tempdir().unwrap();
    let http_port = mware_testkit::free_port();
    let pebble = Pebble::start(&PebbleOpts { nonce_reject: 30, ..PebbleOpts::new(http_port) }).unwrap();
    let acme = json!({"directory_url": pebble.directory, "ca_file": pebble.ca_file, "http01": {"port": http_port},
        "certificates": [{"name": "web", "names": ["www.example.com", "api.example.com"]},
                         {"name": "rsa", "names": ["rsa.example.com"], "key_type": "rsa-2048"}]});
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord, "mware1").await;
    let run = start(coord.clone(), fence, site(acme, &dir.path().join("known_hosts"))).await;
    let rec = wait_rec(&coord, "web", 120, |r| r.issued.is_some()).await;
    verify_chain(&rec.issued.unwrap().chain_pem, &pebble.root_pem().unwrap(), dir.path());
    // An RSA 2048 certificate too: its key and its certificate's public key match.
    let rsa = wait_rec(&coord, "rsa", 120, |r| r.issued.is_some()).await.issued.unwrap();
    assert_eq!(rsa.key_type, "rsa-2048");
    verify_chain(&rsa.chain_pem, &pebble.root_pem().unwrap(), dir.path());
    std::fs::write(dir.path().join("rsa.key"), &rsa.key_pem).unwrap();
    let pubkey = |args: &[&str]| std::process::Command::new("openssl").current_dir(dir.path()).args(args).output().unwrap().stdout;
    assert_eq!(pubkey(&["pkey", "-in", "rsa.key", "-pubout"]), pubkey(&["x509", "-in", "leaf.pem", "-noout", "-pubkey"]));
    // pebble does not log a refused nonce; the requests it served include the repeated ones.
    println!("requests served by pebble: {}; orders: {}", pebble.count("-> calling handler()"), pebble.count("Added order"));
    assert_eq!(pebble.count("Added order"), 2, "one order per certificate: {}", pebble.log_text());
    run.stop().await;
}
