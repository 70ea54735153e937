//! Watching: a short-lived certificate (pebble's validity setting) is renewed at two
//! thirds of its life and deployed again; its expiry is read back from the target and
//! shown by `GET /api/v1/certificates` and `mware_acme_cert_expiry_seconds{cert}`; when
//! the CA is gone and the renewal cannot succeed, the certificate turns `failing` in
//! monitoring (an `Item` event: the alarm) before it expires.

mod common;

use common::*;
use mware_host::{EventKind, Service};
use mware_testkit::pebble::{Pebble, PebbleOpts};
use mware_testkit::sshd::{Sshd, SSH_PASSWORD, SSH_USER};
use serde_json::json;
use std::time::Duration;

async fn serve(svc: &mware_acme::AcmeService) -> String {
    let router = svc.routes().into_router();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_certificate_is_renewed_and_deployed_again_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let http_port = mware_testkit::free_port();
    let pebble = Pebble::start(&PebbleOpts { validity_s: Some(30), ..PebbleOpts::new(http_port) }).unwrap();
    let sshd = Sshd::start().unwrap();
    let known = dir.path().join("known_hosts");
    sshd.pin_in(&known).unwrap();
    let tdir = target_dir(dir.path(), "web");
    let acme = json!({"directory_url": pebble.directory, "ca_file": pebble.ca_file, "http01": {"port": http_port},
        "certificates": [{"name": "web", "names": ["www.example.com"], "targets": [{"name": "web1", "host": "127.0.0.1", "port": sshd.port,
            "user": SSH_USER, "password": SSH_PASSWORD, "dir": tdir}]}]});
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord, "mware1").await;
    let mut registry = prometheus_client::registry::Registry::default();
    let run = start_with(coord.clone(), fence, site(acme, &known), &mut registry).await;
    let api = serve(&run.svc).await;

    let first = wait_rec(&coord, "web", 60, |r| r.deploys.get("web1").is_some_and(|d| d.serial.is_some())).await;
    let i1 = first.issued.clone().unwrap();
    assert!(i1.not_after_ms - i1.not_before_ms <= 31_000, "pebble issued a 30 s certificate");
    let v: serde_json::Value = reqwest::get(format!("{api}/api/v1/certificates")).await.unwrap().json().await.unwrap();
    let c = &v["certificates"][0];
    assert_eq!((c["name"].as_str(), c["state"].as_str()), (Some("web"), Some("ok")), "{v:#}");
    assert_eq!(c["certificate"]["serial"], i1.serial.as_str());
    assert_eq!(c["targets"][0]["not_after_ms"], i1.not_after_ms, "expiry read back from the target");
    assert!(c["next"].as_str().unwrap().starts_with("nothing to do until"), "{v:#}");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let line = format!("mware_acme_cert_expiry_seconds{{cert=\"web\"}} {}", i1.not_after_ms / 1000);
    assert!(text.contains(&line), "{line} not in:\n{text}");

    // Renewed at two thirds of its 30 s (about 20 s after issuance) and deployed again.
    let second = wait_rec(&coord, "web", 60, |r| {
        r.issued.as_ref().is_some_and(|i| i.serial != i1.serial) && r.deploys["web1"].serial == r.issued.as_ref().map(|i| i.serial.clone())
    })
    .await;
    let i2 = second.issued.unwrap();
    assert!(
        i2.issued_ms >= i1.not_before_ms + 19_000 && i2.issued_ms < i1.not_after_ms,
        "renewed before expiry, not at once: {} vs {}..{}",
        i2.issued_ms,
        i1.not_before_ms,
        i1.not_after_ms
    );
    assert_eq!(std::fs::read_to_string(tdir.join("fullchain.pem")).unwrap(), i2.chain_pem);
    assert_eq!(stat(&tdir.join("privkey.pem")).0, 0o600);
    assert_eq!(pebble.count("Added order"), 2, "one order per certificate");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_that_cannot_succeed_raises_the_alarm_before_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let http_port = mware_testkit::free_port();
    let mut pebble = Pebble::start(&PebbleOpts { validity_s: Some(60), ..PebbleOpts::new(http_port) }).unwrap();
    let acme = json!({"directory_url": pebble.directory, "ca_file": pebble.ca_file, "http01": {"port": http_port},
        "certificates": [{"name": "web", "names": ["www.example.com"]}]});
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord, "mware1").await;
    let run = start(coord.clone(), fence, site(acme, &dir.path().join("known_hosts"))).await;
    let mut rx = run.events.subscribe();
    let first = wait_rec(&coord, "web", 60, |r| r.issued.is_some()).await.issued.unwrap();
    pebble.kill9();
    // Renewal at 40 s fails (the CA is gone); with a sixth of its life left (10 s) it is failing.
    let reason = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let e = rx.recv().await.unwrap();
            if let EventKind::Item { source, item, state, reason } = &e.kind {
                if source == "acme" && item == "web" && state == "failing" {
                    return reason.clone();
                }
            }
        }
    })
    .await
    .expect("a failing item before expiry");
    let now = mware_config::now_ms();
    assert!(now < first.not_after_ms, "the alarm comes before expiry");
    assert!(reason.contains("its renewal has not succeeded"), "{reason}");
    let rec = mware_acme::store::load(coord.as_ref(), GROUP, "web").await.unwrap();
    assert!(rec.last_error.is_some() && rec.failures >= 1, "{rec:?}");
    run.stop().await;
}
