//! Runs one command (an argv, never a shell line) in a process group of its own, with a
//! time limit, and captures its output: the last bytes of stdout and stderr are kept,
//! every line goes to a callback (the task's log).
//!
//! A timeout, a kill request or the end of the caller's activity ends the whole
//! process group: SIGTERM, then SIGKILL [`KILL_AFTER`] later. When the command exits by
//! itself, whatever it left running in its group is killed too (a run ends when it
//! ends). The child gets SIGKILL if the daemon dies (Linux parent-death signal), so a
//! `kill -9` of the daemon does not leave the command itself running; processes it
//! started of its own are not covered by that and live on until they end.
//!
//! Used by service tasks and by the monitoring service's `command` probe.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Time between SIGTERM and SIGKILL when a run is ended.
pub const KILL_AFTER: Duration = Duration::from_secs(5);
/// Longest line passed to the callback (longer ones are cut).
const MAX_LINE: usize = 64 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Variables added to the daemon's environment.
    pub env: Vec<(String, String)>,
    /// Working directory (default: the daemon's).
    pub working_dir: Option<String>,
    /// Longest run.
    pub timeout: Duration,
    /// Bytes of each stream kept as its tail.
    pub tail_bytes: usize,
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The command exited (or was killed by a signal it did not get from us).
    Exited,
    /// It ran past its timeout and its process group was killed.
    TimedOut,
    /// The caller asked for it to end (overlap `kill`, the activity ended).
    Killed,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Why it ended.
    pub ending: Ending,
    /// Exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// The last bytes of stdout.
    pub stdout_tail: String,
    /// The last bytes of stderr.
    pub stderr_tail: String,
    /// From start to end.
    pub duration: Duration,
}

impl Finished {
    /// True when it exited with 0.
    pub fn success(&self) -> bool {
        self.ending == Ending::Exited && self.exit_code == Some(0)
    }

    /// What happened, in words: `exited with 0`, `killed by signal 9`, `timed out ...`.
    pub fn describe(&self, timeout: Duration) -> String {
        let how = match (self.exit_code, self.signal) {
            (Some(c), _) => format!("exited with {c}"),
            (None, Some(s)) => format!("ended by signal {s}"),
            (None, None) => "ended".to_string(),
        };
        match self.ending {
            Ending::Exited => how,
            Ending::TimedOut => format!("timed out after {} s; its process group was killed ({how})", timeout.as_secs_f64()),
            Ending::Killed => format!("killed on request; its process group was ended ({how})"),
        }
    }
}

/// A line callback: stream and line (without its newline).
pub type OnLine = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// The command could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start {program:?}: {source}")]
pub struct StartError {
    /// The program.
    pub program: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// The command for `argv` (the program first) in a process group of its own, the group
/// leader being the child: stdin closed, stdout and stderr piped, killed if dropped, run
/// in `working_dir` when given. Callers add the environment and their own `pre_exec`
/// (the parent-death signal, limits).
pub fn group_command(argv: &[String], working_dir: Option<&str>) -> Command {
    let mut cmd = Command::new(argv.first().map(String::as_str).unwrap_or_default());
    cmd.args(&argv[1.min(argv.len())..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(d) = working_dir {
        cmd.current_dir(d);
    }
    cmd
}

/// Runs `spec` until it ends, its timeout passes or `kill` is cancelled.
pub async fn run(spec: &Spec, kill: &CancellationToken, on_line: OnLine) -> Result<Finished, StartError> {
    let program = spec.argv.first().cloned().unwrap_or_default();
    let mut cmd = group_command(&spec.argv, spec.working_dir.as_deref());
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from));
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|source| StartError { program: program.clone(), source })?;
    let pgid = child.id().map(|p| Pid::from_raw(p as i32));
    // Dropped at the end, or with this future if the caller gives up on it (a service
    // aborted at its stop deadline): either way the whole group is killed.
    let guard = GroupGuard(pgid);
    let out = tokio::spawn(collect(child.stdout.take(), Stream::Stdout, spec.tail_bytes, on_line.clone()));
    let err = tokio::spawn(collect(child.stderr.take(), Stream::Stderr, spec.tail_bytes, on_line));
    let (ending, status) = tokio::select! {
        s = wait(&mut child) => (Ending::Exited, s.ok()),
        _ = tokio::time::sleep(spec.timeout) => (Ending::TimedOut, end_group(&mut child, pgid).await),
        _ = kill.cancelled() => (Ending::Killed, end_group(&mut child, pgid).await),
    };
    // Whatever the command left behind in its group ends with it.
    drop(guard);
    let drain = Duration::from_secs(1);
    let stdout_tail = tokio::time::timeout(drain, out).await.ok().and_then(Result::ok).unwrap_or_default();
    let stderr_tail = tokio::time::timeout(drain, err).await.ok().and_then(Result::ok).unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    Ok(Finished {
        ending,
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        stdout_tail,
        stderr_tail,
        duration: started.elapsed(),
    })
}

/// Waits for the child. tokio learns of the exit through SIGCHLD, whose handler belongs to
/// the first runtime that registered it; with several runtimes in one process (tests) a
/// notice can be lost when that one ends, so the exit is also polled every 100 ms.
async fn wait(child: &mut tokio::process::Child) -> std::io::Result<std::process::ExitStatus> {
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        tokio::select! {
            s = child.wait() => return s,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// Kills a process group (SIGKILL) when dropped.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(g) = self.0 {
            let _ = killpg(g, Signal::SIGKILL);
        }
    }
}

/// SIGTERM to the group, SIGKILL after [`KILL_AFTER`]; the child's exit status.
async fn end_group(child: &mut tokio::process::Child, pgid: Option<Pid>) -> Option<std::process::ExitStatus> {
    if let Some(g) = pgid {
        let _ = killpg(g, Signal::SIGTERM);
    }
    match tokio::time::timeout(KILL_AFTER, wait(child)).await {
        Ok(s) => s.ok(),
        Err(_) => {
            if let Some(g) = pgid {
                let _ = killpg(g, Signal::SIGKILL);
            }
            let _ = child.start_kill();
            wait(child).await.ok()
        }
    }
}

/// Reads `r` line by line into the callback, keeping the last `tail` bytes.
async fn collect(r: Option<impl AsyncRead + Unpin>, stream: Stream, tail: usize, on_line: OnLine) -> String {
    let Some(r) = r else { return String::new() };
    let mut r = BufReader::new(r);
    let mut kept: VecDeque<u8> = VecDeque::with_capacity(tail.min(1 << 16));
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match (&mut r).take(MAX_LINE as u64).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for b in &line[..n] {
            if kept.len() == tail {
                kept.pop_front();
            }
            if tail > 0 {
                kept.push_back(*b);
            }
        }
        let text = String::from_utf8_lossy(&line[..n]);
        on_line(stream, text.trim_end_matches(['\n', '\r']));
    }
    let bytes: Vec<u8> = kept.into_iter().collect();
    // A tail cut in the middle of a character starts at the next whole one.
    let s = String::from_utf8_lossy(&bytes).into_owned();
    s.trim_start_matches('\u{FFFD}').to_string()
}

use tokio::io::AsyncReadExt as _;
