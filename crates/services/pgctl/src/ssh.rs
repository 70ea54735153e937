//! Running commands on a database host over SSH (russh), with a password or a key.
//!
//! A command line is built from arguments that are each shell-quoted ([`sh_quote`]);
//! a secret the command needs (the replica password for pg_basebackup) travels on the
//! channel's stdin, never on the command line, so it is not in `ps`, in sshd logs or in
//! our logs.

use crate::error::{PgctlError, Result};
use mware_config::pg::PgServer;
use mware_config::Secret;
use russh::client;
use russh::keys::PrivateKeyWithHashAlg;
use russh::ChannelMsg;
use std::sync::Arc;
use std::time::Duration;

/// Quotes one argument for a POSIX shell: `'...'` with embedded quotes escaped.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// How to log in.
#[derive(Clone)]
pub enum SshAuth {
    /// Password (the seed's `ssh_pwd`).
    Password(Secret),
    /// Private key file.
    KeyFile(String),
}

/// An SSH destination.
#[derive(Clone)]
pub struct SshTarget {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Credentials.
    pub auth: SshAuth,
}

/// What a remote command produced.
#[derive(Debug, Clone)]
pub struct RemoteOutput {
    /// Exit status (-1 when the server sent none).
    pub code: i64,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl RemoteOutput {
    /// The last lines of stderr (or stdout), for error messages.
    pub fn detail(&self) -> String {
        let text = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        let lines: Vec<&str> = text.trim().lines().collect();
        lines[lines.len().saturating_sub(4)..].join(" | ")
    }
}

impl SshTarget {
    /// The target of a server's `ssh_*` settings; explains what is missing.
    pub fn of(s: &PgServer) -> std::result::Result<SshTarget, String> {
        let host = s.ssh_host().ok_or("ssh_host (or pg_host) is missing")?.to_string();
        let user = s.ssh_user.clone().ok_or("ssh_user is missing")?;
        let auth = match (&s.ssh_pwd, &s.ssh_key_file) {
            (_, Some(k)) => SshAuth::KeyFile(k.clone()),
            (Some(p), None) => SshAuth::Password(p.clone()),
            (None, None) => return Err("neither ssh_pwd nor ssh_key_file is set".into()),
        };
        Ok(SshTarget { host, port: s.ssh_port, user, auth })
    }

    /// `user@host:port`, for messages.
    pub fn label(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// Runs `command` (already quoted) with `stdin` fed to it, up to `timeout`.
    pub async fn run(&self, command: &str, stdin: Option<&Secret>, timeout: Duration) -> Result<RemoteOutput> {
        match tokio::time::timeout(timeout, self.run_inner(command, stdin)).await {
            Ok(r) => r,
            Err(_) => Err(PgctlError::Ssh {
                target: self.label(),
                reason: format!("expected the command to finish within {} s, it did not", timeout.as_secs()),
            }),
        }
    }

    async fn run_inner(&self, command: &str, stdin: Option<&Secret>) -> Result<RemoteOutput> {
        let session = self.connect().await?;
        let err = |e: russh::Error| PgctlError::Ssh { target: self.label(), reason: e.to_string() };
        let mut ch = session.channel_open_session().await.map_err(err)?;
        ch.exec(true, command.as_bytes()).await.map_err(err)?;
        if let Some(s) = stdin {
            let line = format!("{}\n", s.expose());
            ch.data(line.as_bytes()).await.map_err(err)?;
        }
        ch.eof().await.map_err(err)?;
        let (mut out, mut errb, mut code) = (Vec::new(), Vec::new(), None);
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, .. } => errb.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status as i64),
                _ => {}
            }
        }
        let _ = session.disconnect(russh::Disconnect::ByApplication, "", "en").await;
        Ok(RemoteOutput {
            code: code.unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&errb).into_owned(),
        })
    }

    async fn connect(&self) -> Result<client::Handle<AcceptAny>> {
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(600)),
            keepalive_interval: Some(Duration::from_secs(10)),
            ..Default::default()
        });
        let addr = (self.host.as_str(), self.port);
        let mut h = tokio::time::timeout(Duration::from_secs(10), client::connect(config, addr, AcceptAny))
            .await
            .map_err(|_| PgctlError::SshConnect { target: self.label(), reason: "no answer within 10 s".into() })?
            .map_err(|e| PgctlError::SshConnect { target: self.label(), reason: e.to_string() })?;
        let err = |e: russh::Error| PgctlError::Ssh { target: self.label(), reason: e.to_string() };
        let (ok, method) = match &self.auth {
            SshAuth::Password(p) => {
                (h.authenticate_password(self.user.clone(), p.expose()).await.map_err(err)?.success(), "password")
            }
            SshAuth::KeyFile(path) => {
                let key = russh::keys::load_secret_key(path, None).map_err(|e| PgctlError::Ssh {
                    target: self.label(),
                    reason: format!("cannot load ssh_key_file {path}: {e}"),
                })?;
                let hash = h.best_supported_rsa_hash().await.map_err(err)?.flatten();
                let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
                (h.authenticate_publickey(self.user.clone(), key).await.map_err(err)?.success(), "key")
            }
        };
        if !ok {
            return Err(PgctlError::SshAuth { target: self.label(), method });
        }
        Ok(h)
    }
}

/// Host keys are accepted as presented: the site file carries no known-hosts list yet.
struct AcceptAny;

impl client::Handler for AcceptAny {
    type Error = russh::Error;
    async fn check_server_key(&mut self, _key: &russh::keys::PublicKey) -> std::result::Result<bool, Self::Error> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::sh_quote;
    #[test]
    fn quoting() {
        assert_eq!(sh_quote("/usr/lib/postgresql/15/bin/pg_ctl"), "/usr/lib/postgresql/15/bin/pg_ctl");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("x'; rm -rf /; '"), "'x'\\''; rm -rf /; '\\'''");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("$(reboot)"), "'$(reboot)'");
    }
}
