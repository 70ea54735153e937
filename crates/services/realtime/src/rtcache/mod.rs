//! `rtcache`: the caching sidecar that runs beside each Asterisk.
//!
//! Asterisk's `extconfig.conf` points at `http://127.0.0.1:PORT/provision/asterisk/${ENTITYID}/FAMILY`;
//! the sidecar forwards each request to the first upstream that answers
//! (`--upstream URL`, repeatable, the request path appended), caches reads
//! (single, multi, static, require) on disk, and keeps serving them while
//! every upstream is down (see [`decide`] for the rules). Writes pass through,
//! answer `-1` when every upstream failed, and invalidate the cached entries
//! of their entity and family. `/metrics` (Prometheus) and `/status` (JSON) are
//! served beside. Requests are served by one thread per core (`threads.rs`); a fresh
//! cached read is answered by the hot path in front of the router (`hot.rs`).
//!
//! Credentials: the caller's `Authorization` header (HTTP Basic, as res_config_curl
//! sends it from `http://USER:PASSWORD@127.0.0.1:PORT/...`) is passed to the upstream,
//! and cached answers are kept per credential as well as per entity: an answer is only
//! ever served to a request presenting the same header (the cache is keyed by a salted
//! SHA-256 of it; the header itself is never stored). An upstream URL may carry its own
//! `user:password@`, sent for callers that present none; it never shows in `/status`,
//! metrics or the log. The cache file holds SIP credentials and is created 0600.

pub mod decide;
mod hot;
mod proxy;
pub mod store;
mod threads;
mod upstream;

use crate::error::RealtimeError;
use crate::metrics::RtcacheMetrics;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use threads::{Accept, MAX_THREADS};
pub use upstream::Health;

/// Command-line arguments of `mware rtcache`. Every option may also come from
/// `--config FILE` (JSON with the same names in snake_case); the command line wins.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RtcacheArgs {
    /// Loopback address to listen on (default 127.0.0.1:8088).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Base URL of a provisioning upstream, tried in the order given (repeatable).
    #[arg(long = "upstream")]
    pub upstream: Vec<String>,
    /// Seconds after which a cached object is dropped, even during an outage (default 86400).
    #[arg(long)]
    pub object_lifetime_maximum: Option<u64>,
    /// Seconds after which a cached object is refreshed in the background (default 60).
    #[arg(long)]
    pub object_lifetime_stale: Option<u64>,
    /// Directory of the cache file `rtcache.redb` (default `var/rtcache`).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Time limit of one upstream attempt, in ms (default 2000).
    #[arg(long)]
    pub upstream_timeout_ms: Option<u64>,
    /// Largest request body accepted, in bytes (default 65536).
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// Most cached answers kept; the oldest are dropped beyond it (default 100000).
    #[arg(long)]
    pub max_entries: Option<usize>,
    /// A family the SIP server asks for, named in metrics (repeatable; default endpoint,
    /// auth, aor); requests for other families are counted as `other`.
    #[arg(long = "family")]
    pub family: Vec<String>,
    /// Longest time, ms, for a client to send a request's head (default 10000); slower
    /// clients are disconnected.
    #[arg(long)]
    pub header_read_timeout_ms: Option<u64>,
    /// A connection with no request in flight and nothing moving is closed after this many
    /// ms (default 60000).
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
    /// Longest time, ms, to answer a request (default 120000; must exceed
    /// upstream_timeout_ms times the number of upstreams).
    #[arg(long)]
    pub request_timeout_ms: Option<u64>,
    /// Most client connections at once (default 1024).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Serving threads, each accepting and serving its own connections (default: the
    /// number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// How the serving threads take new connections: `balanced` (default: one shared
    /// socket, each thread accepting while it holds no more connections than the others)
    /// or `reuseport` (a socket per thread, the kernel spreading connections by hash).
    #[arg(long, value_enum)]
    pub accept: Option<Accept>,
    /// JSON file with any of the options above.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileArgs {
    listen: Option<SocketAddr>,
    #[serde(default)]
    upstream: Vec<String>,
    object_lifetime_maximum: Option<u64>,
    object_lifetime_stale: Option<u64>,
    cache_dir: Option<PathBuf>,
    upstream_timeout_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    max_entries: Option<usize>,
    #[serde(default)]
    family: Vec<String>,
    header_read_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    threads: Option<usize>,
    accept: Option<Accept>,
}

