//! Config reloads of `mware run`: on SIGHUP, on a change of the config file, and on every
//! site file pushed to the coordinator (through its config watch, re-opened with backoff).
//! A new site text is applied only if it validates and still contains this instance.

use crate::api::AppState;
use crate::load;
use crate::metrics::ReloadLabels;
use backon::{BackoffBuilder, ExponentialBuilder};
use mware_config::{DomainTree, Site};
use mware_coord::Coordinator;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Where the running config came from.
#[derive(Clone)]
pub(crate) struct Source {
    /// The file given on the command line.
    pub path: PathBuf,
    /// True when the file is a whole site (else: bootstrap, the site is in the coordinator).
    pub whole: bool,
}

/// Applies a new site text if it validates and still contains this instance.
fn apply(text: &str, source: &str, site_tx: &watch::Sender<Arc<Site>>, state: &AppState) -> bool {
    let refused = |why: &str| {
        tracing::error!(source, reason = why, "new config refused; keeping the running one");
        state.0.metrics.reloads.get_or_create(&ReloadLabels { result: "refused".into(), source: source.into() }).inc();
        false
    };
    let (site, warnings) = match load::check(text) {
        Ok(v) => v,
        Err(problems) => {
            for p in &problems {
                tracing::error!(source, path = %p.path, problem = %p.message, "config problem");
            }
            return refused(&format!("{} problems", problems.len()));
        }
    };
    for w in &warnings {
        tracing::warn!(source, path = %w.path, problem = %w.message, "config warning");
    }
    let old = site_tx.borrow().clone();
    let Some(me) = site.instance(&state.0.instance) else {
        return refused(&format!("instance {} is not an enabled instance of the new config", state.0.instance));
    };
    if let Some(o) = old.instance(&state.0.instance) {
        if o.role.group != me.role.group || o.role.order != me.role.order || o.api_addr() != me.api_addr() {
            tracing::warn!(source, "group, order or address of this instance changed: takes effect at the next restart");
        }
    }
    if *old == site {
        tracing::debug!(source, "config unchanged");
        return true;
    }
    *state.0.tree.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(DomainTree::build(&site));
    site_tx.send_replace(Arc::new(site));
    state.0.metrics.reloads.get_or_create(&ReloadLabels { result: "applied".into(), source: source.into() }).inc();
    state.0.host.events().publish(mware_host::EventKind::Config { source: source.into() });
    tracing::info!(source, "config reloaded");
    true
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Pauses between two attempts to open the coordinator's config watch: from 500 ms doubling
/// to 5 s, each lengthened by a random share of itself: at most [`WATCH_RETRY_MAX`].
const WATCH_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(500))
    .with_max_delay(Duration::from_secs(5))
    .with_jitter()
    .without_max_times();
/// The longest pause between two attempts to open the config watch.
const WATCH_RETRY_MAX: Duration = Duration::from_secs(10);

/// Applies a new config on SIGHUP, on a change of the file, and on every site file pushed to
/// the coordinator. The coordinator's config watch is (re)opened with backoff whenever it is
/// not open (the coordinator unreachable at start, or a watch that ended), so a push is
/// never missed until the next SIGHUP. After a re-open, a push made while no watch was open
/// is caught up from the stored revision (from the first open on, not before: at start the
/// file given on the command line is the config, as it always was).
pub(crate) async fn reload_loop(
    src: Source,
    coord: Arc<dyn Coordinator>,
    site_tx: watch::Sender<Arc<Site>>,
    state: AppState,
    shutdown: CancellationToken,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler");
        return;
    };
    let mut seen = mtime(&src.path);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut w = ConfigWatch::new();
    loop {
        let source = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hup.recv() => "sighup",
            _ = tick.tick() => {
                let now = mtime(&src.path);
                if now == seen || !src.whole { continue }
                "file"
            }
            _ = tokio::time::sleep_until(w.retry_at), if w.rx.is_none() => {
                w.open(coord.as_ref(), &site_tx, &state).await;
                continue;
            }
            ev = async { match w.rx.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                w.pushed(ev, &site_tx, &state);
                continue;
            }
        };
        seen = mtime(&src.path);
        reload(&src, coord.as_ref(), source, &site_tx, &state).await;
    }
}

