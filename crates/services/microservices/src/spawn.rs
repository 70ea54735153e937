//! Starting and stopping one supervised process: an argv (never a shell line) in a
//! process group of its own, behind a guard that kills the whole group when the daemon
//! dies ([`crate::guard`]), its resource limits set in the child before `exec`, stdout
//! and stderr piped to the supervisor. A stop sends the configured signal to the whole group, then SIGKILL after
//! the grace. The caller reaps the child (`wait`), so no zombie is left.
//!
//! `mware_host::exec` runs a command to its end with a timeout and a line callback that
//! cannot wait; a supervised process needs limits, its own stop signal and grace, and a
//! reader that back-pressures, hence this small module.

use crate::section::{signal, Limits, Process};
use nix::sys::resource::Resource;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::Child;

/// The variable that marks a supervised process (and what it starts, unless it clears
/// its environment) with its owner, the site log's folder of the instance.
pub(crate) const OWNER_VAR: &str = "MWARE_MS_OWNER";

/// Kills every process of this user marked with `owner` (left by a daemon that was
/// killed -9: what left its process group, or escaped its guard); returns their pids.
/// Run before the first start.
pub(crate) fn sweep(owner: &str) -> Vec<i32> {
    let marker = format!("{OWNER_VAR}={owner}");
    let me = std::process::id() as i32;
    let mut killed = vec![];
    let Ok(dir) = std::fs::read_dir("/proc") else { return killed };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(e.path().join("environ")) else { continue };
        if env.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            killed.push(pid);
        }
    }
    killed
}

/// Starts `p` marked with `owner` behind its guard ([`crate::guard`]): the guard (the
/// child the caller waits for, which ends as the program ends), the process group id
/// (the guard's pid) and the program's own pid.
pub(crate) fn spawn(p: &Process, owner: &str) -> std::io::Result<(Child, Pid, Option<u32>)> {
    let program = p.argv.first().cloned().unwrap_or_default();
    let mut cmd = mware_host::exec::group_command(&p.argv, p.working_dir.as_deref());
    cmd.envs(p.env.iter().map(|(k, v)| (k, v.expose()))).env(OWNER_VAR, owner);
    let limits = rlimits(&p.limits);
    let parent = std::process::id() as i32;
    // SAFETY: runs in the forked child before exec; `split` makes raw system calls only,
    // and `limits` was built before the fork (no allocation there).
    unsafe {
        cmd.pre_exec(move || crate::guard::split(parent, &limits));
    }
    let child = cmd.spawn().map_err(|e| std::io::Error::new(e.kind(), format!("cannot start {program:?}: {e}")))?;
    let guard = child.id().unwrap_or(0);
    Ok((child, Pid::from_raw(guard as i32), program_pid(guard)))
}

/// The guard's one child: the program (it has exec'd once `spawn` returned).
fn program_pid(guard: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{guard}/task/{guard}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn rlimits(l: &Limits) -> Vec<(Resource, u64)> {
    const MB: u64 = 1024 * 1024;
    let mut out = vec![];
    let mut add = |r, v: Option<u64>, scale: u64| {
        if let Some(v) = v {
            out.push((r, v.saturating_mul(scale)));
        }
    };
    add(Resource::RLIMIT_NOFILE, l.nofile, 1);
    add(Resource::RLIMIT_AS, l.address_space_mb, MB);
    add(Resource::RLIMIT_CPU, l.cpu_s, 1);
    add(Resource::RLIMIT_NPROC, l.nproc, 1);
    add(Resource::RLIMIT_CORE, l.core_mb, MB);
    out
}

/// Waits for the child. tokio learns of an exit through SIGCHLD, whose handler belongs to
/// the first runtime that registered it; with several runtimes in one process (tests) a
/// notice can be lost, so the exit is also polled every 100 ms.
pub(crate) async fn wait(child: &mut Child) -> std::io::Result<ExitStatus> {
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

/// Stops the group: its stop signal, then SIGKILL after its grace; the exit status.
pub(crate) async fn stop(child: &mut Child, pgid: Pid, p: &Process) -> Option<ExitStatus> {
    let sig = signal(&p.stop_signal).unwrap_or(Signal::SIGTERM);
    let _ = killpg(pgid, sig);
    match tokio::time::timeout(Duration::from_secs(p.stop_grace_s), wait(child)).await {
        Ok(s) => {
            let _ = killpg(pgid, Signal::SIGKILL);
            s.ok()
        }
        Err(_) => {
            let _ = killpg(pgid, Signal::SIGKILL);
            let _ = child.start_kill();
            wait(child).await.ok()
        }
    }
}

/// Kills a process group (SIGKILL) when dropped: whatever a process left in its group
/// ends with it, and a supervisor aborted at the host's stop deadline leaves nothing.
pub(crate) struct GroupGuard(pub Pid);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}
