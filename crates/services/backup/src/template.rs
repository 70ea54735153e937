//! Templates in `storage_ssh_path`: `%weekday` (1-7, Monday = 1), `%day` (01-31),
//! `%month` (01-12), `%week` (ISO week, 01-53) and `%year`, resolved with the day of the
//! run's window. A path with templates keeps several copies and replaces them in a
//! circle (`backup/dow_%weekday`: seven); without, one slot overwritten each run; without
//! a path, the storage user's home folder.

use chrono::{Datelike, NaiveDate};

const TOKENS: &[&str] = &["%weekday", "%week", "%day", "%month", "%year"];

/// The folder for a run of the window opened on `day`: `.` (home) when no path is set.
pub fn resolve(path: Option<&str>, day: NaiveDate) -> String {
    let Some(p) = path.filter(|p| !p.is_empty()) else {
        return ".".into();
    };
    let mut out = String::new();
    let mut rest = p;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        match TOKENS.iter().find(|t| tail.starts_with(*t)) {
            Some(t) => {
                out.push_str(&value(t, day));
                rest = &tail[t.len()..];
            }
            None => {
                out.push('%');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out.trim_end_matches('/').to_string()
}

fn value(token: &str, day: NaiveDate) -> String {
    match token {
        "%weekday" => day.weekday().number_from_monday().to_string(),
        "%week" => format!("{:02}", day.iso_week().week()),
        "%day" => format!("{:02}", day.day()),
        "%month" => format!("{:02}", day.month()),
        _ => day.year().to_string(),
    }
}

/// The folder part before the first template (where `mware backup list` looks), and
/// whether the path has templates at all.
pub fn fixed_prefix(path: Option<&str>) -> (String, bool) {
    let Some(p) = path.filter(|p| !p.is_empty()) else {
        return (".".into(), false);
    };
    match p.find('%').filter(|_| TOKENS.iter().any(|t| p.contains(t))) {
        None => (p.trim_end_matches('/').to_string(), false),
        Some(i) => {
            let head = &p[..i];
            let dir = match head.rfind('/') {
                Some(0) => "/".to_string(),
                Some(j) => head[..j].to_string(),
                None => ".".to_string(),
            };
            (dir, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(); // Tuesday, ISO week 49
        assert_eq!(resolve(Some("backup/dow_%weekday"), d), "backup/dow_2");
        assert_eq!(resolve(Some("/srv/b/%year-%month-%day/w%week/"), d), "/srv/b/2026-12-01/w49");
        assert_eq!(resolve(Some("plain"), d), "plain");
        assert_eq!(resolve(Some("100%sure"), d), "100%sure");
        assert_eq!(resolve(None, d), ".");
        assert_eq!(fixed_prefix(Some("backup/dow_%weekday")), ("backup".into(), true));
        assert_eq!(fixed_prefix(Some("dow_%weekday")), (".".into(), true));
        assert_eq!(fixed_prefix(Some("/srv/%year/x")), ("/srv".into(), true));
        assert_eq!(fixed_prefix(Some("/srv/b/")), ("/srv/b".into(), false));
        assert_eq!(fixed_prefix(None), (".".into(), false));
    }
}
