//! Times and sizes as the command-line tools print them.

/// `42 s ago`, `3 min ago`, `2 h ago` (`?` when unknown), from a time in ms since the epoch.
pub fn ago(ms: Option<u64>) -> String {
    let Some(ms) = ms else { return "?".into() };
    let s = mware_config::now_ms().saturating_sub(ms) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// `2026-11-21 03:30:00` in local time (`-` when unknown), from ms since the epoch.
pub fn local(ms: Option<u64>) -> String {
    ms.and_then(|m| chrono::DateTime::from_timestamp_millis(m as i64))
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

/// `1.5 MiB`, `2.00 GiB`, `12 B`.
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.2} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
