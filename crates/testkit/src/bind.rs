//! BIND 9 for tests (Debian `bind9`): `named -g` in the foreground on a free loopback port
//! (UDP and TCP), authoritative for one zone whose names all resolve to 127.0.0.1, taking
//! RFC 2136 updates of TXT records signed with a TSIG key made here (`update-policy`
//! `zonesub TXT`). Killed by PID on drop; [`Bind::updates`] lists the updates it applied.

use crate::proc::{free_port, wait_for_port, Child};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A running named owned by a test.
pub struct Bind {
    /// Port on 127.0.0.1 (UDP and TCP).
    pub port: u16,
    /// The zone (`example.com`).
    pub zone: String,
    /// The TSIG key's name.
    pub key_name: String,
    /// The TSIG secret, base64 (hmac-sha256).
    pub secret: String,
    /// Log file.
    pub log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Bind {
    /// Starts named for `zone` with a fresh TSIG key; waits until it accepts TCP.
    pub fn start(zone: &str) -> anyhow::Result<Bind> {
        let dir = tempfile::Builder::new().prefix("mware-bind-").tempdir()?;
        let port = free_port();
        let key_name = "mware-acme".to_string();
        let out = Command::new("openssl").args(["rand", "-base64", "32"]).output()?;
        anyhow::ensure!(out.status.success(), "openssl rand failed");
        let secret = String::from_utf8(out.stdout)?.trim().to_string();
        let d = dir.path().display();
        let conf = format!(
            "options {{ directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; pid-file \"{d}/named.pid\";\n\
             recursion no; allow-query {{ any; }}; dnssec-validation no; session-keyfile \"{d}/session.key\"; }};\n\
             key \"{key_name}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n\
             zone \"{zone}\" {{ type primary; file \"{d}/db.zone\"; update-policy {{ grant {key_name} zonesub TXT; }}; }};\n"
        );
        let db = format!(
            "$TTL 60\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 60 60 600 60\n@ IN NS ns.{zone}.\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n"
        );
        std::fs::write(dir.path().join("named.conf"), conf)?;
        std::fs::write(dir.path().join("db.zone"), db)?;
        let log = dir.path().join("named.log");
        let mut cmd = Command::new("/usr/sbin/named");
        cmd.args(["-g", "-4", "-c"]).arg(dir.path().join("named.conf")).args(["-p", &port.to_string()]);
        let mut child = Child::spawn("named", cmd, &log)?;
        if let Err(e) = wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(20)) {
            child.kill9();
            anyhow::bail!("{e}; named log: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        Ok(Bind { port, zone: zone.into(), key_name, secret, log, child, _dir: dir })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The log lines of the updates named applied (`updating zone ...: adding an RR at
    /// ...`, `deleting rrset at ...`).
    pub fn updates(&self) -> Vec<String> {
        self.log_text().lines().filter(|l| l.contains("updating zone")).map(str::to_string).collect()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// named's PID.
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Sends `sig` to named (`libc::SIGSTOP` to make it hang, `libc::SIGCONT` to resume).
    pub fn signal(&self, sig: i32) {
        self.child.signal(sig)
    }
}
