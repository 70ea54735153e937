//! The example alert rules (`examples/alerts.yml`) hold: `promtool check rules` accepts
//! them, `promtool test rules examples/alerts_test.yml` fires the alerts it should on
//! synthetic series, and every `mware_*` metric the rules use is one a real `mware run`
//! exposes (so a renamed metric cannot leave an alert that never fires).
//!
//! promtool comes from `scripts/setup.sh` (`/var/tmp/mware-promtool`, or `MWARE_PROMTOOL`).

mod common;

use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn promtool(args: &[&str]) -> String {
    let tool = std::env::var("MWARE_PROMTOOL").unwrap_or_else(|_| "/var/tmp/mware-promtool/usr/bin/promtool".into());
    let out = Command::new(&tool)
        .args(args)
        .current_dir(examples())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} ({e}): run scripts/setup.sh, which fetches it"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_example_alert_rules_pass_promtool_and_use_real_metrics() {
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");

    // The metric names the rules use, against those a running daemon exposes.
    let rules = std::fs::read_to_string(examples().join("alerts.yml")).unwrap();
    let used: BTreeSet<String> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("mware_") && !w.starts_with("mware_group"))
        .map(str::to_string)
        .collect();
    assert!(used.len() >= 8, "{used:?}");
    let dir = tempfile::tempdir().unwrap();
    let (port, addr) = free_addr();
    let cfg = dir.path().join("site.json");
    let site = json!({"site": "alerts", "coordination": {"backend": "embedded", "path": dir.path().join("coord.sqlite")},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"},
            "roles": [{"name": "m1", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "api_port": port}]}]});
    std::fs::write(&cfg, site.to_string()).unwrap();
    let d = Daemon::start(&cfg, "m1", &addr, dir.path().join("m1.log"), &[]);
    d.wait_status(Duration::from_secs(20), |v| v["state"] == "active");
    let text = get_text(&format!("{}/metrics", d.api)).expect("metrics");
    // Families by their TYPE line; a sample name adds _total (counter), _info (info) or
    // _bucket/_sum/_count (histogram) to it.
    let families: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    for name in &used {
        let known = families
            .iter()
            .any(|f| name == f || ["_total", "_info", "_bucket", "_sum", "_count"].iter().any(|s| name.strip_suffix(s) == Some(f)));
        assert!(known, "the rules use {name}, which mware does not expose; families: {families:?}");
    }
}
