//! The pg_controller run-time filter: valid groups are kept (keys generated
//! when absent), each invalid group is left out with warnings naming every
//! problem's path, and no warning carries a secret.

use mware_config::Severity;
use mware_pgctl::{parse_groups, Rejoin};
use serde_json::{json, Value};

const BASE: &str = "servers[0].roles[0].pg_controller";

fn server(host: &str, port: u16) -> Value {
    json!({"ssh_host": host, "ssh_port": 22, "ssh_user": "postgres", "ssh_pwd": "example-ssh-pwd",
           "pg_host": host, "pg_port": port, "pg_replica_user": "replica", "pg_replica_pwd": "example-replica-pwd",
           "pg_database": "postgres", "pg_ctl_command": "/usr/lib/postgresql/15/bin/pg_ctl",
           "pg_basebackup_command": "pg_basebackup", "pg_data_folder": "/var/lib/pg/d",
           "pg_backup_folder": "/var/lib/pg/b", "pg_log_filepath": "/var/log/pg.log",
           "pg_signal_filepath": "/var/lib/pg/d/master.signal"})
}

fn group(key: Option<&str>) -> Value {
    let mut g = json!({"servers": [server("db1", 5433), server("db2", 5433)]});
    if let Some(k) = key {
        g["key"] = json!(k);
    }
    g
}

fn paths(p: &[mware_config::Problem]) -> Vec<String> {
    p.iter().map(|p| format!("{}: {}", p.path, p.message)).collect()
}

#[test]
fn valid_groups_are_kept_and_keys_generated() {
    let (ok, w) = parse_groups(&[group(Some("general")), group(None)], BASE);
    assert!(w.is_empty(), "{:?}", paths(&w));
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0].key.as_deref(), Some("general"));
    assert_eq!(ok[1].key.as_deref(), Some("db1:5433"), "generated from the first server's pg_host:pg_port");
    assert_eq!(ok[0].promote_after_s, 30);
    assert_eq!(ok[0].rejoin, Rejoin::Basebackup);
    assert_eq!(ok[0].servers[1].ssh_pwd.as_ref().unwrap().expose(), "example-ssh-pwd");
}

#[test]
fn ssh_host_and_pg_host_default_to_each_other() {
    let mut g = group(None);
    g["servers"][0].as_object_mut().unwrap().remove("ssh_host");
    g["servers"][1].as_object_mut().unwrap().remove("pg_host");
    let (ok, w) = parse_groups(&[g], BASE);
    assert!(w.is_empty(), "{:?}", paths(&w));
    assert_eq!(ok[0].servers[0].ssh_host(), Some("db1"));
    assert_eq!(ok[0].servers[1].pg_host(), Some("db2"));
}

#[test]
fn each_invalid_group_is_left_out_with_its_reasons() {
    let mut missing = group(Some("missing"));
    for k in ["ssh_user", "pg_replica_user", "pg_ctl_command", "pg_basebackup_command", "pg_data_folder"] {
        missing["servers"][1].as_object_mut().unwrap().remove(k);
    }
    let mut nohost = group(Some("nohost"));
    nohost["servers"][0].as_object_mut().unwrap().remove("ssh_host");
    nohost["servers"][0].as_object_mut().unwrap().remove("pg_host");
    let mut typed = group(Some("typed"));
    typed["servers"][0]["pg_port"] = json!("5433");
    let mut unknown = group(Some("unknown"));
    unknown["colour"] = json!("red");
    let same = json!({"key": "same", "servers": [server("DB1", 5433), server("db1", 5433)]});
    let one = json!({"key": "one", "servers": [server("db1", 5433)]});
    let mut rewind = group(Some("rewind"));
    rewind["rejoin"] = json!("rewind");
    let raw = vec![group(Some("general")), json!("nope"), missing, nohost, typed, unknown, same, one, group(Some("general")), rewind];
    let (ok, w) = parse_groups(&raw, BASE);
    let text = paths(&w);
    assert_eq!(ok.len(), 1, "{text:#?}");
    assert!(w.iter().all(|p| p.severity == Severity::Warning));
    let expect = [
        ("[1]", "expected an object, found \"nope\""),
        ("[2].servers[1].ssh_user", "required key"),
        ("[2].servers[1].pg_replica_user", "required key"),
        ("[2].servers[1].pg_ctl_command", "required key"),
        ("[2].servers[1].pg_basebackup_command", "required key"),
        ("[2].servers[1].pg_data_folder", "required key"),
        ("[3].servers[0]", "expected ssh_host or pg_host, found neither"),
        ("[4].servers[0].pg_port", "expected an integer from 1 to 65535, found \"5433\""),
        ("[5].colour", "unknown key"),
        ("[6].servers", "expected two different servers, found both at db1:5433"),
        ("[7].servers", "expected exactly two servers, found 1"),
        ("[8].key", "expected a key unique among pg_controller groups, found the key \"general\" again (first at servers[0].roles[0].pg_controller[0])"),
        ("[9].servers[0].pg_rewind_command", "rejoin \"rewind\""),
    ];
    for (suffix, frag) in expect {
        let path = format!("{BASE}{suffix}");
        assert!(w.iter().any(|p| p.path == path && p.message.contains(frag)), "missing {path}: {frag}\n{text:#?}");
    }
    for i in 1..=9 {
        let path = format!("{BASE}[{i}]");
        assert!(w.iter().any(|p| p.path == path && p.message.contains("left out")), "group {i} not said to be left out\n{text:#?}");
    }
}

