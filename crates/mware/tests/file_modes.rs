//! End-to-end (issue 24, item 3): the files a real daemon keeps hold secrets (the site
//! file in the embedded coordinator and its WAL, device job parameters, task output),
//! so every file under its state and log folders is 0600 and every folder 0700; a
//! `coord.sqlite` (and `-wal`) left 0644 in a 0755 folder by an older version is
//! tightened at start, with a warning naming the file and both modes.

mod common;

use common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every path under `root` (itself included) with its mode.
fn walk(root: &Path, out: &mut Vec<(PathBuf, u32, bool)>) {
    let is_dir = std::fs::symlink_metadata(root).unwrap().is_dir();
    out.push((root.to_path_buf(), mode(root), is_dir));
    if is_dir {
        for e in std::fs::read_dir(root).unwrap() {
            walk(&e.unwrap().path(), out);
        }
    }
}

#[test]
fn a_daemon_keeps_its_files_private_and_tightens_a_wide_coord_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let logs = dir.path().join("logs");
    // What an older version left: the state folder 0755, coord.sqlite and its WAL 0644.
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let coord = state.join("coord.sqlite");
    for f in [coord.clone(), state.join("coord.sqlite-wal")] {
        std::fs::write(&f, b"").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (port, addr) = free_addr();
    let site = json!({
        "site": "fm",
        "coordination": {"backend": "embedded", "path": coord.display().to_string(), "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "MWARE_API_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [{
            "name": "f10", "roletype": "mware", "iface": "lo", "group": 4, "order": 10, "api_port": port,
            "service_tasks": [{"name": "beat", "schedule": "* * * * * *", "command": ["/bin/sh", "-c", "echo task-output"]}],
            "devicemanager": {}
        }]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let d = Daemon::start(
        &cfg,
        "f10",
        &addr,
        dir.path().join("f10.log"),
        &[("MWARE_API_TOKEN", "fm-token"), ("MWARE_LOG_DIR", logs.to_str().unwrap())],
    );
    d.wait_status(Duration::from_secs(30), |v| {
        v["state"] == "active"
            && v["services"].as_array().is_some_and(|s| s.iter().any(|x| x["name"] == "devicemanager" && x["state"] == "running"))
    });
    // A task run has written its log.
    let task_log = logs.join("task_beat.log");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(&task_log).unwrap_or_default().contains("task-output") {
        assert!(Instant::now() < deadline, "the task did not run:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut seen = Vec::new();
    walk(&state, &mut seen);
    walk(&logs, &mut seen);
    let names: Vec<String> = seen.iter().map(|(p, _, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for want in
        ["coord.sqlite", "coord.sqlite-wal", "coord.sqlite-shm", "devicemanager.sqlite", "devicemanager.sqlite-wal", "task_beat.log"]
    {
        assert!(names.iter().any(|n| n == want), "{want} is not there: {names:?}");
    }
    let wide: Vec<String> = seen
        .iter()
        .filter(|(_, m, is_dir)| *m != if *is_dir { 0o700 } else { 0o600 })
        .map(|(p, m, _)| format!("{} {m:04o}", p.display()))
        .collect();
    assert!(wide.is_empty(), "files must be 0600 and folders 0700; these are not:\n{}", wide.join("\n"));

    // The old modes were tightened with a warning naming the file and both modes.
    let log = d.log_text();
    let warned = |name: &str, old: &str, new: &str| {
        log.lines().any(|l| l.contains("WARN") && l.contains(name) && l.contains(old) && l.contains(new) && l.contains("tightened"))
    };
    assert!(warned("coord.sqlite\"", "0644", "0600"), "no warning for coord.sqlite:\n{log}");
    assert!(warned("coord.sqlite-wal", "0644", "0600"), "no warning for coord.sqlite-wal:\n{log}");
    assert!(warned(state.file_name().unwrap().to_str().unwrap(), "0755", "0700"), "no warning for the state folder:\n{log}");
}
