//! How a standby is told to promote, decided from what it reported. Pure: no I/O.
//!
//! With `pg_signal_filepath` set, touching that file promotes a standby only if the server
//! watches exactly that path (`promote_trigger_file`, PostgreSQL 15 and older; the setting
//! was removed in 16). Otherwise nothing happens until a fallback: so the file is used only
//! when the standby says it watches it, and `pg_ctl promote` is run at once in every other
//! case, with a warning that says why the configured file is not used.

use serde::Serialize;
use std::fmt;

/// First `server_version_num` without `promote_trigger_file`.
pub const PG16: u32 = 160_000;

/// What a standby reported about its promotion trigger file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "path", rename_all = "snake_case")]
pub enum TriggerFile {
    /// Not known: the server is not a standby, did not answer, or the setting could not be read.
    Unknown,
    /// PostgreSQL 16 or newer: no trigger file exists any more.
    Removed,
    /// `promote_trigger_file` is empty: the server watches no file.
    Unset,
    /// The server watches this absolute path.
    Watched(String),
}

impl TriggerFile {
    /// From `server_version_num` and `promote_trigger_file` as read (`None` when the setting
    /// does not exist or was not read); a relative path is made absolute against the data
    /// folder, as the server resolves it.
    pub fn from_setting(version: Option<u32>, setting: Option<&str>, data_folder: &str) -> TriggerFile {
        match (version, setting) {
            (Some(v), _) if v >= PG16 => TriggerFile::Removed,
            (_, None) => TriggerFile::Unknown,
            (_, Some("")) => TriggerFile::Unset,
            (_, Some(p)) if p.starts_with('/') => TriggerFile::Watched(p.to_string()),
            (_, Some(p)) => TriggerFile::Watched(format!("{}/{p}", data_folder.trim_end_matches('/'))),
        }
    }
}

/// How a promotion is carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", content = "path", rename_all = "snake_case")]
pub enum PromoteMethod {
    /// `pg_ctl promote` over SSH.
    PgCtl,
    /// Touch this signal file over SSH: the standby watches exactly this path.
    SignalFile(String),
}

impl fmt::Display for PromoteMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromoteMethod::PgCtl => f.write_str("with pg_ctl promote"),
            PromoteMethod::SignalFile(p) => write!(f, "by touching its signal file {p}, which it watches"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{promote_method as method, Observed, ServerObs};
    use crate::status::warning;
    use std::time::Duration;

    fn standby(signal: Option<&str>, trigger: TriggerFile) -> ServerObs {
        ServerObs {
            name: "db2".into(),
            role: Observed::Standby,
            unreachable_for: Duration::ZERO,
            timeline: Some(1),
            lsn: None,
            receive_lsn: None,
            signal_file: signal.map(str::to_string),
            trigger_file: trigger,
        }
    }

    #[test]
    fn settings_as_the_server_resolves_them() {
        assert_eq!(TriggerFile::from_setting(Some(150_020), Some(""), "/d"), TriggerFile::Unset);
        assert_eq!(TriggerFile::from_setting(Some(150_020), Some("/t/p"), "/d"), TriggerFile::Watched("/t/p".into()));
        assert_eq!(TriggerFile::from_setting(Some(150_020), Some("p.trg"), "/d/"), TriggerFile::Watched("/d/p.trg".into()));
        assert_eq!(TriggerFile::from_setting(Some(160_004), None, "/d"), TriggerFile::Removed);
        assert_eq!(TriggerFile::from_setting(None, None, "/d"), TriggerFile::Unknown);
    }

    #[test]
    fn the_file_is_used_only_when_watched() {
        let o = standby(Some("/t/p"), TriggerFile::Watched("/t/p".into()));
        assert_eq!(method(&o), PromoteMethod::SignalFile("/t/p".into()));
        assert_eq!(warning(&o), None);
        for (t, why) in [
            (TriggerFile::Watched("/other".into()), "its promote_trigger_file is /other"),
            (TriggerFile::Unset, "its promote_trigger_file is empty"),
            (TriggerFile::Removed, "PostgreSQL 16 or newer"),
            (TriggerFile::Unknown, "could not be read"),
        ] {
            let o = standby(Some("/t/p"), t);
            assert_eq!(method(&o), PromoteMethod::PgCtl);
            let w = warning(&o).expect("a warning");
            assert!(w.starts_with("pg_signal_filepath /t/p of db2 is not a file that server watches") && w.contains(why), "{w}");
            assert!(w.ends_with("it will be promoted with pg_ctl promote"), "{w}");
        }
        // No file configured: pg_ctl, nothing to warn about.
        let o = standby(None, TriggerFile::Unset);
        assert_eq!((method(&o), warning(&o)), (PromoteMethod::PgCtl, None));
        // A master is not warned about (it reports no trigger file).
        let mut o = standby(Some("/t/p"), TriggerFile::Unknown);
        o.role = Observed::Master;
        assert_eq!(warning(&o), None);
    }
}
