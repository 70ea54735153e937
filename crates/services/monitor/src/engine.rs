//! The probes of one activity: one task per probe, checking it every `interval_ms`
//! (the first checks spread over the interval), deciding its state with
//! [`crate::state::decide`], and sending every change to the writer, which persists it
//! before it is announced. A probe starts from its persisted state and since when
//! (a failover keeps both); only its counters start again.

use crate::metrics::{CheckLabels, Metrics, ProbeLabels};
use crate::persist::{Change, Sender};
use crate::probes::Checker;
use crate::section::Probe;
use crate::state::{decide, Health, Tracker};
use mware_host::items::Item;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A probe as the instance running it sees it (`GET /api/v1/monitoring/probes`).
#[derive(Debug, Clone, Serialize)]
pub struct ProbeView {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: &'static str,
    /// What it probes.
    pub target: Option<String>,
    /// Its state.
    pub state: Health,
    /// Since when, ms since the Unix epoch.
    pub since_ms: u64,
    /// The reason of the last change of state.
    pub reason: String,
    /// The last check's result, in words.
    pub last: Option<String>,
    /// When the last check ended, ms since the Unix epoch.
    pub last_ms: Option<u64>,
    /// How long the last check took, ms.
    pub latency_ms: Option<f64>,
    /// Consecutive failures so far.
    pub failures: u32,
    /// Consecutive successes so far.
    pub successes: u32,
}

/// Every probe's view, by name.
pub type Views = Arc<Mutex<BTreeMap<String, ProbeView>>>;

/// What the probes need.
#[derive(Clone)]
pub struct EngineCtx {
    /// Where changes go.
    pub persist: Sender,
    /// Metrics.
    pub metrics: Metrics,
    /// This instance's name.
    pub instance: String,
    /// Stops every probe.
    pub cancel: CancellationToken,
    /// The views.
    pub views: Views,
    /// What probes share (HTTP client, SSH host keys).
    pub env: crate::probes::ProbeEnv,
}

/// Starts every probe on `tracker`; a probe that cannot be prepared is reported failing
/// with the reason.
pub fn start(probes: &[Probe], restored: &HashMap<String, Item>, cx: &EngineCtx, tracker: &TaskTracker) {
    for p in probes {
        let checker = Checker::new(p, &cx.env);
        tracker.spawn(run_probe(p.clone(), checker, restored.get(&p.name).cloned(), cx.clone()));
    }
}

/// A spread of the first check over the interval, the same for a name every time.
fn offset(name: &str, interval: Duration) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

async fn run_probe(p: Probe, checker: Result<Checker, String>, restored: Option<Item>, cx: EngineCtx) {
    let mut t = Tracker::new(restored.as_ref().map_or(Health::Unknown, |i| i.state));
    let mut since = restored.as_ref().map_or_else(mware_coord::now_ms, |i| i.since_ms);
    let mut reason = restored.as_ref().map_or_else(|| "not checked yet".to_string(), |i| i.reason.clone());
    let labels = ProbeLabels { probe: p.name.clone() };
    let show = |t: &Tracker, since: u64, reason: &str, last: Option<(String, f64)>| {
        let v = ProbeView {
            name: p.name.clone(),
            kind: p.kind.as_str(),
            target: p.target.clone(),
            state: t.health,
            since_ms: since,
            reason: reason.to_string(),
            last_ms: last.as_ref().map(|_| mware_coord::now_ms()),
            latency_ms: last.as_ref().map(|l| l.1),
            last: last.map(|l| l.0),
            failures: t.failures,
            successes: t.successes,
        };
        cx.views.lock().unwrap_or_else(|e| e.into_inner()).insert(p.name.clone(), v);
    };
    show(&t, since, &reason, None);
    cx.metrics.up.get_or_create(&labels).set((t.health == Health::Ok) as i64);
    tokio::select! {
        _ = cx.cancel.cancelled() => return,
        _ = tokio::time::sleep(offset(&p.name, p.interval())) => {}
    }
    let mut tick = tokio::time::interval(p.interval());
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cx.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let started = Instant::now();
        let result = match &checker {
            Ok(c) => c.check(p.timeout()).await,
            Err(e) => Err(format!("cannot run: {e}")),
        };
        let took = started.elapsed().as_secs_f64();
        cx.metrics.latency.get_or_create(&labels).set(took);
        let word = if result.is_ok() { "ok" } else { "failed" };
        cx.metrics.checks.get_or_create(&CheckLabels { probe: p.name.clone(), result: word.into() }).inc();
        let d = decide(&mut t, &result, p.fail_after, p.recover_after);
        cx.metrics.up.get_or_create(&labels).set((t.health == Health::Ok) as i64);
        let last = Some((
            match &result {
                Ok(s) => format!("ok: {s}"),
                Err(s) => format!("failed: {s}"),
            },
            took * 1000.0,
        ));
        if d.changed() {
            since = mware_coord::now_ms();
            reason = d.reason().to_string();
            cx.metrics.changes.get_or_create(&labels).inc();
            let item = Item {
                kind: "probe".into(),
                name: p.name.clone(),
                state: t.health,
                since_ms: since,
                reason: reason.clone(),
                instance: cx.instance.clone(),
            };
            show(&t, since, &reason, last);
            if cx.persist.send(Change::Put { item, announce: true }).await.is_err() {
                return; // the writer ended: no longer active
            }
        } else {
            show(&t, since, &reason, last);
        }
    }
}
