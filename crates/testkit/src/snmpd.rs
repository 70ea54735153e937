//! snmpd for tests: Debian's net-snmp agent on a free loopback UDP port with its own
//! config (`-C`: no system config), read community `public`, read-write community
//! `private`, `sysName` fixed (read-only) and `sysContact` left writable. Runs in the
//! foreground as a [`Child`], killed by PID on drop.

use crate::proc::Child;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The sysName the agent reports.
pub const SYS_NAME: &str = "mware-test-agent";

/// A running snmpd.
pub struct Snmpd {
    /// UDP port on 127.0.0.1.
    pub port: u16,
    /// Its log.
    pub log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).unwrap_or(0)
}

impl Snmpd {
    /// Starts the agent and waits until it answers a GET of sysName.
    pub fn start() -> anyhow::Result<Snmpd> {
        let bin = ["/usr/sbin/snmpd", "/usr/bin/snmpd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .ok_or_else(|| anyhow::anyhow!("snmpd is not installed (Debian package snmpd)"))?;
        let dir = tempfile::tempdir()?;
        let port = free_udp_port();
        let conf = dir.path().join("snmpd.conf");
        std::fs::write(
            &conf,
            format!("agentAddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\nrwcommunity private 127.0.0.1\nsysName {SYS_NAME}\n"),
        )?;
        let log = dir.path().join("snmpd.log");
        let mut cmd = Command::new(bin);
        cmd.args(["-f", "-Lo", "-C", "-c"]).arg(&conf).arg("-p").arg(dir.path().join("snmpd.pid"));
        cmd.env("SNMP_PERSISTENT_DIR", dir.path()).env("MIBS", "").env("MIBDIRS", dir.path());
        let child = Child::spawn("snmpd", cmd, &log)?;
        let s = Snmpd { port, log, child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if s.answers() {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("snmpd did not answer on 127.0.0.1:{port}; log:\n{}", std::fs::read_to_string(&s.log).unwrap_or_default())
    }

    /// True when the agent answers a GET of sysName.0 with the `public` community (snmpget).
    fn answers(&self) -> bool {
        Command::new("snmpget")
            .args(["-v2c", "-c", "public", "-t", "0.5", "-r", "0", &format!("127.0.0.1:{}", self.port), "1.3.6.1.2.1.1.5.0"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// `127.0.0.1:PORT`.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The agent's PID.
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }
}
