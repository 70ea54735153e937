//! pg_controller's probe over TLS (issue 13: it connected with NoTls), against a
//! PostgreSQL 15 that refuses every TCP connection without TLS: `pg_sslmode: disable` is
//! refused by the server, `require` connects (so encrypted), `verify-full` with the
//! right `pg_ca_file` connects, with another CA it is refused naming the certificate, and
//! the default (`prefer`) takes TLS when the server offers it.

use mware_pgctl::config::check_groups;
use mware_ssh::HostKeyPolicy;
use mware_testkit::etcd::make_ca;
use mware_testkit::pg::PgInstance;
use serde_json::json;
use std::time::Duration;

fn server(port: u16, tls: serde_json::Value) -> serde_json::Value {
    let mut s = json!({"pg_host": "127.0.0.1", "pg_port": port, "ssh_user": "postgres", "ssh_pwd": "x", "pg_replica_user": "postgres",
        "pg_replica_pwd": "unused", "pg_ctl_command": "pg_ctl", "pg_basebackup_command": "pg_basebackup", "pg_data_folder": "/nonexistent/a"});
    s.as_object_mut().unwrap().extend(tls.as_object().unwrap().clone());
    s
}

async fn probe(port: u16, tls: serde_json::Value) -> Result<(), String> {
    let other = server(1, json!({}));
    let raw = vec![json!({"key": "t", "servers": [server(port, tls), other]})];
    let (groups, bad) = check_groups(&raw, "pg_controller", &HostKeyPolicy::from(&mware_config::SshSettings::default()));
    assert!(bad.is_empty(), "{bad:?}");
    mware_pgctl::probe(&groups[0].servers[0], Duration::from_secs(5)).await.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_speaks_tls_and_verifies_the_server_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgInstance::new_primary("pgctltls").expect("initdb");
    let ca = pg.enable_tls(dir.path()).expect("TLS on");
    let ca = ca.display().to_string();

    let e = probe(pg.port, json!({"pg_sslmode": "disable"})).await.expect_err("the server refuses plain TCP");
    assert!(e.contains("no encryption") || e.contains("pg_hba"), "{e}");
    probe(pg.port, json!({"pg_sslmode": "require"})).await.expect("require: encrypted");
    probe(pg.port, json!({})).await.expect("prefer (default): TLS when offered");
    probe(pg.port, json!({"pg_sslmode": "verify-full", "pg_ca_file": ca})).await.expect("verify-full with the right CA");
    let (other, _) = make_ca(&dir.path().join("other"), "other-ca").unwrap();
    let e = probe(pg.port, json!({"pg_sslmode": "verify-full", "pg_ca_file": other.display().to_string()})).await.expect_err("another CA");
    assert!(e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer"), "{e}");
}
