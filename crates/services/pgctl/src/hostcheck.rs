//! The SSH host key of each server of a group, checked before the controller needs to
//! act: when the group's loop starts, again every [`RECHECK_OK`] while accepted, and
//! every [`RECHECK_NOT_OK`] while refused or unreachable. The check is a key exchange
//! only (no login), so an operator sees a missing or wrong pin in the group's status and
//! log long before a failover needs it. Checks run in tasks of their own and are picked
//! up by a later cycle, so a host that does not answer never slows the control loop.
//! A refusal met while acting counts too.

use crate::config::GroupSpec;
use crate::journal::Journal;
use mware_ssh::{HostKey, SshError};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How often an accepted host key is checked again.
pub const RECHECK_OK: Duration = Duration::from_secs(600);
/// How often a refused (or unreachable) host key is checked again.
pub const RECHECK_NOT_OK: Duration = Duration::from_secs(30);

/// What is known about one server's host key.
#[derive(Debug, Default)]
struct KeyState {
    /// `ssh-ed25519 SHA256:...` of the accepted key.
    accepted: Option<String>,
    /// Why it is refused (host key refusals only).
    refused: Option<String>,
    /// Why it could not be checked (connection problems; not a refusal).
    unchecked: Option<String>,
    /// When the last check started.
    checked_at: Option<Instant>,
    /// The check under way.
    running: Option<JoinHandle<Result<HostKey, SshError>>>,
}

impl KeyState {
    fn due(&self, now: Instant) -> bool {
        let every = if self.accepted.is_some() { RECHECK_OK } else { RECHECK_NOT_OK };
        self.running.is_none() && self.checked_at.is_none_or(|t| now.duration_since(t) >= every)
    }
}

/// The host key state of a group's two servers.
#[derive(Debug, Default)]
pub struct HostKeys {
    state: [KeyState; 2],
}

impl Drop for HostKeys {
    fn drop(&mut self) {
        for st in &mut self.state {
            if let Some(t) = st.running.take() {
                t.abort();
            }
        }
    }
}

impl HostKeys {
    /// Takes in the checks that finished (logging every change) and starts those due.
    /// Never waits for a check.
    pub async fn refresh(&mut self, g: &GroupSpec, journal: &Journal) {
        let now = Instant::now();
        for i in 0..2 {
            if self.state[i].running.as_ref().is_some_and(JoinHandle::is_finished) {
                let task = self.state[i].running.take().expect("a finished check");
                match task.await {
                    Ok(r) => self.apply(g, i, r, journal),
                    Err(e) => self.state[i].unchecked = Some(format!("the host key check failed: {e}")),
                }
            }
            if self.state[i].due(now) {
                let target = g.servers[i].ssh.clone();
                self.state[i].checked_at = Some(now);
                self.state[i].running = Some(tokio::spawn(async move { target.check_host_key().await }));
            }
        }
    }

    fn apply(&mut self, g: &GroupSpec, i: usize, r: Result<HostKey, SshError>, journal: &Journal) {
        let name = &g.servers[i].name;
        let st = &mut self.state[i];
        match r {
            Ok(key) => {
                if st.accepted.is_none() || st.refused.is_some() {
                    journal.info(&format!("ssh host key of {name} ({}) is accepted: {}", g.servers[i].ssh.label(), key.describe()));
                }
                (st.accepted, st.refused, st.unchecked) = (Some(key.describe()), None, None);
            }
            Err(e) if e.is_host_key_refusal() => self.refused(i, name, &e, journal),
            Err(e) => (st.accepted, st.unchecked) = (None, Some(e.to_string())),
        }
    }

    /// Records a refusal (from a check or from an action's connection) and logs it once.
    pub fn refused(&mut self, i: usize, name: &str, e: &SshError, journal: &Journal) {
        let why = e.to_string();
        let st = &mut self.state[i];
        if st.refused.as_deref() != Some(why.as_str()) {
            journal.error(&format!("nothing will be done to {name} over ssh: {why}"));
        }
        (st.accepted, st.refused, st.unchecked) = (None, Some(why), None);
        st.checked_at = Some(Instant::now());
    }

    /// Per server, why its host key is refused.
    pub fn refusals(&self) -> [Option<String>; 2] {
        [self.state[0].refused.clone(), self.state[1].refused.clone()]
    }

    /// For the status of server `i`: the accepted key, and the refusal or the reason it
    /// could not be checked.
    pub fn status(&self, i: usize) -> (Option<String>, Option<String>) {
        let st = &self.state[i];
        (st.accepted.clone(), st.refused.clone().or_else(|| st.unchecked.clone()))
    }
}
