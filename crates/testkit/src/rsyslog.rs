//! rsyslogd for tests: Debian's rsyslog in the foreground (`-n`) with its own config (no
//! system config, no /dev/log), taking syslog on a free loopback UDP port and a free TCP
//! port (octet-counted or newline-framed), writing each message it parses as one line of
//! `FIELDS` to a file. Killed by PID on drop.

use crate::proc::{free_port, wait_for_port, Child};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// What each line of [`Rsyslog::out`] holds, `|`-separated: hostname, app-name, msgid,
/// facility, severity, then the message.
pub const FIELDS: &str = "hostname|app-name|msgid|facility|severity|msg";

/// A running rsyslogd.
pub struct Rsyslog {
    /// UDP port on 127.0.0.1.
    pub udp_port: u16,
    /// TCP port on 127.0.0.1.
    pub tcp_port: u16,
    /// The file of received messages.
    pub out: PathBuf,
    /// Its own log.
    pub log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Rsyslog {
    /// Starts rsyslogd and waits until its TCP input listens.
    pub fn start() -> anyhow::Result<Rsyslog> {
        let bin = "/usr/sbin/rsyslogd";
        anyhow::ensure!(std::path::Path::new(bin).exists(), "rsyslogd is not installed (Debian package rsyslog)");
        let dir = tempfile::tempdir()?;
        let udp_port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        let tcp_port = free_port();
        let out = dir.path().join("received.log");
        let conf = dir.path().join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{d}")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="{udp_port}")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}")
template(name="fields" type="string" string="%hostname%|%app-name%|%msgid%|%syslogfacility-text%|%syslogseverity-text%|%msg%\n")
*.* action(type="omfile" file="{out}" template="fields" flushInterval="0" asyncWriting="off")
"#,
                d = dir.path().display(),
                out = out.display()
            ),
        )?;
        let log = dir.path().join("rsyslogd.log");
        let mut cmd = Command::new(bin);
        cmd.arg("-n").arg("-f").arg(&conf).arg("-i").arg(dir.path().join("rsyslogd.pid"));
        let child = Child::spawn("rsyslogd", cmd, &log)?;
        let r = Rsyslog { udp_port, tcp_port, out, log, child, _dir: dir };
        if let Err(e) = wait_for_port(&format!("127.0.0.1:{tcp_port}"), Duration::from_secs(10)) {
            anyhow::bail!("rsyslogd did not listen on {tcp_port}: {e}; log:\n{}", std::fs::read_to_string(&r.log).unwrap_or_default());
        }
        Ok(r)
    }

    /// The received messages so far, one `FIELDS` line each.
    pub fn received(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Whether the daemon still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }
}
