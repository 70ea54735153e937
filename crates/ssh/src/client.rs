//! Connecting and logging in ([`Target::connect`]), running a command with its output
//! collected ([`Session::run`]), and fetching a server's host key without logging in
//! ([`fetch_host_key`]).
//!
//! The host key is judged inside the key exchange (russh's `check_server_key`), so a
//! refused server gets nothing of ours: no user name, no password, no command.

use crate::error::{Result, SshError};
use crate::exec::{self, Exec};
use crate::hostkey::{HostKey, HostKeyPolicy};
use mware_config::Secret;
use russh::client;
use russh::keys::{Algorithm, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, Preferred};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Time limit for the TCP connection and the key exchange.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// How to log in.
#[derive(Clone)]
pub enum Auth {
    /// Password (e.g. the seed's `ssh_pwd`).
    Password(Secret),
    /// Private key file (unencrypted).
    KeyFile(String),
}

/// An SSH destination and the host keys it must present.
#[derive(Clone)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Credentials.
    pub auth: Auth,
    /// Which host keys are accepted.
    pub host_keys: HostKeyPolicy,
}

/// What a remote command produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status (-1 when the server sent none).
    pub code: i64,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// The last lines of stderr (or stdout), for error messages.
    pub fn detail(&self) -> String {
        let text = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        let lines: Vec<&str> = text.trim().lines().collect();
        lines[lines.len().saturating_sub(4)..].join(" | ")
    }
}

/// A logged-in SSH connection. Commands may run one after another or side by side.
pub struct Session {
    handle: client::Handle<Checker>,
    label: String,
}

impl Target {
    /// `user@host:port`, for messages.
    pub fn label(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// Connects, checks the host key against [`Target::host_keys`] and logs in.
    pub async fn connect(&self) -> Result<Session> {
        self.connect_via(None).await
    }

    /// As [`Target::connect`], but to `addr` (an address `host` was resolved to and
    /// checked by the caller), the host key still judged for `host`.
    async fn connect_via(&self, addr: Option<SocketAddr>) -> Result<Session> {
        let label = self.label();
        let (mut handle, _) = handshake(&self.host, self.port, addr, Some(self.host_keys.clone()), &label).await?;
        let err = |e: russh::Error| SshError::Session { target: label.clone(), reason: e.to_string() };
        let (ok, method) = match &self.auth {
            Auth::Password(p) => (handle.authenticate_password(self.user.clone(), p.expose()).await.map_err(err)?.success(), "password"),
            Auth::KeyFile(path) => {
                let key = russh::keys::load_secret_key(path, None).map_err(|e| SshError::KeyFile {
                    target: label.clone(),
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let hash = handle.best_supported_rsa_hash().await.map_err(err)?.flatten();
                let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
                (handle.authenticate_publickey(self.user.clone(), key).await.map_err(err)?.success(), "key")
            }
        };
        if !ok {
            return Err(SshError::Auth { target: label, method });
        }
        Ok(Session { handle, label })
    }

    /// Connects only to check the server's host key against [`Target::host_keys`] (and
    /// learn it, with trust on first use); does not log in: no user name, no password.
    pub async fn check_host_key(&self) -> Result<HostKey> {
        let label = self.label();
        let (handle, key) = handshake(&self.host, self.port, None, Some(self.host_keys.clone()), &label).await?;
        let _ = handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
        Ok(key)
    }

    /// Connects, runs `command` (already quoted) with `stdin` fed to it and disconnects,
    /// all within `limit`.
    pub async fn run(&self, command: &str, stdin: Option<&Secret>, limit: Duration) -> Result<Output> {
        self.run_via(None, command, stdin, limit).await
    }

    /// As [`Target::run`], connecting to `addr`: an address of `host` the caller resolved
    /// and judged (so a name that resolves elsewhere a moment later changes nothing); the
    /// host key is judged for `host`.
    pub async fn run_at(&self, addr: SocketAddr, command: &str, stdin: Option<&Secret>, limit: Duration) -> Result<Output> {
        self.run_via(Some(addr), command, stdin, limit).await
    }

    async fn run_via(&self, addr: Option<SocketAddr>, command: &str, stdin: Option<&Secret>, limit: Duration) -> Result<Output> {
        let work = async {
            let s = self.connect_via(addr).await?;
            let out = s.run_unlimited(command, stdin).await;
            s.close().await;
            out
        };
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(SshError::Timeout { target: self.label(), what: "the command to finish".into(), secs: limit.as_secs() })
        })
    }
}

impl Session {
    /// `user@host:port`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs `command` (already quoted: see [`crate::command_line`]); `stdin`, if any,
    /// is written to it followed by a newline (a secret never goes on the command line),
    /// then its stdin is closed. Collects stdout, stderr and the exit status within `limit`.
    pub async fn run(&self, command: &str, stdin: Option<&Secret>, limit: Duration) -> Result<Output> {
        tokio::time::timeout(limit, self.run_unlimited(command, stdin)).await.unwrap_or_else(|_| {
            Err(SshError::Timeout { target: self.label.clone(), what: "the command to finish".into(), secs: limit.as_secs() })
        })
    }

