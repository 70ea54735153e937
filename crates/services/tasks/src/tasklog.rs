//! The dedicated log of a task, `task_<name>.log` in the log folder (`MWARE_LOG_DIR`,
//! else `var/log`): every line its runs print (stdout and stderr, whole), and the start
//! and end of each run. The main log gets one line per start and end.

use mware_host::exec::Stream;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The log folder: `MWARE_LOG_DIR` or `var/log`.
pub fn log_dir() -> PathBuf {
    std::env::var_os("MWARE_LOG_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("var/log"))
}

/// Appends lines to `task_<name>.log`. Cheap to clone.
#[derive(Clone)]
pub struct TaskLog {
    file: Arc<Mutex<Option<std::fs::File>>>,
}

impl TaskLog {
    /// Opens (creates) `dir/task_<name>.log`; without a file, lines are dropped (the
    /// main log says why once).
    pub fn open(dir: &Path, name: &str) -> TaskLog {
        // A task's output may hold anything: the file is the owner's only (0600).
        let file = mware_coord::fsmode::open_append(&dir.join(format!("task_{name}.log")));
        if let Err(e) = &file {
            tracing::warn!(task = name, "cannot open the task's log in {}: {e}", dir.display());
        }
        TaskLog { file: Arc::new(Mutex::new(file.ok())) }
    }

    /// A line of run `id`'s output.
    pub fn output(&self, id: u64, stream: Stream, line: &str) {
        self.write(&format!("[run {id}] {}: {line}", stream.as_str()));
    }

    /// A line about run `id` (start, end).
    pub fn event(&self, id: u64, what: &str) {
        self.write(&format!("[run {id}] {what}"));
    }

    fn write(&self, text: &str) {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = f.as_mut() {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
            let _ = writeln!(f, "{now} {text}");
        }
    }
}
