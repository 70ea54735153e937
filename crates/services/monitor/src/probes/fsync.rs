//! `fsync`: the synchronisation of a folder between servers works. A canary file
//! (`.mware-canary-<probe>`, one line naming the probe, a random nonce and the time) is
//! written into the local folder (`target`, atomically: a temporary name, then a
//! rename), and must appear with the same content in every other copy before the
//! timeout: `copies` are paths (the other servers' folders as this one reaches them),
//! `ssh_copies` are read over SSH (`cat` of the canary, its path shell-quoted; host keys
//! checked against the site's known_hosts), one login per check.

use mware_ssh::{sh_quote, Auth, HostKeyPolicy, Session};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the copies are looked at.
const POLL: Duration = Duration::from_millis(100);

/// A copy on another server.
struct Remote {
    ssh: mware_ssh::Target,
    path: String,
}

impl Remote {
    fn label(&self) -> String {
        format!("{}@{}:{}:{}", self.ssh.user, self.ssh.host, self.ssh.port, self.path)
    }
}

/// An `fsync` probe.
pub struct Fsync {
    file: String,
    target: PathBuf,
    copies: Vec<PathBuf>,
    remote: Vec<Remote>,
}

/// One copy to look at: a path, or an SSH session with the copy's remote folder.
enum Copy<'a> {
    Path(&'a Path),
    Ssh(&'a Remote, &'a Session),
}

impl Copy<'_> {
    fn label(&self) -> String {
        match self {
            Copy::Path(p) => p.display().to_string(),
            Copy::Ssh(r, _) => r.label(),
        }
    }
}

impl Fsync {
    /// A probe named `name` of the folder `target` and its copies.
    pub fn new(name: &str, target: &str, copies: &[String], ssh_copies: &[crate::section::SshCopy], host_keys: &HostKeyPolicy) -> Fsync {
        let remote = ssh_copies
            .iter()
            .map(|c| Remote {
                ssh: mware_ssh::Target {
                    host: c.host.clone(),
                    port: c.port,
                    user: c.user.clone(),
                    auth: match (&c.password, &c.key_file) {
                        (Some(p), _) => Auth::Password(p.clone()),
                        (None, Some(k)) => Auth::KeyFile(k.clone()),
                        (None, None) => Auth::Password(Default::default()),
                    },
                    host_keys: host_keys.clone(),
                },
                path: c.path.clone(),
            })
            .collect();
        Fsync { file: format!(".mware-canary-{name}"), target: target.into(), copies: copies.iter().map(PathBuf::from).collect(), remote }
    }

    /// `None` when `copy` holds `content`, else what it holds instead, in words.
    async fn look(&self, copy: &Copy<'_>, content: &str, left: Duration) -> Option<String> {
        let found = match copy {
            Copy::Path(c) => match tokio::fs::read_to_string(c.join(&self.file)).await {
                Ok(t) => Ok(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(None),
                Err(e) => Err(Some(e.to_string())),
            },
            Copy::Ssh(r, s) => {
                let cmd = format!("cat -- {}", sh_quote(&format!("{}/{}", r.path.trim_end_matches('/'), self.file)));
                match s.run(&cmd, None, left).await {
                    Ok(o) if o.code == 0 => Ok(o.stdout),
                    Ok(o) if o.stderr.contains("No such file") => Err(None),
                    Ok(o) => Err(Some(o.detail())),
                    Err(e) => Err(Some(e.to_string())),
                }
            }
        };
        match found {
            Ok(t) if t == content => None,
            Ok(_) => Some(format!("{} has an older canary", copy.label())),
            Err(None) => Some(format!("{} has no canary", copy.label())),
            Err(Some(e)) => Some(format!("{}: cannot read the canary: {e}", copy.label())),
        }
    }

    /// Writes a new canary and waits for it in every copy, until shortly before `timeout`.
    pub async fn check(&self, timeout: Duration) -> Result<String, String> {
        let started = Instant::now();
        let deadline = started + timeout.saturating_sub(Duration::from_millis(50));
        let mut sessions = vec![];
        for r in &self.remote {
            match tokio::time::timeout_at(deadline.into(), r.ssh.connect()).await {
                Ok(Ok(s)) => sessions.push(s),
                Ok(Err(e)) => return Err(format!("{}: {e}", r.label())),
                Err(_) => return Err(format!("{}: no SSH login within {} ms", r.label(), timeout.as_millis())),
            }
        }
        let r = self.wait(started, deadline, &sessions).await;
        for s in sessions {
            s.close().await;
        }
        r
    }

    async fn wait(&self, started: Instant, deadline: Instant, sessions: &[Session]) -> Result<String, String> {
        let content = format!("mware canary {} {:016x} {}\n", self.file, rand::random::<u64>(), mware_coord::now_ms());
        let tmp = self.target.join(format!("{}.tmp", self.file));
        let path = self.target.join(&self.file);
        let cannot = |e: std::io::Error| format!("cannot write the canary into {}: {e}", self.target.display());
        tokio::fs::write(&tmp, &content).await.map_err(cannot)?;
        tokio::fs::rename(&tmp, &path).await.map_err(cannot)?;
        let all: Vec<Copy> =
            self.copies.iter().map(|c| Copy::Path(c)).chain(self.remote.iter().zip(sessions).map(|(r, s)| Copy::Ssh(r, s))).collect();
        let total = all.len();
        let mut waiting = all;
        loop {
            let mut still = vec![];
            let mut why = vec![];
            for c in waiting {
                let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
                if let Some(w) = self.look(&c, &content, left).await {
                    why.push(w);
                    still.push(c);
                }
            }
            if still.is_empty() {
                return Ok(format!(
                    "the canary written into {} appeared in {total} cop{} within {} ms",
                    self.target.display(),
                    if total == 1 { "y" } else { "ies" },
                    started.elapsed().as_millis()
                ));
            }
            if Instant::now() + POLL > deadline {
                return Err(format!(
                    "the canary written into {} did not reach every copy within {} ms: {}",
                    self.target.display(),
                    started.elapsed().as_millis(),
                    why.join("; ")
                ));
            }
            waiting = still;
            tokio::time::sleep(POLL).await;
        }
    }
}
