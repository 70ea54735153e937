//! sshd for tests: an OpenSSH server on a free loopback port with its own host key,
//! config file and log in a temp dir, into which tests (and mware) log in as the
//! `postgres` OS user with a known test password, as in the seed's example.
//!
//! The server runs in the foreground (`sshd -D`) as a [`Child`], so dropping the
//! [`Sshd`] kills exactly that process by PID. Its host key is exposed (public key,
//! known_hosts line, SHA256 fingerprint as `ssh-keygen` prints it) so tests can pin it;
//! [`throwaway_host_key`] makes another key to pin when a test wants a wrong one.

use crate::proc::{free_port, wait_for_port, Child};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// The OS user tests log in as.
pub const SSH_USER: &str = "postgres";
/// The password [`ensure_postgres_password`] gives the `postgres` OS user.
pub const SSH_PASSWORD: &str = "mware-test-ssh-pw";

static PASSWORD_SET: Mutex<bool> = Mutex::new(false);

/// Gives the `postgres` OS user the test password (`chpasswd`) and makes sure
/// `/run/sshd` exists. Idempotent; safe to call from every test.
pub fn ensure_postgres_password() -> anyhow::Result<()> {
    let mut done = PASSWORD_SET.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return Ok(());
    }
    std::fs::create_dir_all("/run/sshd")?;
    let mut child = Command::new("chpasswd").stdin(std::process::Stdio::piped()).spawn()?;
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().ok_or_else(|| anyhow::anyhow!("chpasswd has no stdin"))?;
        writeln!(stdin, "{SSH_USER}:{SSH_PASSWORD}")?;
    }
    let st = child.wait()?;
    anyhow::ensure!(st.success(), "chpasswd for {SSH_USER} failed: {st}");
    *done = true;
    Ok(())
}

/// A running sshd owned by a test.
pub struct Sshd {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Log file (`-E`).
    pub log: PathBuf,
    /// Its host public key, `ssh-ed25519 AAAA...` (no comment).
    pub host_key: String,
    /// SHA256 fingerprint of the host key as `ssh-keygen -l` prints it (`SHA256:...`).
    pub fingerprint: String,
    /// A second host key (ECDSA P-256) with its fingerprint, when started with
    /// [`Sshd::start_with_ecdsa_too`]: the server then offers both key types.
    pub ecdsa_key: Option<(String, String)>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sshd {
    /// Starts sshd on a free loopback port with one ed25519 host key; waits until it
    /// accepts connections.
    pub fn start() -> anyhow::Result<Sshd> {
        Self::start_with(false)
    }

    /// Like [`Sshd::start`], with an ECDSA host key besides the ed25519 one.
    pub fn start_with_ecdsa_too() -> anyhow::Result<Sshd> {
        Self::start_with(true)
    }

    fn start_with(ecdsa: bool) -> anyhow::Result<Sshd> {
        ensure_postgres_password()?;
        let dir = tempfile::Builder::new().prefix("mware-sshd-").tempdir()?;
        let key = dir.path().join("host_ed25519");
        let (host_key, fingerprint) = keygen(&key, "ed25519")?;
        let mut keys = vec![key];
        let ecdsa_key = if ecdsa {
            let k = dir.path().join("host_ecdsa");
            let pair = keygen(&k, "ecdsa")?;
            keys.push(k);
            Some(pair)
        } else {
            None
        };
        let port = free_port();
        let conf = dir.path().join("sshd_config");
        let log = dir.path().join("sshd.log");
        std::fs::write(&conf, config_text(port, &keys, &dir.path().join("sshd.pid")))?;
        let mut cmd = Command::new("/usr/sbin/sshd");
        cmd.arg("-D").arg("-f").arg(&conf).arg("-E").arg(&log);
        let mut child = Child::spawn("sshd", cmd, &dir.path().join("sshd.out"))?;
        if let Err(e) = wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(20)) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            child.kill9();
            anyhow::bail!("{e}; sshd log: {text}");
        }
        Ok(Sshd { port, log, host_key, fingerprint, ecdsa_key, child, _dir: dir })
    }

    /// The known_hosts line pinning this server's key: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key)
    }

    /// Appends [`Sshd::known_hosts_line`] to the known_hosts file `file` (created with
    /// its folder if missing).
    pub fn pin_in(&self, file: &Path) -> anyhow::Result<()> {
        append_line(file, &self.known_hosts_line())
    }

    /// The sshd PID.
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// The log text so far (for assertions and failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A fresh ed25519 host key that no server uses: `(public key "ssh-ed25519 AAAA...",
/// SHA256 fingerprint)`, to pin when a test wants a server to present another key.
pub fn throwaway_host_key() -> anyhow::Result<(String, String)> {
    let dir = tempfile::Builder::new().prefix("mware-hostkey-").tempdir()?;
    keygen(&dir.path().join("key"), "ed25519")
}

/// Appends `line` to `file`, creating its folder and the file if missing.
pub fn append_line(file: &Path, line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(d) = file.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
    writeln!(f, "{line}")?;
    Ok(())
}

/// Makes a key pair of type `kind` at `key` (and `key.pub`); returns the public key
/// without its comment and its SHA256 fingerprint, both from OpenSSH's own tools.
fn keygen(key: &Path, kind: &str) -> anyhow::Result<(String, String)> {
    let st = Command::new("ssh-keygen").args(["-q", "-t", kind, "-N", "", "-C", "", "-f"]).arg(key).status()?;
    anyhow::ensure!(st.success(), "ssh-keygen failed: {st}");
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    let public = public.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let out = Command::new("ssh-keygen").args(["-l", "-E", "sha256", "-f"]).arg(key.with_extension("pub")).output()?;
    anyhow::ensure!(out.status.success(), "ssh-keygen -l failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let fp = text.split_whitespace().nth(1).filter(|f| f.starts_with("SHA256:"));
    let fp = fp.ok_or_else(|| anyhow::anyhow!("expected a SHA256 fingerprint from ssh-keygen -l, found {text:?}"))?;
    Ok((public, fp.to_string()))
}

fn config_text(port: u16, keys: &[std::path::PathBuf], pid: &Path) -> String {
    let host_keys: String = keys.iter().map(|k| format!("HostKey {}\n", k.display())).collect();
    format!(
        "Port {port}\nListenAddress 127.0.0.1\n{host_keys}PidFile {}\nPasswordAuthentication yes\n\
         KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM yes\nPermitRootLogin no\n\
         AllowUsers {SSH_USER}\nStrictModes no\nLogLevel VERBOSE\nMaxStartups 100\nMaxSessions 50\n",
        pid.display()
    )
}
