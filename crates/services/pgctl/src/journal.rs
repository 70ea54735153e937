//! The dedicated activity log of a group, `pgctrl_<key>.log` (en seed), in the log
//! folder (`MWARE_LOG_DIR`, else `var/log`). Every line also goes to the main log
//! through `tracing`. Lines never contain secrets: callers pass reasons and errors
//! built from `Secret`-typed settings.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Appends lines to `pgctrl_<key>.log` and mirrors them to tracing.
#[derive(Clone)]
pub struct Journal {
    key: String,
    file: Arc<Mutex<Option<std::fs::File>>>,
}

/// The log folder: `MWARE_LOG_DIR` or `var/log`.
pub fn log_dir() -> PathBuf {
    std::env::var_os("MWARE_LOG_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("var/log"))
}

impl Journal {
    /// Opens (creates) `dir/pgctrl_<key>.log`; without a file it only logs to tracing.
    pub fn open(dir: &std::path::Path, key: &str) -> Journal {
        let safe: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        let file = mware_coord::fsmode::open_append(&dir.join(format!("pgctrl_{safe}.log")));
        if let Err(e) = &file {
            tracing::warn!(group = key, "cannot open pgctrl log in {}: {e}", dir.display());
        }
        Journal { key: key.to_string(), file: Arc::new(Mutex::new(file.ok())) }
    }

    /// An informational line.
    pub fn info(&self, msg: &str) {
        tracing::info!(group = %self.key, "pgctl: {msg}");
        self.write("INFO", msg);
    }

    /// A warning line: a setting that does not work as configured.
    pub fn warn(&self, msg: &str) {
        tracing::warn!(group = %self.key, "pgctl: {msg}");
        self.write("WARN", msg);
    }

    /// An error line.
    pub fn error(&self, msg: &str) {
        tracing::error!(group = %self.key, "pgctl: {msg}");
        self.write("ERROR", msg);
    }

    fn write(&self, level: &str, msg: &str) {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = f.as_mut() {
            let _ = writeln!(f, "{} {level} [{}] {msg}", utc_now(), self.key);
        }
    }
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, milliseconds).
pub fn utc_now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let t = super::utc_now();
        assert_eq!((t.len(), &t[4..5], &t[10..11], &t[19..20], &t[23..]), (24, "-", "T", ".", "Z"), "{t}");
        let back = humantime::parse_rfc3339(&t).expect("parses back");
        let off = std::time::SystemTime::now().duration_since(back).expect("not in the future");
        assert!(off < std::time::Duration::from_secs(5), "{t}");
    }
}
