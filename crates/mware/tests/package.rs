//! The Debian package end to end: `scripts/package-test.sh` builds it with cargo-deb from
//! the debug binary this test suite built, installs it with `dpkg -i`, checks the unit
//! with `systemd-analyze verify`, runs the unit's `ExecStart` line as the `mware` user
//! against the packaged example site, reads `/api/v1/status` (active), sends the unit's
//! reload (SIGHUP) and a stop (SIGTERM, exit 0), then removes and purges the package.

mod common;

use std::process::Command;

#[test]
fn the_debian_package_installs_and_its_unit_runs_mware_as_its_user() {
    let bin = common::bin();
    // `<target>/debug/mware`: cargo-deb finds the binary under that target folder.
    let target = bin.parent().and_then(|d| d.parent()).expect("target folder");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let port = mware_testkit::free_port();
    let out = Command::new("timeout")
        .args(["-k", "10", "240", "bash", "scripts/package-test.sh"])
        .arg(port.to_string())
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("run scripts/package-test.sh");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "package test failed ({}):\n{stdout}\n{stderr}", out.status);
    for step in ["== systemd-analyze verify", "\"state\":\"active\"", "package-test: ok"] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}\n{stderr}");
    }
}
