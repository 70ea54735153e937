//! Logging setup: tracing to stderr, as text or one JSON object per line.
//! The level comes from `RUST_LOG` (default `info`). Libraries that log an error on every
//! failed attempt of a loop mware already reports (lapin's broker reconnects, async-snmp's
//! unanswered informs) are off unless `RUST_LOG` names them.

use crate::cli::LogFormat;
use tracing_subscriber::EnvFilter;

/// Targets off by default: mware logs their failures itself, rate-limited.
const QUIET: &[&str] = &["lapin", "async_snmp"];

/// The filter directives for `RUST_LOG` = `env` (unset: `info`).
fn directives(env: Option<&str>) -> String {
    let mut d = env.map(str::trim).filter(|e| !e.is_empty()).unwrap_or("info").to_string();
    for t in QUIET {
        if !d.contains(t) {
            d.push_str(&format!(",{t}=off"));
        }
    }
    d
}

/// Installs the global subscriber.
pub fn init(format: LogFormat) {
    let d = directives(std::env::var("RUST_LOG").ok().as_deref());
    let filter = EnvFilter::try_new(&d).unwrap_or_else(|_| EnvFilter::new(directives(None)));
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => b.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => b.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn chatty_libraries_are_off_unless_named() {
        assert_eq!(directives(None), "info,lapin=off,async_snmp=off");
        assert_eq!(directives(Some("debug")), "debug,lapin=off,async_snmp=off");
        assert_eq!(directives(Some("info,lapin=debug")), "info,lapin=debug,async_snmp=off");
    }
}
