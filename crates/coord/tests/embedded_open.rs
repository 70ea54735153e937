//! Several mware processes of one host start at the same moment on a new embedded
//! coordinator file: every one of them must open it (switching a new SQLite file to WAL
//! answers "database is locked" to all but one process, and the open retries).
//!
//! The test re-runs its own binary as child processes (SQLite's file locks are per
//! process, so threads would not show the race).

use mware_config::{Backend, Coordination};
use mware_coord::{EmbeddedCoordinator, Settings};
use std::process::Command;

const CHILD_ENV: &str = "MWARE_EMBEDDED_OPEN_CHILD";

fn open(path: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let c = Coordination { backend: Backend::Embedded, path: path.to_string(), ..Coordination::default() };
    rt.block_on(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c })).map(|_| ()).map_err(|e| e.to_string())
}

/// The child side: opens the file named in the environment (a no-op when run normally).
#[test]
fn child_opens() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        if let Err(e) = open(&path) {
            eprintln!("OPEN FAILED: {e}");
            std::process::exit(3);
        }
    }
}

#[test]
fn concurrent_opens_of_a_new_file_by_several_processes_all_succeed() {
    let exe = std::env::current_exe().unwrap();
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("coord-{round}.sqlite"));
        let children: Vec<_> = (0..8)
            .map(|_| {
                Command::new(&exe)
                    .args(["--exact", "child_opens", "--nocapture", "--test-threads=1"])
                    .env(CHILD_ENV, &path)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: a process could not open the new file: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
