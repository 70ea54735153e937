//! TLS to the provisioning database, against a PostgreSQL 15 started (initdb) with
//! `ssl = on` and a pg_hba that refuses every connection without TLS: the DSN's
//! `sslmode=require` connects encrypted (the server sees the session as ssl), and
//! `provisioning.ca_file` verifies the certificate and the host name (`verify-full`):
//! another CA or another name is refused, without the DSN's password in the error.

mod common;

use common::{bounded, Ast, E1, SCHEMA};
use mware_config::Secret;
use mware_realtime::Provisioning;
use mware_realtime::ProvisioningHandle;
use mware_testkit::etcd::make_ca;
use mware_testkit::pg::PgInstance;
use std::path::Path;

const APP: &str = "rt-tls-test";

/// A primary with TLS on and every non-TLS TCP connection refused.
fn tls_postgres(dir: &Path) -> (PgInstance, std::path::PathBuf) {
    let pg = PgInstance::new_primary("rttls").expect("initdb");
    let ca = pg.enable_tls(dir).expect("TLS on");
    pg.psql(SCHEMA).unwrap();
    pg.psql("INSERT INTO ps_endpoints (id, domain, context) VALUES ('1001', 't1.example.ru', 'tls')").unwrap();
    (pg, ca)
}

fn cfg(dsn: String, ca_file: Option<&Path>) -> Provisioning {
    let mut c = common::TestDb { name: String::new() }.config();
    c.dsn = Secret::new(dsn);
    c.ca_file = ca_file.map(|p| p.to_string_lossy().into_owned());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_and_verify_full_through_rustls() {
    bounded(120, async {
        let dir = tempfile::tempdir().unwrap();
        let (pg, ca) = tls_postgres(dir.path());
        let dsn = |extra: &str| format!("host=127.0.0.1 port={} user=postgres dbname=postgres password=never-shown-pw application_name={APP} connect_timeout=5 {extra}", pg.port);
        let mut registry = prometheus_client::registry::Registry::default();
        let handle = ProvisioningHandle::new(&mut registry);

        // Without TLS the server refuses.
        let err = handle.start(&cfg(dsn("sslmode=disable"), None)).await.expect_err("no TLS: refused");
        assert!(!format!("{err} {err:?}").contains("never-shown-pw"), "{err}");

        // sslmode=require: encrypted, answers as usual.
        let srv = common::ProvServer::start(&cfg(dsn("sslmode=require"), None), 0).await;
        assert_eq!(Ast::new(&srv.url(), E1, "endpoint").single(&[("id", "1001")]).await, (200, "id=1001&context=tls\n".into()));
        let ssl = pg.psql(&format!("SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND application_name = '{APP}'")).unwrap();
        assert!(ssl.parse::<i64>().unwrap() >= 1, "the service's sessions are TLS: {ssl}");

        // verify-full: the right CA and name connect; the DSN's sslmode does not weaken it.
        let srv2 = common::ProvServer::start(&cfg(dsn("sslmode=prefer"), Some(&ca)), 0).await;
        assert_eq!(Ast::new(&srv2.url(), E1, "endpoint").single(&[("id", "1001")]).await, (200, "id=1001&context=tls\n".into()));

        // Another CA: refused.
        let (other_ca, _) = make_ca(&dir.path().join("other"), "other-ca").unwrap();
        let err = handle.start(&cfg(dsn(""), Some(&other_ca))).await.expect_err("untrusted certificate");
        let text = format!("{err}");
        eprintln!("untrusted: {text}");
        assert!(text.contains("UnknownIssuer"), "{text}");
        assert!(text.contains("expected postgresql to answer"), "{text}");
        assert!(!text.contains("never-shown-pw"), "{text}");
        // The right CA but another host name than the certificate's (reached at 127.0.0.1).
        let named = format!("host=db.example.org hostaddr=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=5", pg.port);
        let err = handle.start(&cfg(named, Some(&ca))).await.expect_err("name mismatch refused");
        eprintln!("name mismatch: {err}");
        assert!(err.to_string().contains("certificate not valid for name \"db.example.org\""), "{err}");
        // A CA file that is not there: a clear error naming the setting.
        let err = handle.start(&cfg(dsn(""), Some(&dir.path().join("missing.pem")))).await.expect_err("missing file");
        assert!(err.to_string().contains("provisioning.ca_file"), "{err}");
        assert!(!handle.is_running());
    })
    .await;
}
