//! The daemon's side of the companion (see `companion.rs`): starts `mware companion`
//! (this same binary, through `/proc/self/exe`, so an upgrade on disk does not matter)
//! with a pipe on its standard input, tells it the coordination settings and every change
//! of the lease, and starts it again after a pause (from 1 s, growing with jitter to at most 30 s) if it dies.
//!
//! The companion is not a single point of failure: while it is missing, nothing changes
//! for the daemon, whose lease is renewed as always; only a kill -9 of the daemon then
//! takes the lease's time to fail over, as it did before companions existed.
//! `mware_companion_ready` and the `companion` part of `GET /api/v1/status` show it.

use crate::cli::LogFormat;
use crate::metrics::Metrics;
use backon::{BackoffBuilder, ExponentialBuilder};
use mware_config::Site;
use mware_coord::{CompanionMsg, Settings};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Pauses before starting a companion that died again: from 1 s doubling to 15 s, each
/// lengthened by a random share of itself: at most [`RESTART_MAX`].
const RESTART: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_secs(1))
    .with_max_delay(Duration::from_secs(15))
    .with_jitter()
    .without_max_times();
/// The longest pause before a restart.
const RESTART_MAX: Duration = Duration::from_secs(30);
/// A companion that ran this long is starting afresh: its next restart waits the first pause.
const HEALTHY: Duration = Duration::from_secs(60);
/// How long a companion told `done` may take to exit before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// What a companion is started with.
pub struct Companion {
    /// The coordination settings the daemon connected with.
    settings: Settings,
    /// `--log-format` of the daemon.
    log_format: &'static str,
}

impl Companion {
    /// The settings the daemon connected with (from the file it was started with), the
    /// embedded file's path made absolute so the companion opens the same file whatever
    /// its working directory.
    pub fn new(boot: &Site, log_format: LogFormat) -> Self {
        let mut settings = Settings::from_site(boot);
        if let Ok(p) = std::path::absolute(&settings.coordination.path) {
            settings.coordination.path = p.to_string_lossy().into_owned();
        }
        let log_format = match log_format {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        };
        Companion { settings, log_format }
    }

    /// Keeps a companion running until `stop`; then tells it `done` (the daemon has left
    /// its group by itself) and waits for it to exit.
    pub async fn supervise(self, lease: watch::Receiver<Option<i64>>, metrics: Metrics, stop: CancellationToken) {
        supervise(self.settings, self.log_format, lease, metrics, stop).await
    }
}

async fn supervise(
    settings: Settings,
    log_format: &'static str,
    mut lease: watch::Receiver<Option<i64>>,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let mut pauses = RESTART.build();
    loop {
        let started = Instant::now();
        let mut next_pause = || {
            if started.elapsed() >= HEALTHY {
                pauses = RESTART.build();
            }
            pauses.next().unwrap_or(RESTART_MAX)
        };
        let pause = match spawn(&settings, log_format, &mut lease).await {
            Ok((child, stdin)) => {
                let pid = child.id().unwrap_or(0);
                metrics.companion_pid.set(pid as i64);
                tracing::info!(companion_pid = pid, "companion started");
                let ended = keep(child, stdin, &mut lease, &metrics, &stop).await;
                metrics.companion_ready.set(0);
                metrics.companion_pid.set(0);
                let Some(how) = ended else { return };
                let pause = next_pause();
                tracing::warn!(companion_pid = pid, exit = %how, restart_in_ms = pause.as_millis() as u64,
                    "the companion ended; this instance goes on with its normal lease (a kill -9 now takes the lease's time to fail over)");
                pause
            }
            Err(e) => {
                let pause = next_pause();
                tracing::warn!(error = %e, restart_in_ms = pause.as_millis() as u64, "cannot start the companion");
                pause
            }
        };
        metrics.companion_restarts.inc();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Starts one companion and sends it the hello and the current lease.
async fn spawn(settings: &Settings, log_format: &str, lease: &mut watch::Receiver<Option<i64>>) -> std::io::Result<(Child, ChildStdin)> {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("mware")
        .args(["--log-format", log_format, "companion"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group: a Ctrl-C meant for the daemon's terminal does not reach it.
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| std::io::Error::other("the companion has no stdin pipe"))?;
    let hello = CompanionMsg::Hello { pid: std::process::id(), settings: Box::new(settings.clone()) };
    stdin.write_all(hello.to_line().as_bytes()).await?;
    let now = *lease.borrow_and_update();
    stdin.write_all(CompanionMsg::Lease(now).to_line().as_bytes()).await?;
    Ok((child, stdin))
}

/// Feeds the companion until it exits (`Some(how)`) or `stop` (`None`).
async fn keep(
    mut child: Child,
    mut stdin: ChildStdin,
    lease: &mut watch::Receiver<Option<i64>>,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Option<String> {
    let mut out = child.stdout.take().map(|o| BufReader::new(o).lines());
    let mut lease_open = true;
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                let _ = stdin.write_all(CompanionMsg::Done.to_line().as_bytes()).await;
                drop(stdin);
                if tokio::time::timeout(EXIT_WAIT, child.wait()).await.is_err() {
                    tracing::warn!("the companion did not exit when told; killing it");
                    let _ = child.kill().await;
                }
                return None;
            }
            r = lease.changed(), if lease_open => {
                if r.is_err() {
                    lease_open = false;
                    continue;
                }
                let now = *lease.borrow_and_update();
                if let Err(e) = stdin.write_all(CompanionMsg::Lease(now).to_line().as_bytes()).await {
                    tracing::warn!(error = %e, "cannot tell the companion the new lease");
                }
            }
            line = async { out.as_mut().expect("guarded").next_line().await }, if out.is_some() => match line {
                Ok(Some(l)) if l.trim() == "ready" => {
                    metrics.companion_ready.set(1);
                    tracing::info!(companion_pid = child.id().unwrap_or(0), "companion ready: a kill -9 of this instance now ends its lease at once");
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => out = None,
            },
            r = child.wait() => {
                return Some(match r {
                    Ok(s) => s.to_string(),
                    Err(e) => e.to_string(),
                });
            }
        }
    }
}
