//! The `devicemanager` section (issue 15): defaults, every problem with its path, and its
//! two secrets (database, amqp) never shown.

mod common;
use common::*;
use serde_json::json;

#[test]
fn defaults_and_the_example() {
    let mut v = base();
    set(&mut v, "/servers/0/roles/0/devicemanager", json!({}));
    let dm = ok(&v).site.instance("mware1").unwrap().role.section::<mware_devices::DeviceManager>().unwrap();
    assert_eq!(
        (dm.database, dm.amqp, dm.max_deliveries, dm.max_batch, dm.default_timeout_ms, dm.max_timeout_ms, dm.concurrency, dm.keep_hours),
        (None, None, 5, 1000, 30_000, 3_600_000, 32, 168)
    );
    let text = std::fs::read_to_string(format!("{}/../../examples/site.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let site = mware_registry::validate(&text).expect("examples/site.json validates").site;
    let dm = site.instance("mware3").unwrap().role.section::<mware_devices::DeviceManager>().unwrap();
    assert_eq!(dm.satellites, ["sat1", "sat7"]);
    let shown = format!("{dm:?} {}", serde_json::to_string(&dm).unwrap());
    assert!(!shown.contains("change-me"), "{shown}");
    let mut raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    mware_config::redact(&mut raw);
    assert!(!raw.to_string().contains("change-me"), "config show redacts both");
}

#[test]
fn every_problem_with_its_path_and_no_secret() {
    let mut v = base();
    set(
        &mut v,
        "/servers/0/roles/0/devicemanager",
        json!({"amqp": "http://u:s3cr3t@h", "database": "", "satellites": ["sat1", "sat 2", "sat1", 7, "pool"], "max_deliveries": 0,
               "default_timeout_ms": 90000, "max_timeout_ms": 60000, "keep_hours": 0, "color": "red"}),
    );
    let problems = errors(&v);
    let text = problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("\n");
    for path in [
        "servers[0].roles[0].devicemanager.color",
        "servers[0].roles[0].devicemanager.amqp",
        "servers[0].roles[0].devicemanager.database",
        "servers[0].roles[0].devicemanager.satellites[1]",
        "servers[0].roles[0].devicemanager.satellites[2]",
        "servers[0].roles[0].devicemanager.satellites[3]",
        "servers[0].roles[0].devicemanager.satellites[4]",
        "servers[0].roles[0].devicemanager.max_deliveries",
        "servers[0].roles[0].devicemanager.default_timeout_ms",
        "servers[0].roles[0].devicemanager.keep_hours",
    ] {
        assert!(problems.iter().any(|p| p.path == path), "{path} missing:\n{text}");
    }
    assert!(!text.contains("s3cr3t"), "{text}");
}

#[test]
fn token_env_and_allowed_targets_are_checked_with_their_paths() {
    let mut v = base();
    set(
        &mut v,
        "/servers/0/roles/0/devicemanager",
        json!({"satellites": ["sat1"], "token_env": "MWARE_DM_TOKEN",
               "allowed_targets": {"pool": ["127.0.0.0/8", "*.example.net"], "sat1": ["10.0.0.0/8", "sw1.example.net", "::1"]}}),
    );
    let dm = ok(&v).site.instance("mware1").unwrap().role.section::<mware_devices::DeviceManager>().unwrap();
    assert_eq!(dm.token_env.as_deref(), Some("MWARE_DM_TOKEN"));
    assert_eq!(dm.allowed_targets["sat1"].iter().map(ToString::to_string).collect::<Vec<_>>(), ["10.0.0.0/8", "sw1.example.net", "::1"]);

    set(
        &mut v,
        "/servers/0/roles/0/devicemanager",
        json!({"satellites": ["sat1"], "token_env": "bad name",
               "allowed_targets": {"sat9": [], "sat1": ["10.0.0.1/8", 5, "a b"], "pool": "10.0.0.0/8"}}),
    );
    let problems = errors(&v);
    let text = problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("\n");
    let p = "servers[0].roles[0].devicemanager";
    for path in [
        format!("{p}.token_env"),
        format!("{p}.allowed_targets.sat9"),
        format!("{p}.allowed_targets.sat1[0]"),
        format!("{p}.allowed_targets.sat1[1]"),
        format!("{p}.allowed_targets.sat1[2]"),
        format!("{p}.allowed_targets.pool"),
    ] {
        assert!(problems.iter().any(|x| x.path == path), "{path} missing:\n{text}");
    }
    assert!(text.contains("10.0.0.0/8"), "the host-bits error names the range's first address:\n{text}");
}
