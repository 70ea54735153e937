//! A real etcd (`/usr/bin/etcd`, 3.4) for tests: one member on free loopback
//! ports with its own temporary data directory, killed by PID on drop.
//!
//! `stop()` / `restart()` keep the data directory and the ports, so a test can
//! restart etcd under running clients; `kill9()` kills it without a clean stop.

use crate::proc::{free_port, wait_for_port, Child};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A running (or stopped) single-member etcd owned by a test.
pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

impl Etcd {
    /// Starts etcd on free loopback ports with a fresh data directory and waits until it
    /// answers.
    pub fn start() -> anyhow::Result<Etcd> {
        let dir = tempfile::Builder::new().prefix("mware-etcd-").tempdir()?;
        let mut e = Etcd { child: None, dir, client_port: free_port(), peer_port: free_port() };
        e.spawn()?;
        Ok(e)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = Command::new("/usr/bin/etcd");
        cmd.arg("--name")
            .arg("test")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("test={peer}"))
            .arg("--log-level")
            .arg("warn");
        // etcd 3.4 refuses to start on architectures other than amd64 (and arm64 since
        // 3.5) unless told to; amd64 needs nothing.
        if std::env::consts::ARCH != "x86_64" {
            cmd.env("ETCD_UNSUPPORTED_ARCH", std::env::consts::ARCH.replace("aarch64", "arm64"));
        }
        let log = self.dir.path().join("etcd.log");
        self.child = Some(Child::spawn("etcd", cmd, &log)?);
        wait_for_port(&format!("127.0.0.1:{}", self.client_port), Duration::from_secs(20))?;
        self.wait_healthy(Duration::from_secs(20))
    }

    /// Waits until etcd serves `/health` with `"health":"true"`.
    fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        use std::io::{Read, Write};
        let deadline = std::time::Instant::now() + timeout;
        let addr = format!("127.0.0.1:{}", self.client_port);
        while std::time::Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if !c.is_running() {
                    anyhow::bail!("etcd exited during start; see {}", self.log_path().display());
                }
            }
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n");
                let mut body = String::new();
                if s.write_all(req.as_bytes()).is_ok() && s.read_to_string(&mut body).is_ok()
                    && body.contains("\"health\":\"true\"")
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("etcd did not report healthy within {timeout:?}; see {}", self.log_path().display())
    }

    /// The client URL, e.g. `http://127.0.0.1:23791`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The client port.
    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    /// The data directory (kept across `stop`/`restart`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// etcd's own log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// The PID of the running etcd, if running.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.pid())
    }

    /// Stops etcd cleanly (SIGTERM, then SIGKILL after 10 s), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.signal(libc::SIGTERM);
            if c.wait_timeout(Duration::from_secs(10)).is_none() {
                c.kill9();
            }
        }
    }

    /// Kills etcd with SIGKILL, keeping its data.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill9();
        }
    }

    /// Starts etcd again on the same ports with the same data (stops it first if running).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill9();
    }
}
