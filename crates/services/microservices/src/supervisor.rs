//! One supervised process's loop: start it, read its output into the site's log, and
//! when it ends ask [`crate::decide`] what to do (restart after a pause, give up, leave
//! it stopped), or act on an operator's stop, start or restart. Its status (pid, since,
//! restarts, last exit) is kept where the API reads it.

use crate::decide::{decide, Decision, Exit, Snapshot};
use crate::logstore::{LogStore, Stream};
use crate::pipe;
use crate::section::{Process, RunOn};
use crate::spawn::{self, GroupGuard};
use mware_config::now_ms;
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// An operator's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// Start it (also a failed one: its restart history is forgotten).
    Start,
    /// Stop it and leave it stopped.
    Stop,
    /// Stop it and start it again.
    Restart,
}

/// Where a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Running.
    Running,
    /// Ended; waits its pause before a restart.
    Backoff,
    /// Stopped (by an operator, or its policy does not restart it).
    Stopped,
    /// Restarted too often: left stopped until an operator starts it.
    Failed,
}

/// How it ended last.
#[derive(Debug, Clone, Serialize)]
pub struct LastExit {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// When, ms since the epoch.
    pub at_ms: u64,
}

/// A process's status as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProcStatus {
    /// Its name.
    pub name: String,
    /// `active` or `every`.
    pub run_on: RunOn,
    /// Where it is.
    pub state: State,
    /// Its pid while it runs.
    pub pid: Option<u32>,
    /// Since when it is in this state, ms since the epoch.
    pub since_ms: u64,
    /// Restarts by its policy since the supervisor started it.
    pub restarts: u32,
    /// How it ended last.
    pub last_exit: Option<LastExit>,
    /// The last decision, in words.
    pub reason: String,
}

/// Statuses by process name.
pub type Statuses = Arc<Mutex<BTreeMap<String, ProcStatus>>>;

/// What one loop is given.
pub(crate) struct ProcCtx {
    pub cfg: Process,
    pub instance: String,
    pub owner: String,
    pub store: LogStore,
    pub statuses: Statuses,
    pub cancel: CancellationToken,
    pub cmds: mpsc::Receiver<Cmd>,
    pub restarts_total: prometheus_client::metrics::counter::Counter,
}

impl ProcCtx {
    fn set(&self, f: impl FnOnce(&mut ProcStatus)) {
        let mut all = self.statuses.lock().unwrap_or_else(|e| e.into_inner());
        let s = all.entry(self.cfg.name.clone()).or_insert_with(|| ProcStatus {
            name: self.cfg.name.clone(),
            run_on: self.cfg.run_on,
            state: State::Stopped,
            pid: None,
            since_ms: now_ms(),
            restarts: 0,
            last_exit: None,
            reason: String::new(),
        });
        f(s);
    }

    fn state(&self, state: State, pid: Option<u32>, reason: String) {
        tracing::info!(process = %self.cfg.name, state = ?state, "{reason}");
        self.set(|s| {
            s.state = state;
            s.pid = pid;
            s.since_ms = now_ms();
            s.reason = reason;
        });
    }
}

/// How a running phase ended.
enum Ended {
    Exited(Exit),
    Asked(Cmd),
    Cancelled,
}

fn exit_of(s: Option<ExitStatus>) -> Exit {
    match s {
        Some(s) => s.code().map(Exit::Code).or(s.signal().map(Exit::Signal)).unwrap_or(Exit::Code(-1)),
        None => Exit::Code(-1),
    }
}

