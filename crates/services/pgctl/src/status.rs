//! What a group loop shares with its service and with the step that promotes: its
//! context ([`GroupCtx`]), the status it shows ([`GroupStatus`], [`Statuses`]) and the
//! time limits of its remote calls.

use crate::config::ServerSpec;
use crate::decide::{Decision, Observed, ServerObs, Snapshot};
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::probe::Health;
use crate::store::MasterRecord;
use crate::trigger::TriggerFile;
use mware_coord::{now_ms, Coordinator, Fence};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
pub(crate) const SSH_SHORT: Duration = Duration::from_secs(120);

/// One server as shown in the API.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    /// `pg_host:pg_port`.
    pub name: String,
    /// Role seen in the last cycle.
    pub role: Observed,
    /// Why it is unreachable.
    pub error: Option<String>,
    /// Seconds it has been unreachable.
    pub unreachable_for_s: u64,
    /// Health details.
    pub health: Option<Health>,
    /// Standby: bytes behind the master (master LSN minus replayed LSN).
    pub lag_bytes: Option<u64>,
    /// Its SSH host key when accepted (`ssh-ed25519 SHA256:...`).
    pub ssh_host_key: Option<String>,
    /// Why its SSH host key is refused (nothing is done to it then), or why it could
    /// not be checked.
    pub ssh_error: Option<String>,
}

/// One group as shown in the API and status.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    /// Group key.
    pub key: String,
    /// Current master, if one is seen.
    pub master: Option<String>,
    /// Server that was master last (persisted).
    pub last_master: Option<String>,
    /// Both servers.
    pub servers: Vec<ServerStatus>,
    /// Last decision.
    pub decision: Option<Decision>,
    /// Its reason in words.
    pub reason: String,
    /// Last action taken and its outcome.
    pub last_action: Option<String>,
    /// Last error (action or coordinator), if the last action failed.
    pub last_error: Option<String>,
    /// Settings that do not work as configured (e.g. a signal file the standby does not
    /// watch), each in words; also logged once when it appears.
    pub warnings: Vec<String>,
    /// When this status was written, ms since the Unix epoch.
    pub updated_ms: u64,
}

/// Shared status of the groups.
pub type Statuses = Arc<Mutex<std::collections::BTreeMap<String, GroupStatus>>>;

/// What a group loop needs from its service.
pub struct GroupCtx {
    /// Coordinator.
    pub coord: Arc<dyn Coordinator>,
    /// This activity's fence.
    pub fence: Fence,
    /// Stops the loop.
    pub cancel: CancellationToken,
    /// Where the status goes.
    pub statuses: Statuses,
    /// The group's log.
    pub journal: Journal,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The instance's event channel: whether the group has a master is announced there
    /// (an `Item` of source `pgctl`) at its first cycle and whenever that changes.
    pub events: mware_host::Events,
}

/// The coordinator's record of `s` as the master, from now.
pub(crate) fn record(s: &ServerSpec) -> MasterRecord {
    MasterRecord { name: s.name.clone(), host: s.pg_host.clone(), port: s.pg_port, since_ms: now_ms() }
}

/// Why the configured signal file of the standby `o` will not be used, or `None` (no file
/// configured, the server watches it, or `o` is not a standby).
pub fn warning(o: &ServerObs) -> Option<String> {
    let sig = o.signal_file.as_ref()?;
    if o.role != Observed::Standby {
        return None;
    }
    let why = match &o.trigger_file {
        TriggerFile::Watched(w) if w == sig => return None,
        TriggerFile::Watched(w) => format!("its promote_trigger_file is {w}"),
        TriggerFile::Unset => "its promote_trigger_file is empty".to_string(),
        TriggerFile::Removed => "it runs PostgreSQL 16 or newer, which has no promote_trigger_file".to_string(),
        TriggerFile::Unknown => "its promote_trigger_file could not be read".to_string(),
    };
    Some(format!(
        "pg_signal_filepath {sig} of {} is not a file that server watches ({why}): it will be promoted with pg_ctl promote",
        o.name
    ))
}

/// The warnings of both servers, in config order.
pub fn warnings(s: &Snapshot) -> Vec<String> {
    s.servers.iter().filter_map(warning).collect()
}
