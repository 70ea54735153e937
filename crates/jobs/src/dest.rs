//! What a kind runs with: the [`RunEnv`] of the process and the [`Dest`] a job's rules
//! allowed (the kinds and the step that runs a job both use them).

use crate::spec::Target;
use mware_ssh::HostKeyPolicy;
use std::net::SocketAddr;

/// What a job may use while it runs.
#[derive(Clone)]
pub struct RunEnv {
    /// The pinned SSH host keys (`ssh.exec`): the site's `ssh` section in-process, the
    /// poller's `--known-hosts` file on a satellite.
    pub host_keys: HostKeyPolicy,
    /// One HTTP client for every `http.request` (connection reuse).
    pub http: reqwest::Client,
}

impl RunEnv {
    /// An environment checking SSH host keys against `host_keys`.
    pub fn new(host_keys: HostKeyPolicy) -> RunEnv {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client builds");
        RunEnv { host_keys, http }
    }
}

/// Where a job connects: its target as given (for messages, the HTTP Host header and
/// the pinned SSH host keys) and the addresses its rules allowed (never resolved again).
#[derive(Debug, Clone)]
pub struct Dest {
    /// `host:port` as the job names it.
    pub target: Target,
    /// The addresses judged, at least one.
    pub addrs: Vec<SocketAddr>,
}
