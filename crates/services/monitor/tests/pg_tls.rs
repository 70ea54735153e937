//! The `postgres` probe over TLS through `mware-pg` (issue 23: it connected with
//! `NoTls`), against a PostgreSQL that refuses every TCP connection without TLS: the
//! DSN's `sslmode=require` connects encrypted (the session's own row of `pg_stat_ssl`
//! says so), `verify-full` and `verify-ca` with the right CA (`sslrootcert`) connect,
//! with another CA they are refused, and `disable` is refused by the server.

use mware_monitor::{Checker, Probe, ProbeEnv};
use mware_testkit::etcd::make_ca;
use mware_testkit::pg::PgInstance;
use serde_json::json;

/// One row when this session is encrypted, none otherwise.
const ENCRYPTED: &str = "SELECT 1 FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl";

async fn check(dsn: String) -> Result<String, String> {
    let p: Probe = serde_json::from_value(json!({"name": "p", "kind": "postgres", "dsn": dsn, "query": ENCRYPTED})).expect("probe");
    Checker::new(&p, &ProbeEnv::new(&Default::default())).expect("prepared").check(p.timeout()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_probe_honours_sslmode_and_verifies_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgInstance::new_primary("montls").expect("initdb");
    let ca = pg.enable_tls(dir.path()).expect("TLS on").display().to_string();
    let (other, _) = make_ca(&dir.path().join("other"), "other-ca").unwrap();
    let other = other.display().to_string();
    let base = format!("host=127.0.0.1 port={} user=postgres dbname=postgres password=s3cret-never-shown", pg.port);

    let ok = check(format!("{base} sslmode=require")).await.expect("require: encrypted");
    assert!(ok.contains("answered 1 row(s)"), "require is not encrypted: {ok}");
    let ok = check(format!("{base} sslmode=verify-full sslrootcert={ca}")).await.expect("verify-full, right CA");
    assert!(ok.contains("answered 1 row(s)"), "{ok}");
    let ok = check(format!("postgres://postgres@localhost:{}/postgres?sslmode=verify-ca&sslrootcert={ca}", pg.port)).await;
    assert!(ok.expect("verify-ca, URL form").contains("answered 1 row(s)"));

    let e = check(format!("{base} sslmode=verify-full sslrootcert={other}")).await.expect_err("verify-full, another CA");
    assert!(e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer"), "{e}");
    let e = check(format!("{base} sslmode=verify-ca sslrootcert={other}")).await.expect_err("verify-ca, another CA");
    assert!(e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer"), "{e}");
    let e = check(format!("{base} sslmode=verify-full")).await.expect_err("verify-full without a CA");
    assert!(e.contains("sslrootcert") && e.contains("found none"), "{e}");
    let e = check(format!("{base} sslmode=disable")).await.expect_err("the server refuses plain TCP");
    assert!(e.contains("no encryption") || e.contains("pg_hba"), "{e}");
    assert!(!e.contains("s3cret-never-shown"), "{e}");
}
