//! Prometheus metrics of the controller, `mware_pgctl_*`. Labels are the group key, the
//! server name (`pg_host:pg_port`) and fixed words for actions and outcomes: never a
//! user, password or connection string.

use crate::decide::{Decision, Observed, Snapshot};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// `{group, action}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// Group key.
    pub group: String,
    /// `healthy`, `record`, `promote`, `rebuild`, `rewind` or `wait`.
    pub action: String,
}

/// `{group, action, outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// Group key.
    pub group: String,
    /// `record`, `promote`, `rebuild`, `rewind` or `complete`.
    pub action: String,
    /// `ok`, `skipped` or `failed`.
    pub outcome: String,
}

/// `{group, server}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    /// Group key.
    pub group: String,
    /// `pg_host:pg_port`.
    pub server: String,
}

/// `{group}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    /// Group key.
    pub group: String,
}

/// The controller's metrics, cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Decisions taken, one per cycle.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Actions run and their outcome.
    pub actions: Family<ActionLabels, Counter>,
    /// 1 when the server answered the last probe, else 0.
    pub server_up: Family<ServerLabels, Gauge>,
    /// 1 when the server answered as a master, else 0.
    pub server_is_master: Family<ServerLabels, Gauge>,
    /// Standby: bytes replayed behind the master (0 for the master).
    pub lag_bytes: Family<ServerLabels, Gauge>,
    /// Seconds since a master was last seen in the group (0 while one is seen).
    pub since_master: Family<GroupLabels, Gauge<f64, AtomicU64>>,
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_pgctl_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("mware_pgctl");
        r.register("decisions", "Controller decisions, one per cycle, by kind", m.decisions.clone());
        r.register("actions", "Actions run by the controller, by outcome", m.actions.clone());
        r.register("server_up", "1 when the server answered the last probe", m.server_up.clone());
        r.register("server_is_master", "1 when the server answered as a master", m.server_is_master.clone());
        r.register("replication_lag_bytes", "Bytes a standby has replayed behind the master", m.lag_bytes.clone());
        r.register("seconds_since_master_seen", "Seconds since a master was last seen in the group", m.since_master.clone());
        m
    }

    /// Forgets every per-group series (the groups are being reloaded).
    pub fn clear_groups(&self) {
        self.server_up.clear();
        self.server_is_master.clear();
        self.lag_bytes.clear();
        self.since_master.clear();
    }

    /// Records one cycle: its decision and what it saw.
    pub fn observe(&self, group: &str, snap: &Snapshot, d: &Decision) {
        self.decisions.get_or_create(&DecisionLabels { group: group.into(), action: decision_kind(d).into() }).inc();
        let master_lsn = snap.servers.iter().find(|o| o.role == Observed::Master).and_then(|o| o.lsn);
        for o in &snap.servers {
            let l = ServerLabels { group: group.into(), server: o.name.clone() };
            self.server_up.get_or_create(&l).set((o.role != Observed::Unreachable) as i64);
            self.server_is_master.get_or_create(&l).set((o.role == Observed::Master) as i64);
            match (o.role, master_lsn, o.lsn) {
                (Observed::Master, _, _) => {
                    self.lag_bytes.get_or_create(&l).set(0);
                }
                (Observed::Standby, Some(m), Some(r)) => {
                    self.lag_bytes.get_or_create(&l).set(m.saturating_sub(r).min(i64::MAX as u64) as i64);
                }
                _ => {
                    self.lag_bytes.remove(&l);
                }
            }
        }
        self.since_master.get_or_create(&GroupLabels { group: group.into() }).set(snap.no_master_for.as_secs_f64());
    }

    /// Counts one action with its outcome (`ok`, `skipped`, `failed`).
    pub fn action(&self, group: &str, action: &str, outcome: &str) {
        self.actions.get_or_create(&ActionLabels { group: group.into(), action: action.into(), outcome: outcome.into() }).inc();
    }
}

/// The label of a decision.
pub fn decision_kind(d: &Decision) -> &'static str {
    match d {
        Decision::Healthy { .. } => "healthy",
        Decision::Record { .. } => "record",
        Decision::Promote { .. } => "promote",
        Decision::Rebuild { rewind: true, .. } => "rewind",
        Decision::Rebuild { .. } => "rebuild",
        Decision::Wait { .. } => "wait",
    }
}