    async fn run_unlimited(&self, command: &str, stdin: Option<&Secret>) -> Result<Output> {
        let err = |e: russh::Error| SshError::Session { target: self.label.clone(), reason: e.to_string() };
        let mut ch = self.handle.channel_open_session().await.map_err(err)?;
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
                ChannelMsg::ExitStatus { exit_status } => code = Some(i64::from(exit_status)),
                _ => {}
            }
        }
        Ok(Output {
            code: code.unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&errb).into_owned(),
        })
    }

    /// Starts `command` (already quoted) with its stdin, stdout and exit status as
    /// streams: see [`Exec`]. No time limit: wrap the whole exchange in one.
    pub async fn exec(&self, command: &str) -> Result<Exec> {
        let err = |e: russh::Error| SshError::Session { target: self.label.clone(), reason: e.to_string() };
        let ch = self.handle.channel_open_session().await.map_err(err)?;
        ch.exec(true, command.as_bytes()).await.map_err(err)?;
        Ok(exec::start(ch, self.label.clone()))
    }

    /// Says goodbye to the server.
    pub async fn close(self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

/// Connects to `host:port` only to see its host key: the key exchange runs, the key is
/// refused on our side, and nothing else is sent (no user name, no password). With
/// `prefer`, the key types it pins for the host are asked for first (as a real
/// connection would), so a server with several keys presents the pinned type.
pub async fn fetch_host_key(host: &str, port: u16, prefer: Option<&HostKeyPolicy>) -> Result<HostKey> {
    let seen = Arc::new(Mutex::new(None));
    let label = format!("{host}:{port}");
    let pinned = prefer.map(|p| p.pinned_algorithms(host, port)).unwrap_or_default();
    let checker = Checker { policy: None, host: host.into(), port, label: label.clone(), seen: seen.clone() };
    let conn = tokio::time::timeout(CONNECT_LIMIT, client::connect(config(&pinned), (host, port), checker)).await;
    let key = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (key, conn) {
        (Some(k), _) => Ok(HostKey(k)),
        (None, Err(_)) => Err(SshError::Connect { target: label, reason: format!("no key exchange within {} s", CONNECT_LIMIT.as_secs()) }),
        (None, Ok(Err(e))) => Err(e.at(&label, true)),
        (None, Ok(Ok(_))) => Err(SshError::Connect { target: label, reason: "the server presented no host key".into() }),
    }
}

/// TCP connection and key exchange with the host key checked by `policy`; the
/// accepted key comes back with the connection.
async fn handshake(
    host: &str,
    port: u16,
    addr: Option<SocketAddr>,
    policy: Option<HostKeyPolicy>,
    label: &str,
) -> Result<(client::Handle<Checker>, HostKey)> {
    let pinned = policy.as_ref().map(|p| p.pinned_algorithms(host, port)).unwrap_or_default();
    let seen = Arc::new(Mutex::new(None));
    let checker = Checker { policy, host: host.into(), port, label: label.into(), seen: seen.clone() };
    let connect = async {
        match addr {
            Some(a) => client::connect(config(&pinned), a, checker).await,
            None => client::connect(config(&pinned), (host, port), checker).await,
        }
    };
    let handle = match tokio::time::timeout(CONNECT_LIMIT, connect).await {
        Err(_) => {
            return Err(SshError::Connect { target: label.into(), reason: format!("no answer within {} s", CONNECT_LIMIT.as_secs()) })
        }
        Ok(r) => r.map_err(|e| e.at(label, true))?,
    };
    let key = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
    let key = key.ok_or_else(|| SshError::Connect { target: label.into(), reason: "the server presented no host key".into() })?;
    Ok((handle, HostKey(key)))
}

/// Client settings; host key types pinned for the server are asked for first, so a
/// server with several keys presents the pinned one.
fn config(pinned: &[Algorithm]) -> Arc<client::Config> {
    let default = Preferred::DEFAULT.key.to_vec();
    let same_kind = |a: &Algorithm, p: &Algorithm| if p.clone().is_rsa() { a.clone().is_rsa() } else { a == p };
    let (mut key, rest): (Vec<Algorithm>, Vec<Algorithm>) = default.into_iter().partition(|a| pinned.iter().any(|p| same_kind(a, p)));
    key.extend(rest);
    Arc::new(client::Config {
        inactivity_timeout: Some(Duration::from_secs(600)),
        keepalive_interval: Some(Duration::from_secs(10)),
        preferred: Preferred { key: Cow::Owned(key), ..Preferred::DEFAULT },
        ..Default::default()
    })
}

/// The russh handler: judges the host key (or, without a policy, records and refuses it).
struct Checker {
    policy: Option<HostKeyPolicy>,
    host: String,
    port: u16,
    label: String,
    seen: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for Checker {
    type Error = SshError;

    async fn check_server_key(&mut self, key: &PublicKey) -> std::result::Result<bool, SshError> {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(key.clone());
        match &self.policy {
            None => Ok(false),
            Some(p) => p.check(&self.label, &self.host, self.port, &HostKey(key.clone())).map(|()| true),
        }
    }
}
