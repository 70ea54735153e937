//! One command in its own process group, against real processes: exit codes, output
//! tails and every line to the callback, env and working directory, a program that does
//! not exist, and the end of the whole group on a timeout or a kill request (a child it
//! left running in the background dies with it, also one that ignores SIGTERM).

use mware_host::exec::{run, Ending, OnLine, Spec, Stream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn sh(script: &str, timeout: Duration) -> Spec {
    Spec { argv: vec!["/bin/sh".into(), "-c".into(), script.into()], env: vec![], working_dir: None, timeout, tail_bytes: 4096 }
}

type Lines = Arc<Mutex<Vec<(Stream, String)>>>;

fn lines() -> (OnLine, Lines) {
    let got = Arc::new(Mutex::new(vec![]));
    let g = got.clone();
    (Arc::new(move |s, l: &str| g.lock().unwrap().push((s, l.to_string()))), got)
}

/// True while `pid` is a live process (a zombie waiting for its reaper counts as dead).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

fn wait_pidfile(p: &std::path::Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(t) = std::fs::read_to_string(p) {
            if let Ok(pid) = t.trim().parse() {
                return pid;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no pid in {}", p.display());
}

#[tokio::test]
async fn exit_code_tails_and_every_line() {
    let (cb, got) = lines();
    let f = run(&sh("echo out1; echo err1 >&2; echo out2; exit 3", Duration::from_secs(10)), &CancellationToken::new(), cb).await.unwrap();
    assert_eq!((f.ending, f.exit_code, f.signal), (Ending::Exited, Some(3), None));
    assert!(!f.success());
    assert_eq!(f.stdout_tail, "out1\nout2\n");
    assert_eq!(f.stderr_tail, "err1\n");
    assert_eq!(f.describe(Duration::from_secs(10)), "exited with 3");
    let got = got.lock().unwrap().clone();
    assert!(got.contains(&(Stream::Stdout, "out2".into())) && got.contains(&(Stream::Stderr, "err1".into())), "{got:?}");
}

#[tokio::test]
async fn the_tail_keeps_the_last_bytes_and_the_callback_gets_everything() {
    let (cb, got) = lines();
    let f =
        run(&sh("i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done", Duration::from_secs(20)), &CancellationToken::new(), cb)
            .await
            .unwrap();
    assert!(f.success());
    assert!(f.stdout_tail.len() <= 4096 && f.stdout_tail.len() > 4000, "{}", f.stdout_tail.len());
    assert!(f.stdout_tail.ends_with("line-1999\n"));
    assert_eq!(got.lock().unwrap().len(), 2000);
}

#[tokio::test]
async fn env_and_working_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = sh("echo \"$TASK_SECRET\"; pwd", Duration::from_secs(10));
    spec.env = vec![("TASK_SECRET".into(), "s3cr3t".into())];
    spec.working_dir = Some(dir.path().display().to_string());
    let (cb, _) = lines();
    let f = run(&spec, &CancellationToken::new(), cb).await.unwrap();
    let real = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(f.stdout_tail, format!("s3cr3t\n{}\n", real.display()));
}

#[tokio::test]
async fn a_missing_program_is_an_error_naming_it() {
    let spec =
        Spec { argv: vec!["/nonexistent/job".into()], env: vec![], working_dir: None, timeout: Duration::from_secs(1), tail_bytes: 10 };
    let (cb, _) = lines();
    let e = run(&spec, &CancellationToken::new(), cb).await.unwrap_err();
    assert!(e.to_string().starts_with("cannot start \"/nonexistent/job\""), "{e}");
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("bg.pid");
    // A background grandchild that would outlive the shell, and a foreground sleep.
    let script = format!("sleep 300 & echo $! > {}; echo started; sleep 300", pidfile.display());
    let (cb, _) = lines();
    let t0 = Instant::now();
    let f = run(&sh(&script, Duration::from_millis(800)), &CancellationToken::new(), cb).await.unwrap();
    assert_eq!(f.ending, Ending::TimedOut);
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_eq!(f.signal, Some(15), "{f:?}");
    assert!(f.describe(Duration::from_millis(800)).starts_with("timed out after 0.8 s; its process group was killed"));
    let bg = wait_pidfile(&pidfile);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!alive(bg), "the background child {bg} of the timed-out run still runs");
    assert_eq!(f.stdout_tail, "started\n");
}

#[tokio::test]
async fn a_group_that_ignores_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("bg.pid");
    let script = format!("trap '' TERM; sh -c 'trap \"\" TERM; sleep 300' & echo $! > {}; sleep 300", pidfile.display());
    let kill = CancellationToken::new();
    let k = kill.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        k.cancel();
    });
    let (cb, _) = lines();
    let t0 = Instant::now();
    let f = run(&sh(&script, Duration::from_secs(60)), &kill, cb).await.unwrap();
    assert_eq!(f.ending, Ending::Killed);
    let took = t0.elapsed();
    assert!(took >= mware_host::exec::KILL_AFTER && took < mware_host::exec::KILL_AFTER + Duration::from_secs(3), "{took:?}");
    assert_eq!(f.signal, Some(9), "{f:?}");
    let bg = wait_pidfile(&pidfile);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!alive(bg), "the child {bg} that ignored SIGTERM still runs");
}

#[tokio::test]
async fn what_a_finished_command_left_behind_is_ended() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("bg.pid");
    let script = format!("sleep 300 >/dev/null 2>&1 & echo $! > {}; exit 0", pidfile.display());
    let (cb, _) = lines();
    let f = run(&sh(&script, Duration::from_secs(10)), &CancellationToken::new(), cb).await.unwrap();
    assert!(f.success(), "{f:?}");
    let bg = wait_pidfile(&pidfile);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!alive(bg), "the background child {bg} outlived its run");
}