/// Reads the config again (the file, or the coordinator's site file for a bootstrap
/// file) and applies it; what cannot be read is logged and the running config kept.
async fn reload(src: &Source, coord: &dyn Coordinator, source: &str, site_tx: &watch::Sender<Arc<Site>>, state: &AppState) {
    if src.whole {
        match std::fs::read_to_string(&src.path) {
            Ok(text) => {
                apply(&text, source, site_tx, state);
            }
            Err(e) => {
                tracing::error!(path = %src.path.display(), error = %e, "cannot read the config file; keeping the running one")
            }
        }
    } else {
        match coord.config_get().await {
            Ok(Some((text, _))) => {
                apply(&text, source, site_tx, state);
            }
            Ok(None) => tracing::error!("no site file in the coordinator; keeping the running one"),
            Err(e) => tracing::error!(error = %e, "cannot read the site file from the coordinator; keeping the running one"),
        }
    }
}

/// The coordinator's config watch: open or not, when to try opening it again, and the
/// revision of the newest stored site file seen.
struct ConfigWatch {
    rx: Option<mpsc::Receiver<(String, u64)>>,
    retry_at: tokio::time::Instant,
    pauses: backon::ExponentialBackoff,
    failures: u32,
    /// Revision of the newest stored site file seen; `None` until the first watch is open.
    stored_rev: Option<u64>,
}

impl ConfigWatch {
    fn new() -> Self {
        ConfigWatch { rx: None, retry_at: tokio::time::Instant::now(), pauses: WATCH_RETRY.build(), failures: 0, stored_rev: None }
    }

    /// Opens the watch; once open, applies a site file pushed while it was closed. A
    /// failure sets the next try after a growing pause.
    async fn open(&mut self, coord: &dyn Coordinator, site_tx: &watch::Sender<Arc<Site>>, state: &AppState) {
        match coord.config_watch().await {
            Ok(w) => {
                self.rx = Some(w);
                tracing::info!(failed_attempts = self.failures, "watching the coordinator for pushed site files");
                (self.pauses, self.failures) = (WATCH_RETRY.build(), 0);
                self.catch_up(coord, site_tx, state).await;
            }
            Err(e) => {
                self.failures += 1;
                let pause = self.pauses.next().unwrap_or(WATCH_RETRY_MAX);
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, failed_attempts = self.failures,
                    "cannot watch the coordinator for pushed site files; retrying");
                self.retry_at = tokio::time::Instant::now() + pause;
            }
        }
    }

    /// Applies the stored site file if it is newer than the last one seen (not at the
    /// first open), and remembers its revision.
    async fn catch_up(&mut self, coord: &dyn Coordinator, site_tx: &watch::Sender<Arc<Site>>, state: &AppState) {
        match coord.config_get().await {
            Ok(Some((text, rev))) => {
                if self.stored_rev.is_some_and(|r| rev > r) {
                    tracing::info!(revision = rev, "site file pushed while the config watch was closed");
                    apply(&text, "coordinator", site_tx, state);
                }
                self.stored_rev = Some(rev);
            }
            Ok(None) => self.stored_rev = Some(self.stored_rev.unwrap_or(0)),
            Err(e) => tracing::warn!(error = %e, "cannot read the stored site file after opening the config watch"),
        }
    }

    /// A site file pushed (applied), or the end of the watch (to be opened again now).
    fn pushed(&mut self, ev: Option<(String, u64)>, site_tx: &watch::Sender<Arc<Site>>, state: &AppState) {
        match ev {
            Some((text, rev)) => {
                tracing::info!(revision = rev, "new site file in the coordinator");
                self.stored_rev = Some(rev);
                apply(&text, "coordinator", site_tx, state);
            }
            None => {
                tracing::warn!("the coordinator's config watch ended; opening it again");
                self.rx = None;
                self.retry_at = tokio::time::Instant::now();
            }
        }
    }
}
