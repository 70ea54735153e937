//! The SIP side of a test site: Kamailio (registrar and proxy, `examples/kamailio`) and
//! SIPp phones that REGISTER and then answer as a UAS scenario says. Each is a process
//! of the test, stopped by PID when its guard drops.

use crate::proc::{free_port, Child};
use anyhow::{anyhow, bail, Context};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A SIPp scenario shared by the SIP tests (`crates/testkit/sipp/`): `register.xml` (a
/// phone's REGISTER), `uac.xml` (a caller through the proxy).
pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sipp").join(name)
}

/// A free port on 127.0.0.1 for both UDP and TCP (SIP listens on both).
pub fn free_sip_port() -> u16 {
    loop {
        let p = free_port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A Kamailio started by the test, in the foreground (`-DD -E`), on loopback ports of
/// its own: SIP on UDP and TCP `sip_port`, JSON-RPC over HTTP on `http_port`.
pub struct Kamailio {
    child: Child,
    /// SIP port (UDP and TCP).
    pub sip_port: u16,
    /// JSON-RPC port (`http://127.0.0.1:{http_port}/RPC`).
    pub http_port: u16,
}

impl Kamailio {
    /// Starts `/usr/sbin/kamailio -f cfg` with `defines` (`-A` values) in `dir`, and
    /// waits until its JSON-RPC answers.
    pub fn start(cfg: &Path, dir: &Path, defines: &[&str]) -> anyhow::Result<Kamailio> {
        Kamailio::launch(cfg, dir, defines, free_sip_port(), free_port(), "kamailio.log", &[])
    }

    /// [`Kamailio::start`] on given ports (a restart on the ports of the one before, or
    /// edge proxies whose addresses the test must know first).
    /// Its log is `kamailio-<sip_port>.log` in `dir`.
    pub fn start_on(cfg: &Path, dir: &Path, defines: &[&str], sip_port: u16, http_port: u16) -> anyhow::Result<Kamailio> {
        Kamailio::launch(cfg, dir, defines, sip_port, http_port, &format!("kamailio-{sip_port}.log"), &[])
    }

    /// [`Kamailio::start_on`] with more sockets (`-l` values such as
    /// `tcp:127.0.0.1:8080` for a WebSocket listener, or `tls:127.0.0.1:5061`).
    pub fn start_listening(
        cfg: &Path,
        dir: &Path,
        defines: &[&str],
        sip_port: u16,
        http_port: u16,
        listen: &[String],
    ) -> anyhow::Result<Kamailio> {
        Kamailio::launch(cfg, dir, defines, sip_port, http_port, &format!("kamailio-{sip_port}.log"), listen)
    }

    /// Kamailio with `presence_cfg` (`examples/kamailio/presence.cfg`): the registrar
    /// of another site's `domain` that serves the dialog event package (RFC 4235) of
    /// its users, its presence tables in db_text files copied into `dir/presence-db`.
    pub fn start_presence(presence_cfg: &Path, dir: &Path, domain: &str) -> anyhow::Result<Kamailio> {
        let db = dir.join("presence-db");
        std::fs::create_dir_all(&db)?;
        for t in ["version", "presentity", "active_watchers", "watchers", "pua"] {
            std::fs::copy(Path::new("/usr/share/kamailio/dbtext/kamailio").join(t), db.join(t))
                .with_context(|| format!("db_text table {t} (Debian's kamailio ships /usr/share/kamailio/dbtext)"))?;
        }
        let (sip_port, http_port) = (free_sip_port(), free_port());
        let defines = [
            format!("PRESENCE_SERVER=\"sip:127.0.0.1:{sip_port}\""),
            format!("DBURL=\"text://{}\"", db.display()),
            format!("DOMAIN=\"{domain}\""),
        ];
        let defines: Vec<&str> = defines.iter().map(String::as_str).collect();
        Kamailio::start_on(presence_cfg, dir, &defines, sip_port, http_port)
    }

    fn launch(
        cfg: &Path,
        dir: &Path,
        defines: &[&str],
        sip_port: u16,
        http_port: u16,
        log: &str,
        listen: &[String],
    ) -> anyhow::Result<Kamailio> {
        let mut cmd = Command::new("/usr/sbin/kamailio");
        // A process group of its own, so that `kill9` reaches the workers too.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        // 256 MB of shared memory: at a few thousand calls per second the default 64 MB
        // runs out (transactions wait 5 s after their end).
        cmd.arg("-f").arg(cfg).args(["-DD", "-E", "-m", "256", "-w"]).arg(dir);
        cmd.arg("-l").arg(format!("udp:127.0.0.1:{sip_port}"));
        cmd.arg("-l").arg(format!("tcp:127.0.0.1:{sip_port}"));
        cmd.arg("-l").arg(format!("tcp:127.0.0.1:{http_port}"));
        for l in listen {
            cmd.arg("-l").arg(l);
        }
        cmd.arg("-A").arg(format!("HTTP_PORT={http_port}"));
        for d in defines {
            cmd.arg("-A").arg(d);
        }
        let child = Child::spawn("kamailio", cmd, &dir.join(log))?;
        let k = Kamailio { child, sip_port, http_port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match k.rpc("core.version", serde_json::json!([])) {
                Ok(_) => return Ok(k),
                Err(e) if Instant::now() > deadline => {
                    let log = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
                    bail!("kamailio did not answer JSON-RPC within 10 s: {e}\n{log}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `sip:127.0.0.1:{sip_port}`: the proxy's URI.
    pub fn uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.sip_port)
    }

    /// The JSON-RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/RPC", self.http_port)
    }

    /// Calls a JSON-RPC method; its `result`.
    pub fn rpc(&self, method: &str, params: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let body = serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
        let mut s = TcpStream::connect(("127.0.0.1", self.http_port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "POST /RPC HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        // Kamailio keeps the connection open: read the head, then Content-Length bytes.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head_end, len) = loop {
            let n = s.read(&mut chunk)?;
            if n == 0 {
                bail!("connection closed before the HTTP head ended");
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
                    .ok_or_else(|| anyhow!("no Content-Length in {head:?}"))??;
                break (i + 4, len);
            }
        };
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let json = String::from_utf8_lossy(&buf[head_end..]).into_owned();
        let json = json.as_str();
        let v: serde_json::Value = serde_json::from_str(json).with_context(|| format!("JSON-RPC answer {json:?}"))?;
        if let Some(e) = v.get("error") {
            bail!("JSON-RPC {method}: {e}");
        }
        Ok(v["result"].clone())
    }

    /// The AoRs registered now (`alice@example.test`), from `ul.dump`.
    pub fn aors(&self) -> anyhow::Result<Vec<String>> {
        let r = self.rpc("ul.dump", serde_json::json!([]))?;
        let mut out = vec![];
        for d in r["Domains"].as_array().into_iter().flatten() {
            for a in d["Domain"]["AoRs"].as_array().into_iter().flatten() {
                if let Some(s) = a["Info"]["AoR"].as_str() {
                    out.push(s.to_string());
                }
            }
        }
        Ok(out)
    }

    /// The main process's PID (also its process group: the workers are in it).
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Stops it at once, as a crash would: SIGKILL to its process group (the main
    /// process and the workers it forked), then the main process is reaped.
    pub fn kill9(&mut self) {
        let pid = self.child.pid();
        if pid > 0 {
            // SAFETY: a signal to the process group this Kamailio was started in (its own).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        self.child.kill9();
    }

    /// Live transactions of the proxy (`tm.stats` `current`).
    pub fn transactions(&self) -> anyhow::Result<i64> {
        let r = self.rpc("tm.stats", serde_json::json!([]))?;
        r["current"].as_i64().ok_or_else(|| anyhow!("no current in tm.stats: {r}"))
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM lets the main process stop its children; then the PID is reaped.
        self.child.signal(libc::SIGTERM);
        if self.child.wait_timeout(Duration::from_secs(5)).is_none() {
            self.child.kill9();
        }
    }
}

/// A SIPp phone: a UAS scenario on its own port, registered at the proxy as
/// `user@domain` (through [`scenario`]`("register.xml")`).
pub struct Phone {
    child: Child,
    /// The registered user.
    pub user: String,
    /// The UAS port.
    pub port: u16,
    /// SIPp's message trace (every message sent and received).
    pub trace: PathBuf,
}

impl Phone {
    /// Starts the UAS `scenario` (with `args`, e.g. `-d 500` to ring 500 ms, `-m 1` to
    /// exit after one call) and registers it; returns once the registrar answered 200.
    pub fn start(scenario: &Path, dir: &Path, user: &str, domain: &str, proxy_port: u16, args: &[&str]) -> anyhow::Result<Phone> {
        Phone::spawn(scenario, dir, user, domain, proxy_port, args, true)
    }

    /// [`Phone::start`] without the message trace (benchmarks: thousands of calls).
    pub fn start_untraced(scenario: &Path, dir: &Path, user: &str, domain: &str, proxy_port: u16, args: &[&str]) -> anyhow::Result<Phone> {
        Phone::spawn(scenario, dir, user, domain, proxy_port, args, false)
    }

    /// A phone that never registers (a gateway, an old phone with a static contact):
    /// the UAS `scenario` on a port of its own, traced.
    pub fn listen(scenario: &Path, dir: &Path, user: &str, args: &[&str]) -> anyhow::Result<Phone> {
        let port = free_sip_port();
        let (child, trace) = Phone::sipp(scenario, dir, user, port, args, true)?;
        std::thread::sleep(Duration::from_millis(200));
        Ok(Phone { child, user: user.into(), port, trace })
    }

    /// Sends `sig` to the SIPp process (SIGSTOP: it stops answering; SIGCONT: again).
    pub fn signal(&self, sig: i32) {
        self.child.signal(sig);
    }

    fn sipp(scenario: &Path, dir: &Path, user: &str, port: u16, args: &[&str], traced: bool) -> anyhow::Result<(Child, PathBuf)> {
        let trace = dir.join(format!("{user}-{port}.trace"));
        let mut cmd = Command::new("/usr/bin/sipp");
        cmd.arg("-sf").arg(scenario).args(["-i", "127.0.0.1", "-p"]).arg(port.to_string());
        if traced {
            cmd.args(["-trace_msg", "-message_file"]).arg(&trace);
        }
        cmd.args(["-trace_err", "-error_file"]).arg(dir.join(format!("{user}-{port}.err")));
        cmd.args(args);
        let child = Child::spawn(&format!("sipp {user}"), cmd, &dir.join(format!("{user}-{port}.log")))?;
        Ok((child, trace))
    }

    fn spawn(scenario: &Path, dir: &Path, user: &str, domain: &str, proxy_port: u16, args: &[&str], traced: bool) -> anyhow::Result<Phone> {
        let port = free_sip_port();
        let (child, trace) = Phone::sipp(scenario, dir, user, port, args, traced)?;
        std::thread::sleep(Duration::from_millis(200));
        let reg = self::scenario("register.xml");
        let st = Command::new("/usr/bin/sipp")
            .arg(format!("127.0.0.1:{proxy_port}"))
            .arg("-sf")
            .arg(&reg)
            .args(["-i", "127.0.0.1", "-p"])
            .arg(free_sip_port().to_string())
            .args(["-s", user, "-key", "domain", domain, "-key", "contact_port"])
            .arg(port.to_string())
            .args(["-key", "expires", "600", "-m", "1", "-timeout", "5", "-timeout_error"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .current_dir(dir)
            .status()?;
        if !st.success() {
            bail!("REGISTER of {user}@{domain} failed ({st})");
        }
        Ok(Phone { child, user: user.into(), port, trace })
    }

    /// The first lines of the messages the phone sent and received, in order, each
    /// prefixed `>` (sent) or `<` (received): `< INVITE sip:...`, `> SIP/2.0 200 OK`.
    pub fn messages(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.trace).unwrap_or_default();
        let mut out = vec![];
        let mut dir = None;
        let mut want_first = false;
        for line in text.lines() {
            if line.starts_with("----------") {
                dir = None;
                want_first = false;
                continue;
            }
            if dir.is_none() && line.contains("message sent") {
                dir = Some('>');
                want_first = true;
                continue;
            }
            if dir.is_none() && line.contains("message received") {
                dir = Some('<');
                want_first = true;
                continue;
            }
            if want_first && !line.trim().is_empty() {
                out.push(format!("{} {}", dir.unwrap_or('?'), line.trim()));
                want_first = false;
            }
        }
        out
    }

    /// The full trace text.
    pub fn trace_text(&self) -> String {
        std::fs::read_to_string(&self.trace).unwrap_or_default()
    }

    /// Waits until a received message's first line starts with `what`, up to `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.messages().iter().any(|m| m.starts_with(&format!("< {what}"))) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} never received {what} within {timeout:?}; saw {:#?}", self.user, self.messages());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the SIPp process to end (its `-m` calls done); its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        self.child.wait_timeout(timeout)
    }
}
