//! The command-line tools on the examples: validate, route, schema, --help.

mod common;

use std::process::Command;

fn mware(args: &[&str]) -> (i32, String, String) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(common::bin()).args(args).current_dir(root).output().expect("run mware");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn examples_validate() {
    for f in ["examples/minimal.json", "examples/site.json"] {
        let (code, out, err) = mware(&["validate", "--config", f]);
        assert_eq!(code, 0, "{f}: {out}{err}");
        assert!(out.contains("valid"), "{out}");
    }
}

/// Each of the seeds' own examples (`crates/registry/tests/seeds/`, verbatim), inside the
/// site's envelope, passes `mware validate` without a warning: the two role examples
/// whole, and the `pg_controller`, `backup_controller` (its `sync_folder` names no path)
/// and `cti_adapters` values under a minimal role.
#[test]
fn the_seed_examples_validate() {
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/../registry/tests/seeds");
    let read = |f: &str| std::fs::read_to_string(format!("{seeds}/{f}")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (file, key) in [
        ("000_role.json", None),
        ("001_role.json", None),
        ("001_pg_controller.json", Some("pg_controller")),
        ("001_backup_controller.json", Some("backup_controller")),
        ("001_cti_adapters.json", Some("cti_adapters")),
    ] {
        let example = read(file);
        let role = match key {
            None => example.trim_end().to_string(),
            Some(k) => format!(
                r#"{{"name": "mware1", "roletype": "mware", "iface": "eth0", "group": 1, "order": 10, "{k}": {}}}"#,
                example.trim_end()
            ),
        };
        let f = dir.path().join(file);
        std::fs::write(&f, read("envelope.json").replace("@ROLE@", &role)).unwrap();
        let (code, out, err) = mware(&["validate", "--config", f.to_str().unwrap()]);
        assert_eq!(code, 0, "{file}: {out}{err}");
        assert!(out.contains("valid") && !out.contains("warning"), "{file}: {out}");
    }
}

#[test]
fn invalid_file_lists_every_problem_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.json");
    std::fs::write(
        &f,
        r#"{"site": "x", "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
            {"name": "1bad", "roletype": "mware", "iface": "eth0", "group": 0, "order": 1},
            {"name": "ok2", "roletype": "other", "iface": "eth9", "group": 5, "order": 1, "bogus": true}
        ]}]}"#,
    )
    .unwrap();
    let (code, out, _) = mware(&["validate", "--config", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    for needle in [
        "servers[0].roles[0].name:",
        "servers[0].roles[0].group:",
        "servers[0].roles[1].roletype:",
        "servers[0].roles[1].iface:",
        "servers[0].roles[1].bogus:",
    ] {
        assert!(out.lines().any(|l| l.starts_with(needle)), "missing {needle} in:\n{out}");
    }
}

#[test]
fn malformed_json_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.json");
    std::fs::write(&f, "{\n  \"site\": \"x\",\n  \"servers\": [,]\n}").unwrap();
    let (code, out, _) = mware(&["validate", "--config", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("line 3"), "{out}");
}

#[test]
fn route_prints_group_and_failover_order() {
    let (code, out, err) = mware(&["route", "--config", "examples/site.json", "--json", "example.org"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v[0]["group"].as_u64().is_some(), "{out}");
    let orders: Vec<i64> = v[0]["instances"].as_array().unwrap().iter().map(|i| i["order"].as_i64().unwrap()).collect();
    let mut sorted = orders.clone();
    sorted.sort();
    assert_eq!(orders, sorted);
    let (code, out, _) = mware(&["route", "--config", "examples/site.json", "example.org"]);
    assert_eq!(code, 0);
    assert!(out.contains("group "), "{out}");
}

/// `mware route` follows the one rule for domain names: a Unicode name in include_domains
/// routes in both forms; a text that is not a domain name is refused (exit 1, the error on
/// stderr and in the JSON list), never answered with the default group.
#[test]
fn route_refuses_invalid_names_and_routes_idn_forms_alike() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("site.json");
    std::fs::write(
        &f,
        serde_json::json!({"site": "x", "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
            {"name": "m1", "roletype": "mware", "iface": "eth0", "group": 1, "order": 1, "api_port": 8301},
            {"name": "m2", "roletype": "mware", "iface": "eth0", "group": 2, "order": 1, "api_port": 8302, "include_domains": ["тест.рф"]}
        ]}]})
        .to_string(),
    )
    .unwrap();
    let cfg = f.to_str().unwrap();
    let (code, out, err) = mware(&["route", "--config", cfg, "--json", "тест.рф", "XN--E1AYBC.xn--p1ai.", "pbx.тест.рф", "other.ru"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let groups: Vec<_> = v.as_array().unwrap().iter().map(|r| r["group"].as_u64()).collect();
    assert_eq!(groups, [Some(2), Some(2), Some(2), Some(1)], "{out}");
    assert_eq!(v[0]["canonical"], "xn--e1aybc.xn--p1ai");
    let (code, out, _) = mware(&["route", "--config", cfg, "тест.рф"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("тест.рф (xn--e1aybc.xn--p1ai)\tgroup 2"), "{out}");

    // argv cannot carry a NUL byte; another control character stands for it (the API test sends NUL).
    let long = "a".repeat(300);
    for (bad, says) in [
        ("bad..domain", "found \"bad..domain\" with an empty label"),
        ("a\u{1}b.ru", "a control character at byte 1"),
        (&*long, "a label of 300 bytes"),
    ] {
        let (code, out, err) = mware(&["route", "--config", cfg, bad]);
        assert_eq!(code, 1, "{bad:?}: {out}{err}");
        assert!(out.is_empty(), "nothing routed for {bad:?}: {out}");
        assert!(err.starts_with("error: expected a domain name") && err.contains(says), "{bad:?}: {err}");
    }
    // With --json, a valid name still gets its route beside the refusal.
    let (code, out, err) = mware(&["route", "--config", cfg, "--json", "bad..domain", "other.ru"]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&v[0]["field"], &v[0]["domain"], v[0].get("group")),
        (&serde_json::json!("domain"), &serde_json::json!("bad..domain"), None),
        "{out}"
    );
    assert_eq!(v[1]["group"], 1, "{out}");
}

#[test]
fn schema_is_json_schema() {
    let (code, out, _) = mware(&["schema"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["properties"]["servers"].is_object(), "{out}");
}

#[test]
fn help_explains_commands() {
    let (code, out, _) = mware(&["--help"]);
    assert_eq!(code, 0);
    for c in ["validate", "route", "schema", "run", "status", "switchover", "config"] {
        assert!(out.contains(c), "--help lacks {c}: {out}");
    }
}
