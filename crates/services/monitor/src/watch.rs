//! What the monitoring service records besides its probes:
//! - the group's services, from the instance's `Service` events (a failed service is
//!   `failing` until it runs again; a service no longer configured is removed);
//! - items other services announce (`Item` events of another source, such as pgctl's
//!   "no master"), as they are;
//! - every group of the site, from the coordinator's cluster view: `failing` while it
//!   has no active instance.
//!
//! Each change is persisted through the writer; probe and group changes are announced
//! (the services' and other sources' were announced by their owners already).

use crate::persist::{Change, Sender};
use crate::state::Health;
use mware_config::Site;
use mware_coord::Coordinator;
use mware_host::items::Item;
use mware_host::{Event, EventKind, Events, ServiceState};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the cluster view is read.
pub const GROUP_POLL: Duration = Duration::from_secs(1);

/// Items recorded so far, by (kind, name).
pub type Known = HashMap<(String, String), Item>;

/// The health a service event says, if it says one: `None` for a start in progress and
/// for a stop (the group's own item covers an instance that is not active).
fn service_health(state: ServiceState) -> Option<Health> {
    match state {
        ServiceState::Failed => Some(Health::Failing),
        ServiceState::Running | ServiceState::Idle => Some(Health::Ok),
        ServiceState::Starting | ServiceState::Stopped => None,
    }
}

/// The change an event makes to the recorded items, if any.
pub fn on_event(e: &Event, known: &Known, instance: &str) -> Option<Change> {
    let item = |kind: &str, name: &str, state: Health, reason: String| {
        let prev = known.get(&(kind.to_string(), name.to_string()));
        if prev.is_some_and(|p| p.state == state) {
            return None;
        }
        Some(Change::Put {
            item: Item { kind: kind.into(), name: name.into(), state, since_ms: e.at_ms, reason, instance: instance.into() },
            announce: false,
        })
    };
    match &e.kind {
        EventKind::Service { service, state: ServiceState::Stopped, reason } if reason == "not configured for this group" => known
            .contains_key(&("service".to_string(), service.clone()))
            .then(|| Change::Delete { kind: "service".into(), name: service.clone() }),
        EventKind::Service { service, state, reason } => {
            let h = service_health(*state)?;
            let words = if h == Health::Failing {
                format!("failed: {reason}")
            } else {
                format!("{}: {reason}", if *state == ServiceState::Idle { "idle" } else { "running" })
            };
            item("service", service, h, words)
        }
        EventKind::Item { source, item: name, state, reason } if source != "monitoring" => {
            let h = Health::parse(state).unwrap_or(Health::Warning);
            item(source, name, h, reason.clone())
        }
        _ => None,
    }
}

/// Follows the instance's events until `cancel`: first those still in its ring since it
/// last became active, then the new ones.
pub async fn follow_events(events: Events, persist: Sender, instance: String, mut known: Known, cancel: CancellationToken) {
    let mut rx = events.subscribe();
    let (mut past, _) = events.since(0);
    // Only what happened since this instance last became active: an older service event
    // (of an earlier activity) must not overwrite what another instance recorded since.
    if let Some(i) = past.iter().rposition(|e| matches!(e.kind, EventKind::Activity { active: true, .. })) {
        past.drain(..i);
    }
    let last_id = std::sync::atomic::AtomicU64::new(0);
    let apply = |e: &Event, known: &mut Known| -> Option<Change> {
        if e.id <= last_id.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        last_id.store(e.id, std::sync::atomic::Ordering::Relaxed);
        let c = on_event(e, known, &instance)?;
        match &c {
            Change::Put { item, .. } => {
                known.insert((item.kind.clone(), item.name.clone()), item.clone());
            }
            Change::Delete { kind, name } => {
                known.remove(&(kind.clone(), name.clone()));
            }
        }
        Some(c)
    };
    for e in past {
        if let Some(c) = apply(&e, &mut known) {
            if persist.send(c).await.is_err() {
                return;
            }
        }
    }
    loop {
        let e = tokio::select! {
            _ = cancel.cancelled() => return,
            e = rx.recv() => e,
        };
        let e = match e {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                // Catch up from the ring.
                let (missed, _) = events.since(last_id.load(std::sync::atomic::Ordering::Relaxed));
                for e in missed {
                    if let Some(c) = apply(&e, &mut known) {
                        if persist.send(c).await.is_err() {
                            return;
                        }
                    }
                }
                continue;
            }
            Err(_) => return,
        };
        if let Some(c) = apply(&e, &mut known) {
            if persist.send(c).await.is_err() {
                return;
            }
        }
    }
}

/// Reads the cluster view every [`GROUP_POLL`] and records each group's state when it
/// changes, until `cancel`.
pub async fn follow_groups(
    coord: Arc<dyn Coordinator>,
    site: watch::Receiver<Arc<Site>>,
    persist: Sender,
    instance: String,
    mut known: Known,
    cancel: CancellationToken,
) {
    loop {
        if let Ok(views) = coord.cluster().await {
            let groups = site.borrow().groups();
            for g in groups {
                let view = views.iter().find(|v| v.group == g);
                let leader = view.and_then(|v| v.leader.as_ref());
                let (state, since, reason) = match leader {
                    Some(l) => (Health::Ok, l.since_ms, format!("{} is active (epoch {})", l.instance, l.epoch)),
                    None => {
                        let live = view.map_or(0, |v| v.members.iter().filter(|m| m.live).count());
                        (Health::Failing, mware_coord::now_ms(), format!("group {g} has no active instance ({live} live member(s))"))
                    }
                };
                let key = ("group".to_string(), g.to_string());
                if known.get(&key).is_some_and(|i| i.state == state && (state != Health::Ok || i.since_ms == since)) {
                    continue;
                }
                let item = Item { kind: "group".into(), name: g.to_string(), state, since_ms: since, reason, instance: instance.clone() };
                known.insert(key, item.clone());
                if persist.send(Change::Put { item, announce: true }).await.is_err() {
                    return;
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(GROUP_POLL) => {}
        }
    }
}
