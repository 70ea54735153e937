//! `fsync`: the synchronisation of a folder between servers works. A canary file
//! (`.mware-canary-<probe>`, one line naming the probe, a random nonce and the time) is
//! written into the local folder (`target`, atomically: a temporary name, then a
//! rename), and must appear with the same content in every other copy (`copies`,
//! paths: the other servers' folders as this one reaches them) before the timeout.
//! Reaching copies over SSH is not done yet.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the copies are looked at.
const POLL: Duration = Duration::from_millis(100);

/// An `fsync` probe.
pub struct Fsync {
    file: String,
    target: PathBuf,
    copies: Vec<PathBuf>,
}

impl Fsync {
    /// A probe named `name` of the folder `target` and its `copies`.
    pub fn new(name: &str, target: &str, copies: &[String]) -> Fsync {
        Fsync {
            file: format!(".mware-canary-{name}"),
            target: target.into(),
            copies: copies.iter().map(PathBuf::from).collect(),
        }
    }

    /// Writes a new canary and waits for it in every copy, until shortly before `timeout`.
    pub async fn check(&self, timeout: Duration) -> Result<String, String> {
        let started = Instant::now();
        let deadline = started + timeout.saturating_sub(Duration::from_millis(50));
        let content = format!(
            "mware canary {} {:016x} {}\n",
            self.file,
            rand::random::<u64>(),
            mware_coord::now_ms()
        );
        let tmp = self.target.join(format!("{}.tmp", self.file));
        let path = self.target.join(&self.file);
        tokio::fs::write(&tmp, &content).await.map_err(|e| {
            format!(
                "cannot write the canary into {}: {e}",
                self.target.display()
            )
        })?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| {
            format!(
                "cannot write the canary into {}: {e}",
                self.target.display()
            )
        })?;
        let mut waiting: Vec<&Path> = self.copies.iter().map(PathBuf::as_path).collect();
        loop {
            let mut still = vec![];
            let mut why = vec![];
            for c in waiting {
                match tokio::fs::read_to_string(c.join(&self.file)).await {
                    Ok(t) if t == content => {}
                    Ok(_) => {
                        still.push(c);
                        why.push(format!("{} has an older canary", c.display()));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        still.push(c);
                        why.push(format!("{} has no canary", c.display()));
                    }
                    Err(e) => {
                        still.push(c);
                        why.push(format!("{}: cannot read the canary: {e}", c.display()));
                    }
                }
            }
            if still.is_empty() {
                return Ok(format!(
                    "the canary written into {} appeared in {} cop{} within {} ms",
                    self.target.display(),
                    self.copies.len(),
                    if self.copies.len() == 1 { "y" } else { "ies" },
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
