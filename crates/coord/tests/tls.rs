//! The etcd coordinator over TLS, against a real etcd 3.4 that serves only HTTPS and
//! requires client certificates (`Etcd::start_tls`, a throwaway CA made by openssl):
//! a member joins over mutual TLS, becomes active and writes fenced; it stays usable
//! across an etcd restart (also with user/password, whose token etcd forgets); no client
//! certificate, a wrong CA, unreadable or non-PEM files and `http://` endpoints are
//! refused with errors that name the cause and never show key material.

use mware_config::{Backend, Coordination, TlsFiles};
use mware_coord::*;
use mware_testkit::etcd::{make_ca, Etcd, TestCerts};
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn mutual(c: &TestCerts) -> TlsFiles {
    TlsFiles { ca_file: p(&c.ca), cert_file: Some(p(&c.client_cert)), key_file: Some(p(&c.client_key)) }
}

fn settings(endpoint: String, tls: Option<TlsFiles>) -> Settings {
    let c = Coordination { backend: Backend::Etcd, endpoints: vec![endpoint], prefix: Some("/t/tls".into()), tls, ..Default::default() };
    Settings { site: "test".into(), coordination: c }
}

fn info(name: &str, order: i64) -> MemberInfo {
    MemberInfo { instance: name.into(), group: 3, order, address: "127.0.0.1:0".into(), version: "test".into(), since_ms: now_ms() }
}

async fn active(m: &mut Membership) -> Epoch {
    tokio::time::timeout(T, m.wait_active()).await.expect("became active in time").unwrap()
}

async fn connect_err(s: Settings) -> String {
    let r = tokio::time::timeout(T, EtcdCoordinator::connect(s)).await.expect("connect answers in time");
    let err = r.err().expect("the connection is refused").to_string();
    println!("refused: {err}");
    err
}

