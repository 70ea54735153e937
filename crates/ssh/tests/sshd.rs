//! mware-ssh against a real OpenSSH server (the testkit's sshd on loopback, login as
//! `postgres` with a password).
//!
//! Index:
//! - `pinned_key_runs_commands`: the right pinned key → commands run, stdin secret and
//!   exit code come through; our fingerprint is the one `ssh-keygen -l` prints.
//! - `wrong_pinned_key_is_refused_before_anything_is_sent`: both fingerprints named, the
//!   command that would create a file did not run, sshd saw no login attempt.
//! - `unknown_host_is_refused_with_how_to_pin`: no entry and no trust on first use.
//! - `trust_on_first_use_learns_the_key_then_pins_it`: learned into the file; a second
//!   connection with trust on first use off works from the file.
//! - `the_pinned_key_type_is_asked_for_first`: a server with an ed25519 and an ECDSA key
//!   is accepted with either pinned alone (it is asked for the pinned type).
//! - `streaming_exec_round_trips_megabytes_through_cat`: 8 MB through `cat`, and into a
//!   remote file with `cat > file` (the backup's way), exit status and stderr at the end.

use mware_config::Secret;
use mware_ssh::{command_line, Auth, Exec, HostKeyPolicy, SshError, Target};
use mware_testkit::sshd::{throwaway_host_key, Sshd, SSH_PASSWORD, SSH_USER};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(30);

/// A temp dir the `postgres` login user may write into.
fn shared_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

fn target(sshd: &Sshd, known_hosts: &Path, tofu: bool) -> Target {
    Target {
        host: "127.0.0.1".into(),
        port: sshd.port,
        user: SSH_USER.into(),
        auth: Auth::Password(Secret::new(SSH_PASSWORD)),
        host_keys: HostKeyPolicy { known_hosts: known_hosts.to_path_buf(), trust_on_first_use: tofu },
    }
}

/// Lines of the sshd log that show a login attempt (any method, accepted or not).
fn login_attempts(sshd: &Sshd) -> Vec<String> {
    sshd.log_text()
        .lines()
        .filter(|l| ["password", "Accepted", "Failed", "publickey", "session opened"].iter().any(|w| l.contains(w)))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn pinned_key_runs_commands() {
    let sshd = Sshd::start().expect("sshd");
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    sshd.pin_in(&kh).unwrap();
    let t = target(&sshd, &kh, false);

    let cmd = command_line(&["sh", "-c", "echo out; echo err >&2; exit 3"]);
    let out = t.run(&cmd, None, LIMIT).await.expect("runs with the pinned key");
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (3, "out\n", "err\n"));

    // A secret goes on stdin and comes back unchanged, never on the command line.
    let secret = Secret::new("pw with 'quotes' and $(spaces)");
    let cmd = command_line(&["sh", "-c", "IFS= read -r x; printf %s \"$x\""]);
    let out = t.run(&cmd, Some(&secret), LIMIT).await.unwrap();
    assert_eq!(out.stdout, secret.expose());

    // Two commands side by side on one session.
    let s = t.connect().await.unwrap();
    let (a, b) = tokio::join!(s.run("echo a", None, LIMIT), s.run("echo b", None, LIMIT));
    assert_eq!((a.unwrap().stdout, b.unwrap().stdout), ("a\n".to_string(), "b\n".to_string()));
    s.close().await;

    let key = mware_ssh::fetch_host_key("127.0.0.1", sshd.port, None).await.unwrap();
    assert_eq!(key.fingerprint(), sshd.fingerprint, "the fingerprint OpenSSH prints");
    assert_eq!(key.known_hosts_line("127.0.0.1", sshd.port), sshd.known_hosts_line());
}

#[tokio::test]
async fn wrong_pinned_key_is_refused_before_anything_is_sent() {
    let sshd = Sshd::start().expect("sshd");
    let dir = shared_dir();
    let kh = dir.path().join("known_hosts");
    let (other, other_fp) = throwaway_host_key().unwrap();
    std::fs::write(&kh, format!("[127.0.0.1]:{} {other}\n", sshd.port)).unwrap();
    let marker = dir.path().join("command-ran");
    let cmd = command_line(&["touch", marker.to_str().unwrap()]);

    let e = target(&sshd, &kh, false).run(&cmd, None, LIMIT).await.expect_err("a wrong key is refused");
    let text = e.to_string();
    assert!(matches!(e, SshError::HostKeyMismatch { .. }) && e.is_host_key_refusal(), "{e:?}");
    assert!(text.contains(&format!("postgres@127.0.0.1:{}", sshd.port)), "names the server: {text}");
    assert!(text.contains(&other_fp) && text.contains(&sshd.fingerprint), "names both fingerprints: {text}");
    assert!(!text.contains(SSH_PASSWORD), "{text}");
    // Trust on first use never overrides a pinned key.
    let e = target(&sshd, &kh, true).run(&cmd, None, LIMIT).await.expect_err("refused with tofu too");
    assert!(matches!(e, SshError::HostKeyMismatch { .. }), "{e}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists(), "the command did not run");
    assert_eq!(login_attempts(&sshd), Vec::<String>::new(), "sshd saw no login attempt:\n{}", sshd.log_text());
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 1, "the file is unchanged");

    // Control: with the right key the same command runs and sshd logs the login.
    sshd.pin_in(&dir.path().join("right")).unwrap();
    let out = target(&sshd, &dir.path().join("right"), false).run(&cmd, None, LIMIT).await.unwrap();
    assert!(out.code == 0 && marker.exists(), "{out:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(login_attempts(&sshd).iter().any(|l| l.contains("Accepted password for postgres")), "{}", sshd.log_text());
}

#[tokio::test]
async fn unknown_host_is_refused_with_how_to_pin() {
    let sshd = Sshd::start().expect("sshd");
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let e = target(&sshd, &kh, false).run("true", None, LIMIT).await.expect_err("unknown host refused");
    let text = e.to_string();
    assert!(matches!(e, SshError::HostKeyUnknown { .. }), "{e:?}");
    for part in [&format!("[127.0.0.1]:{}", sshd.port), &sshd.fingerprint, "mware ssh pin", "ssh-keyscan", "trust_on_first_use"] {
        assert!(text.contains(part), "expected {part:?} in: {text}");
    }
    assert!(!kh.exists(), "nothing written without trust on first use");
    assert_eq!(login_attempts(&sshd), Vec::<String>::new(), "{}", sshd.log_text());
}

#[tokio::test]
async fn trust_on_first_use_learns_the_key_then_pins_it() {
    let sshd = Sshd::start().expect("sshd");
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("var").join("known_hosts");
    let out = target(&sshd, &kh, true).run("echo first", None, LIMIT).await.expect("learned on first use");
    assert_eq!(out.stdout, "first\n");
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), format!("{}\n", sshd.known_hosts_line()));
    let out = target(&sshd, &kh, false).run("echo second", None, LIMIT).await.expect("pinned now");
    assert_eq!(out.stdout, "second\n");
    target(&sshd, &kh, true).run("true", None, LIMIT).await.unwrap();
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 1, "learned once");
}