/// Longest `object_lifetime_maximum` (ten years, in seconds): its milliseconds fit any clock sum.
pub const MAX_LIFETIME_S: u64 = 10 * 365 * 86_400;
/// Longest upstream attempt (ms).
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// An upstream base URL with any `user:password@` taken out of it. `Debug` and
/// `Serialize` show the URL without them.
#[derive(Clone)]
pub struct UpstreamUrl {
    /// Base URL without userinfo and without a trailing `/`.
    pub base: String,
    /// `Basic ...` from the URL's userinfo, if it had one.
    pub auth: Option<mware_config::Secret>,
}

impl UpstreamUrl {
    /// Parses `http://[user:password@]host[:port][/path]`.
    pub fn parse(raw: &str) -> Result<UpstreamUrl, String> {
        let mut url = reqwest::Url::parse(raw).map_err(|e| format!("a URL that does not parse ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err("a URL that is not http:// or https:// with a host".into());
        }
        let auth = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let dec = |s: &str| crate::codec::decode(s).map_err(|_| "userinfo with a bad %-escape".to_string());
            let user = dec(url.username())?;
            let pass = dec(url.password().unwrap_or(""))?;
            use base64::Engine;
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Some(mware_config::Secret::new(format!("Basic {b}")))
        };
        Ok(UpstreamUrl { base: url.as_str().trim_end_matches('/').to_string(), auth })
    }
}

impl std::fmt::Debug for UpstreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.base)
    }
}

impl serde::Serialize for UpstreamUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.base)
    }
}

/// Resolved sidecar settings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RtcacheConfig {
    /// Listen address (loopback).
    pub listen: SocketAddr,
    /// Upstream base URLs, in failover order (shown without userinfo).
    pub upstreams: Vec<UpstreamUrl>,
    /// `object_lifetime_maximum`, seconds.
    pub object_lifetime_maximum: u64,
    /// `object_lifetime_stale`, seconds.
    pub object_lifetime_stale: u64,
    /// Cache directory.
    pub cache_dir: PathBuf,
    /// Per-attempt upstream time limit, ms.
    pub upstream_timeout_ms: u64,
    /// Body limit, bytes.
    pub max_body_bytes: usize,
    /// Most cached answers.
    pub max_entries: usize,
    /// Families named in metrics.
    pub families: Vec<String>,
    /// Serving threads.
    pub threads: usize,
    /// How they take new connections.
    pub accept: Accept,
    /// The HTTP server's limits.
    #[serde(skip)]
    pub limits: mware_http::Limits,
}

impl RtcacheArgs {
    /// Merges the config file (if any) under the command line and checks the result.
    pub fn resolve(&self) -> Result<RtcacheConfig, RealtimeError> {
        let file = self.read_file()?;
        let upstreams = self.upstreams(&file)?;
        let families = self.families(&file)?;
        let cfg = RtcacheConfig {
            listen: self.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8088".parse().expect("addr")),
            upstreams,
            object_lifetime_maximum: self.object_lifetime_maximum.or(file.object_lifetime_maximum).unwrap_or(86_400),
            object_lifetime_stale: self.object_lifetime_stale.or(file.object_lifetime_stale).unwrap_or(60),
            cache_dir: self.cache_dir.clone().or(file.cache_dir.clone()).unwrap_or_else(|| "var/rtcache".into()),
            upstream_timeout_ms: self.upstream_timeout_ms.or(file.upstream_timeout_ms).unwrap_or(2_000),
            max_body_bytes: self.max_body_bytes.or(file.max_body_bytes).unwrap_or(65_536),
            max_entries: self.max_entries.or(file.max_entries).unwrap_or(100_000),
            families,
            threads: self.threads.or(file.threads).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            accept: self.accept.or(file.accept).unwrap_or_default(),
            limits: self.limits(&file),
        };
        check(&cfg)?;
        Ok(cfg)
    }

    /// The `--config` file's options; none without one.
    fn read_file(&self) -> Result<FileArgs, RealtimeError> {
        let Some(p) = &self.config else { return Ok(FileArgs::default()) };
        let text = std::fs::read_to_string(p).map_err(|source| RealtimeError::Io { what: format!("reading {}", p.display()), source })?;
        serde_json::from_str(&text).map_err(|e| RealtimeError::Config {
            expected: format!("a json object of rtcache options in {}", p.display()),
            found: e.to_string(),
        })
    }