/// Supervises one process until `cx.cancel`; its process group is stopped then.
pub(crate) async fn supervise(mut cx: ProcCtx) {
    let mut restarts: Vec<u64> = vec![];
    let mut want = true;
    loop {
        if !want {
            tokio::select! {
                _ = cx.cancel.cancelled() => return,
                c = cx.cmds.recv() => match c {
                    None => return,
                    Some(Cmd::Start | Cmd::Restart) => { want = true; restarts.clear(); }
                    Some(Cmd::Stop) => {}
                },
            }
            continue;
        }
        let exit = match run_once(&mut cx).await {
            Ended::Cancelled => return,
            Ended::Asked(Cmd::Stop) => {
                want = false;
                cx.state(State::Stopped, None, format!("{} stopped by an operator", cx.cfg.name));
                continue;
            }
            Ended::Asked(_) => continue,
            Ended::Exited(e) => e,
        };
        let now = now_ms();
        cx.set(|s| {
            s.last_exit = Some(LastExit {
                code: match exit {
                    Exit::Code(c) => Some(c),
                    _ => None,
                },
                signal: match exit {
                    Exit::Signal(s) => Some(s),
                    _ => None,
                },
                at_ms: now,
            })
        });
        let d = decide(&Snapshot { policy: &cx.cfg, exit, restarts_ms: &restarts, now_ms: now });
        match d {
            Decision::Restart { after, .. } => {
                cx.state(State::Backoff, None, d.to_string());
                tokio::select! {
                    _ = cx.cancel.cancelled() => return,
                    _ = tokio::time::sleep(after) => {}
                    c = cx.cmds.recv() => match c {
                        None => return,
                        Some(Cmd::Stop) => { want = false; cx.state(State::Stopped, None, format!("{} stopped by an operator", cx.cfg.name)); continue; }
                        Some(_) => { restarts.clear(); continue; }
                    },
                }
                restarts.push(now_ms());
                restarts.retain(|t| now_ms().saturating_sub(*t) < cx.cfg.restart_window_s * 1000);
                cx.restarts_total.inc();
                cx.set(|s| s.restarts += 1);
            }
            Decision::GiveUp { .. } => {
                want = false;
                cx.state(State::Failed, None, d.to_string());
            }
            Decision::Leave { .. } => {
                want = false;
                cx.state(State::Stopped, None, d.to_string());
            }
        }
    }
}

/// Starts the process and runs it until it ends, an operator asks, or the cancel.
async fn run_once(cx: &mut ProcCtx) -> Ended {
    let (mut child, pgid, program) = match spawn::spawn(&cx.cfg, &cx.owner) {
        Ok(c) => c,
        Err(e) => {
            cx.state(State::Backoff, None, e.to_string());
            return Ended::Exited(Exit::Code(127));
        }
    };
    let guard = GroupGuard(pgid);
    let pid = program.or(child.id());
    cx.state(State::Running, pid, format!("{} started (pid {}, its guard {})", cx.cfg.name, pid.unwrap_or(0), pgid));
    let source = |stream| pipe::Source { instance: cx.instance.as_str().into(), process: cx.cfg.name.as_str().into(), stream };
    let mut readers = vec![];
    if let Some(out) = child.stdout.take() {
        pipe::widen(&out);
        readers.push(tokio::spawn(pipe::read(out, source(Stream::Stdout), cx.store.clone())));
    }
    if let Some(err) = child.stderr.take() {
        pipe::widen(&err);
        readers.push(tokio::spawn(pipe::read(err, source(Stream::Stderr), cx.store.clone())));
    }
    let ended = loop {
        tokio::select! {
            s = spawn::wait(&mut child) => break Ended::Exited(exit_of(s.ok())),
            _ = cx.cancel.cancelled() => {
                spawn::stop(&mut child, pgid, &cx.cfg).await;
                break Ended::Cancelled;
            }
            c = cx.cmds.recv() => match c {
                Some(Cmd::Start) => {}
                Some(c @ (Cmd::Stop | Cmd::Restart)) => {
                    let s = spawn::stop(&mut child, pgid, &cx.cfg).await;
                    let e = exit_of(s);
                    cx.set(|st| st.last_exit = Some(LastExit { code: match e { Exit::Code(c) => Some(c), _ => None }, signal: match e { Exit::Signal(s) => Some(s), _ => None }, at_ms: now_ms() }));
                    break Ended::Asked(c);
                }
                None => {
                    spawn::stop(&mut child, pgid, &cx.cfg).await;
                    break Ended::Cancelled;
                }
            },
        }
    };
    // Whatever it left in its group ends with it; then its pipes reach their end.
    drop(guard);
    for r in readers {
        // A reader waits for room in the log's queue: every line is kept, unless the
        // supervisor is being stopped, where two seconds are all it gets.
        if matches!(ended, Ended::Cancelled) {
            let _ = tokio::time::timeout(Duration::from_secs(2), r).await;
        } else {
            let _ = r.await;
        }
    }
    ended
}

/// A running loop, as its owner keeps it.
pub(crate) struct Handle {
    pub cfg: Process,
    pub cancel: CancellationToken,
    pub join: JoinHandle<()>,
}
