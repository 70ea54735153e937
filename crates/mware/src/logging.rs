//! Logging setup: tracing to stderr, as text or one JSON object per line.
//! The level comes from `RUST_LOG` (default `info`).

use crate::cli::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => b.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => b.try_init(),
    };
}
