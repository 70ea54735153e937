//! A group left out at run time is explained in `pgctrl_invalid.log` with exactly the
//! warnings `mware validate` prints for the same site file (one check, in mware-config).

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_time_filter_logs_the_validators_warnings() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let server = |port: u16| {
        json!({"ssh_host": "127.0.0.1", "ssh_user": "postgres", "ssh_pwd": "pw-never-shown", "pg_port": port,
               "pg_replica_user": "replica", "pg_replica_pwd": "rpw-never-shown", "pg_ctl_command": "pg_ctl",
               "pg_basebackup_command": "pg_basebackup", "pg_data_folder": "/var/lib/pg/data"})
    };
    let mut b = server(5433);
    b["pg_data_folder"] = json!("relative/data");
    b.as_object_mut().unwrap().remove("ssh_pwd");
    let groups = vec![json!({"key": "bad", "servers": [server(5432), b]}), json!({"key": "one", "servers": [server(5432)]})];
    let text = site_json(dir.path(), groups.clone()).to_string();
    let validated = mware_config::validate(&text, &mware_pgctl::plugin().sections).expect("pg_controller problems are warnings only");
    let expected: Vec<String> = validated.warnings.iter().map(|w| w.to_string()).collect();
    assert!(expected.len() >= 4, "{expected:#?}");

    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), groups)).await;
    let path = ctl.log_dir.join("pgctrl_invalid.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let logged = loop {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<String> = log.lines().filter_map(|l| l.split_once(" WARN [invalid] ").map(|(_, m)| m.to_string())).collect();
        if lines.len() >= expected.len() {
            break lines;
        }
        assert!(std::time::Instant::now() < deadline, "not logged in time: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(logged, expected, "pg_controller logs what mware validate prints");
    assert!(logged.iter().any(|l| l.contains("pg_data_folder: expected an absolute path")), "{logged:#?}");
    assert!(!logged.join("\n").contains("never-shown"), "no secret in the log");
    ctl.stop().await;
}
