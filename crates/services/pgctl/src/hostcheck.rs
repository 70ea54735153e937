//! The SSH host key of each server of a group, checked before the controller needs to
//! act: when the group's loop starts, again every [`RECHECK_OK`] while accepted, and
//! every [`RECHECK_NOT_OK`] while refused or unreachable. The check is a key exchange
//! only (no login), so an operator sees a missing or wrong pin in the group's status and
//! log long before a failover needs it. A refusal met while acting counts too.

use crate::config::GroupSpec;
use crate::journal::Journal;
use mware_ssh::SshError;
use std::time::{Duration, Instant};

/// How often an accepted host key is checked again.
pub const RECHECK_OK: Duration = Duration::from_secs(600);
/// How often a refused (or unreachable) host key is checked again.
pub const RECHECK_NOT_OK: Duration = Duration::from_secs(30);

/// What is known about one server's host key.
#[derive(Debug, Clone, Default)]
struct KeyState {
    /// `ssh-ed25519 SHA256:...` of the accepted key.
    accepted: Option<String>,
    /// Why it is refused (host key refusals only).
    refused: Option<String>,
    /// Why it could not be checked (connection problems; not a refusal).
    unchecked: Option<String>,
    checked_at: Option<Instant>,
}

impl KeyState {
    fn due(&self, now: Instant) -> bool {
        let every = if self.accepted.is_some() { RECHECK_OK } else { RECHECK_NOT_OK };
        self.checked_at.is_none_or(|t| now.duration_since(t) >= every)
    }
}

/// The host key state of a group's two servers.
#[derive(Debug, Default)]
pub struct HostKeys {
    state: [KeyState; 2],
}

impl HostKeys {
    /// Checks the servers whose check is due (side by side) and logs every change.
    pub async fn refresh(&mut self, g: &GroupSpec, journal: &Journal) {
        let now = Instant::now();
        let due = [self.state[0].due(now), self.state[1].due(now)];
        let check = |i: usize| {
            let t = &g.servers[i].ssh;
            async move { if due[i] { Some(t.check_host_key().await) } else { None } }
        };
        let (a, b) = tokio::join!(check(0), check(1));
        for (i, r) in [a, b].into_iter().enumerate() {
            let Some(r) = r else { continue };
            let name = &g.servers[i].name;
            let st = &mut self.state[i];
            st.checked_at = Some(now);
            match r {
                Ok(key) => {
                    if st.accepted.is_none() || st.refused.is_some() {
                        journal.info(&format!("ssh host key of {name} ({}) is accepted: {}", g.servers[i].ssh.label(), key.describe()));
                    }
                    *st = KeyState { accepted: Some(key.describe()), checked_at: Some(now), ..KeyState::default() };
                }
                Err(e) if e.is_host_key_refusal() => self.refused(i, name, &e, journal),
                Err(e) => {
                    st.unchecked = Some(e.to_string());
                    st.accepted = None;
                }
            }
        }
    }

    /// Records a refusal (from a check or from an action's connection) and logs it once.
    pub fn refused(&mut self, i: usize, name: &str, e: &SshError, journal: &Journal) {
        let why = e.to_string();
        let st = &mut self.state[i];
        if st.refused.as_deref() != Some(why.as_str()) {
            journal.error(&format!("nothing will be done to {name} over ssh: {why}"));
        }
        *st = KeyState { refused: Some(why), checked_at: Some(Instant::now()), ..KeyState::default() };
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