#[test]
fn warnings_never_show_secrets() {
    let mut g = group(Some("g"));
    g["servers"][0]["ssh_pwd"] = json!(31337313);
    g["servers"][1]["pg_replica_pwd"] = json!({"value": "topsecret-pwd"});
    g["servers"][1]["ssh_user"] = json!(null);
    let (ok, w) = parse_groups(&[g], BASE);
    assert!(ok.is_empty());
    let text = paths(&w).join("\n");
    assert!(!text.contains("31337313") && !text.contains("topsecret"), "{text}");
    assert!(text.contains("pg_controller[0].servers[0].ssh_pwd: expected a string (a secret), found a number"), "{text}");
}

/// The checks pg_controller used to make on its own (so `mware validate` did not show them)
/// are here now: SSH login, replica password, data and backup folders.
#[test]
fn login_and_folders_are_checked_here_too() {
    let mut g = group(Some("g"));
    let s1 = g["servers"][1].as_object_mut().unwrap();
    s1.remove("ssh_pwd");
    s1.remove("pg_replica_pwd");
    s1.insert("pg_data_folder".into(), json!("data/db2"));
    let mut h = group(Some("h"));
    h["servers"][0]["pg_backup_folder"] = json!("/var/lib/pg/d/backups/");
    h["servers"][1]["pg_data_folder"] = json!("/");
    let mut k = group(Some("k"));
    k["servers"][0].as_object_mut().unwrap().remove("ssh_pwd");
    k["servers"][0]["ssh_key_file"] = json!("/root/.ssh/id_ed25519");
    let (ok, w) = parse_groups(&[g, h, k], BASE);
    let text = paths(&w);
    assert_eq!(ok.iter().map(|g| g.key.as_deref().unwrap()).collect::<Vec<_>>(), ["k"], "a key file is a login: {text:#?}");
    for (suffix, frag) in [
        ("[0].servers[1]", "expected ssh_pwd or ssh_key_file (how to log in over SSH), found neither"),
        ("[0].servers[1].pg_replica_pwd", "required key"),
        ("[0].servers[1].pg_data_folder", "expected an absolute path other than /, found \"data/db2\""),
        (
            "[1].servers[0].pg_backup_folder",
            "expected an absolute path outside pg_data_folder (old data folders are moved there), found \"/var/lib/pg/d/backups/\"",
        ),
        ("[1].servers[1].pg_data_folder", "expected an absolute path other than /, found \"/\""),
    ] {
        let path = format!("{BASE}{suffix}");
        assert!(w.iter().any(|p| p.path == path && p.message.contains(frag)), "missing {path}: {frag}\n{text:#?}");
    }
    assert!(!text.join("\n").contains("example-"), "no secret in the warnings: {text:#?}");
}