    /// The upstream URLs (of the command line, else of the file), parsed.
    fn upstreams(&self, file: &FileArgs) -> Result<Vec<UpstreamUrl>, RealtimeError> {
        let raw = if self.upstream.is_empty() { &file.upstream } else { &self.upstream };
        let mut upstreams = vec![];
        for (i, u) in raw.iter().enumerate() {
            match UpstreamUrl::parse(u) {
                Ok(u) => upstreams.push(u),
                // The text is not shown: it may hold a password.
                Err(why) => {
                    return bad("upstream URLs starting with http:// or https:// and a host", format!("upstream {} is {why}", i + 1))
                }
            }
        }
        Ok(upstreams)
    }

    /// The families named in metrics (of the command line, else of the file, else the
    /// usual three), checked.
    fn families(&self, file: &FileArgs) -> Result<Vec<String>, RealtimeError> {
        let families = if !self.family.is_empty() {
            self.family.clone()
        } else if !file.family.is_empty() {
            file.family.clone()
        } else {
            ["endpoint", "auth", "aor"].map(String::from).to_vec()
        };
        if let Some(f) =
            families.iter().find(|f| f.is_empty() || f.len() > 64 || !f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return bad("family names of latin letters, digits, '_' and '-' (at most 64)", format!("{f:?}"));
        }
        Ok(families)
    }

    /// The HTTP server's limits: the command line, else the file, else the defaults.
    fn limits(&self, file: &FileArgs) -> mware_http::Limits {
        let d = mware_http::Limits::default();
        let ms = |a: Option<u64>, b: Option<u64>, dflt: std::time::Duration| a.or(b).map(std::time::Duration::from_millis).unwrap_or(dflt);
        mware_http::Limits {
            header_read_timeout: ms(self.header_read_timeout_ms, file.header_read_timeout_ms, d.header_read_timeout),
            idle_timeout: ms(self.idle_timeout_ms, file.idle_timeout_ms, d.idle_timeout),
            request_timeout: ms(self.request_timeout_ms, file.request_timeout_ms, d.request_timeout),
            max_connections: self.max_connections.or(file.max_connections).unwrap_or(d.max_connections),
        }
    }
}

/// A config error: what was expected, what was found.
fn bad<T>(expected: &str, found: String) -> Result<T, RealtimeError> {
    Err(RealtimeError::Config { expected: expected.into(), found })
}

/// Checks the merged settings; the first one out of range is the error.
fn check(cfg: &RtcacheConfig) -> Result<(), RealtimeError> {
    if cfg.upstreams.is_empty() {
        return bad("at least one --upstream URL", "none".into());
    }
    if !(1..=MAX_LIFETIME_S).contains(&cfg.object_lifetime_maximum) {
        return bad(&format!("object_lifetime_maximum from 1 to {MAX_LIFETIME_S} seconds"), cfg.object_lifetime_maximum.to_string());
    }
    if !(1..=MAX_TIMEOUT_MS).contains(&cfg.upstream_timeout_ms) {
        return bad(
            &format!("upstream_timeout_ms from 1 to {MAX_TIMEOUT_MS} (0 would fail every upstream at once)"),
            cfg.upstream_timeout_ms.to_string(),
        );
    }
    if cfg.max_entries == 0 {
        return bad("max_entries of at least 1", "0".into());
    }
    check_limits(cfg)?;
    if !(1..=MAX_THREADS).contains(&cfg.threads) {
        return bad(&format!("threads from 1 to {MAX_THREADS}"), cfg.threads.to_string());
    }
    if cfg.max_body_bytes == 0 {
        return bad("max_body_bytes of at least 1", "0".into());
    }
    if !cfg.listen.ip().is_loopback() {
        return bad("a loopback listen address", cfg.listen.to_string());
    }
    if cfg.object_lifetime_stale > cfg.object_lifetime_maximum {
        return bad(
            "object_lifetime_stale <= object_lifetime_maximum",
            format!("{} > {}", cfg.object_lifetime_stale, cfg.object_lifetime_maximum),
        );
    }
    Ok(())
}

