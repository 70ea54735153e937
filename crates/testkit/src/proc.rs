//! Child processes owned by a test: killed by PID (SIGKILL, then reaped) on drop,
//! plus helpers for free loopback ports.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A process started by a test. Dropping it kills it (SIGKILL) and reaps it.
pub struct Child {
    inner: Option<std::process::Child>,
    /// Human name for messages.
    pub name: String,
}

impl Child {
    /// Starts `cmd` with stdout/stderr appended to `log` (a file path).
    pub fn spawn(name: &str, mut cmd: Command, log: &std::path::Path) -> anyhow::Result<Child> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let inner = cmd.spawn().map_err(|e| anyhow::anyhow!("cannot start {name}: {e}"))?;
        Ok(Child { inner: Some(inner), name: name.into() })
    }
    /// The PID.
    pub fn pid(&self) -> i32 {
        self.inner.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }
    /// Sends a signal (e.g. `libc::SIGSTOP`, `libc::SIGCONT`, `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.inner {
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }
    /// kill -9 and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.inner.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    /// Waits for the process to exit by itself, up to `timeout`; returns its exit code.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(c) = self.inner.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.inner = None;
                    return Some(st.code().unwrap_or(-1));
                }
            } else {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        match self.inner.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(c) = &self.inner {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGCONT);
            }
        }
        self.kill9();
    }
}

/// A free TCP port on 127.0.0.1 (bind to 0, read, release).
///
/// Never the same port twice in one test process: the kernel may hand a just-released
/// port out again, and two calls in a row then gave two instances one port.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no port not given before in 1000 tries")
}

/// Waits until `addr` accepts TCP connections, up to `timeout`.
pub fn wait_for_port(addr: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr.parse()?, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("{addr} did not accept connections within {timeout:?}")
}

/// `span` consecutive UDP ports on 127.0.0.1 free at the moment: (first, last).
pub fn free_udp_range(span: u16) -> (u16, u16) {
    loop {
        // Even first port: RTP stacks (baresip's among them) round an odd start down to
        // the even port below it, which would fall outside the range handed out.
        let base = free_port() & !1;
        if base > 1024 && base < u16::MAX - span && (base..base + span).all(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()) {
            return (base, base + span - 1);
        }
    }
}
