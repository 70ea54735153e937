//! The guard between the daemon and a supervised process, so that a kill -9 of the
//! daemon leaves nothing of the process's group behind, grandchildren included (the
//! parent-death signal alone reaches the daemon's direct child only; a shell's
//! `sleep 300 &` would live on).
//!
//! The child that `Command::spawn` forks (the leader of the process group) splits in
//! two before exec: the **program** (which execs, with its limits, an empty signal mask
//! and SIGKILL as its parent-death signal) and the **guard** (the leader itself, which
//! never execs). The guard closes every descriptor it inherited (so the pipes end with
//! the program, `spawn` returns, and no socket of the daemon lives on in it), blocks
//! every signal and waits for them:
//! - its parent-death signal (SIGTERM) after the daemon died (its parent is no longer
//!   the daemon: a signal from a thread of the daemon that merely ended is told apart):
//!   SIGKILL to the whole group, itself included;
//! - SIGCHLD: when the program ended, the guard ends the same way (the same exit code,
//!   or the same signal), so the supervisor sees the program's own end;
//! - any other (the stop signal sent to the group): nothing, the program got it too.
//!
//! Only raw system calls run here (between fork and exec of a multithreaded daemon): no
//! allocation, no lock.

use nix::libc;
use nix::sys::resource::{setrlimit, Resource};
use std::io::Error;

/// Splits the forked child into guard and program; returns (in the program) to exec.
///
/// # Safety
/// Only from a `pre_exec` closure: after fork, before exec, in the forked child.
pub(crate) unsafe fn split(daemon: i32, limits: &[(Resource, u64)]) -> std::io::Result<()> {
    let mut all: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
        return Err(Error::last_os_error());
    }
    // The daemon ended between fork and prctl: the signal will never come.
    if libc::getppid() != daemon {
        return Err(Error::from_raw_os_error(libc::ESRCH));
    }
    let guard = libc::getpid();
    let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize);
    if pid < 0 {
        return Err(Error::last_os_error());
    }
    if pid == 0 {
        return program(guard, limits);
    }
    watch(pid as libc::pid_t, daemon, &all)
}

/// The program's side: no signal blocked, killed when the guard ends, its limits set.
unsafe fn program(guard: i32, limits: &[(Resource, u64)]) -> std::io::Result<()> {
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
        return Err(Error::last_os_error());
    }
    if libc::getppid() != guard {
        return Err(Error::from_raw_os_error(libc::ESRCH));
    }
    for (r, v) in limits {
        setrlimit(*r, *v, *v).map_err(Error::from)?;
    }
    Ok(())
}

/// The guard's side: never returns.
unsafe fn watch(program: libc::pid_t, daemon: i32, all: &libc::sigset_t) -> ! {
    if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
        for fd in 0..65_536 {
            libc::close(fd);
        }
    }
    loop {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let sig = libc::sigwaitinfo(all, &mut info);
        if libc::getppid() != daemon {
            // The daemon is gone: the group goes with it (this guard too).
            libc::kill(0, libc::SIGKILL);
            libc::_exit(137);
        }
        if sig != libc::SIGCHLD {
            continue;
        }
        let mut status = 0;
        if libc::waitpid(program, &mut status, libc::WNOHANG) != program {
            continue;
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            end_by(libc::WTERMSIG(status));
        }
    }
}

/// Ends the guard by `sig`, as the program ended (without a core file of its own).
unsafe fn end_by(sig: libc::c_int) -> ! {
    let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    libc::setrlimit(libc::RLIMIT_CORE, &none);
    libc::signal(sig, libc::SIG_DFL);
    let mut one: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut one);
    libc::sigaddset(&mut one, sig);
    libc::sigprocmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
    libc::kill(libc::getpid(), sig);
    libc::_exit(128 + sig)
}