/// Keeps trying a fenced write with the member's current epoch until one goes through.
async fn write_eventually(c: &EtcdCoordinator, m: &Membership, key: &str, value: &[u8]) {
    let ok = tokio::time::timeout(T, async {
        loop {
            let epoch = m.activity.borrow().epoch();
            if let Some(epoch) = epoch {
                if kv_put(c, &Fence { group: 3, epoch }, key, value.to_vec()).await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "no fenced write of {key} went through in {T:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_join_fenced_writes_and_restart() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let mut etcd = Etcd::start_tls().unwrap();
    assert!(etcd.endpoint().starts_with("https://"));
    let certs = etcd.certs().unwrap().clone();
    let c = EtcdCoordinator::connect(settings(etcd.endpoint(), Some(mutual(&certs)))).await.unwrap();

    let mut m1 = c.join(info("t1", 10)).await.unwrap();
    let e1 = active(&mut m1).await;
    let f1 = Fence { group: 3, epoch: e1 };
    kv_put(&c, &f1, "state", b"one".to_vec()).await.unwrap();
    assert_eq!(c.kv_get(3, "state").await.unwrap().unwrap().value, b"one");
    c.config_put("site: tls").await.unwrap();
    assert_eq!(c.config_get().await.unwrap().unwrap().0, "site: tls");

    // A second member over its own TLS connection takes over; the old epoch is fenced.
    let c2 = EtcdCoordinator::connect(settings(etcd.endpoint(), Some(mutual(&certs)))).await.unwrap();
    let mut m2 = c2.join(info("t2", 20)).await.unwrap();
    m1.leave().await;
    let e2 = active(&mut m2).await;
    assert!(e2 > e1, "epochs grow: {e1} then {e2}");
    match kv_put(&c, &f1, "state", b"stale".to_vec()).await {
        Err(CoordError::Fenced { held, current, .. }) => assert_eq!((held, current), (e1, Some(e2))),
        r => panic!("expected the stale epoch to be fenced, found {r:?}"),
    }
    assert_eq!(c2.kv_get(3, "state").await.unwrap().unwrap().value, b"one", "a refused write changes nothing");

    // etcd restarts: the keep-alive and KV paths reconnect over TLS with the same options.
    tokio::task::block_in_place(|| etcd.restart()).unwrap();
    write_eventually(&c2, &m2, "after-restart", b"yes").await;
    assert_eq!(c.kv_get(3, "after-restart").await.unwrap().unwrap().value, b"yes");
    m2.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_password_reauthenticates_after_restart() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let mut etcd = Etcd::start_tls().unwrap();
    let certs = etcd.certs().unwrap().clone();
    // Set up users over TLS with the client certificate, then turn auth on.
    let tls = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(std::fs::read(&certs.ca).unwrap()))
        .identity(etcd_client::Identity::from_pem(std::fs::read(&certs.client_cert).unwrap(), std::fs::read(&certs.client_key).unwrap()));
    let opts = etcd_client::ConnectOptions::new().with_tls(tls);
    let mut admin = etcd_client::Client::connect([etcd.endpoint()], Some(opts)).await.unwrap();
    admin.user_add("root", "rootpw", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.role_add("mware").await.unwrap();
    admin.role_grant_permission("mware", etcd_client::Permission::read_write("/t/tls").with_prefix()).await.unwrap();
    admin.user_add("mware", "s3cret-pw", None).await.unwrap();
    admin.user_grant_role("mware", "mware").await.unwrap();
    admin.auth_enable().await.unwrap();

    let mut s = settings(etcd.endpoint(), Some(mutual(&certs)));
    s.coordination.user = Some("mware".into());
    s.coordination.password = Some(mware_config::Secret::new("s3cret-pw"));
    let c = EtcdCoordinator::connect(s.clone()).await.unwrap();
    let mut m = c.join(info("auth", 10)).await.unwrap();
    let e = active(&mut m).await;
    kv_put(&c, &Fence { group: 3, epoch: e }, "k", b"v".to_vec()).await.unwrap();
    // etcd forgets tokens on restart: the client authenticates again, over TLS.
    tokio::task::block_in_place(|| etcd.restart()).unwrap();
    write_eventually(&c, &m, "k", b"after").await;
    m.leave().await;

    s.coordination.password = Some(mware_config::Secret::new("wrong-pw"));
    let err = connect_err(s).await;
    assert!(!err.contains("wrong-pw"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_without_client_certificate_or_with_wrong_ca() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let etcd = Etcd::start_tls().unwrap();
    let certs = etcd.certs().unwrap().clone();

    // CA only: the server wants a client certificate.
    let ca_only = TlsFiles { ca_file: p(&certs.ca), cert_file: None, key_file: None };
    let err = connect_err(settings(etcd.endpoint(), Some(ca_only))).await;
    println!("no client certificate: {err}");
    assert!(err.contains("the TLS connection to etcd"), "{err}");
    assert!(err.contains("set coordination.tls.cert_file and key_file"), "{err}");

    // A CA that did not sign the server's certificate.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _) = make_ca(other.path(), "other-ca").unwrap();
    let wrong = TlsFiles { ca_file: p(&other_ca), ..mutual(&certs) };
    let err = connect_err(settings(etcd.endpoint(), Some(wrong))).await;
    println!("wrong CA: {err}");
    assert!(err.contains("the TLS connection to etcd"), "{err}");
    assert!(err.contains("UnknownIssuer") && err.contains("not signed by coordination.tls.ca_file"), "{err}");

    // A client certificate from a CA the server does not trust.
    let other_ca_key = other.path().join("other-ca.key");
    let ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
    let (stranger, stranger_key) = mware_testkit::etcd::make_cert(other.path(), "stranger", (&other_ca, &other_ca_key), ext).unwrap();
    let untrusted = TlsFiles { cert_file: Some(p(&stranger)), key_file: Some(p(&stranger_key)), ..mutual(&certs) };
    let err = connect_err(settings(etcd.endpoint(), Some(untrusted))).await;
    println!("untrusted client certificate: {err}");
    assert!(err.contains("did not accept the client certificate"), "{err}");

    // Plain HTTP to a TLS-only etcd, without a tls section: refused too, not hung.
    let plain = etcd.endpoint().replace("https://", "http://");
    let s = settings(plain, None);
    let r = tokio::time::timeout(T, async {
        let c = EtcdCoordinator::connect(s).await?;
        c.kv_get(3, "x").await
    })
    .await
    .expect("answers in time");
    println!("plain HTTP: {:?}", r.as_ref().err());
    assert!(r.is_err(), "plain HTTP to an HTTPS-only etcd must fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_down_at_start_is_not_a_tls_error() {
    // Nothing listens yet: connect succeeds (the client keeps trying, as without TLS),
    // and calls fail as unavailable until etcd is there.
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path()).unwrap();
    let port = mware_testkit::free_port();
    let s = settings(format!("https://127.0.0.1:{port}"), Some(mutual(&certs)));
    let c = tokio::time::timeout(T, EtcdCoordinator::connect(s)).await.expect("answers in time").unwrap();
    let err = tokio::time::timeout(T, c.kv_get(3, "x")).await.expect("answers in time").unwrap_err();
    println!("etcd down: {err}");
    assert!(matches!(err, CoordError::Unavailable(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_and_endpoints_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path()).unwrap();
    let https = "https://127.0.0.1:1".to_string();

    // Missing file: named, with the OS reason.
    let missing = dir.path().join("nope.crt");
    let tls = TlsFiles { ca_file: p(&missing), ..mutual(&certs) };
    let err = connect_err(settings(https.clone(), Some(tls))).await;
    assert!(err.contains("coordination.tls.ca_file") && err.contains(&p(&missing)), "{err}");
    assert!(err.contains("No such file"), "{err}");

    // Not PEM.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "hello").unwrap();
    let tls = TlsFiles { ca_file: p(&junk), ..mutual(&certs) };
    let err = connect_err(settings(https.clone(), Some(tls))).await;
    assert!(err.contains("expected PEM certificates") && err.contains("found no PEM block"), "{err}");

    // PEM markers around something that is not a certificate.
    let broken = dir.path().join("broken.crt");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n").unwrap();
    let tls = TlsFiles { ca_file: p(&broken), ..mutual(&certs) };
    let err = connect_err(settings(https.clone(), Some(tls))).await;
    assert!(err.contains("coordination.tls.ca_file") && err.contains("does not parse"), "{err}");
    let tls = TlsFiles { cert_file: Some(p(&broken)), ..mutual(&certs) };
    let err = connect_err(settings(https.clone(), Some(tls))).await;
    assert!(err.contains("coordination.tls.cert_file") && err.contains("does not parse"), "{err}");

    // PEM markers around something that is not a key.
    let junk_key = dir.path().join("junk.key");
    std::fs::write(&junk_key, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n").unwrap();
    let tls = TlsFiles { key_file: Some(p(&junk_key)), ..mutual(&certs) };
    let err = connect_err(settings(https.clone(), Some(tls))).await;
    assert!(err.contains("coordination.tls.key_file") && err.contains("does not parse"), "{err}");
    assert!(!err.contains("bm90IGEga2V5"), "the error shows key material: {err}");

    // Certificate and key swapped: named, and no key material in the message.
    let tls = TlsFiles { key_file: Some(p(&certs.client_cert)), cert_file: Some(p(&certs.client_key)), ..mutual(&certs) };
    let err = connect_err(settings(https.clone(), Some(tls))).await;
    assert!(err.contains("coordination.tls.cert_file"), "{err}");
    let key = std::fs::read_to_string(&certs.client_key).unwrap();
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!err.contains(line), "the error shows key material: {err}");
    }
    let tls = TlsFiles { key_file: Some(p(&certs.client_cert)), ..mutual(&certs) };
    let err = connect_err(settings(https.clone(), Some(tls))).await;
    assert!(err.contains("expected a PEM private key") && err.contains("\"CERTIFICATE\""), "{err}");

    // Half of a client identity.
    let tls = TlsFiles { key_file: None, ..mutual(&certs) };
    let err = connect_err(settings(https.clone(), Some(tls))).await;
    assert!(err.contains("key_file"), "{err}");

    // tls with http:// endpoints, and https:// endpoints without tls.
    let err = connect_err(settings("http://127.0.0.1:1".into(), Some(mutual(&certs)))).await;
    assert!(err.contains("expected https://"), "{err}");
    let err = connect_err(settings(https, None)).await;
    assert!(err.contains("expected coordination.tls"), "{err}");
}
