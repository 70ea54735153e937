//! `mware ssh show-key` and `mware ssh pin` against a real sshd (the testkit's, on
//! loopback): the fingerprint is the one `ssh-keygen -l` prints, nothing but the key
//! exchange reaches the server, a wrong `--fingerprint` writes nothing, pinning is
//! idempotent and refuses a host with another key, a relative `ssh.known_hosts` lands
//! under the working directory, and a bootstrap file finds the stored site's file; the
//! `--help` texts say all that.

mod common;

use mware_testkit::sshd::{throwaway_host_key, Sshd};
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn mware(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin()).args(args).current_dir(cwd).output().expect("run mware");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A one-instance site on the embedded coordinator with `ssh.known_hosts` = `known_hosts`.
fn site_file(dir: &Path, known_hosts: &str) -> String {
    let site = json!({
        "site": "sshcli",
        "coordination": {"backend": "embedded", "path": dir.join("coord.sqlite").display().to_string()},
        "ssh": {"known_hosts": known_hosts},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"},
                     "roles": [{"name": "m1", "roletype": "mware", "iface": "lo", "group": 1, "order": 10}]}]
    });
    let f = dir.join("site.json");
    std::fs::write(&f, site.to_string()).unwrap();
    f.display().to_string()
}

fn no_login_attempts(sshd: &Sshd) {
    let log = sshd.log_text();
    let attempts: Vec<&str> = log.lines().filter(|l| l.contains("password") || l.contains("Accepted") || l.contains("publickey")).collect();
    assert!(attempts.is_empty(), "sshd saw a login attempt:\n{log}");
}

#[test]
fn show_key_prints_what_ssh_keygen_prints_and_sends_nothing_else() {
    let sshd = Sshd::start().expect("sshd");
    let dir = tempfile::tempdir().unwrap();
    let port = sshd.port.to_string();
    let (code, out, err) = mware(dir.path(), &["ssh", "show-key", "127.0.0.1", "--port", &port]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("127.0.0.1 port {port} presents a ssh-ed25519 host key")), "{out}");
    assert!(out.contains(&format!("fingerprint:      {}", sshd.fingerprint)), "{out}");
    assert!(out.contains(&format!("known_hosts line: {}", sshd.known_hosts_line())), "{out}");
    no_login_attempts(&sshd);

    let closed = mware_testkit::free_port().to_string();
    let (code, _, err) = mware(dir.path(), &["ssh", "show-key", "127.0.0.1", "--port", &closed]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("ssh to 127.0.0.1:{closed}: expected an ssh server")), "{err}");
}

#[test]
fn pin_checks_the_fingerprint_and_is_idempotent() {
    let sshd = Sshd::start().expect("sshd");
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("etc").join("known_hosts");
    let site = site_file(dir.path(), kh.to_str().unwrap());
    let port = sshd.port.to_string();
    let (_, other_fp) = throwaway_host_key().unwrap();
    let pin = |extra: &[&str]| {
        let mut args = vec!["ssh", "pin", "--config", &site, "127.0.0.1", "--port", &port];
        args.extend_from_slice(extra);
        mware(dir.path(), &args)
    };

    // The server presents another key than the operator expects: nothing is written.
    let (code, out, err) = pin(&["--fingerprint", &other_fp]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&other_fp) && err.contains(&sshd.fingerprint) && err.contains("nothing written"), "{err}");
    assert!(!kh.exists(), "no file written");
    let (code, _, err) = pin(&["--fingerprint", "AAAA"]);
    assert!(code == 1 && err.contains("expected SHA256:<base64>"), "{err}");

    // The right fingerprint: pinned, and the file holds exactly the known_hosts line.
    let (code, out, err) = pin(&["--fingerprint", &sshd.fingerprint]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("pinned ssh-ed25519 {} for [127.0.0.1]:{port} in {}", sshd.fingerprint, kh.display())), "{out}");
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), format!("{}\n", sshd.known_hosts_line()));
    let (code, out, _) = pin(&[]);
    assert!(code == 0 && out.contains("already pinned") && out.contains("nothing written"), "{out}");
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 1, "idempotent");
    no_login_attempts(&sshd);

    // Another key is pinned for the host: refused, the file unchanged.
    let (other, _) = throwaway_host_key().unwrap();
    std::fs::write(&kh, format!("[127.0.0.1]:{port} {other}\n")).unwrap();
    let (code, _, err) = pin(&[]);
    assert_eq!(code, 1);
    assert!(err.contains("already has another key pinned") && err.contains(&sshd.fingerprint), "{err}");
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), format!("[127.0.0.1]:{port} {other}\n"));
}

#[test]
fn pin_with_a_relative_path_and_from_a_bootstrap_file() {
    let sshd = Sshd::start().expect("sshd");
    let dir = tempfile::tempdir().unwrap();
    let port = sshd.port.to_string();
    let site = site_file(dir.path(), "var/known_hosts");
    let (code, out, err) = mware(dir.path(), &["ssh", "pin", "--config", &site, "127.0.0.1", "--port", &port]);
    assert_eq!(code, 0, "{out}{err}");
    let kh = dir.path().join("var").join("known_hosts");
    assert!(out.contains(&format!("in {}", kh.display())) && out.contains("relative path"), "{out}");
    assert!(err.contains("no --fingerprint given") && err.contains(&sshd.fingerprint), "the operator is told to compare: {err}");
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), format!("{}\n", sshd.known_hosts_line()));

    // A bootstrap file: the known_hosts file is the one of the site stored in the coordinator.
    let stored_kh = dir.path().join("stored_known_hosts");
    site_file(dir.path(), stored_kh.to_str().unwrap());
    let (code, out, err) = mware(dir.path(), &["config", "push", dir.path().join("site.json").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let boot = dir.path().join("boot.json");
    let coord = json!({"backend": "embedded", "path": dir.path().join("coord.sqlite").display().to_string()});
    std::fs::write(&boot, json!({"site": "sshcli", "coordination": coord}).to_string()).unwrap();
    let (code, out, err) = mware(
        dir.path(),
        &["ssh", "pin", "--config", boot.to_str().unwrap(), "127.0.0.1", "--port", &port, "--fingerprint", &sshd.fingerprint],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("in {}", stored_kh.display())), "{out}");
    assert_eq!(std::fs::read_to_string(&stored_kh).unwrap(), format!("{}\n", sshd.known_hosts_line()));
}

#[test]
fn help_explains_the_ssh_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = mware(dir.path(), &["--help"]);
    assert!(code == 0 && out.contains("ssh"), "{out}");
    let (code, out, _) = mware(dir.path(), &["ssh", "pin", "--help"]);
    assert_eq!(code, 0);
    for part in ["ssh.known_hosts", "var/known_hosts", "--fingerprint", "ssh-keygen -lf", "another key"] {
        assert!(out.contains(part), "`mware ssh pin --help` lacks {part:?}: {out}");
    }
    let (code, out, _) = mware(dir.path(), &["ssh", "show-key", "--help"]);
    assert!(code == 0 && out.contains("no password, no command is sent"), "{out}");
}
