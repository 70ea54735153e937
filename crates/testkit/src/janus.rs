//! Janus 1.1 (Debian's `janus`) as the conference mixer of a test: AudioBridge and the
//! HTTP transport only, configured from the files shipped in `examples/janus/` with the
//! test's ports and folder filled in. Stopped by PID when the guard drops.

use crate::proc::{free_port, free_udp_range, Child};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Ports of each RTP range Janus gets.
const SPAN: u16 = 40;

/// A running Janus.
pub struct Janus {
    child: Child,
    dir: PathBuf,
    /// Its HTTP API port (`http://127.0.0.1:{port}/janus`).
    pub http_port: u16,
}

impl Janus {
    /// Starts Janus in a folder of its own under `dir` and waits until its API answers.
    pub fn start(dir: &Path) -> anyhow::Result<Janus> {
        let dir = dir.join("janus");
        std::fs::create_dir_all(&dir)?;
        let http_port = free_port();
        let (rtp, ab) = (free_udp_range(SPAN), free_udp_range(SPAN));
        let d = dir.display().to_string();
        let vals = [
            ("{DIR}", d),
            ("{IP}", "127.0.0.1".to_string()),
            ("{HTTP_PORT}", http_port.to_string()),
            ("{RTP_FIRST}", rtp.0.to_string()),
            ("{RTP_LAST}", rtp.1.to_string()),
            ("{AB_FIRST}", ab.0.to_string()),
            ("{AB_LAST}", ab.1.to_string()),
        ];
        for f in ["janus.jcfg", "janus.transport.http.jcfg", "janus.plugin.audiobridge.jcfg"] {
            let text = std::fs::read_to_string(examples().join(f)).with_context(|| format!("examples/janus/{f}"))?;
            std::fs::write(dir.join(f), vals.iter().fold(text, |t, (k, v)| t.replace(k, v)))?;
        }
        let mut cmd = Command::new("janus");
        cmd.arg("-F").arg(&dir).arg("-C").arg(dir.join("janus.jcfg")).arg("--disable-colors");
        let child = Child::spawn("janus", cmd, &dir.join("janus.log"))?;
        let j = Janus { child, dir, http_port };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !j.log().contains("JANUS AudioBridge plugin initialized") || !j.log().contains("HTTP webserver started") {
            if Instant::now() > deadline {
                bail!("janus did not start within 15 s:\n{}", j.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(j)
    }

    /// The API's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/janus", self.http_port)
    }

    /// What Janus printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("janus.log")).unwrap_or_default()
    }
}

/// `examples/janus`: the mixer's configuration as shipped, with placeholders.
fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/janus")
}

impl Drop for Janus {
    fn drop(&mut self) {
        self.child.kill9();
    }
}