#[tokio::test]
async fn the_pinned_key_type_is_asked_for_first() {
    let sshd = Sshd::start_with_ecdsa_too().expect("sshd");
    let (ecdsa, ecdsa_fp) = sshd.ecdsa_key.clone().expect("an ecdsa key");
    let dir = tempfile::tempdir().unwrap();
    let only_ecdsa = dir.path().join("ecdsa");
    std::fs::write(&only_ecdsa, format!("[127.0.0.1]:{} {ecdsa}\n", sshd.port)).unwrap();
    let t = target(&sshd, &only_ecdsa, false);
    let key = t.check_host_key().await.expect("the ecdsa key is asked for and accepted");
    assert_eq!(key.fingerprint(), ecdsa_fp);
    assert_eq!(t.run("echo ok", None, LIMIT).await.unwrap().stdout, "ok\n");
    let only_ed25519 = dir.path().join("ed25519");
    sshd.pin_in(&only_ed25519).unwrap();
    let key = target(&sshd, &only_ed25519, false).check_host_key().await.unwrap();
    assert_eq!(key.fingerprint(), sshd.fingerprint);
    // `mware ssh pin` fetches the key the same way: the ECDSA key counts as pinned.
    let p = HostKeyPolicy { known_hosts: only_ecdsa.clone(), trust_on_first_use: false };
    let fetched = mware_ssh::fetch_host_key("127.0.0.1", sshd.port, Some(&p)).await.unwrap();
    assert_eq!(mware_ssh::pin(&only_ecdsa, "127.0.0.1", sshd.port, &fetched).unwrap(), mware_ssh::Pinned::AlreadyPinned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_exec_round_trips_megabytes_through_cat() {
    let sshd = Sshd::start().expect("sshd");
    let dir = shared_dir();
    let kh = dir.path().join("known_hosts");
    sshd.pin_in(&kh).unwrap();
    let session = target(&sshd, &kh, false).connect().await.unwrap();
    let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();

    let started = Instant::now();
    let Exec { mut stdin, mut stdout, exit } = session.exec("cat").await.unwrap();
    let write = async {
        for chunk in data.chunks(100_000) {
            stdin.write_all(chunk).await?;
        }
        stdin.shutdown().await
    };
    let mut back = Vec::new();
    let (w, r) = tokio::time::timeout(LIMIT, async { tokio::join!(write, stdout.read_to_end(&mut back)) }).await.expect("in time");
    w.unwrap();
    r.unwrap();
    let exit = exit.wait().await.unwrap();
    let took = started.elapsed();
    assert!(exit.success(), "{}", exit.describe());
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the bytes came back unchanged");
    println!("8 MiB through remote cat and back in {} ms", took.as_millis());

    // The backup's way: stream into `cat > file` on the server, nothing read back.
    let file = dir.path().join("upload.bin");
    let cmd = command_line(&["sh", "-c", "cat > \"$1\"", "sh", file.to_str().unwrap()]);
    let started = Instant::now();
    let Exec { mut stdin, stdout, exit } = session.exec(&cmd).await.unwrap();
    drop(stdout);
    stdin.write_all(&data).await.unwrap();
    stdin.shutdown().await.unwrap();
    let exit = tokio::time::timeout(LIMIT, exit.wait()).await.unwrap().unwrap();
    assert!(exit.success(), "{}", exit.describe());
    println!("8 MiB into a remote `cat > file` in {} ms", started.elapsed().as_millis());
    assert!(std::fs::read(&file).unwrap() == data, "the remote file holds the stream");

    // A command that stops reading early: our writes fail instead of waiting forever.
    let Exec { mut stdin, stdout, exit } = session.exec("head -c 1000 >/dev/null").await.unwrap();
    drop(stdout);
    let w = tokio::time::timeout(LIMIT, stdin.write_all(&data)).await.expect("the writer does not hang");
    assert_eq!(w.expect_err("the command stopped reading").kind(), std::io::ErrorKind::BrokenPipe);
    assert!(exit.wait().await.unwrap().success());

    // A failing command: its exit code and stderr tail at the end.
    let Exec { stdout, exit, .. } = session.exec("echo oops >&2; exit 7").await.unwrap();
    drop(stdout);
    let exit = exit.wait().await.unwrap();
    assert_eq!(exit.code, Some(7));
    assert_eq!(exit.describe(), "exit code 7: oops");
    session.close().await;
}
