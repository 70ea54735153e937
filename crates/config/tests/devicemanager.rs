//! The `devicemanager` section (issue 15): defaults, every problem with its path, and its
//! two secrets (database, amqp) never shown.

mod common;
use common::*;
use serde_json::json;

#[test]
fn defaults_and_the_example() {
    let mut v = base();
    set(&mut v, "/servers/0/roles/0/devicemanager", json!({}));
    let dm = ok(&v).site.instance("mware1").unwrap().role.devicemanager.clone().unwrap();
    assert_eq!(
        (dm.database, dm.amqp, dm.max_deliveries, dm.max_batch, dm.default_timeout_ms, dm.max_timeout_ms, dm.concurrency, dm.keep_hours),
        (None, None, 5, 1000, 30_000, 3_600_000, 32, 168)
    );
    let text = std::fs::read_to_string(format!("{}/../../examples/site.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let site = mware_config::validate(&text).expect("examples/site.json validates").site;
    let dm = site.instance("mware3").unwrap().role.devicemanager.clone().unwrap();
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