/// Checks the HTTP server's limits, and that a lookup trying every upstream fits the
/// request time limit.
fn check_limits(cfg: &RtcacheConfig) -> Result<(), RealtimeError> {
    let l = cfg.limits;
    if l.header_read_timeout.as_millis() < 100 || l.idle_timeout.as_millis() < 100 || l.max_connections == 0 {
        return bad(
            "header_read_timeout_ms and idle_timeout_ms of at least 100 and max_connections of at least 1",
            format!("{} ms, {} ms, {}", l.header_read_timeout.as_millis(), l.idle_timeout.as_millis(), l.max_connections),
        );
    }
    let worst = cfg.upstream_timeout_ms.saturating_mul(cfg.upstreams.len() as u64);
    if l.request_timeout.as_millis() as u64 <= worst {
        return bad(
            &format!(
                "request_timeout_ms above upstream_timeout_ms x upstreams ({worst} ms): a lookup trying every upstream must not be cut"
            ),
            l.request_timeout.as_millis().to_string(),
        );
    }
    Ok(())
}

/// Runs the sidecar until `shutdown`: binds `--listen` (once, or once per serving thread
/// with `accept: reuseport`) and serves.
pub async fn run(args: RtcacheArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let cfg = args.resolve()?;
    let listeners = threads::bind(cfg.listen, cfg.threads, cfg.accept)?;
    let balanced = cfg.accept == Accept::Balanced;
    serve_on(listeners, cfg, balanced, shutdown).await?;
    Ok(())
}

/// Serves on `listener` (shared by the serving threads) until `shutdown`, then commits
/// the cache to disk and returns.
pub async fn serve(listener: TcpListener, cfg: RtcacheConfig, shutdown: CancellationToken) -> Result<(), RealtimeError> {
    let listeners = threads::share(listener, cfg.threads)?;
    serve_on(listeners, cfg, true, shutdown).await
}

async fn serve_on(
    listeners: Vec<std::net::TcpListener>,
    cfg: RtcacheConfig,
    balanced: bool,
    shutdown: CancellationToken,
) -> Result<(), RealtimeError> {
    let mut registry = Registry::default();
    let metrics = RtcacheMetrics::register(&mut registry);
    let (store, writer) = store::Store::open(&cfg.cache_dir, mware_coord::now_ms(), cfg.max_entries)?;
    tracing::info!(listen = %cfg.listen, upstreams = ?cfg.upstreams, entries = store.len(), "rtcache: serving");
    let state = Arc::new(proxy::State {
        upstreams: upstream::Upstreams::new(cfg.upstreams.clone(), cfg.upstream_timeout_ms, metrics.clone()),
        store: store.clone(),
        metrics,
        registry: Arc::new(registry),
        refreshing: Default::default(),
        listen_ip: cfg.listen.ip().to_string(),
        cfg,
        tasks: tokio_util::task::TaskTracker::new(),
        shutdown: shutdown.clone(),
        background: tokio::runtime::Handle::current(),
    });
    let sweeper = {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => { store.sweep(mware_coord::now_ms()); }
                }
            }
        })
    };
    let app = hot::HotPath { state: state.clone(), router: proxy::router(state.clone()) };
    // The same server as the daemon's API (header, idle and request timeouts, a connection
    // cap, TCP_NODELAY), on one thread per listener.
    let served = threads::serve(listeners, app, state.cfg.limits, balanced, shutdown.clone()).await;
    sweeper.abort();
    state.tasks.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), state.tasks.wait()).await;
    drop(state);
    tokio::task::spawn_blocking(move || store.close(writer)).await.ok();
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_under_command_line_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rtcache.json");
        std::fs::write(&file, r#"{"upstream": ["http://10.0.0.1:8271", "http://10.0.0.2:8271"], "object_lifetime_stale": 30}"#).unwrap();
        let args = RtcacheArgs { config: Some(file.clone()), object_lifetime_stale: Some(5), ..Default::default() };
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.upstreams.len(), 2);
        assert_eq!((cfg.object_lifetime_stale, cfg.object_lifetime_maximum, cfg.upstream_timeout_ms), (5, 86_400, 2_000));

        let public = RtcacheArgs { listen: Some("0.0.0.0:8088".parse().unwrap()), ..args.clone() };
        assert!(public.resolve().unwrap_err().to_string().contains("expected a loopback listen address"));
        let none = RtcacheArgs::default();
        assert!(none.resolve().unwrap_err().to_string().contains("at least one --upstream"));
        std::fs::write(&file, r#"{"upstreams": []}"#).unwrap();
        assert!(args.resolve().is_err(), "unknown keys in the file are refused");
    }
}
