//! DNS-01 against real BIND 9 and pebble: the `_acme-challenge` TXT records go in by RFC
//! 2136 updates signed with a TSIG key, pebble (asking that BIND) validates them, and they
//! are deleted after; a wrong TSIG secret is refused by BIND and shown.

mod common;

use common::*;
use mware_testkit::bind::Bind;
use mware_testkit::pebble::{Pebble, PebbleOpts};
use serde_json::json;

fn acme(pebble: &Pebble, bind: &Bind, env: &str) -> serde_json::Value {
    json!({"directory_url": pebble.directory, "ca_file": pebble.ca_file,
        "dns01": {"server": bind.addr(), "zone": bind.zone, "tsig_key_name": bind.key_name, "tsig_key_env": env, "propagation_s": 0},
        "certificates": [{"name": "wild", "names": ["*.example.com", "example.com"], "challenge": "dns-01"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_by_dns01_through_rfc2136_and_tsig() {
    let dir = tempfile::tempdir().unwrap();
    let bind = Bind::start("example.com").unwrap();
    let pebble = Pebble::start(&PebbleOpts { dns: Some(bind.addr()), ..PebbleOpts::new(mware_testkit::free_port()) }).unwrap();
    std::env::set_var("MWARE_TEST_TSIG_GOOD", &bind.secret);
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord, "mware1").await;
    let run = start(coord.clone(), fence, site(acme(&pebble, &bind, "MWARE_TEST_TSIG_GOOD"), &dir.path().join("known_hosts"))).await;
    let rec = wait_rec(&coord, "wild", 120, |r| r.issued.is_some()).await;
    let issued = rec.issued.unwrap();
    assert_eq!(issued.names, vec!["*.example.com", "example.com"]);
    verify_chain(&issued.chain_pem, &pebble.root_pem().unwrap(), dir.path());
    let info = mware_acme::keys::info(&issued.chain_pem).unwrap();
    assert_eq!(info.names, vec!["*.example.com", "example.com"]);
    let ups = bind.updates();
    let added = ups.iter().filter(|l| l.contains("adding an RR at '_acme-challenge.example.com' TXT")).count();
    let deleted = ups.iter().filter(|l| l.contains("deleting rrset at '_acme-challenge.example.com' TXT")).count();
    assert!(added >= 2 && deleted >= 1, "updates applied by BIND:\n{}", ups.join("\n"));
    assert!(!pebble.log_text().contains("Attempting to validate w/ HTTP"), "validated by DNS, not HTTP");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_tsig_secret_is_refused_by_bind_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let bind = Bind::start("example.com").unwrap();
    let pebble = Pebble::start(&PebbleOpts { dns: Some(bind.addr()), ..PebbleOpts::new(mware_testkit::free_port()) }).unwrap();
    std::env::set_var("MWARE_TEST_TSIG_BAD", "c2VjcmV0LWJ1dC1ub3QtdGhlLXJpZ2h0LW9uZQ==");
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord, "mware1").await;
    let run = start(coord.clone(), fence, site(acme(&pebble, &bind, "MWARE_TEST_TSIG_BAD"), &dir.path().join("known_hosts"))).await;
    let rec = wait_rec(&coord, "wild", 60, |r| r.last_error.is_some()).await;
    let err = rec.last_error.unwrap();
    assert!(err.contains("dns-01") && err.contains("NOTAUTH"), "{err}");
    assert!(!err.contains("c2VjcmV0"), "the secret is never shown: {err}");
    assert!(rec.retry_at_ms > mware_config::now_ms(), "backs off");
    assert!(rec.order.is_some(), "the order is kept to be finished after the backoff, not started again");
    assert!(bind.updates().is_empty(), "{}", bind.log_text());
    run.stop().await;
}
