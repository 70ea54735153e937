//! The probe kinds. Each probe is prepared once from its config ([`Checker::new`]: a DNS
//! resolver, an HTTP client, parsed addresses) and then checked every `interval_ms`
//! ([`Checker::check`]); a check gives `Ok(detail)` or `Err(why)`, in words, and never
//! names a secret (the postgres DSN).

mod command;
mod dns;
mod fsync;
mod megaco;
mod net;
mod pg;

use crate::section::{Probe, ProbeKind};
use crate::state::Check;
use std::time::{Duration, Instant};

/// The HTTP client the probes share: no TLS, redirects reported as they are (not
/// followed), no proxy from the environment.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap_or_default()
}

/// What probes share: the HTTP client and the site's SSH host key policy.
#[derive(Clone)]
pub struct ProbeEnv {
    /// See [`http_client`].
    pub http: reqwest::Client,
    /// The site's pinned SSH host keys (`ssh` section).
    pub host_keys: mware_ssh::HostKeyPolicy,
}

impl ProbeEnv {
    /// The environment of a site.
    pub fn new(ssh: &mware_config::SshSettings) -> Self {
        ProbeEnv { http: http_client(), host_keys: ssh.into() }
    }
}

/// A prepared probe.
pub enum Checker {
    /// `dns`.
    Dns(Box<dns::Dns>),
    /// `tcp`.
    Tcp(net::Tcp),
    /// `http`.
    Http(net::Http),
    /// `postgres`.
    Postgres(pg::Postgres),
    /// `megaco`.
    Megaco(megaco::Megaco),
    /// `fsync`.
    Fsync(Box<fsync::Fsync>),
    /// `command`.
    Command(command::Command),
}

impl Checker {
    /// Prepares `p`; `Err` says why it cannot run (the validator should have said so).
    pub fn new(p: &Probe, env: &ProbeEnv) -> Result<Checker, String> {
        let target = || p.target.clone().ok_or_else(|| format!("probe {}: expected a target, found none", p.name));
        Ok(match p.kind {
            ProbeKind::Dns => Checker::Dns(Box::new(dns::Dns::new(&target()?, p.resolver.as_deref(), &p.expect, p.timeout())?)),
            ProbeKind::Tcp => Checker::Tcp(net::Tcp { target: target()? }),
            ProbeKind::Http => Checker::Http(net::Http {
                client: env.http.clone(),
                url: target()?,
                status: p.status.unwrap_or(200),
                body_contains: p.body_contains.clone(),
            }),
            ProbeKind::Postgres => Checker::Postgres(pg::Postgres {
                dsn: p.dsn.clone().ok_or_else(|| format!("probe {}: expected a dsn, found none", p.name))?,
                query: p.query.clone().unwrap_or_else(|| "select 1".into()),
            }),
            ProbeKind::Megaco => Checker::Megaco(megaco::Megaco { target: target()?, mid: p.mid.clone() }),
            ProbeKind::Fsync => Checker::Fsync(Box::new(fsync::Fsync::new(&p.name, &target()?, &p.copies, &p.ssh_copies, &env.host_keys))),
            ProbeKind::Command => Checker::Command(command::Command { argv: p.command.clone() }),
        })
    }

    /// Runs one check within `timeout`.
    pub async fn check(&self, timeout: Duration) -> Check {
        let started = Instant::now();
        let run = async {
            match self {
                Checker::Dns(c) => c.check().await,
                Checker::Tcp(c) => c.check().await,
                Checker::Http(c) => c.check().await,
                Checker::Postgres(c) => c.check().await,
                Checker::Megaco(c) => c.check(timeout).await,
                Checker::Fsync(c) => c.check(timeout).await,
                Checker::Command(c) => c.check(timeout).await,
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
        .map(|d| format!("{d} ({} ms)", started.elapsed().as_millis()))
    }
}
