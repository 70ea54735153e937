//! `mware companion` (hidden): the process `mware run` starts beside itself so that its
//! lease ends the moment it dies, instead of running out `lease_ttl_ms` later.
//!
//! It reads its standard input, a pipe whose write end only the daemon holds (the
//! protocol and the rules are in `mware_coord::CompanionMsg` and `companion_decide`):
//! a hello with the coordination settings, then the daemon's lease on every change. It
//! connects to the coordinator at once (and pings it every [`PING`]) so that nothing is
//! left to set up when it is needed, and prints `ready` on its standard output once it
//! can reach it. At end of file it waits up to [`PARENT_GONE_WAIT`] for the daemon to be
//! gone (it is handed to another parent), then revokes the lease and exits. Stop signals
//! (SIGTERM, SIGINT, SIGHUP) are ignored: it ends when the daemon ends, never before.

use anyhow::Context;
use backon::BackoffBuilder;
use mware_coord::{companion_decide, CompanionAction, CompanionEvent, CompanionMsg, LeaseRevoker, Settings};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// How often the companion checks that the coordinator answers.
const PING: Duration = Duration::from_secs(10);
/// How long after end of file the daemon must have been handed over to another parent.
const PARENT_GONE_WAIT: Duration = Duration::from_secs(1);

/// Runs the companion until the daemon ends.
pub async fn run() -> anyhow::Result<()> {
    let _ignored = ignore_stop_signals()?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let first = lines.next_line().await?.context("the daemon closed the pipe before its hello")?;
    let CompanionMsg::Hello { pid, settings } = CompanionMsg::parse(&first)? else {
        anyhow::bail!("expected a hello as the first message, found another one");
    };
    if std::os::unix::process::parent_id() != pid {
        anyhow::bail!("expected to be started by mware pid {pid}, found parent pid {}", std::os::unix::process::parent_id());
    }
    let ttl = settings.lease_ttl();
    let mut opening = Some(tokio::spawn(open(*settings)));
    let mut revoker: Option<LeaseRevoker> = None;
    let mut lease = None;
    let mut ping = tokio::time::interval(PING);
    let mut eof = Instant::now();
    loop {
        let ev = tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(l)) => match CompanionMsg::parse(&l) {
                    Ok(m) => CompanionEvent::Msg(m),
                    Err(e) => {
                        tracing::warn!(error = %e, "companion: ignoring a message");
                        continue;
                    }
                },
                Ok(None) | Err(_) => {
                    eof = Instant::now();
                    CompanionEvent::Eof { parent_gone: parent_gone(pid).await }
                }
            },
            r = async { opening.as_mut().expect("guarded").await }, if opening.is_some() => {
                opening = None;
                revoker = Some(r.context("companion: the connecting task failed")?);
                continue;
            }
            _ = ping.tick(), if revoker.is_some() => {
                if let Err(e) = revoker.as_ref().expect("guarded").ping().await {
                    tracing::warn!(error = %e, "companion: the coordinator does not answer");
                }
                continue;
            }
        };
        match companion_decide(lease, &ev) {
            CompanionAction::Track(l) => lease = l,
            CompanionAction::Ignore { reason } => tracing::warn!(%reason, "companion"),
            CompanionAction::Exit { reason } => {
                tracing::info!(mware_pid = pid, %reason, "companion exits");
                return Ok(());
            }
            a @ CompanionAction::Revoke { lease } => {
                tracing::warn!(mware_pid = pid, lease, reason = %a, "companion: mware died");
                let revoker = match (revoker, opening) {
                    (Some(r), _) => r,
                    // Not connected yet: past the lease's time to live there is nothing left to end.
                    (None, Some(task)) => tokio::time::timeout(ttl, task)
                        .await
                        .context("companion: could not reach the coordinator before the lease ran out by itself")?
                        .context("companion: the connecting task failed")?,
                    (None, None) => anyhow::bail!("companion: no coordinator connection"),
                };
                let attempts = revoker.revoke_retrying(lease).await.context("companion: cannot revoke the lease")?;
                let ms = eof.elapsed().as_secs_f64() * 1000.0;
                tracing::warn!(
                    mware_pid = pid,
                    lease,
                    attempts,
                    since_eof_ms = ms,
                    "companion: revoked the dead instance's lease; exiting"
                );
                return Ok(());
            }
        }
    }
}

/// Connects to the coordinator, retrying until it answers; prints `ready` then.
async fn open(settings: Settings) -> LeaseRevoker {
    let mut pauses = crate::daemon::COORD_RETRY.build();
    loop {
        let pause = pauses.next().unwrap_or(crate::daemon::COORD_RETRY_MAX);
        let r = match LeaseRevoker::open(settings.clone()).await {
            Ok(r) => r.ping().await.map(|_| r),
            Err(e) => Err(e),
        };
        match r {
            Ok(r) => {
                let mut out = tokio::io::stdout();
                let _ = out.write_all(b"ready\n").await;
                let _ = out.flush().await;
                return r;
            }
            Err(e) => tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "companion: cannot reach the coordinator yet"),
        }
        tokio::time::sleep(pause).await;
    }
}

/// Whether `pid` stopped being our parent within [`PARENT_GONE_WAIT`]: the kernel closes a
/// dying process's files just before it hands its children to another parent.
async fn parent_gone(pid: u32) -> bool {
    let until = Instant::now() + PARENT_GONE_WAIT;
    while std::os::unix::process::parent_id() == pid {
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

/// Handlers that swallow SIGTERM, SIGINT and SIGHUP for as long as they are kept.
fn ignore_stop_signals() -> anyhow::Result<Vec<tokio::signal::unix::Signal>> {
    use tokio::signal::unix::{signal, SignalKind};
    [SignalKind::terminate(), SignalKind::interrupt(), SignalKind::hangup()]
        .into_iter()
        .map(|k| signal(k).context("cannot install a signal handler"))
        .collect()
}
